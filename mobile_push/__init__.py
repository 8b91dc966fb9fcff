"""Mobile push: officers' devices, content-free FCM messages, receipts and responder status."""

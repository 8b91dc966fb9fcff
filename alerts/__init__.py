"""Alerts: detections turned into verified signals, operator workflow, routing to forces, outbox, escalation."""

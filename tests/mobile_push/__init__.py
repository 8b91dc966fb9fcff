"""Mobile push tests."""

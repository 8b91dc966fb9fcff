"""Alerts tests."""

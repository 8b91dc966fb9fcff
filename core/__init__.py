"""Shared kernel: settings, database access under tenancy, events, bus, errors, logging, ids."""

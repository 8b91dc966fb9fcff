"""Billing: catalogue, contracts, metering, monthly invoices (Factur-X), Chorus Pro deposits, the mayor's report."""

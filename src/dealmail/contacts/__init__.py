"""Customers: CSV import, normalisation, consent, tags and segments."""

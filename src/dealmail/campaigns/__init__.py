"""Campaigns: templates, rendering, preflight checks and the lifecycle."""

"""Analytics: read-only report queries and exports."""

"""Delivery: the send queue (claim, lease, retry), rate limits, worker, MIME, DKIM, backends."""

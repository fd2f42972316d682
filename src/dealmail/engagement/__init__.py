"""Engagement: unsubscribe, tracking, bounces and complaints, webhook parsing."""

"""dealmail: email campaigns that carry personal QR-code deals, redeemed at the counter."""

__version__ = "0.1.0"

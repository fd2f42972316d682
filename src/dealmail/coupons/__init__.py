"""Coupons: tokens, short codes, QR images, validate and redeem."""

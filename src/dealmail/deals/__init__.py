"""Deals: what a coupon is worth, for how long, and how it reads in an email."""

from dealmail.deals.validity import coupon_validity

__all__ = ["coupon_validity"]

"""Pure deal rules: when a coupon issued at a given moment is valid, and how a deal reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from dealmail.models import Deal, DealKind

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def coupon_validity(deal: Deal, issued_at: datetime) -> tuple[datetime | None, datetime | None]:
    """(valid_from, expires_at) for a coupon issued at `issued_at`.

    A fixed `valid_until` wins; otherwise "N days after sending" counts from the issue time.
    """
    expires_at = deal.valid_until
    if expires_at is None and deal.valid_days is not None:
        expires_at = issued_at + timedelta(days=deal.valid_days)
    return deal.valid_from, expires_at


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money(value: Decimal | None, currency: str | None) -> str:
    amount = _number(value)
    if value is not None and value != value.to_integral_value():
        amount = f"{value:.2f}"
    code = (currency or "").upper()
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol is not None:
        return f"{symbol}{amount}"
    return f"{amount} {code}".strip()


def value_text(deal: Deal) -> str:
    """The headline of the deal: "20% off", "€5 off", "Buy one, get one free"..."""
    kind = deal.kind
    if kind == DealKind.PERCENT_OFF:
        return f"{_number(deal.value)}% off"
    if kind == DealKind.AMOUNT_OFF:
        return f"{money(deal.value, deal.currency)} off"
    if kind == DealKind.BOGO:
        return "Buy one, get one free"
    if kind == DealKind.FREE_ITEM:
        return "Free item"
    return deal.title

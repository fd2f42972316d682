"""Redemptions for the accountant, as CSV or XLSX, streamed; cells neutralised against formulas.

The contacts export is the contacts domain's own (contacts.queries.export_rows).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from dealmail.analytics._sql import local_day_bounds
from dealmail.analytics.campaigns import discount_value_expression
from dealmail.errors import InvalidInput, NotFound
from dealmail.models import (
    Campaign,
    Coupon,
    Customer,
    CustomerStatus,
    Deal,
    Device,
    Location,
    Redemption,
)
from dealmail.shop import get_shop_settings

REDEMPTION_HEADER = (
    "date",
    "time",
    "location",
    "device",
    "campaign",
    "deal",
    "discount value",
    "customer",
    "voided",
)
DELETED_CUSTOMER = "(deleted customer)"
# A spreadsheet treats a cell starting with one of these as a formula (CSV/DDE injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
STREAM_BATCH = 1000
MAX_EXPORT_DAYS = 3660


def neutralise(value: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading apostrophe; the rest is kept."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class RedemptionRow:
    """One redemption as the accountant sees it; date and time are the location's local time."""

    date: date
    time: str
    location: str
    device: str
    campaign: str
    deal: str
    discount_value: Decimal | None
    customer: str
    voided: bool

    def cells(self) -> list[object]:
        return [
            self.date.isoformat(),
            self.time,
            self.location,
            self.device,
            self.campaign,
            self.deal,
            "" if self.discount_value is None else str(self.discount_value),
            self.customer,
            "yes" if self.voided else "no",
        ]


def _customer_label(
    email: str | None, first: str | None, last: str | None, status: str | None
) -> str:
    if email is None or status == CustomerStatus.DELETED:
        return DELETED_CUSTOMER
    if email:
        return email
    return " ".join(part for part in (first, last) if part) or DELETED_CUSTOMER


def redemption_rows(
    session: Session,
    first: date,
    last: date,
    location: str | None = None,
) -> Iterator[RedemptionRow]:
    """Redemptions whose local date is within first..last, oldest first; voids are marked.

    Dates are read in the location's time zone when one is chosen, else in the shop's. Reversal
    rows (a void's own row) are not listed: the original shows `voided`.
    """
    if last < first:
        raise InvalidInput("the end date is before the start date", code="invalid_range")
    if (last - first).days > MAX_EXPORT_DAYS:
        raise InvalidInput("choose a range of at most ten years", code="invalid_range")
    shop_zone = get_shop_settings(session).zone
    conditions: list[ColumnElement[bool]] = [Redemption.voids_id.is_(None)]
    zone = shop_zone
    if location is not None:
        found = session.execute(
            select(Location.id, Location.timezone).where(Location.name == location)
        ).first()
        if found is None:
            raise NotFound(f"no location named {location!r}", code="location_not_found")
        conditions.append(Redemption.location_id == found[0])
        zone = _zone(found[1])
    start, end = local_day_bounds(first, last, zone)
    conditions += [Redemption.redeemed_at >= start, Redemption.redeemed_at < end]
    statement = (
        select(
            Redemption.redeemed_at,
            Location.name,
            Location.timezone,
            Device.name,
            Campaign.name,
            Deal.title,
            discount_value_expression(),
            Customer.email,
            Customer.first_name,
            Customer.last_name,
            Customer.status,
            Redemption.voided_by_id,
        )
        .select_from(Redemption)
        .join(Coupon, Coupon.id == Redemption.coupon_id)
        .join(Deal, Deal.id == Coupon.deal_id)
        .outerjoin(Location, Location.id == Redemption.location_id)
        .outerjoin(Device, Device.id == Redemption.device_id)
        .outerjoin(Campaign, Campaign.id == Redemption.campaign_id)
        .outerjoin(Customer, Customer.id == Coupon.customer_id)
        .where(*conditions)
        .order_by(Redemption.redeemed_at, Redemption.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in session.execute(statement):
        (at, place, place_zone, device, campaign, deal, money, email, first_name, last_name,
         status, voided_by) = row  # fmt: skip
        local: datetime = at.astimezone(_zone(place_zone) if place_zone else shop_zone)
        yield RedemptionRow(
            date=local.date(),
            time=local.strftime("%H:%M:%S"),
            location=place or "",
            device=device or "",
            campaign=campaign or "",
            deal=deal,
            discount_value=None if money is None else Decimal(money).quantize(Decimal("0.01")),
            customer=_customer_label(email, first_name, last_name, status),
            voided=voided_by is not None,
        )


def write_csv(header: Iterable[str], rows: Iterable[list[object]], out: IO[str]) -> int:
    """Write rows as they come (never all in memory), neutralised; returns the number written."""
    writer = csv.writer(out)
    writer.writerow(list(header))
    written = 0
    for cells in rows:
        writer.writerow([neutralise(cell) for cell in cells])
        written += 1
    return written


def write_redemptions_csv(rows: Iterable[RedemptionRow], out: IO[str]) -> int:
    return write_csv(REDEMPTION_HEADER, (row.cells() for row in rows), out)


def write_redemptions_xlsx(rows: Iterable[RedemptionRow], out: Path | IO[bytes]) -> int:
    """openpyxl in write-only mode: rows stream to a temporary file, not into memory."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Redemptions")
    sheet.append(list(REDEMPTION_HEADER))
    written = 0
    for row in rows:
        # A date cell, so the accountant's spreadsheet sorts and filters it as a date.
        day = WriteOnlyCell(sheet, value=datetime.combine(row.date, datetime.min.time()))
        day.number_format = "yyyy-mm-dd"
        values: list[Any] = [
            day,
            row.time,
            neutralise(row.location),
            neutralise(row.device),
            neutralise(row.campaign),
            neutralise(row.deal),
            row.discount_value,
            neutralise(row.customer),
            "yes" if row.voided else "no",
        ]
        sheet.append(values)
        written += 1
    workbook.save(out)
    return written

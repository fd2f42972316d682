"""Locations and staff devices: add, list, pair by one-time link, API keys, revoke, authenticate."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from dealmail.coupons.prepared import Prepared, Runner
from dealmail.errors import AlreadyExists, DomainError, InvalidInput, NotFound
from dealmail.models import Device, Location, PairingToken, utcnow
from dealmail.security import sha256_hex
from dealmail.shop import get_shop_settings

PAIRING_TTL = timedelta(minutes=15)
# last_seen_at is written at most this often per device, so a busy till does not write per scan.
LAST_SEEN_GRANULARITY = timedelta(seconds=60)
API_KEY_PREFIX = "dmk_"
COOKIE_KEY_PREFIX = "dmc_"
MAX_NAME_LENGTH = 100
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class DeviceKind:
    BROWSER = "browser"
    API = "api"


@dataclass(frozen=True)
class DeviceInfo:
    id: int
    name: str
    kind: str
    location_id: int
    location_name: str
    location_timezone: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.location_timezone)


@dataclass(frozen=True)
class NewDevice:
    """A device just created; `key` is its credential, shown once and never stored."""

    device: DeviceInfo
    key: str


@dataclass(frozen=True)
class PairingLink:
    token: str
    url: str
    location_name: str
    expires_at: datetime


@dataclass(frozen=True)
class PairingInfo:
    location_name: str
    device_name: str | None
    expires_at: datetime


def clean_name(value: str, what: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME_LENGTH or _CONTROL_RE.search(name):
        raise InvalidInput(
            f"a {what} name is 1-{MAX_NAME_LENGTH} printable characters",
            code=f"invalid_{what}_name",
        )
    return name


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown time zone {value!r} (try Europe/London)", code="invalid_timezone"
        ) from exc
    return value


def add_location(
    session: Session, name: str, address: str | None = None, timezone: str | None = None
) -> Location:
    """A new location; its time zone defaults to the shop's."""
    name = clean_name(name, "location")
    zone = check_timezone(timezone) if timezone else get_shop_settings(session).timezone
    if session.scalar(select(Location.id).where(Location.name == name)) is not None:
        raise AlreadyExists(f"location {name!r} already exists", code="location_exists")
    location = Location(name=name, address=(address or "").strip() or None, timezone=zone)
    session.add(location)
    session.commit()
    return location


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).order_by(Location.name)))


def get_location(session: Session, name: str) -> Location:
    location = session.scalar(select(Location).where(Location.name == name.strip()))
    if location is None:
        known = ", ".join(loc.name for loc in list_locations(session)) or "none yet"
        raise NotFound(
            f"no location {name!r} (known: {known}); add it with `dealmail locations add`",
            code="unknown_location",
        )
    return location


def _info(device: Device, location: Location) -> DeviceInfo:
    return DeviceInfo(
        id=device.id,
        name=device.name,
        kind=device.kind,
        location_id=location.id,
        location_name=location.name,
        location_timezone=location.timezone,
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
    )


def _new_key(kind: str) -> str:
    prefix = API_KEY_PREFIX if kind == DeviceKind.API else COOKIE_KEY_PREFIX
    return prefix + secrets.token_urlsafe(32)


def _active_name_taken(session: Session, name: str) -> bool:
    query = select(Device.id).where(Device.name == name, Device.revoked_at.is_(None))
    return session.scalar(query) is not None


def _create_device(
    session: Session, name: str, location: Location, kind: str, now: datetime
) -> NewDevice:
    key = _new_key(kind)
    device = Device(
        name=name, location_id=location.id, kind=kind, key_hash=sha256_hex(key), created_at=now
    )
    session.add(device)
    session.flush()
    return NewDevice(device=_info(device, location), key=key)


def add_device(
    session: Session, name: str, location_name: str, now: datetime | None = None
) -> NewDevice:
    """An app or till: returns its API key once (only the key's hash is stored)."""
    name = clean_name(name, "device")
    location = get_location(session, location_name)
    if _active_name_taken(session, name):
        raise AlreadyExists(f"an active device is already called {name!r}", code="device_exists")
    created = _create_device(session, name, location, DeviceKind.API, now or utcnow())
    session.commit()
    return created


def list_devices(session: Session, include_revoked: bool = True) -> list[DeviceInfo]:
    query = select(Device, Location).join(Location, Location.id == Device.location_id)
    if not include_revoked:
        query = query.where(Device.revoked_at.is_(None))
    rows = session.execute(query.order_by(Location.name, Device.name, Device.id))
    return [_info(device, location) for device, location in rows]


def find_device(session: Session, name_or_id: str) -> tuple[Device, Location]:
    """By id (digits) or by name; a name shared by several devices must be given as an id."""
    query = select(Device, Location).join(Location, Location.id == Device.location_id)
    if name_or_id.strip().isdigit():
        rows = session.execute(query.where(Device.id == int(name_or_id))).all()
    else:
        rows = session.execute(query.where(Device.name == name_or_id.strip())).all()
        active = [row for row in rows if row[0].revoked_at is None]
        rows = active or rows
    if not rows:
        raise NotFound(f"no device {name_or_id!r}", code="unknown_device")
    if len(rows) > 1:
        ids = ", ".join(str(row[0].id) for row in rows)
        raise InvalidInput(
            f"several devices are called {name_or_id!r} (ids {ids}); give the id",
            code="ambiguous_device",
        )
    device, location = rows[0]
    return device, location


def revoke_device(session: Session, name_or_id: str, now: datetime | None = None) -> DeviceInfo:
    """Its key and cookie stop working at once; the row stays for the audit trail."""
    device, location = find_device(session, name_or_id)
    if device.revoked_at is None:
        device.revoked_at = now or utcnow()
        session.commit()
    return _info(device, location)


def create_pairing(
    session: Session,
    location_name: str,
    device_name: str | None = None,
    now: datetime | None = None,
    public_url: str | None = None,
) -> PairingLink:
    """A one-time link (valid 15 minutes, once) that pairs the phone that opens it."""
    now = now or utcnow()
    location = get_location(session, location_name)
    name = clean_name(device_name, "device") if device_name else None
    token = secrets.token_urlsafe(24)
    expires_at = now + PAIRING_TTL
    session.add(
        PairingToken(
            token_hash=sha256_hex(token),
            location_id=location.id,
            device_name=name,
            created_at=now,
            expires_at=expires_at,
        )
    )
    base = public_url or get_shop_settings(session).public_url
    session.commit()
    return PairingLink(
        token=token,
        url=f"{base.rstrip('/')}/pair/{token}",
        location_name=location.name,
        expires_at=expires_at,
    )


def _pairing_refusal(row: PairingToken | None, now: datetime) -> DomainError:
    if row is None:
        return NotFound("this pairing link is not valid", code="pairing_unknown")
    if row.used_at is not None:
        return DomainError(
            "this pairing link was already used; make a new one with `dealmail devices pair`",
            code="pairing_used",
            http_status=410,
        )
    return DomainError(
        "this pairing link has expired (links last 15 minutes); make a new one",
        code="pairing_expired",
        http_status=410,
    )


def get_pairing(session: Session, token: str, now: datetime | None = None) -> PairingInfo:
    """What a pairing link would do, without using it (the GET of the pairing page)."""
    now = now or utcnow()
    row = session.scalar(select(PairingToken).where(PairingToken.token_hash == sha256_hex(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise _pairing_refusal(row, now)
    location = session.get(Location, row.location_id)
    assert location is not None
    return PairingInfo(
        location_name=location.name, device_name=row.device_name, expires_at=row.expires_at
    )


def _default_device_name(session: Session, location: Location) -> str:
    count = session.scalar(
        select(func.count()).select_from(Device).where(Device.location_id == location.id)
    )
    number = (count or 0) + 1
    while _active_name_taken(session, f"{location.name} phone {number}"):
        number += 1
    return f"{location.name} phone {number}"[:MAX_NAME_LENGTH]


def complete_pairing(
    session: Session, token: str, device_name: str | None = None, now: datetime | None = None
) -> NewDevice:
    """Spend the link (once, before it expires) and create the browser device it pairs."""
    now = now or utcnow()
    hashed = sha256_hex(token)
    spent = session.execute(
        update(PairingToken)
        .where(
            PairingToken.token_hash == hashed,
            PairingToken.used_at.is_(None),
            PairingToken.expires_at > now,
        )
        .values(used_at=now)
    )
    row = session.scalar(select(PairingToken).where(PairingToken.token_hash == hashed))
    if spent.rowcount != 1 or row is None:  # type: ignore[attr-defined]
        refusal = _pairing_refusal(row, now)
        session.rollback()
        raise refusal
    location = session.get(Location, row.location_id)
    assert location is not None
    chosen = device_name or row.device_name
    name = clean_name(chosen, "device") if chosen else _default_device_name(session, location)
    if _active_name_taken(session, name):
        name = f"{name} ({now:%Y-%m-%d %H:%M})"[:MAX_NAME_LENGTH]
    created = _create_device(session, name, location, DeviceKind.BROWSER, now)
    row.device_id = created.device.id
    session.commit()
    return created


# Built once: authentication runs on every scanner request.
_AUTHENTICATE = Prepared(
    select(
        Device.id,
        Device.name,
        Device.kind,
        Device.location_id,
        Location.name,
        Location.timezone,
        Device.created_at,
        Device.last_seen_at,
        Device.revoked_at,
    )
    .join(Location, Location.id == Device.location_id)
    .where(Device.key_hash == bindparam("key_hash"), Device.revoked_at.is_(None))
)
_SEEN = Prepared(
    update(Device).where(Device.id == bindparam("device_id")).values(last_seen_at=bindparam("now"))
)


def authenticate_device(
    session: Session | Runner,
    key: str | None,
    now: datetime | None = None,
    *,
    finish: bool = True,
) -> DeviceInfo | None:
    """The active device holding this key (API key or pairing cookie), else None.

    With `finish=False` the transaction stays open for the caller's service to continue and
    commit (one transaction per scanner request instead of two).
    """
    if not key or len(key) > 200:
        return None
    runner = Runner.of(session)
    row = runner.first(_AUTHENTICATE, {"key_hash": sha256_hex(key)})
    if row is None:
        if finish:
            runner.rollback()
        return None
    info = DeviceInfo(*row)
    now = now or utcnow()
    if info.last_seen_at is None or now - info.last_seen_at >= LAST_SEEN_GRANULARITY:
        runner.rowcount(_SEEN, {"device_id": info.id, "now": now})
        info = replace(info, last_seen_at=now)
    if finish:
        runner.commit()
    return info

"""Locations and devices on a real database: add, list, API keys, pairing links, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail import shop
from dealmail.errors import DomainError
from dealmail.locations import service
from dealmail.models import Device, PairingToken, utcnow
from dealmail.security import sha256_hex


def test_add_and_list_locations(session: Session) -> None:
    service.add_location(session, "  Main   St ", address="1 High St", timezone="Europe/London")
    service.add_location(session, "Airport")
    names = [(loc.name, loc.timezone) for loc in service.list_locations(session)]
    assert names == [("Airport", "UTC"), ("Main St", "Europe/London")]


def test_location_timezone_defaults_to_the_shops(session: Session) -> None:
    shop.set_settings(session, {"timezone": "America/New_York"})
    assert service.add_location(session, "Harbour").timezone == "America/New_York"


@pytest.mark.parametrize(
    ("name", "timezone", "code"),
    [("", None, "invalid_location_name"), ("X", "Mars/Olympus", "invalid_timezone")],
)
def test_bad_location_is_refused(session: Session, name: str, timezone: str, code: str) -> None:
    with pytest.raises(DomainError) as caught:
        service.add_location(session, name, timezone=timezone)
    assert caught.value.code == code


def test_duplicate_location_is_refused(session: Session) -> None:
    service.add_location(session, "Main St")
    with pytest.raises(DomainError) as caught:
        service.add_location(session, "Main St")
    assert caught.value.code == "location_exists"


def test_api_key_is_shown_once_and_stored_hashed(session: Session) -> None:
    service.add_location(session, "Main St")
    created = service.add_device(session, "Till 1", "Main St")
    assert created.key.startswith("dmk_")
    assert len(created.key) > 40
    stored = session.scalar(select(Device).where(Device.id == created.device.id))
    assert stored is not None
    assert stored.key_hash == sha256_hex(created.key)
    assert created.key not in {stored.key_hash, stored.name}


def test_device_for_unknown_location_names_the_known_ones(session: Session) -> None:
    service.add_location(session, "Main St")
    with pytest.raises(DomainError) as caught:
        service.add_device(session, "Till", "Nowhere")
    assert caught.value.code == "unknown_location"
    assert "Main St" in caught.value.message


def test_authenticate_updates_last_seen_at_most_once_a_minute(session: Session) -> None:
    service.add_location(session, "Main St")
    created = service.add_device(session, "Till 1", "Main St")
    first = utcnow()
    seen = service.authenticate_device(session, created.key, now=first)
    assert seen is not None
    assert seen.location_name == "Main St"
    assert seen.last_seen_at == first
    again = service.authenticate_device(session, created.key, now=first + timedelta(seconds=5))
    assert again is not None
    assert again.last_seen_at == first
    later = first + timedelta(minutes=2)
    assert service.authenticate_device(session, created.key, now=later) is not None
    listed = service.list_devices(session)
    assert [(d.name, d.last_seen_at) for d in listed] == [("Till 1", later)]
    assert service.authenticate_device(session, "dmk_wrong") is None
    assert service.authenticate_device(session, None) is None


def test_revoked_device_cannot_authenticate(session: Session) -> None:
    service.add_location(session, "Main St")
    created = service.add_device(session, "Till 1", "Main St")
    revoked = service.revoke_device(session, "Till 1")
    assert revoked.revoked_at is not None
    assert service.authenticate_device(session, created.key) is None
    # the name is free again, and the old row stays for the audit trail
    service.add_device(session, "Till 1", "Main St")
    assert len(service.list_devices(session)) == 2
    assert len(service.list_devices(session, include_revoked=False)) == 1


def test_revoke_by_id_and_unknown(session: Session) -> None:
    service.add_location(session, "Main St")
    created = service.add_device(session, "Till 1", "Main St")
    assert service.revoke_device(session, str(created.device.id)).name == "Till 1"
    with pytest.raises(DomainError) as caught:
        service.revoke_device(session, "Till 9")
    assert caught.value.code == "unknown_device"


def test_pairing_link_pairs_once(session: Session) -> None:
    shop.set_settings(session, {"public_url": "https://shop.example"})
    service.add_location(session, "Main St")
    now = utcnow()
    link = service.create_pairing(session, "Main St", now=now)
    assert link.url == f"https://shop.example/pair/{link.token}"
    assert link.expires_at == now + timedelta(minutes=15)
    stored = session.scalar(select(PairingToken))
    assert stored is not None
    assert stored.token_hash == sha256_hex(link.token)

    info = service.get_pairing(session, link.token, now=now)
    assert info.location_name == "Main St"
    paired = service.complete_pairing(session, link.token, now=now + timedelta(minutes=1))
    assert paired.device.kind == "browser"
    assert paired.device.name == "Main St phone 1"
    assert paired.key.startswith("dmc_")
    assert service.authenticate_device(session, paired.key) is not None

    for action in (service.get_pairing, service.complete_pairing):
        with pytest.raises(DomainError) as caught:
            action(session, link.token)
        assert (caught.value.code, caught.value.http_status) == ("pairing_used", 410)


def test_pairing_link_expires_after_15_minutes(session: Session) -> None:
    service.add_location(session, "Main St")
    now = utcnow()
    link = service.create_pairing(session, "Main St", device_name="Counter", now=now)
    late = now + timedelta(minutes=15, seconds=1)
    with pytest.raises(DomainError) as caught:
        service.complete_pairing(session, link.token, now=late)
    assert caught.value.code == "pairing_expired"
    paired = service.complete_pairing(session, link.token, now=now + timedelta(minutes=14))
    assert paired.device.name == "Counter"


def test_unknown_pairing_token(session: Session) -> None:
    with pytest.raises(DomainError) as caught:
        service.get_pairing(session, "nope")
    assert (caught.value.code, caught.value.http_status) == ("pairing_unknown", 404)

"""`dealmail locations` and `dealmail devices` end to end through the CLI on a real database."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dealmail.cli import app
from dealmail.config import Settings
from dealmail.locations import service

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_locations_add_and_list(settings: Settings) -> None:
    code, out = _run(
        "locations", "add", "Main St", "--address", "1 High St", "--timezone", "Europe/Paris"
    )
    assert code == 0, out
    assert "Europe/Paris" in out
    code, out = _run("locations", "list", "--json")
    assert json.loads(out) == [
        {"id": 1, "name": "Main St", "address": "1 High St", "timezone": "Europe/Paris"}
    ]
    code, out = _run("locations", "add", "Main St")
    assert code == 2
    assert "location_exists" in out
    code, out = _run("locations", "add", "Pier", "--timezone", "Nowhere/Else")
    assert code == 2
    assert "invalid_timezone" in out


def test_devices_add_prints_the_key_once_and_it_authenticates(
    settings: Settings, session: Session
) -> None:
    _run("locations", "add", "Main St")
    code, out = _run("devices", "add", "Till 1", "--location", "Main St", "--json")
    assert code == 0, out
    created = json.loads(out)
    assert created["location"] == "Main St"
    device = service.authenticate_device(session, created["api_key"])
    assert device is not None
    assert device.name == "Till 1"
    code, out = _run("devices", "list", "--json")
    listed = json.loads(out)
    assert "api_key" not in listed[0]
    assert listed[0]["last_seen_at"] is not None
    assert created["api_key"] not in out
    code, out = _run("devices", "revoke", "Till 1")
    assert code == 0
    assert service.authenticate_device(session, created["api_key"]) is None
    assert _run("devices", "revoke", "Till 9")[0] == 2


def test_devices_pair_prints_a_link_and_a_terminal_qr(settings: Settings, session: Session) -> None:
    _run("locations", "add", "Main St")
    code, out = _run("devices", "pair", "--location", "Main St")
    assert code == 0, out
    url = next(line for line in out.splitlines() if "/pair/" in line)
    assert url.startswith("http://127.0.0.1:8000/pair/")
    assert "█" in out or "▀" in out
    token = url.rsplit("/", 1)[1]
    assert service.get_pairing(session, token).location_name == "Main St"
    session.rollback()  # end the read so the CLI below can take SQLite's write lock
    assert _run("devices", "pair", "--location", "Nowhere")[0] == 2

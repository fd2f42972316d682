"""`dealmail devices`: pair staff phones by a one-time link, API keys for apps and tills, revoke."""

from __future__ import annotations

import io
from datetime import datetime

import segno
import typer

from dealmail.cli._common import cli_session, console, print_json
from dealmail.locations import service
from dealmail.locations.service import DeviceInfo

devices_app = typer.Typer(
    help="Staff devices: phones (paired by link) and apps or tills (API keys).",
    no_args_is_help=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _row(device: DeviceInfo) -> dict[str, object]:
    return {
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "location": device.location_name,
        "created_at": device.created_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None,
    }


def terminal_qr(text: str) -> str:
    buffer = io.StringIO()
    segno.make(text, error="m").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


@devices_app.command("pair")
def devices_pair(
    location: str = typer.Option(..., "--location", help="Location the phone will serve."),
    name: str = typer.Option(None, "--name", help="Name for the phone (asked on it otherwise)."),
    qr: bool = typer.Option(True, "--qr/--no-qr", help="Also draw the link as a QR code."),
) -> None:
    """Print a one-time pairing link (valid 15 minutes, once) and its QR code."""
    with cli_session() as session:
        link = service.create_pairing(session, location, device_name=name)
    if qr:
        typer.echo(terminal_qr(link.url))
    typer.echo(link.url)
    typer.echo(
        f"Open it on the staff phone to pair it with {link.location_name}; "
        f"valid once, until {_when(link.expires_at)}."
    )


@devices_app.command("add")
def devices_add(
    name: str,
    location: str = typer.Option(..., "--location", help="Location the app or till serves."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add an app or till; prints its API key once (send it as `Authorization: Bearer KEY`)."""
    with cli_session() as session:
        created = service.add_device(session, name, location)
    if as_json:
        print_json(_row(created.device) | {"api_key": created.key})
        return
    console.print(
        f"device {created.device.name} added at {created.device.location_name}", highlight=False
    )
    console.print("API key (shown once, store it now):", highlight=False)
    typer.echo(created.key)


@devices_app.command("list")
def devices_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List devices with their location and when each was last seen."""
    with cli_session() as session:
        devices = service.list_devices(session)
    if as_json:
        print_json([_row(device) for device in devices])
        return
    if not devices:
        console.print("no devices yet: dealmail devices pair --location NAME")
    for device in devices:
        state = f"revoked {_when(device.revoked_at)}" if device.revoked_at else "active"
        typer.echo(
            f"{device.id:>4}  {device.name:24} {device.kind:8} {device.location_name:20} "
            f"last seen {_when(device.last_seen_at):22} {state}",
        )


@devices_app.command("revoke")
def devices_revoke(device: str = typer.Argument(..., help="Device name or id.")) -> None:
    """Revoke a device: its key or cookie stops working at once."""
    with cli_session() as session:
        revoked = service.revoke_device(session, device)
    console.print(f"device {revoked.name} (id {revoked.id}) revoked", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")

"""Sending verbs: `campaigns send|pause|resume|cancel|status|resend`, `worker`, `devinbox`."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dealmail.cli._common import cli_session, console, print_json
from dealmail.cli._groups import campaigns_app
from dealmail.config import get_settings
from dealmail.delivery import control

FINAL = ("sent", "failed", "bounced", "skipped")


@campaigns_app.command("send")
def send(
    name: str,
    at: str = typer.Option(
        None, "--at", help="Send later: DATETIME in the shop's time zone, e.g. '2026-12-01 09:00'."
    ),
) -> None:
    """Check, then send NAME now (or schedule it with --at); a running worker delivers it."""
    settings = get_settings()
    with (
        cli_session() as session,
        Progress(
            TextColumn("materialising"),
            TextColumn("{task.completed:,} messages"),
            console=console,
            transient=True,
            disable=at is not None,
        ) as progress,
    ):
        task = progress.add_task("materialise", total=None)
        result = control.send_campaign(
            session, name, settings, at=at, on_batch=lambda n: progress.advance(task, n)
        )
    if result["status"] == "scheduled":
        console.print(f"campaign {name} scheduled for {result['send_at']:%Y-%m-%d %H:%M} UTC")
    else:
        console.print(
            f"campaign {name} sending: {result['messages']:,} messages queued "
            "(a worker delivers them: `dealmail worker` or `dealmail up`)"
        )


@campaigns_app.command("pause")
def pause(name: str) -> None:
    """Pause sending NAME (messages already in a send finish)."""
    with cli_session() as session:
        campaign = control.pause(session, name)
    console.print(f"campaign {campaign.name} paused")


@campaigns_app.command("resume")
def resume(name: str) -> None:
    """Resume a paused campaign."""
    with cli_session() as session:
        campaign = control.resume(session, name, get_settings())
    console.print(f"campaign {campaign.name} {campaign.status}")


@campaigns_app.command("cancel")
def cancel(name: str) -> None:
    """Cancel NAME: nothing more is sent."""
    with cli_session() as session:
        result = control.cancel(session, name)
    console.print(f"campaign {name} cancelled; {result['skipped']:,} unsent messages skipped")


@campaigns_app.command("resend")
def resend(
    name: str,
    failed: bool = typer.Option(False, "--failed", help="Send again to the failed messages."),
) -> None:
    """Send again only to the recipients whose message failed."""
    if not failed:
        raise typer.BadParameter("say what to resend: --failed")
    with cli_session() as session:
        result = control.resend_failed(session, name)
    console.print(f"campaign {name}: {result['requeued']:,} failed messages queued again")


def _status_line(status: dict[str, Any]) -> str:
    eta = status["eta"]
    eta_text = "-" if eta is None else f"{eta:,.0f}s"
    return (
        f"[bold]{status['campaign']}[/] {status['status']}  "
        + "  ".join(f"{key} {status[key]:,}" for key in control.STATUS_KEYS)
        + f"  rate {status['rate']}/s  eta {eta_text}"
    )


@campaigns_app.command("status")
def status(
    name: str,
    watch: bool = typer.Option(False, "--watch", help="Keep a live progress bar until done."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per refresh)."),
) -> None:
    """Queued, sending, sent, deferred, failed, bounced, skipped, rate and ETA of NAME."""
    with cli_session() as session:
        current = control.campaign_status(session, name)
        if not watch:
            if as_json:
                print_json(current)
            else:
                console.print(_status_line(current))
                if current["paused_reason"]:
                    console.print(f"paused: {current['paused_reason']}")
            return
        if as_json:
            while True:
                typer.echo(json.dumps(current, default=str))
                if _done(current):
                    return
                time.sleep(1.0)
                current = control.campaign_status(session, name)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(name, total=current["total"] or None, detail="")
            while True:
                done = sum(current[key] for key in FINAL)
                eta = current["eta"]
                progress.update(
                    task,
                    total=current["total"] or None,
                    completed=done,
                    description=f"{name} {current['status']}",
                    detail=(
                        f"deferred {current['deferred']:,} failed {current['failed']:,} "
                        f"bounced {current['bounced']:,} {current['rate']}/s "
                        f"eta {'-' if eta is None else f'{eta:,.0f}s'}"
                    ),
                )
                if _done(current):
                    return
                time.sleep(1.0)
                current = control.campaign_status(session, name)


def _done(current: dict[str, Any]) -> bool:
    return current["status"] not in ("sending", "scheduled")


def worker(
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Exit once nothing is due (for scripts and tests)."
    ),
    connections: int = typer.Option(
        None,
        help="Connections (sender threads) in this worker; default DEALMAIL_SMTP_CONNECTIONS.",
    ),
    batch_size: int = typer.Option(None, help="Messages claimed at a time."),
) -> None:
    """Deliver campaigns: claim, render, send within the rate limits, retry. Run any number."""
    from dealmail.delivery.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runner = Worker(
        get_settings(), until_idle=until_idle, connections=connections, batch_size=batch_size
    )
    runner.install_signal_handlers()
    sent = runner.run()
    console.print(f"worker {runner.name} stopped; {sent:,} messages sent")


def devinbox(
    host: str = typer.Option(None, help="Interface (default DEALMAIL_DEVINBOX_HOST)."),
    port: int = typer.Option(None, help="Port (default DEALMAIL_DEVINBOX_PORT)."),
) -> None:
    """Run the local dev inbox: an SMTP server keeping every message for /dev/inbox."""
    from dealmail.delivery.devinbox import inbox_dir, serve

    settings = get_settings()
    updates: dict[str, Any] = {}
    if host:
        updates["devinbox_host"] = host
    if port:
        updates["devinbox_port"] = port
    settings = settings.model_copy(update=updates)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(
        f"dev inbox: SMTP on {settings.devinbox_host}:{settings.devinbox_port}, "
        f"keeping messages in {inbox_dir(settings)}"
    )
    serve(settings, stop)


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(devinbox)

"""Starting, scheduling, pausing, resuming and cancelling a send; the CLI verbs and their errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dealmail.cli import app
from dealmail.config import Settings
from dealmail.delivery import campaign_state, control
from dealmail.delivery.queue import claim
from dealmail.delivery.worker import Worker
from dealmail.errors import DomainError, InvalidInput
from dealmail.models import Campaign, Message
from dealmail.shop import set_settings
from delivery_support import Sink, add_campaign, add_customers, ready_shop, smtp_settings

runner = CliRunner()


def _campaign(session: Session, count: int = 5) -> Campaign:
    ready_shop(session)
    add_customers(session, count)
    return add_campaign(session, status="draft")


def _refreshed(session: Session, campaign: Campaign) -> Campaign:
    session.expire_all()
    found = session.get(Campaign, campaign.id)
    assert found is not None
    return found


def test_send_now_materialises_everything(session: Session, settings: Settings) -> None:
    campaign = _campaign(session, 30)
    result = control.send_campaign(session, campaign.name, settings)
    assert result == {"campaign": campaign.name, "status": "sending", "messages": 30}
    refreshed = _refreshed(session, campaign)
    assert refreshed.started_at is not None
    assert refreshed.materialised_at is not None


def test_send_refuses_what_preflight_blocks(session: Session, settings: Settings) -> None:
    add_customers(session, 3)
    campaign = add_campaign(session, status="draft")  # no postal address, no sender in the shop
    set_settings(session, {"sender_email": None})
    with pytest.raises(DomainError) as raised:
        control.send_campaign(session, campaign.name, settings)
    assert raised.value.code == "preflight_failed"
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_scheduled_in_the_shops_time_zone_and_started_by_a_later_worker(
    session: Session, settings: Settings
) -> None:
    campaign = _campaign(session, 4)
    set_settings(session, {"timezone": "Europe/Berlin"})
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    result = control.send_campaign(session, campaign.name, settings, at="2026-07-01 09:00", now=now)
    assert result["status"] == "scheduled"
    assert result["send_at"] == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST is UTC+2
    assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert campaign_state.start_due(session, now=datetime(2026, 7, 1, 6, 59, tzinfo=UTC)) == []
    # No worker ran at 09:00; one that starts later picks the campaign up.
    session.execute(update(Campaign).values(send_at=datetime.now(UTC) - timedelta(minutes=5)))
    session.commit()
    with Sink() as sink:
        Worker(smtp_settings(settings, sink.port), until_idle=True).run()
    assert len(sink.handler.received) == 4
    assert _refreshed(session, campaign).status == "sent"


@pytest.mark.parametrize(
    ("text", "code"),
    [("next tuesday", "invalid_send_at"), ("2020-01-01 09:00", "send_at_in_past")],
)
def test_bad_send_times_are_refused(
    session: Session, settings: Settings, text: str, code: str
) -> None:
    campaign = _campaign(session)
    with pytest.raises(InvalidInput) as raised:
        control.send_campaign(session, campaign.name, settings, at=text)
    assert raised.value.code == code


def test_pause_resume_cancel(session: Session, settings: Settings) -> None:
    campaign = _campaign(session, 6)
    control.send_campaign(session, campaign.name, settings)
    control.pause(session, campaign.name)
    assert _refreshed(session, campaign).status == "paused"
    assert claim(session, "w", 10, 60) == []
    control.resume(session, campaign.name, settings)
    assert _refreshed(session, campaign).status == "sending"
    assert len(claim(session, "w", 2, 60)) == 2
    result = control.cancel(session, campaign.name)
    assert result["skipped"] == 6
    assert _refreshed(session, campaign).status == "cancelled"
    assert claim(session, "w", 10, 60) == []
    with pytest.raises(DomainError) as raised:
        control.resume(session, campaign.name, settings)
    assert raised.value.code == "not_paused"


def test_cli_send_status_and_errors(session: Session, settings: Settings) -> None:
    campaign = _campaign(session, 3)
    session.rollback()
    sent = runner.invoke(app, ["campaigns", "send", campaign.name])
    assert sent.exit_code == 0, sent.output
    assert "3 messages queued" in sent.output
    status = runner.invoke(app, ["campaigns", "status", campaign.name, "--json"])
    assert status.exit_code == 0, status.output
    body = json.loads(status.output)
    assert {k: body[k] for k in ("queued", "sending", "sent", "status")} == {
        "queued": 3,
        "sending": 0,
        "sent": 0,
        "status": "sending",
    }
    assert {"deferred", "failed", "bounced", "skipped", "rate", "eta"} <= set(body)
    missing = runner.invoke(app, ["campaigns", "pause", "no-such-campaign"])
    assert missing.exit_code == 2
    assert missing.output.strip().startswith("error:")
    assert "campaign_not_found" in missing.output
    bad_time = runner.invoke(app, ["campaigns", "send", campaign.name, "--at", "soonish"])
    assert bad_time.exit_code == 2
    assert len(bad_time.output.strip().splitlines()) == 1
    paused = runner.invoke(app, ["campaigns", "pause", campaign.name])
    assert paused.exit_code == 0
    assert "paused" in runner.invoke(app, ["campaigns", "status", campaign.name]).output

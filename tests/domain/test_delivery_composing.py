"""Composing in a child process: the same messages, a failure per message, fallback, no orphans."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery.compose import Composer
from dealmail.delivery.composing import ComposeFailure, ComposeProcess
from dealmail.delivery.materialise import issue_coupons, materialise
from dealmail.delivery.worker import Worker
from dealmail.models import Campaign, Message
from delivery_support import (
    Sink,
    add_campaign,
    add_customers,
    add_deal,
    ready_shop,
    smtp_settings,
    start_worker,
    worker_env,
)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, waiting to be reaped by init


def _campaign_with_messages(session: Session, settings: Settings, count: int) -> Campaign:
    ready_shop(session)
    add_customers(session, count)
    campaign = add_campaign(session, deal=add_deal(session))
    materialise(session, campaign.id)
    ids = list(session.scalars(select(Message.id)))
    issue_coupons(session, ids, settings)
    session.commit()
    return campaign


def test_the_child_composes_what_the_worker_would(session: Session, settings: Settings) -> None:
    campaign = _campaign_with_messages(session, settings, 3)
    ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    recipients = Composer.load_recipients(session, ids)
    here = Composer.for_campaign(session, campaign.id, settings)
    broken = recipients[ids[2]].__class__(**{**recipients[ids[2]].__dict__, "email": "a b@x"})
    child = ComposeProcess(settings, settings.resolved_database_url)
    try:
        batch = [recipients[ids[0]], recipients[ids[1]], broken]
        results = child.submit((campaign.id, campaign.updated_at), batch).result(timeout=60)
    finally:
        child.close()
    first, second, failure = results
    assert isinstance(failure, ComposeFailure)
    assert "spaces or control characters" in failure.detail
    expected = here.compose(recipients[ids[0]])
    assert not isinstance(first, ComposeFailure)
    assert not isinstance(second, ComposeFailure)
    assert (first.recipients, first.subject, first.to_header) == (
        expected.recipients,
        expected.subject,
        expected.to_header,
    )
    assert first.inline_images[0].data == expected.inline_images[0].data  # the same coupon QR
    assert second.recipients != first.recipients


def test_a_dead_child_is_replaced_by_composing_in_the_worker(
    session: Session, settings: Settings
) -> None:
    _campaign_with_messages(session, settings, 60)
    with Sink() as sink:
        worker = Worker(
            smtp_settings(settings, sink.port), until_idle=True, batch_size=10, compose_process=True
        )
        original = ComposeProcess.__init__

        def killed_at_once(self: ComposeProcess, *args: object) -> None:
            original(self, *args)  # type: ignore[arg-type]
            os.kill(self._process.pid, signal.SIGKILL)

        ComposeProcess.__init__ = killed_at_once  # type: ignore[method-assign]
        try:
            assert worker.run() == 60
        finally:
            ComposeProcess.__init__ = original  # type: ignore[method-assign]
    assert worker.compose_child is None  # given up: composed in the worker
    assert len(sink.handler.by_recipient()) == 60
    sent = session.scalar(select(func.count()).where(Message.status == "sent"))
    assert sent == 60


def test_a_killed_worker_leaves_no_composing_process(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    _campaign_with_messages(session, settings, 5)
    with Sink() as sink:
        worker = start_worker(worker_env(settings, sink.port), tmp_path / "worker.log")
        try:
            give_up = time.monotonic() + 60  # a safety net against hanging, not a measure
            children: list[int] = []
            while not children and worker.poll() is None and time.monotonic() < give_up:
                time.sleep(0.05)  # the child starts with the worker
                children = _children(worker.pid)
            assert children, "the worker started no composing process"
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            while not all(_gone(pid) for pid in children) and time.monotonic() < give_up:
                time.sleep(0.05)  # its input closed: it ends
            assert all(_gone(pid) for pid in children), "the composing process outlived the worker"
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

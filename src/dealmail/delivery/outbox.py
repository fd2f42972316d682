"""Filling the worker's outbox: claimed messages composed here or in the composing child."""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.delivery import queue as message_queue
from dealmail.delivery.backends import FailureKind, SendError
from dealmail.delivery.compose import Composer, Recipient
from dealmail.delivery.composing import CampaignKey, ComposeFailure
from dealmail.delivery.envelope import ComposedMessage
from dealmail.delivery.queue import Claimed
from dealmail.delivery.recording import record_failure
from dealmail.models import Campaign, CampaignStatus

if TYPE_CHECKING:
    from dealmail.delivery.worker import Worker

log = logging.getLogger("dealmail.worker")

COMPOSE_CHUNK = 20  # messages per request to the composing child: the first arrive soon


@dataclass
class Outgoing:
    claimed: Claimed
    composed: ComposedMessage | None
    error: SendError | None = None  # could not be composed: recorded as failed, not sent


def campaign_key(session: Session, campaign_id: int) -> CampaignKey:
    return (
        campaign_id,
        session.scalar(select(Campaign.updated_at).where(Campaign.id == campaign_id)),
    )


def composer_for(worker: Worker, session: Session, key: CampaignKey) -> Composer:
    campaign_id = key[0]
    composer = worker.composers.get(key)
    if composer is None:
        composer = Composer.for_campaign(session, campaign_id, worker.settings)
        worker.composers = {k: v for k, v in worker.composers.items() if k[0] != campaign_id}
        worker.composers[key] = composer
    return composer


def prepare(worker: Worker, session: Session, reader: Session, claimed: list[Claimed]) -> None:
    """Have the claimed messages composed (CPU only) for the senders, while they send.

    In the child process when there is one; else here, overlapping with the senders'
    network waits (the short GIL switch interval, see `Worker.run`, keeps a sender whose reply has
    arrived from waiting on this thread).
    """
    by_campaign: dict[int, list[Claimed]] = {}
    for message in claimed:
        by_campaign.setdefault(message.campaign_id, []).append(message)
    for campaign_id, messages in by_campaign.items():
        worker.campaign_status.setdefault(campaign_id, CampaignStatus.SENDING)
        try:
            key = campaign_key(reader, campaign_id)
            loaded = Composer.load_recipients(reader, [m.id for m in messages])
            reader.rollback()
            recipients = [loaded[m.id] for m in messages]
        except Exception as exc:  # a broken campaign must not stop the worker
            reader.rollback()
            _fail_campaign(worker, session, campaign_id, messages, exc)
            continue
        if worker.compose_child is None:
            compose_here(worker, session, reader, key, messages, recipients)
            continue
        for start in range(0, len(messages), COMPOSE_CHUNK):
            hand_to_child(
                worker,
                key,
                messages[start : start + COMPOSE_CHUNK],
                recipients[start : start + COMPOSE_CHUNK],
            )


def compose_here(
    worker: Worker,
    session: Session,
    reader: Session,
    key: CampaignKey,
    messages: Sequence[Claimed],
    recipients: Sequence[Recipient],
) -> None:
    try:
        composer = composer_for(worker, reader, key)
        reader.rollback()
    except Exception as exc:  # a broken campaign must not stop the worker
        reader.rollback()
        _fail_campaign(worker, session, key[0], messages, exc)
        return
    for message, recipient in zip(messages, recipients, strict=True):
        try:
            composed = composer.compose(recipient)
        except Exception as exc:  # one bad message never stops the loop
            log.warning("message %s: cannot compose: %s", message.id, exc)
            record_failure(worker, session, message, compose_error(exc))
            continue
        worker.outbox.put(Outgoing(message, composed))


def hand_to_child(
    worker: Worker, key: CampaignKey, messages: list[Claimed], recipients: list[Recipient]
) -> None:
    assert worker.compose_child is not None
    with worker.composing_lock:
        worker.composing += len(messages)
    try:
        future = worker.compose_child.submit(key, recipients)
    except Exception:  # the child is gone (it died, or the pool shut down): compose here
        log.exception("the composing process is unavailable; composing in the worker")
        worker.recompose.put((key, messages, recipients))
        return

    def arrived(done: Future[list[ComposedMessage | ComposeFailure]]) -> None:
        # Runs on the executor's thread: only queues, never the database.
        try:
            results = done.result()
        except (Exception, CancelledError):  # died, or cancelled at shutdown
            worker.recompose.put((key, messages, recipients))
            return
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, ComposeFailure):
                log.warning("message %s: cannot compose: %s", message.id, result.detail)
                worker.outbox.put(Outgoing(message, None, compose_error(result.detail)))
            else:
                worker.outbox.put(Outgoing(message, result))
        with worker.composing_lock:
            worker.composing -= len(messages)

    future.add_done_callback(arrived)


def compose_returned(worker: Worker, session: Session) -> None:
    """Batches the child could not compose: the child is given up, they are composed here."""
    while True:
        try:
            key, messages, recipients = worker.recompose.get_nowait()
        except queue.Empty:
            return
        if worker.compose_child is not None and not worker.stop_event.is_set():
            log.error("the composing process failed; composing in the worker from now on")
            child, worker.compose_child = worker.compose_child, None
            child.close()
        try:
            if worker.stop_event.is_set():
                message_queue.release(session, worker.name, [m.id for m in messages])
            else:
                with worker.readers() as reader:
                    compose_here(worker, session, reader, key, messages, recipients)
        finally:
            with worker.composing_lock:
                worker.composing -= len(messages)


def release_outbox(worker: Worker, session: Session) -> None:
    compose_returned(worker, session)  # stopping: released
    ids = []
    while True:
        try:
            ids.append(worker.outbox.get_nowait().claimed.id)
        except queue.Empty:
            break
        worker.outbox.task_done()
    if ids:
        message_queue.release(session, worker.name, ids)


def _fail_campaign(
    worker: Worker, session: Session, campaign_id: int, messages: Sequence[Claimed], exc: Exception
) -> None:
    log.exception("campaign %s: cannot prepare its messages", campaign_id)
    for message in messages:
        record_failure(worker, session, message, compose_error(exc))


def compose_error(exc: Exception | str) -> SendError:
    return SendError(FailureKind.PERMANENT, f"cannot compose: {exc}", code="compose")

"""Delivery test helpers: bulk customers, campaigns and deals written straight to the DB."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.identity import email_hash, email_key
from dealmail.delivery.envelope import ComposedMessage
from dealmail.models import Campaign, CampaignStatus, Customer, Deal

# A light custom template: these tests measure the queue, not rendering.
SMALL_TEMPLATE = (
    "<html><body><p>Hello {{ first_name }}, spring deals at {{ shop_name }}.</p>"
    '<p>{{ postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def add_customers(
    session: Session, count: int, *, prefix: str = "c", domain: str = "example.com"
) -> list[int]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        email = f"{prefix}{n:06d}@{domain}"
        rows.append(
            {
                "email": email,
                "email_key": email_key(email),
                "email_hash": email_hash(email),
                "first_name": f"First{n}",
                "status": "subscribed",
                "attributes": {},
                "consent_at": now,
                "consent_source": "test",
                "created_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(rows), 5000):
        session.execute(insert(Customer), rows[start : start + 5000])
    session.commit()
    return list(
        session.scalars(
            select(Customer.id)
            .where(Customer.email.like(f"{prefix}%@{domain}"))
            .order_by(Customer.id)
        )
    )


def add_deal(session: Session, name: str = "ten-off") -> Deal:
    deal = Deal(name=name, kind="percent_off", value=Decimal(10), title="10% off", valid_days=30)
    session.add(deal)
    session.commit()
    return deal


def add_campaign(
    session: Session,
    name: str = "spring",
    *,
    status: str = CampaignStatus.SENDING,
    deal: Deal | None = None,
    audience: dict[str, Any] | None = None,
    **fields: Any,
) -> Campaign:
    campaign = Campaign(
        name=name,
        status=status,
        subject=fields.pop("subject", "Spring deals"),
        from_email=fields.pop("from_email", "shop@shop.example"),
        from_name=fields.pop("from_name", "The Shop"),
        audience=audience or {},
        deal_id=deal.id if deal is not None else None,
        content=fields.pop("content", {"heading": "Hello", "body_markdown": "Spring is here."}),
        theme=fields.pop("theme", None),
        **fields,
    )
    session.add(campaign)
    session.commit()
    return campaign


@dataclass(frozen=True)
class Received:
    at: float
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes


class RecordingHandler:
    """Accepts everything and remembers when each message arrived."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.received.append(
                Received(time.time(), envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw))
            )
        return "250 2.0.0 OK"

    def by_recipient(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        with self.lock:
            for message in self.received:
                for rcpt in message.recipients:
                    found.setdefault(rcpt, []).append(message)
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """An aiosmtpd server in this process, on a free port."""

    def __init__(self, handler: Any = None) -> None:
        from aiosmtpd.controller import Controller

        self.handler = handler or RecordingHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=10 * 1024 * 1024
        )

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def ready_shop(session: Session) -> None:
    from dealmail.shop import set_settings

    set_settings(
        session,
        {
            "shop_name": "Corner Shop",
            "sender_email": "shop@shop.example",
            "postal_address": "1 High Street, Town",
            "public_url": "https://shop.example",
        },
    )


def smtp_settings(settings: Settings, port: int, **extra: Any) -> Settings:
    return settings.model_copy(
        update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, **extra}
    )


def worker_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """Environment for a `python -m dealmail worker` subprocess against this test's database."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALMAIL_")}
    env.update(
        {
            "DEALMAIL_DATA_DIR": str(settings.resolved_data_dir),
            "DEALMAIL_DATABASE_URL": settings.resolved_database_url,
            "DEALMAIL_SECRET_KEY": settings.secret_key_bytes().decode(),
            "DEALMAIL_EMAIL_BACKEND": "smtp",
            "DEALMAIL_SMTP_HOST": "127.0.0.1",
            "DEALMAIL_SMTP_PORT": str(port),
            "DEALMAIL_SMTP_TIMEOUT": "10",
            "DEALMAIL_WORKER_POLL_SECONDS": "0.2",
            **extra,
        }
    )
    return env


def start_worker(env: dict[str, str], log_path: Any, *args: str) -> Any:
    import subprocess
    import sys

    log = open(log_path, "ab")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen(
        [sys.executable, "-m", "dealmail", "worker", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def message(to: str = "ann@example.com", row: int = 1) -> ComposedMessage:
    raw = (
        f"From: shop@shop.example\r\nTo: {to}\r\nSubject: Hello\r\n"
        f"Message-ID: <{row}@shop.example>\r\n\r\nHello there\r\n"
    ).encode()
    return ComposedMessage(
        message_row_id=row,
        envelope_from="shop@shop.example",
        recipients=(to,),
        raw=raw,
        message_id=f"<{row}@shop.example>",
        subject="Hello",
        from_header="shop@shop.example",
        to_header=to,
        html="<p>Hello there</p>",
        text="Hello there",
    )

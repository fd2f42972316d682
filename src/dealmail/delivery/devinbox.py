"""The dev inbox: a local SMTP server (aiosmtpd) that keeps every message in the data directory.

Each message is one `.eml` file under `<data_dir>/devinbox/`, plus a line in `index.jsonl`
(id, time, envelope, subject, size), so a newcomer sees real emails without a provider account.
The web app's `/dev/inbox` pages read them through `list_messages` and `get_message`.
"""

from __future__ import annotations

import base64
import email
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

from dealmail.config import Settings
from dealmail.errors import NotFound

INDEX_FILE = "index.jsonl"
ID_RE = re.compile(r"^[0-9]{19}-[0-9a-f]{6}$")
_CID_RE = re.compile(r"""(["'(])cid:([^"')\s]+)""")


def inbox_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir / "devinbox"


@dataclass(frozen=True)
class InboxEntry:
    id: str
    received_at: datetime
    mail_from: str
    recipients: tuple[str, ...]
    subject: str
    size: int


@dataclass(frozen=True)
class InboxMessage:
    entry: InboxEntry
    raw: bytes
    headers: tuple[tuple[str, str], ...]
    html: str | None
    text: str | None
    images: dict[str, tuple[str, bytes]]  # content id (no brackets) → (mime type, data)

    def html_with_images(self) -> str | None:
        """The HTML with each `cid:` reference turned into a `data:` URI (in-app view only)."""
        if self.html is None:
            return None

        def inline(match: re.Match[str]) -> str:
            found = self.images.get(match.group(2))
            if found is None:
                return match.group(0)
            mime_type, data = found
            return f"{match.group(1)}data:{mime_type};base64,{base64.b64encode(data).decode()}"

        return _CID_RE.sub(inline, self.html)


def _decoded(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value)))
    except (UnicodeDecodeError, LookupError, ValueError):
        return value


def store(settings: Settings, mail_from: str, recipients: list[str], raw: bytes) -> InboxEntry:
    """Write one received message and its index line."""
    folder = inbox_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    message_id = f"{time.time_ns():019d}-{secrets.token_hex(3)}"
    target = folder / f"{message_id}.eml"
    partial = folder / f"{message_id}.part"
    partial.write_bytes(raw)
    os.replace(partial, target)
    parsed = email.message_from_bytes(raw)
    entry = InboxEntry(
        id=message_id,
        received_at=datetime.now(UTC),
        mail_from=mail_from,
        recipients=tuple(recipients),
        subject=_decoded(parsed.get("Subject")),
        size=len(raw),
    )
    line = json.dumps(
        {
            "id": entry.id,
            "received_at": entry.received_at.isoformat(),
            "mail_from": entry.mail_from,
            "recipients": list(entry.recipients),
            "subject": entry.subject,
            "size": entry.size,
        },
        ensure_ascii=False,
    )
    with (folder / INDEX_FILE).open("a", encoding="utf-8") as index:
        index.write(line + "\n")
    return entry


def _entry(data: dict[str, Any]) -> InboxEntry:
    return InboxEntry(
        id=str(data["id"]),
        received_at=datetime.fromisoformat(str(data["received_at"])),
        mail_from=str(data.get("mail_from", "")),
        recipients=tuple(data.get("recipients", ())),
        subject=str(data.get("subject", "")),
        size=int(data.get("size", 0)),
    )


def list_messages(settings: Settings, limit: int = 500) -> list[InboxEntry]:
    """Newest first."""
    index = inbox_dir(settings) / INDEX_FILE
    if not index.exists():
        return []
    entries = []
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(_entry(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
    entries.reverse()
    return entries[:limit]


def get_message(settings: Settings, message_id: str) -> InboxMessage:
    if not ID_RE.match(message_id):
        raise NotFound(f"no message {message_id!r} in the dev inbox", code="message_not_found")
    path = inbox_dir(settings) / f"{message_id}.eml"
    entry = next((e for e in list_messages(settings, limit=10**9) if e.id == message_id), None)
    if entry is None or not path.exists():
        raise NotFound(f"no message {message_id!r} in the dev inbox", code="message_not_found")
    raw = path.read_bytes()
    parsed = email.message_from_bytes(raw)
    html = text = None
    images: dict[str, tuple[str, bytes]] = {}
    for part in parsed.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        content_id = (part.get("Content-ID") or "").strip().strip("<>")
        if content_type == "text/html" and html is None:
            html = _text_of(part)
        elif content_type == "text/plain" and text is None:
            text = _text_of(part)
        elif content_id:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                images[content_id] = (content_type, payload)
    headers = tuple((key, _decoded(str(value))) for key, value in parsed.items())
    return InboxMessage(entry, raw, headers, html, text, images)


def _text_of(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", "replace")


class InboxHandler:
    """aiosmtpd handler: accept everything, keep it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        store(self.settings, envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        return "250 2.0.0 Message accepted for delivery"


def serve(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run the dev inbox until `stop` is set (or forever)."""
    from aiosmtpd.controller import Controller

    inbox_dir(settings).mkdir(parents=True, exist_ok=True)
    controller = Controller(
        InboxHandler(settings),
        hostname=settings.devinbox_host,
        port=settings.devinbox_port,
        data_size_limit=50 * 1024 * 1024,
    )
    controller.start()
    try:
        (stop or threading.Event()).wait()
    finally:
        controller.stop()

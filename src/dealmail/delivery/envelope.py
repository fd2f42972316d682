"""What the composer hands to a backend: the signed raw MIME plus its parts for HTTP APIs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InlineImage:
    content_id: str  # without angle brackets, e.g. "qr.42@shop.example"
    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class ComposedMessage:
    """One complete email. `raw` is exactly what goes on the wire (DKIM-signed when configured).

    The structured fields repeat its content for backends that take JSON (SendGrid) instead of
    MIME; `message_row_id` maps provider callbacks back to our messages table.
    """

    message_row_id: int | None
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str
    subject: str
    from_header: str
    to_header: str
    html: str
    text: str
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe, Feedback-ID...
    inline_images: tuple[InlineImage, ...] = ()

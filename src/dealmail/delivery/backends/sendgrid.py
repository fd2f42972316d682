"""SendGrid backend: v3 `mail/send` over httpx; inline QR by content_id; row id in custom_args."""

from __future__ import annotations

import base64
import time
from email.utils import getaddresses, parseaddr
from typing import Any

import httpx

from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.envelope import ComposedMessage
from dealmail.delivery.retry import classify_http

MESSAGE_ID_ARG = "dealmail_message_id"
# Headers SendGrid sets itself and refuses in `headers`.
RESERVED_HEADERS = frozenset(
    {
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "received",
        "x-sg-id",
        "x-sg-eid",
    }
)


def _address(header: str) -> dict[str, str]:
    name, email = parseaddr(header)
    return {"email": email, "name": name} if name else {"email": email}


def sendgrid_payload(message: ComposedMessage) -> dict[str, Any]:
    """The exact JSON body of one `mail/send` request."""
    recipients = [address for _, address in getaddresses([message.to_header]) if address]
    personalization: dict[str, Any] = {
        "to": [{"email": address} for address in recipients or message.recipients]
    }
    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _address(message.from_header),
        "subject": message.subject,
        "content": [
            {"type": "text/plain", "value": message.text},
            {"type": "text/html", "value": message.html},
        ],
        "headers": {
            key: value
            for key, value in {"Message-ID": message.message_id, **message.headers}.items()
            if key.lower() not in RESERVED_HEADERS
        },
    }
    if message.reply_to:
        payload["reply_to"] = _address(message.reply_to)
    if message.message_row_id is not None:
        payload["custom_args"] = {MESSAGE_ID_ARG: str(message.message_row_id)}
    if message.inline_images:
        payload["attachments"] = [
            {
                "content": base64.b64encode(image.data).decode("ascii"),
                "type": image.mime_type,
                "filename": image.filename,
                "disposition": "inline",
                "content_id": image.content_id,
            }
            for image in message.inline_images
        ]
    return payload


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """From Retry-After (seconds) or X-RateLimit-Reset (epoch seconds)."""
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - (time.time() if now is None else now))
        except ValueError:
            pass
    return None


class SendGridBackend:
    name = "sendgrid"

    def __init__(
        self, api_key: str, base_url: str = "https://api.sendgrid.com", timeout: float = 30.0
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    def send(self, message: ComposedMessage) -> SendResult:
        try:
            response = self._client.post("/v3/mail/send", json=sendgrid_payload(message))
        except httpx.TimeoutException as exc:
            raise SendError(
                FailureKind.TEMPORARY, f"SendGrid timeout: {exc}", code="timeout"
            ) from exc
        except httpx.HTTPError as exc:
            raise SendError(
                FailureKind.TEMPORARY, f"SendGrid unreachable: {exc}", code="connection"
            ) from exc
        if response.status_code in (200, 202):
            return SendResult(provider_message_id=response.headers.get("x-message-id"))
        raise SendError(
            classify_http(response.status_code),
            f"SendGrid answered {response.status_code}: {response.text[:500]}",
            code=f"HTTP {response.status_code}",
            retry_after=retry_after_seconds(response.headers),
        )

    def close(self) -> None:
        self._client.close()

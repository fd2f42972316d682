"""The backend contract: send one composed message, or raise SendError saying how it failed."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from dealmail.delivery.envelope import ComposedMessage


class FailureKind(enum.StrEnum):
    TEMPORARY = "temporary"  # 4xx, timeouts, dropped connections, 429, 5xx HTTP: retry later
    HARD_BOUNCE = "hard_bounce"  # 5.1.x and other mailbox errors: bounce and suppress
    POLICY = "policy"  # 5.7.x policy or authentication: fail, do not suppress, tell the owner
    PERMANENT = "permanent"  # any other permanent refusal of this message


class SendError(Exception):
    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code  # e.g. "550 5.1.1" or "HTTP 429"
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None


class Backend(Protocol):
    name: str

    def send(self, message: ComposedMessage) -> SendResult: ...

    def close(self) -> None: ...

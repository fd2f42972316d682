"""File backend: each message becomes one `.eml` file in a folder (tests, air-gapped demos)."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.envelope import ComposedMessage

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileBackend:
    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: ComposedMessage) -> SendResult:
        row = message.message_row_id if message.message_row_id is not None else "test"
        stem = f"{time.time_ns()}-{row}-{secrets.token_hex(3)}"
        target = self.directory / f"{_UNSAFE.sub('_', stem)}.eml"
        partial = target.with_suffix(".part")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(message.raw)
            os.replace(partial, target)  # readers never see half a message
        except OSError as exc:
            raise SendError(
                FailureKind.TEMPORARY, f"cannot write {target}: {exc}", code="io"
            ) from exc
        return SendResult(provider_message_id=target.name)

    def close(self) -> None:
        return None

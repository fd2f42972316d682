"""Find a coupon by what staff scanned or typed: a token, a coupon URL, or a short code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dealmail.coupons.tokens import (
    looks_like_token,
    normalise_short_code,
    short_code_hash,
    token_hash,
)
from dealmail.security import sha256_hex

CodeKind = Literal["token", "short_code", "malformed"]
MAX_CODE_LENGTH = 2048


@dataclass(frozen=True)
class CodeRef:
    """A scanned or typed code, reduced to the hash the database keeps (never the code itself)."""

    kind: CodeKind
    hash: str


def _strip_url(raw: str) -> str:
    """`https://shop.example/c/<token>?x` → `<token>`; anything else unchanged."""
    if "/c/" not in raw:
        return raw
    tail = raw.rsplit("/c/", 1)[1]
    for separator in ("?", "#", "/"):
        tail = tail.split(separator, 1)[0]
    return tail


def parse_code(secret: bytes, raw: str) -> CodeRef:
    value = _strip_url(raw.strip()[:MAX_CODE_LENGTH])
    if looks_like_token(value):
        return CodeRef("token", token_hash(value))
    short = normalise_short_code(value)
    if short is not None:
        return CodeRef("short_code", short_code_hash(secret, short))
    # Hashed like the others, so a failure log never holds what was typed.
    return CodeRef("malformed", sha256_hex(value))

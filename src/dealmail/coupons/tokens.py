"""Coupon tokens and short codes: derived from a random nonce and the secret key, stored hashed.

A token must be in the email yet never stored in the clear. Each coupon gets 128 random bits
(`nonce`, from `secrets`); the token is HMAC(secret key, nonce) cut to 128 bits, so a worker that
re-renders a message after a crash puts the same token in it, and a stolen database without the
key yields nothing. The database keeps SHA-256(token) for lookup, and an HMAC of the short code
(a 50-bit code would fall to brute force against a plain hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from dealmail.security import sha256_hex

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SHORT_CODE_LENGTH = 10  # 50 bits
SHORT_CODE_GROUPS = (4, 4, 2)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
_CROCKFORD_FIXES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_nonce() -> str:
    return secrets.token_hex(16)


def _derive(key: bytes, purpose: str, nonce: str) -> bytes:
    return hmac.new(key, f"{purpose}\0{nonce}".encode(), hashlib.sha256).digest()


def derive_token(key: bytes, nonce: str) -> str:
    """The 128-bit URL token (22 characters of URL-safe base64)."""
    return base64.urlsafe_b64encode(_derive(key, "coupon-token", nonce)[:16]).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return sha256_hex(token)


def derive_short_code(key: bytes, nonce: str) -> str:
    """The code typed at the till, normalised (no dashes): 10 Crockford base32 characters."""
    number = int.from_bytes(_derive(key, "coupon-short", nonce)[:8], "big")
    chars = []
    for _ in range(SHORT_CODE_LENGTH):
        chars.append(CROCKFORD_ALPHABET[number & 31])
        number >>= 5
    return "".join(chars)


def format_short_code(code: str) -> str:
    """`K7QM2XPA9D` → `K7QM-2XPA-9D`."""
    parts, start = [], 0
    for size in SHORT_CODE_GROUPS:
        parts.append(code[start : start + size])
        start += size
    return "-".join(parts)


def normalise_short_code(typed: str) -> str | None:
    """What staff typed → the canonical code, or None if it cannot be one (O→0, I/L→1)."""
    cleaned = re.sub(r"[\s\-_.]", "", typed).upper().translate(_CROCKFORD_FIXES)
    if len(cleaned) != SHORT_CODE_LENGTH or any(c not in CROCKFORD_ALPHABET for c in cleaned):
        return None
    return cleaned


def short_code_hash(key: bytes, code: str) -> str:
    return hmac.new(key, f"short-code\0{code}".encode(), hashlib.sha256).hexdigest()


def looks_like_token(value: str) -> bool:
    return bool(TOKEN_RE.match(value))

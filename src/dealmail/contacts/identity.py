"""How an address is keyed for dedupe and for the suppression list (pure functions)."""

from __future__ import annotations

import unicodedata

from dealmail.security import sha256_hex


def email_key(email: str) -> str:
    """Trimmed, NFC, case-folded: two spellings of one mailbox get one key."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def email_hash(email: str) -> str:
    """Unkeyed SHA-256 of the key, so suppressions survive a change of the secret key."""
    return sha256_hex(email_key(email))


def tag_key(name: str) -> str:
    """Tags are case-insensitive and blind to spacing: ' VIP  list' and 'vip list' are one tag."""
    return unicodedata.normalize("NFC", " ".join(name.split())).lower()

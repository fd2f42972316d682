"""Reading what was scanned or typed: tokens, coupon URLs, loose short codes; hashes only."""

from __future__ import annotations

import secrets

import pytest

from dealmail.coupons.lookup import parse_code
from dealmail.coupons.tokens import (
    derive_short_code,
    derive_token,
    format_short_code,
    new_nonce,
    short_code_hash,
    token_hash,
)

SECRET = secrets.token_bytes(32)


@pytest.fixture
def codes() -> tuple[str, str]:
    nonce = new_nonce()
    return derive_token(SECRET, nonce), derive_short_code(SECRET, nonce)


def test_token_and_coupon_url_give_the_token_hash(codes: tuple[str, str]) -> None:
    token, _ = codes
    expected = token_hash(token)
    for raw in (token, f" {token} ", f"https://shop.example/c/{token}", f"/c/{token}?utm=1#x"):
        ref = parse_code(SECRET, raw)
        assert ref.kind == "token"
        assert ref.hash == expected


def test_short_code_typed_loosely_gives_its_keyed_hash(codes: tuple[str, str]) -> None:
    _, short = codes
    expected = short_code_hash(SECRET, short)
    loose = format_short_code(short).lower().replace("0", "o").replace("1", "i")
    for raw in (short, format_short_code(short), loose, f" {short[:4]} {short[4:]} "):
        ref = parse_code(SECRET, raw)
        assert ref.kind == "short_code"
        assert ref.hash == expected


@pytest.mark.parametrize("raw", ["", "hello", "K7QM-2XPA", "x" * 5000, "<script>"])
def test_anything_else_is_malformed_and_hashed(raw: str) -> None:
    ref = parse_code(SECRET, raw)
    assert ref.kind == "malformed"
    assert len(ref.hash) == 64
    assert raw[:8] not in ref.hash or not raw


def test_hashes_never_contain_the_code(codes: tuple[str, str]) -> None:
    token, short = codes
    assert token not in parse_code(SECRET, token).hash
    assert short not in parse_code(SECRET, short).hash

"""Coupon tokens and short codes: derivation, format, normalisation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dealmail.coupons import tokens

KEY = b"k" * 48


def test_token_is_128_bits_urlsafe_and_reproducible() -> None:
    nonce = tokens.new_nonce()
    token = tokens.derive_token(KEY, nonce)
    assert tokens.looks_like_token(token)
    assert len(token) == 22
    assert tokens.derive_token(KEY, nonce) == token
    assert tokens.derive_token(b"x" * 48, nonce) != token
    assert tokens.token_hash(token) != token
    assert len(tokens.token_hash(token)) == 64


def test_nonces_and_tokens_are_distinct() -> None:
    produced = {tokens.derive_token(KEY, tokens.new_nonce()) for _ in range(2000)}
    assert len(produced) == 2000


def test_short_code_format_and_alphabet() -> None:
    code = tokens.derive_short_code(KEY, tokens.new_nonce())
    assert len(code) == 10
    assert set(code) <= set(tokens.CROCKFORD_ALPHABET)
    assert not set(code) & set("ILOU")
    formatted = tokens.format_short_code(code)
    assert formatted.count("-") == 2
    assert [len(part) for part in formatted.split("-")] == [4, 4, 2]


def test_typed_short_code_is_forgiving() -> None:
    assert tokens.normalise_short_code("k7qm-2xpa-9d") == "K7QM2XPA9D"
    assert tokens.normalise_short_code(" K7QM 2XPA 9D ") == "K7QM2XPA9D"
    assert tokens.normalise_short_code("O1IL-0000-00") == "0111000000"
    assert tokens.normalise_short_code("K7QM-2XPA") is None
    assert tokens.normalise_short_code("K7QM-2XPA-9U") is None


def test_short_code_hash_is_keyed() -> None:
    code = "K7QM2XPA9D"
    assert tokens.short_code_hash(KEY, code) != tokens.short_code_hash(b"y" * 48, code)


@given(st.text(max_size=40))
def test_normalise_never_raises(typed: str) -> None:
    result = tokens.normalise_short_code(typed)
    assert result is None or len(result) == tokens.SHORT_CODE_LENGTH


@given(st.binary(min_size=16, max_size=16))
def test_every_derived_code_round_trips(nonce_bytes: bytes) -> None:
    code = tokens.derive_short_code(KEY, nonce_bytes.hex())
    assert tokens.normalise_short_code(tokens.format_short_code(code)) == code

"""Issue 8.1: one token, one text. Non-canonical base64url spellings of a token's bytes are
refused, and ``codec.token_id`` (the identity used for blocks, links and caches) is the
sha256 of the canonical bytes."""

from __future__ import annotations

import hashlib

import pytest

import codec
from codec import token
from codec.errors import InvalidToken

from .imagegen import synthetic_token

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def token_with_length_mod4(remainder: int) -> str:
    for width in range(8, 80):
        text = synthetic_token(width, 8)
        if len(text) % 4 == remainder:
            return text
    raise AssertionError(f"no synthetic token of length {remainder} mod 4")


def same_bits_variants(text: str) -> list[str]:
    """Every other last character that base64 decoders map to the same bytes."""
    unused = {2: 4, 3: 2}[len(text) % 4]  # low bits of the last character that carry nothing
    value = B64URL.index(text[-1])
    return [text[:-1] + B64URL[v] for v in range(64) if v >> unused == value >> unused and v != value]


@pytest.mark.parametrize("remainder, count", [(2, 15), (3, 3)])
def test_every_variant_with_nonzero_unused_bits_is_refused(remainder, count):
    text = token_with_length_mod4(remainder)
    codec.inspect(text)  # the canonical spelling is fine
    variants = same_bits_variants(text)
    assert len(variants) == count
    for variant in variants:
        with pytest.raises(InvalidToken, match="not canonical"):
            codec.inspect(variant)
        with pytest.raises(InvalidToken, match="not canonical"):
            codec.token_id(variant)
        with pytest.raises(InvalidToken, match="not canonical"):
            codec.decode(variant)


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", "=", "==", "%0A", "\x00"])
def test_trailing_characters_are_refused(suffix):
    text = synthetic_token(24, 16)
    with pytest.raises(InvalidToken):
        codec.inspect(text + suffix)
    with pytest.raises(InvalidToken):
        codec.token_id(text + suffix)


@pytest.mark.parametrize("prefix", ["\n", " "])
def test_leading_whitespace_is_refused(prefix):
    with pytest.raises(InvalidToken, match="not base64url text"):
        codec.token_id(prefix + synthetic_token(24, 16))


@pytest.mark.parametrize("bad", ["+", "/", ".", "é", "\u0661", "ＡＡ"])
def test_characters_outside_the_alphabet_are_refused(bad):
    text = synthetic_token(24, 16)
    with pytest.raises(InvalidToken, match="not base64url text"):
        codec.token_id(text[:10] + bad + text[10:])


def test_length_one_mod_four_is_refused():
    text = token_with_length_mod4(0)
    with pytest.raises(InvalidToken, match="length is impossible"):
        codec.token_id(text + "A")


def test_token_id_is_the_sha256_of_the_canonical_bytes():
    text = synthetic_token(24, 16)
    ident = codec.token_id(text)
    assert ident == hashlib.sha256(token.from_text(text)).hexdigest()
    assert len(ident) == 64 and set(ident) <= set("0123456789abcdef")
    assert codec.token_id(synthetic_token(24, 16, seed=9)) != ident


def test_canonical_text_round_trips_bytes_exactly():
    for n in range(1, 40):
        data = bytes(range(n))
        text = token.to_text(data)
        assert token.from_text(text) == data

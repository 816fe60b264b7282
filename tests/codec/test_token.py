"""Token framing (codec/token.py) and header validation (codec.inspect): no model needed."""

from __future__ import annotations

import base64
import dataclasses
import struct
import zlib

import pytest

import codec
from codec import packing, token
from codec.errors import InvalidToken
from codec.limits import MAX_TOKEN_CHARS

from .imagegen import synthetic_token


def header(**changes) -> token.Header:
    base = token.Header(version=1, model_code=1, width=64, height=48, coded_width=64, coded_height=48,
                        latent_channels=32, latent_height=6, latent_width=8, payload_kind=1, payload_length=5)
    return dataclasses.replace(base, **changes)


def frame(h: token.Header, payload: bytes) -> bytes:
    return token.pack(dataclasses.replace(h, payload_length=len(payload)), payload)


def test_pack_unpack_round_trip():
    h, payload = header(), b"\x00\x01\x02\xfe\xff"
    data = token.pack(h, payload)
    assert len(data) == token.OVERHEAD + len(payload)
    assert data[:4] == bytes([1, 1, 0, 64])  # version, model code, big-endian width
    assert token.unpack(data) == (h, payload)
    text = token.to_text(data)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert "=" not in text
    assert token.from_text(text) == data


def test_crc_is_zlib_crc32_of_everything_before_it():
    data = token.pack(header(), b"abcde")
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the token is empty"),
        ("   \n", "not base64url text"),
        ("abc$def", "not base64url text"),
        ("abc+def/", "not base64url text"),  # standard base64, not URL-safe
        ("abc def", "not base64url text"),
        ("AAAAA", "its length is impossible"),
        ("A" * (MAX_TOKEN_CHARS + 1), "longer than 2,000,000 characters"),
    ],
)
def test_from_text_rejects(text, message):
    with pytest.raises(InvalidToken, match=message):
        token.from_text(text)


def test_non_text_is_rejected():
    with pytest.raises(InvalidToken, match="a token must be text"):
        token.from_text(b"AAAA")  # type: ignore[arg-type]


def test_truncated_shorter_than_header():
    with pytest.raises(InvalidToken, match=r"truncated \(shorter than a token header\)"):
        token.unpack(token.pack(header(), b"abcde")[: token.OVERHEAD - 1])


def test_truncated_payload_says_how_much_is_missing():
    data = token.pack(header(), b"abcde")
    with pytest.raises(InvalidToken, match=r"declares 29 bytes but carries 27 \(was the link cut off\?\)"):
        token.unpack(data[:-2])


def test_trailing_data():
    with pytest.raises(InvalidToken, match="unexpected data after its end"):
        token.unpack(token.pack(header(), b"abcde") + b"\x00")


def test_checksum_mismatch():
    data = bytearray(token.pack(header(), b"abcde"))
    data[21] ^= 0x10
    with pytest.raises(InvalidToken, match="checksum mismatch: the token was altered or mistyped"):
        token.unpack(bytes(data))


def test_unknown_version():
    data = token.pack(header(version=3), b"abcde")
    with pytest.raises(InvalidToken, match="unknown token version 3 \\(this server reads versions 1 and 2\\)"):
        token.unpack(data)


def test_unknown_model():
    text = token.to_text(token.pack(header(model_code=200), b"abcde"))
    with pytest.raises(InvalidToken, match=r"unknown model \(code 200\)"):
        codec.inspect(text)


def test_unknown_payload_kind():
    text = token.to_text(token.pack(header(payload_kind=9), b"abcde"))
    with pytest.raises(InvalidToken, match="unknown payload kind 9"):
        codec.inspect(text)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(width=8193, coded_width=8), "declares an image of 8193x48, over this server's limits"),
        (dict(width=8192, height=8192, coded_width=8, coded_height=8), "8192x8192, over this server's limits"),
        (dict(width=0), "declares an empty image"),
        (dict(coded_height=0), "declares an empty image"),
        (dict(width=2048, height=2048, coded_width=1025, coded_height=1024), "coded size of 1025x1024, over the limits"),
        (dict(coded_width=65), "coded size of 65x48, over the limits"),  # coded larger than the output
    ],
)
def test_declared_sizes_over_the_limits(changes, message):
    with pytest.raises(InvalidToken, match=message):
        token.unpack(token.pack(header(**changes), b"abcde"))


def test_latent_shape_must_match_the_coded_size():
    text = token.to_text(token.pack(header(latent_width=9), b"abcde"))
    with pytest.raises(InvalidToken, match=r"latent shape \(32, 6, 9\) does not match its image size"):
        codec.inspect(text)
    text = token.to_text(token.pack(header(latent_channels=4), b"abcde"))
    with pytest.raises(InvalidToken, match="does not match"):
        codec.inspect(text)


def test_inspect_reads_the_header_without_a_model():
    text = synthetic_token(61, 45, coded=(50, 37))
    info = codec.inspect(text)
    assert (info.version, info.model, info.width, info.height) == (1, "taef2", 61, 45)
    assert (info.coded_width, info.coded_height, info.latent_shape) == (50, 37, (32, 5, 7))
    assert info.payload_kind == "gauss-rc"
    assert info.chars == len(text)
    assert info.payload_bytes == len(token.from_text(text)) - token.OVERHEAD
    assert codec.inspect(synthetic_token(16, 16, kind=packing.WEBP8)).payload_kind == "webp8"


def test_standard_base64_padding_variant_is_refused():
    # One token, one text: padding would be a second spelling of the same bytes (issue 8.1).
    text = synthetic_token(16, 8)
    padded = base64.urlsafe_b64encode(token.from_text(text)).decode()
    assert padded != text
    with pytest.raises(InvalidToken, match="not base64url text"):
        codec.inspect(padded)

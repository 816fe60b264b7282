"""Token framing (versions 1 and 2 share it): the frame around a payload. Specified in docs/token-format.md.

    offset  size  field (big-endian)
    0       1     version (1 or 2)
    1       1     model code (codec/models/registry.py; 0 for avif)
    2       2     width      -- size decode() returns
    4       2     height
    6       2     coded width  -- size of the image that was encoded, before padding to
    8       2     coded height    a multiple of the model's downscale factor (at most the
                                  size above; version 2: a side under 16 may be coded at 16)
    10      1     latent channels
    11      2     latent height
    13      2     latent width
    15      1     payload kind -- version 1: 1 gauss-rc, 2 webp8 (codec.packing);
                  version 2: 3 klt-rc, 4 avif, 5 klt-ctx (codec.encode_v2)
    16      4     payload length n
    20      n     payload (quantisation parameters, then entropy-coded data)
    20+n    4     CRC-32 of bytes [0, 20+n)

The bytes are written as URL-safe base64 without padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import zlib
from dataclasses import dataclass

from .errors import InvalidToken
from .limits import MAX_CODED_PIXELS, MAX_OUTPUT_PIXELS, MAX_SIDE, MAX_TOKEN_CHARS, MAX_UPSCALE_PER_SIDE, MIN_CODED_SIDE, max_upscale_area

#: The version the v1 encoder writes (codec/encode_v1.py); the v2 encoder writes 2.
VERSION = 1
#: Versions this build reads: 1 (gauss-rc, webp8) and 2 (klt-rc, avif, klt-ctx); same frame layout.
VERSIONS = (1, 2)
HEADER = struct.Struct(">BBHHHHBHHBI")
CRC = struct.Struct(">I")
OVERHEAD = HEADER.size + CRC.size
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


@dataclass(frozen=True)
class Header:
    """The fixed fields of a token's frame (versions 1 and 2)."""

    version: int
    model_code: int
    width: int
    height: int
    coded_width: int
    coded_height: int
    latent_channels: int
    latent_height: int
    latent_width: int
    payload_kind: int
    payload_length: int

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_height, self.latent_width)


def to_text(data: bytes) -> str:
    """Bytes -> base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_text(token: str) -> bytes:
    """Canonical base64url (no padding, no whitespace, zero unused bits) -> bytes.

    Exactly one text spells each token: anything else raises InvalidToken, so that a
    token's identity (``token_id``) cannot be dodged by a second spelling.
    """
    if not isinstance(token, str):
        raise InvalidToken("a token must be text")
    if not token:
        raise InvalidToken("the token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(f"the token is longer than {MAX_TOKEN_CHARS:,} characters")
    if not _BASE64URL.fullmatch(token):
        raise InvalidToken("the token is not base64url text (allowed: A-Z a-z 0-9 - _)")
    if len(token) % 4 == 1:
        raise InvalidToken("the token is not valid base64url (its length is impossible)")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex already guards
        raise InvalidToken("the token is not valid base64url") from exc
    if to_text(data)[-1:] != token[-1:]:
        raise InvalidToken("the token is not canonical base64url (its last character was altered)")
    return data


def token_id(token: str) -> str:
    """A token's identity: sha256 hex of its canonical bytes (InvalidToken if not canonical).

    Use it for takedowns, short links, cache keys and ETags: one image, one identity.
    """
    return hashlib.sha256(from_text(token)).hexdigest()


def pack(header: Header, payload: bytes) -> bytes:
    """Header + payload + CRC-32."""
    assert header.payload_length == len(payload)
    body = HEADER.pack(
        header.version, header.model_code, header.width, header.height,
        header.coded_width, header.coded_height, header.latent_channels,
        header.latent_height, header.latent_width, header.payload_kind, header.payload_length,
    ) + payload  # fmt: skip
    return body + CRC.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and verify framing: length, checksum, version and size caps. No model lookup."""
    if len(data) < OVERHEAD:
        raise InvalidToken("the token is truncated (shorter than a token header)")
    header = Header(*HEADER.unpack_from(data))
    if header.version not in VERSIONS:
        raise InvalidToken(f"unknown token version {header.version} (this server reads versions 1 and 2)")
    expected = OVERHEAD + header.payload_length
    if len(data) < expected:
        raise InvalidToken(
            f"the token is truncated: it declares {expected} bytes but carries {len(data)}"
            " (was the link cut off?)"
        )
    if len(data) > expected:
        raise InvalidToken("the token has unexpected data after its end")
    body, (crc,) = data[:-CRC.size], CRC.unpack_from(data, len(data) - CRC.size)
    if zlib.crc32(body) != crc:
        raise InvalidToken("checksum mismatch: the token was altered or mistyped")
    check_sizes(header)
    return header, body[HEADER.size :]


def check_sizes(header: Header) -> None:
    """Reject declared sizes over the hard caps, before anything is allocated."""
    w, h, cw, ch = header.width, header.height, header.coded_width, header.coded_height
    if min(w, h, cw, ch) < 1:
        raise InvalidToken("the token declares an empty image")
    # version >= 2: a side under MIN_CODED_SIDE may be coded at up to MIN_CODED_SIDE
    longest = (w, h) if header.version == 1 else (max(w, MIN_CODED_SIDE), max(h, MIN_CODED_SIDE))
    if cw * ch > MAX_CODED_PIXELS or cw > longest[0] or ch > longest[1]:
        raise InvalidToken(f"the token declares a coded size of {cw}x{ch}, over the limits")
    if max(w, h) > MAX_SIDE or w * h > MAX_OUTPUT_PIXELS:
        raise InvalidToken(f"the token declares an image of {w}x{h}, over this server's limits")
    check_upscale(header.version, (w, h), (cw, ch))


def check_upscale(version: int, size: tuple[int, int], coded: tuple[int, int]) -> None:
    """The output may be only a bounded factor larger than the coded image (decode work)."""
    (w, h), (cw, ch) = size, coded
    if version == 1:
        if w * h > max_upscale_area(1) * cw * ch:
            raise InvalidToken(
                f"the token declares an image of {w}x{h}, more than {max_upscale_area(1)}x its coded area ({cw}x{ch})"
            )
    elif w > MAX_UPSCALE_PER_SIDE * cw or h > MAX_UPSCALE_PER_SIDE * ch:
        raise InvalidToken(
            f"the token declares an image of {w}x{h}, more than {MAX_UPSCALE_PER_SIDE}x its coded size ({cw}x{ch}) per side"
        )

"""Property-based: whatever text arrives, decode() returns an image or raises InvalidToken,
and never allocates more than the token could legitimately need.

Random mutations rarely get past the CRC-32, so the last two properties recompute the CRC
after mutating: those reach the size checks, the payload parsers and the model.
"""

from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import codec
from codec import packing, token
from codec.errors import InvalidToken

from .imagegen import avif_token, peak_memory_growth, synthetic_token, synthetic_token_ctx, synthetic_token_v2

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
VALID = synthetic_token(40, 24, seed=3)
VALID_WEBP = synthetic_token(24, 16, seed=4, kind=packing.WEBP8)
VALID_V2 = synthetic_token_v2(40, 24, seed=5)
VALID_AVIF = avif_token(24, 16, seed=6)
VALID_CTX = synthetic_token_ctx(40, 24, seed=7)
#: Every payload kind: the mutation properties start from each.
SEEDS = [VALID, VALID_WEBP, VALID_V2, VALID_AVIF, VALID_CTX]
#: EMMM_FUZZ_EXAMPLES=2000 for a deeper run, with fresh random inputs each time; the default
#: keeps the suite fast and the same inputs every run (a CI run does not fail by chance).
FUZZ = settings(
    max_examples=int(os.environ.get("EMMM_FUZZ_EXAMPLES", 60)), deadline=None,
    derandomize="EMMM_FUZZ_EXAMPLES" not in os.environ, suppress_health_check=[HealthCheck.too_slow],
)

#: Memory allowance per decode. Baseline: allocator and torch scratch noise (measured: a
#: warm decode of a 40x24 token grows the peak by well under 8 MB). A token that passes the
#: header checks may then use, per coded pixel, the TAEF2 decoder's activations (64 float32
#: channels = 256 B per map, a handful alive at once: 2 KiB), and per output pixel the RGB
#: image plus Lanczos resize buffers (float32 per channel: 32 B). An invalid token gets the
#: baseline only: nothing it declares may be allocated before it is found invalid.
BASELINE = 32 << 20


def allowance(text: str) -> int:
    try:
        info = codec.inspect(text)
    except InvalidToken:
        return BASELINE
    _, lh, lw = info.latent_shape
    # avif tokens: no latent; the AVIF decoder's planes and the RGB image per coded pixel
    coded = 64 * info.coded_width * info.coded_height if info.payload_kind == "avif" else 0
    return BASELINE + 2048 * (lh * 8) * (lw * 8) + 32 * info.width * info.height + coded


def check(text: str) -> None:
    """The property: an RGB image of the declared size, or InvalidToken; bounded memory."""

    def run():
        try:
            return codec.decode(text)
        except InvalidToken as exc:
            assert str(exc) and "\n" not in str(exc)
            return exc

    result, grown = peak_memory_growth(run)
    if isinstance(result, Image.Image):
        info = codec.inspect(text)
        assert result.mode == "RGB" and result.size == (info.width, info.height)
    assert grown <= allowance(text), f"decode grew the peak memory by {grown / 2**20:.1f} MiB"


@pytest.fixture(scope="module", autouse=True)
def warm_model(weights_dir):
    """Load the model and warm torch up, so that one-off setup is not counted."""
    for text in SEEDS:
        codec.decode(text)


def test_memory_probe_sees_allocations():
    """The probe used for the bounds is not blind: 100 MB of touched memory shows."""
    _, grown = peak_memory_growth(lambda: np.ones(100 << 20, dtype=np.uint8).sum())
    assert grown >= 90 << 20


def test_valid_small_tokens_decode_small():
    for text in SEEDS:
        image, grown = peak_memory_growth(lambda: codec.decode(text))
        assert image.size == (codec.inspect(text).width, codec.inspect(text).height)
        assert grown < BASELINE


@FUZZ
@given(st.text(alphabet=B64URL, max_size=400))
def test_any_base64url_text(text):
    check(text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_as_a_token(data):
    check(token.to_text(data))


@FUZZ
@given(st.text(max_size=60))
def test_any_unicode_text(text):
    check(text)


def mutated(data: bytes, times: int = 2):
    """Up to ``times`` mutations in sequence: bit flips, byte changes, truncation, insertion
    and deletion (each drawn against the bytes the previous one left)."""
    strategy = st.just(data)
    for _ in range(times):
        strategy = strategy.flatmap(lambda d: mutations_once(d) if d else st.just(d))
    return strategy


def mutations_once(data: bytes):
    n = len(data)
    pos = st.integers(0, n - 1)
    return st.one_of(
        st.tuples(pos, st.integers(0, 7)).map(lambda a: data[: a[0]] + bytes([data[a[0]] ^ (1 << a[1])]) + data[a[0] + 1 :]),
        st.tuples(pos, st.integers(0, 255)).map(lambda a: data[: a[0]] + bytes([a[1]]) + data[a[0] + 1 :]),
        st.integers(0, n - 1).map(lambda k: data[:k]),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=8)).map(lambda a: data[: a[0]] + a[1] + data[a[0] :]),
        st.tuples(pos, st.integers(1, 8)).map(lambda a: data[: a[0]] + data[a[0] + a[1] :]),
    )


def with_crc(body: bytes) -> bytes:
    """Frame mutated bytes with a correct CRC-32, as token.pack would."""
    return body + token.CRC.pack(zlib.crc32(body))


@FUZZ
@given(st.sampled_from(SEEDS).flatmap(lambda t: mutated(token.from_text(t))))
def test_mutated_token_text(data):
    check(token.to_text(data))


@FUZZ
@given(st.sampled_from(SEEDS).flatmap(lambda t: mutated(token.from_text(t)[: -token.CRC.size])))
def test_mutated_token_with_recomputed_crc(body):
    check(token.to_text(with_crc(body)))


FIELDS = [f for f in token.Header.__dataclass_fields__]


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.dictionaries(st.sampled_from(FIELDS[:-1]), st.integers(0, 65535), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
)
def test_header_fields_and_payload_bytes_with_recomputed_crc(text, fields, payload_edits):
    """Structured mutation: new values for header fields (payload length kept right, so the
    payload parsers run) and payload byte changes; CRC recomputed by token.pack."""
    header, payload = token.unpack(token.from_text(text))
    values = {}
    for name, value in fields.items():
        width = {"version": 255, "model_code": 255, "latent_channels": 255, "payload_kind": 255}.get(name, 65535)
        values[name] = value % (width + 1)
    payload = bytearray(payload)
    for where, value in payload_edits:
        payload[where % len(payload)] = value
    changed = dataclasses.replace(header, **values)
    check(token.to_text(token.pack(changed, bytes(payload))))

"""Decoding a token to image bytes in one of the output formats, through the decode cache."""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import codec
from django.conf import settings
from PIL import Image

from .. import concurrency
from . import rendering_cache
from ..models import token_sha256
from .errors import BadToken, DecoderBusy, ModelUnavailable, ServiceError
from .tokens import checked_token_sha256

# Output formats of decoded images: name -> (Pillow format, Content-Type, save options).
RENDER_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webp": ("WEBP", "image/webp", {"quality": 90, "method": 4}),
    "png": ("PNG", "image/png", {"optimize": False}),
    "jpg": ("JPEG", "image/jpeg", {"quality": 90}),
    "avif": ("AVIF", "image/avif", {"quality": 80}),
}
DEFAULT_RENDER_FORMAT = "webp"
#: ``?w=`` snaps up to the first of these widths (or to the native width when that is not
#: smaller), so a token has at most len(RENDER_WIDTHS) + 1 renderings per format, not 4096.
RENDER_WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedImage:
    content: bytes
    content_type: str
    token_sha256: str
    fmt: str
    width: int
    height: int
    from_cache: bool = False


def rendering_key(sha: str, fmt: str, width: int | None) -> str:
    """The decode cache's key for one rendering of a token (by its sha256)."""
    return f"emmm:img:v1:{sha}:{fmt}:{width or 0}"


def cached_rendering(sha: str, fmt: str, width: int | None) -> RenderedImage | None:
    """A rendering already in the decode cache (this process's memory first), or None. No checks:
    the caller has checked the token (length, spelling, takedown)."""
    hit = rendering_cache.get_rendering(rendering_key(sha, fmt, width))
    if hit is None:
        return None
    content, w, h = hit
    return RenderedImage(content, RENDER_FORMATS[fmt][1], sha, fmt, w, h, from_cache=True)


def rendering_width(token: str, requested: int | None) -> int | None:
    """The width actually rendered for ``?w=requested``: a RENDER_WIDTHS step, or None (native).

    Reads the token's header only (no model). BadToken if the header is unreadable.
    """
    if not requested:
        return None
    native = token_header(token).width
    snapped = next((w for w in RENDER_WIDTHS if w >= requested), native)
    return snapped if snapped < native else None


def render_token_image(token: str, fmt: str = DEFAULT_RENDER_FORMAT, width: int | None = None) -> RenderedImage:
    """Decode a token to image bytes in ``fmt`` (a RENDER_FORMATS key), cached by identity, format, width.

    ``width`` only shrinks (never upscales) and snaps to ``rendering_width``. Raises
    TokenTooLong / BadToken / TokenBlocked before any model runs, ModelUnavailable (503) when
    this server cannot run the model, DecoderBusy (503) when no decode slot is free
    (``decode_in_a_slot``; no waiting for a slot: the thread is free again at once; a request
    for a token another thread is decoding waits for that picture instead of decoding it).
    """
    sha = checked_token_sha256(token)
    width = rendering_width(token, width)
    hit = cached_rendering(sha, fmt, width)
    if hit is not None:
        return hit
    info = token_header(token)  # heavy or light?
    native = _native_avif(token, info) if fmt == "avif" and not width else None
    if native is not None:
        rendering_cache.put_rendering(rendering_key(sha, fmt, width), (native, info.width, info.height))
        return RenderedImage(native, RENDER_FORMATS[fmt][1], sha, fmt, info.width, info.height)
    return _store_rendering(decode_in_a_slot(token, info), sha, fmt, width)


def _store_rendering(image: Image.Image, sha: str, fmt: str, width: int | None) -> RenderedImage:
    """The rendering of a decoded picture in ``fmt`` at ``width`` (already snapped), put in the
    decode cache under the token's key."""
    pil_format, content_type, options = RENDER_FORMATS[fmt]
    if width and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    if pil_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format=pil_format, **options)
    content = buf.getvalue()
    if len(content) <= settings.EMMM_CACHE_MAX_ENTRY_BYTES:
        rendering_cache.put_rendering(rendering_key(sha, fmt, width), (content, image.width, image.height))
    return RenderedImage(content, content_type, sha, fmt, image.width, image.height)


@dataclass
class _Flight:
    """One token's decode under way in this process, and the requests waiting for its picture."""

    done: threading.Event = field(default_factory=threading.Event)
    followers: int = 0
    image: Image.Image | None = None
    error: Exception | None = None


_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()


def decode_in_a_slot(token: str, info: codec.TokenInfo | None = None) -> Image.Image:
    """``decode_token`` in a decode slot (a worker slot, and a machine slot for a heavy decode),
    once per token at a time in this process: requests for a token that another thread is
    decoding (eight thumbnails of one picture, a share page and its preview) wait, in their own
    worker slot, for that picture instead of decoding it again (up to
    ``EMMM_DECODE_FOLLOW_TIMEOUT_S``, then DecoderBusy); a failed decode's ServiceError reaches
    them too. ``info``: the token's header, read here when not given."""
    info = info or token_header(token)
    pixels = info.coded_width * info.coded_height
    with _worker_decode_slot():
        sha = token_sha256(token)
        with _flights_lock:
            flight = _flights.get(sha)
            leader = flight is None
            if leader:
                flight = _flights[sha] = _Flight()
            else:
                flight.followers += 1
        if not leader:
            return _follow(flight, token, pixels)
        try:
            with _heavy_decode_slot(pixels):
                flight.image = decode_token(token)
            return flight.image
        except ServiceError as exc:
            flight.error = exc
            raise
        finally:
            with _flights_lock:
                del _flights[sha]
            flight.done.set()


def _follow(flight: _Flight, token: str, pixels: int) -> Image.Image:
    """The picture another thread is decoding (a copy: each request resizes and encodes its own)."""
    if not flight.done.wait(settings.EMMM_DECODE_FOLLOW_TIMEOUT_S):
        raise _busy()
    if flight.image is not None:
        return flight.image.copy()
    if flight.error is not None:
        raise flight.error
    with _heavy_decode_slot(pixels):  # the first request failed unexpectedly: try for ourselves
        return decode_token(token)


def _busy() -> DecoderBusy:
    return DecoderBusy("This server is busy decoding other images; try again in a few seconds.")


@contextmanager
def _worker_decode_slot() -> Iterator[None]:
    """One of this worker's decode slots (``EMMM_DECODES_PER_WORKER``, so that some threads stay
    free for pages), else DecoderBusy at once (a waiting request would hold a thread all the same)."""
    with concurrency.slot("decodes", settings.EMMM_DECODES_PER_WORKER, timeout=0) as got:
        if not got:
            raise _busy()
        yield


@contextmanager
def _heavy_decode_slot(pixels: int) -> Iterator[None]:
    """To decode more than ``EMMM_HEAVY_DECODE_PIXELS`` pixels (more than the encoder makes by
    default), one of this machine's slots (``EMMM_MAX_DECODES``), else DecoderBusy at once."""
    if pixels <= settings.EMMM_HEAVY_DECODE_PIXELS:
        yield
        return
    with concurrency.machine_slot("heavy-decodes", settings.EMMM_MAX_DECODES, settings.EMMM_LOCK_DIR) as held:
        if not held:
            raise _busy()
        yield


@contextmanager
def decode_slot(pixels: int) -> Iterator[None]:
    """Hold one of this worker's decode slots and, for a heavy decode, one of this machine's
    (``_worker_decode_slot``, ``_heavy_decode_slot``, as ``decode_in_a_slot`` takes them for a
    token); else DecoderBusy at once. For an image file a request decodes (search by example)."""
    with _worker_decode_slot(), _heavy_decode_slot(pixels):
        yield


def _native_avif(token: str, info: codec.TokenInfo) -> bytes | None:
    """An ``avif`` token's own file when it is stored at its native size (served as it is, no
    decode and no re-encode); None for every other token."""
    if info.payload_kind != "avif" or (info.coded_width, info.coded_height) != (info.width, info.height):
        return None
    try:
        return codec.avif_bytes(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc


def token_header(token: str) -> codec.TokenInfo:
    """The token's header fields (no model); BadToken if unreadable."""
    try:
        return codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc


def decode_token(token: str) -> Image.Image:
    """The picture a token decodes to: BadToken (400), or ModelUnavailable (503) when this
    server cannot run the token's model. No shape or takedown checks (see ``checked_token_sha256``)."""
    try:
        return codec.decode(token)
    except codec.ModelUnavailable as exc:
        model = codec.inspect(token).model
        log.warning("cannot decode a %s token: %s", model, exc)  # the reason may name files: the operator's
        raise ModelUnavailable(f"This server cannot decode {model} tokens right now.") from exc
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc


def warm_default_rendering(token: str) -> Image.Image | None:
    """Put the default rendering (what ``/i/<token>`` and ``/s/<slug>`` serve) in the decode cache,
    and return the decoded picture (the worker embeds it too: one decode for both).

    Called by the worker when a job finishes, so the first view of a new link is a cache hit.
    Never raises: None if the token could not be decoded here (the first view then decodes).
    """
    try:
        sha = checked_token_sha256(token)
        image = decode_in_a_slot(token)
        _store_rendering(image, sha, DEFAULT_RENDER_FORMAT, None)
    except Exception:  # noqa: BLE001 - the job is done either way
        log.warning("could not warm the decode cache for a new picture", exc_info=True)
        return None
    return image

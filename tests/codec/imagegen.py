"""Synthetic test pictures and metrics for the codec tests (and golden/make_golden.py)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo(width: int, height: int, seed: int = 0, noise: float = 4.0) -> Image.Image:
    """A photo-like RGB picture: smooth colour gradients, a few soft-edged shapes, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = x / max(width - 1, 1), y / max(height - 1, 1)
    base = np.empty((height, width, 3))
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        base[..., c] = 128 + 70 * a * x + 60 * b * y + 30 * np.sin(2 * np.pi * (x * (1 + c) + p))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.uniform(-0.2, 0.8, 2) * (width, height)
        w, h = rng.uniform(0.15, 0.5, 2) * (width, height)
        colour = tuple(int(v) for v in rng.integers(20, 236, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(0.8))
    array = np.asarray(image, dtype=np.float64) + rng.normal(0, noise, (height, width, 3))
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR in dB between two RGB images of the same size (inf when identical)."""
    assert a.size == b.size, (a.size, b.size)
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def synthetic_token(width: int, height: int, *, seed: int = 0, kind: int = 1, scale: float = 1.5,
                    coded: tuple[int, int] | None = None) -> str:
    """A valid taef2 token built from a random latent, without running a model."""
    from codec import packing, token

    cw, ch = coded or (width, height)
    shape = (32, -(-ch // 8), -(-cw // 8))
    latent = (np.random.default_rng(seed).normal(0, scale, shape)).astype(np.float32)
    if kind == packing.GAUSS_RC:
        payload = packing.pack_gauss_rc(latent, packing.Quantiser(4096, (0,) * 32))
    else:
        payload = packing.pack_webp8(latent)
    header = token.Header(1, 1, width, height, cw, ch, *shape, kind, len(payload))
    return token.to_text(token.pack(header, payload))


def synthetic_token_v2(width: int, height: int, *, seed: int = 0, scale: float = 0.05, units: int = 100,
                       coded: tuple[int, int] | None = None) -> str:
    """A valid taef2 token of version 2 (klt-rc) from random coefficients, without a model."""
    from codec import encode_v2, klt_rc

    cw, ch = coded or (width, height)
    shape = (32, -(-ch // 8), -(-cw // 8))
    coeffs = np.random.default_rng(seed).normal(0, scale, shape) * np.linspace(1, 0.05, 32)[:, None, None]
    return encode_v2.frame(1, (width, height), (cw, ch), shape, encode_v2.KLT_RC, klt_rc.pack(coeffs, units))


def synthetic_token_ctx(width: int, height: int, *, seed: int = 0, scale: float = 0.05, units: int = 100,
                        coded: tuple[int, int] | None = None) -> str:
    """A valid taef2 token of version 2 (klt-ctx) from random coefficients, without a model."""
    from codec import core, encode_v2, klt_ctx
    from codec.models import TAEF2_SPEC

    cw, ch = coded or (width, height)
    shape = (32, -(-ch // 8), -(-cw // 8))
    coeffs = np.random.default_rng(seed).normal(0, scale, shape) * np.linspace(1, 0.05, 32)[:, None, None]
    payload = klt_ctx.pack(coeffs, units, core.context_for(TAEF2_SPEC))
    return encode_v2.frame(1, (width, height), (cw, ch), shape, encode_v2.KLT_CTX, payload)


def avif_token(width: int, height: int, *, seed: int = 0, quality: int = 40) -> str:
    """A valid version 2 avif token of a synthetic photo."""
    from codec import avif, encode_v2

    payload = avif.encode(photo(width, height, seed=seed), quality)
    return encode_v2.frame(0, (width, height), (width, height), (0, 0, 0), encode_v2.AVIF, payload)


def png_header_only(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG signature and a valid IHDR chunk (correct CRC) declaring any size, no pixel data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def _release_free_heap() -> None:
    """Give freed heap pages back to the OS (glibc), so that new allocations show in RSS."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_growth(fn):
    """``(fn(), bytes)``: how far the process's peak resident memory rose while fn ran.

    Linux: resets the high-water mark through /proc/self/clear_refs and reads VmHWM, so it
    sees every allocation that was touched (Pillow, torch and numpy alike). Elsewhere it
    falls back to tracemalloc, which sees Python and numpy allocations only.
    """
    import tracemalloc

    def status(field: str) -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise LookupError(field)

    try:
        _release_free_heap()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = status("VmRSS")
    except OSError:
        tracemalloc.start()
        try:
            result = fn()
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    result = fn()
    return result, max(0, status("VmHWM") - before)


def rgb_icc_profile(red: tuple[float, float, float], green: tuple[float, float, float],
                    blue: tuple[float, float, float], gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and gamma curves; D50 XYZ colorants), for
    pictures in a colour space other than sRGB (Pillow can only make sRGB profiles itself)."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    text = b"test profile\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*red)), (b"gXYZ", xyz(*green)),
            (b"bXYZ", xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acspAPPL" + b"\0" * 24 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


#: Display P3's colorants (adapted to D50), the profile iPhone photos carry.
DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))

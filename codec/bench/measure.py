"""Measurements, one image at a time. Every VAE method goes through ``codec.encode`` /
``codec.decode`` (the same refinement and packing users get); nothing is re-implemented here.

Methods (``METHODS``): ``v1`` and ``v2`` (token versions at their defaults), ``webp8`` (the
original project's packing: raw latent, percentile clip, 8-bit WebP), ``avif`` / ``webp``
(the image as a file at the largest quality of at most v2's bytes), and rate control at each
budget: ``v1@N``, ``v2@N``, ``avif-token@N`` (``codec.encode(kind="avif", max_chars=N)``).
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import codec
from codec import core, packing, token
from codec.models import registry

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".gif"}
METHODS = {
    "v1": "token v1 default (gauss-rc, 8 refinement steps, fixed step)",
    "v2": "token v2 default (klt-ctx: whitened KLT, context-model entropy coder, per-image step, quantiser-aware refinement)",
    "webp8": "original packing (raw latent, webp8)",
    "avif": "AVIF file at <= v2's bytes",
    "webp": "WebP file at <= v2's bytes",
}
BUDGETS = (2000, 4000, 8000)
#: v1 rate control is measured at this budget only (it is slow: 8 refinement steps per size).
V1_BUDGETS = (4000,)
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
DECODE_REPEATS = 2


@dataclass
class Row:
    """One method on one image."""

    method: str
    image: str
    width: int
    height: int
    nbytes: int
    chars: int
    psnr: float
    msssim: float
    encode_s: float
    decode_s: float
    #: Seconds of the decode spent in the model's forward pass (VAE methods only).
    forward_s: float | None = None
    quality: int | None = None
    over_budget: bool = False

    @property
    def bpp(self) -> float:
        return self.nbytes * 8 / (self.width * self.height)

    @property
    def outside_share(self) -> float | None:
        if self.forward_s is None or self.decode_s <= 0:
            return None
        return max(0.0, 1.0 - self.forward_s / self.decode_s)

    def to_json(self) -> dict:
        return asdict(self)


class BenchError(Exception):
    """A folder, image or piece the benchmark cannot use (the command line: one line, exit 2)."""


def image_paths(folder: str | os.PathLike, only: list[str] | None = None) -> list[Path]:
    """Image files in ``folder``, sorted by name (only those whose stem is in ``only``)."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if only:
        paths = [p for p in paths if p.stem in only]
    if not paths:
        raise BenchError(f"no images in {folder}" + (f" named {', '.join(only)}" if only else ""))
    return paths


def load_images(paths: list[Path], size: int) -> list[tuple[str, Image.Image]]:
    """(name, RGB image resized (Lanczos) to long side ``size``) for each path."""
    out = []
    for p in paths:
        try:
            with Image.open(p) as opened:
                image = opened.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError: an OSError
            raise BenchError(f"cannot read {p}: not an image Pillow can decode ({exc})") from exc
        scale = size / max(image.size)
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out.append((p.stem, image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)))
    return out


def psnr(reference: Image.Image, test: Image.Image) -> float:
    """PSNR in dB over R, G and B together, 8-bit (peak 255)."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(test.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def msssim_settings(width: int, height: int) -> tuple[int, int] | None:
    """(win_size, scales): the standard 11 and 5 when the short side is over 160 px; smaller
    images get a smaller window and fewer scales. None below 33 px."""
    short = min(width, height)
    win = 11
    while win > 3 and short <= (win - 1) * 16:
        win -= 2
    if short <= (win - 1) * 16:
        return None
    scales = 5
    while scales > 1 and short / 2 ** (scales - 1) < win:
        scales -= 1
    return win, scales


def msssim(reference: Image.Image, test: Image.Image) -> float:
    """MS-SSIM (pytorch-msssim, data range 255) with ``msssim_settings``."""
    from pytorch_msssim import ms_ssim

    settings = msssim_settings(*reference.size)
    if settings is None:
        return float("nan")
    win, scales = settings
    weights = [w / sum(MSSSIM_WEIGHTS[:scales]) for w in MSSSIM_WEIGHTS[:scales]]

    def tensor(image: Image.Image) -> torch.Tensor:
        array = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array))[None]

    with torch.inference_mode():
        return float(ms_ssim(tensor(reference), tensor(test), data_range=255, win_size=win, weights=weights))


def original_token(image: Image.Image) -> str:
    """The original project's token: raw encoder latent, webp8 packing (token v1 framing)."""
    spec = registry.get_spec(core.default_model())
    latent = core.encode_latent(registry.load(spec.name), image, 0)
    payload = packing.pack_webp8(latent)
    return token.to_text(token.pack(core._header(spec, image.size, image.size, latent.shape, packing.WEBP8, payload), payload))


class _TimedNet:
    """Wraps a model so that the time of its decoder forward passes is recorded."""

    def __init__(self, net) -> None:
        self.net, self.forward_s = net, 0.0
        self.latent_channels, self.downscale = net.latent_channels, net.downscale

    def encode(self, x):
        return self.net.encode(x)

    def decode(self, z):
        start = time.perf_counter()
        out = self.net.decode(z)
        self.forward_s += time.perf_counter() - start
        return out


def timed_decode(text: str) -> tuple[Image.Image, float, float | None]:
    """``codec.decode`` split in two: (image, total s, forward-pass s), best of DECODE_REPEATS.
    Same steps as codec.decode (decode_latent + render_latent); avif tokens have no forward."""
    best = None
    for _ in range(DECODE_REPEATS):
        start = time.perf_counter()
        if codec.inspect(text).payload_kind == "avif":
            image, forward = codec.decode(text), None
        else:
            header, spec, latent = core.decode_latent(text)
            net = _TimedNet(registry.load(spec.name))
            image, forward = core.render_latent(net, latent, header), net.forward_s
        total = time.perf_counter() - start
        if best is None or total < best[1]:
            best = (image, total, forward)
    return best


def token_row(method: str, name: str, image: Image.Image, encode) -> Row:
    """Encode with ``encode(image) -> token``, decode, measure."""
    start = time.perf_counter()
    try:
        text = encode(image)
    except codec.CodecError:  # a budget this image cannot meet
        return Row(method, name, image.width, image.height, 0, 0, float("nan"), float("nan"), 0.0, 0.0, over_budget=True)
    encode_s = time.perf_counter() - start
    decoded, decode_s, forward_s = timed_decode(text)
    assert decoded.size == image.size, (decoded.size, image.size)
    return Row(method, name, image.width, image.height, len(token.from_text(text)), len(text),
               psnr(image, decoded), msssim(image, decoded), encode_s, decode_s, forward_s)  # fmt: skip


def _encode_file(image: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "WEBP":
        image.save(buf, format="WEBP", quality=quality, method=6)
    else:
        image.save(buf, format="AVIF", quality=quality)
    return buf.getvalue()


def file_row(fmt: str, name: str, image: Image.Image, budget: int) -> Row:
    """``fmt`` at the largest quality whose file is at most ``budget`` bytes (bisection;
    quality 0 if even that is over, flagged). Encode time is that of the final file."""
    lo, hi, best = 0, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = _encode_file(image, fmt, mid)
        if len(data) <= budget:
            best, lo = (mid, data), mid + 1
        else:
            hi = mid - 1
    quality = best[0] if best else 0
    start = time.perf_counter()
    data = _encode_file(image, fmt, quality)
    encode_s = time.perf_counter() - start
    decode_s = math.inf
    for _ in range(DECODE_REPEATS):
        start = time.perf_counter()
        decoded = Image.open(io.BytesIO(data), formats=[fmt]).convert("RGB")
        decode_s = min(decode_s, time.perf_counter() - start)
    return Row(fmt.lower(), name, image.width, image.height, len(data), math.ceil(len(data) * 4 / 3),
               psnr(image, decoded), msssim(image, decoded), encode_s, decode_s, None, quality, best is None)  # fmt: skip


def model_ceiling(image: Image.Image) -> float:
    """PSNR of the decoder's output for the raw, unquantised encoder latent."""
    net = core.load_model()
    latent = core.encode_latent(net, image, 0)
    header = core._header(registry.get_spec(core.default_model()), image.size, image.size, latent.shape, 0, b"")
    return psnr(image, core.render_latent(net, latent, header))


def run_image(name: str, image: Image.Image, budgets: tuple[int, ...] | None = None, *,
              v2_only: bool = False) -> tuple[list[Row], float]:
    """Every method on one image: (rows, the model's unquantised PSNR). ``v2_only``: the
    rows that depend on v2 only (v2, v2@N, AVIF/WebP at v2's bytes), to redo them after a v2
    change and merge them over an earlier full run."""
    budgets = BUDGETS if budgets is None else budgets
    v2 = token_row("v2", name, image, lambda im: codec.encode(im, kind="vae-v2").token)
    rows = [v2] if v2_only else [
        token_row("v1", name, image, lambda im: codec.encode(im, kind="vae-v1").token), v2,
        token_row("webp8", name, image, original_token),
    ]  # fmt: skip
    rows += [file_row(fmt, name, image, v2.nbytes) for fmt in ("AVIF", "WEBP")]
    for budget in budgets:
        for label, kind in (("v1", "vae-v1"), ("v2", "vae-v2"), ("avif-token", "avif")):
            if (label == "v1" and budget not in V1_BUDGETS) or (v2_only and label != "v2"):
                continue
            rows.append(token_row(f"{label}@{budget}", name, image,
                                  lambda im, k=kind, b=budget: codec.encode(im, kind=k, max_chars=b).token))  # fmt: skip
    return rows, model_ceiling(image)


def run_v1_budgets(name: str, image: Image.Image, budgets: tuple[int, ...]) -> list[Row]:
    """v1 rate control at more budgets (``v1@N``; slow: 8 refinement steps per size tried),
    to merge with a full run."""
    return [token_row(f"v1@{b}", name, image, lambda im, b=b: codec.encode(im, kind="vae-v1", max_chars=b).token)
            for b in budgets]  # fmt: skip


def run_variant(name: str, image: Image.Image, loss_db: float) -> list[Row]:
    """v2 default with another target loss (``EMMM_V2_TARGET_DB``): method ``v2-<loss_db>dB``."""
    from codec import encode_v2

    saved = encode_v2.TARGET_LOSS_DB
    encode_v2.TARGET_LOSS_DB = loss_db
    try:
        return [token_row(f"v2-{loss_db:g}dB", name, image, lambda im: codec.encode(im, kind="vae-v2").token)]
    finally:
        encode_v2.TARGET_LOSS_DB = saved


def warm_up(image: Image.Image) -> None:
    """One throwaway encode/decode per kind so that first-call costs stay out of the timings."""
    small = image.resize((64, max(8, round(64 * image.height / image.width))))
    for kind in ("vae-v1", "vae-v2", "avif"):
        codec.decode(codec.encode(small, kind=kind, refine_steps=1).token)

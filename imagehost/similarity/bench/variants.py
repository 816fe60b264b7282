"""The near-duplicate test set: each Kodak image and five edited copies of it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps


def crop70(image: Image.Image) -> Image.Image:
    """The central 70% of each side."""
    w, h = image.size
    cw, ch = round(w * 0.7), round(h * 0.7)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def down50(image: Image.Image) -> Image.Image:
    """Half the width and height."""
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


def jpeg20(image: Image.Image) -> Image.Image:
    """Saved as JPEG at quality 20 and read back."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=20)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def bright30(image: Image.Image) -> Image.Image:
    """Brightness +30%."""
    return ImageEnhance.Brightness(image).enhance(1.3)


def mirror(image: Image.Image) -> Image.Image:
    """Flipped left to right."""
    return ImageOps.mirror(image)


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop70": crop70,
    "down50": down50,
    "jpeg20": jpeg20,
    "bright30": bright30,
    "mirror": mirror,
}


def kodak_images(folder: Path) -> dict[str, Image.Image]:
    """``kodimNN`` -> RGB image, for every PNG in ``folder`` (sorted)."""
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise SystemExit(f"no Kodak PNGs in {folder} (set --kodak)")
    return {p.stem: Image.open(p).convert("RGB") for p in paths}


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()

"""Rate/quality/speed benchmark: token v1, token v2, the original packing, AVIF and WebP.

    python -m codec.bench --images ../shared/data/kodak --size 316 --out docs/benchmarks.md

Pieces: ``measure`` (methods and metrics, one image at a time), ``report`` (markdown from
measurements, merging runs made in pieces), ``cli`` (arguments, JSON pieces, merge).
"""

from .measure import METHODS, Row, image_paths, load_images, msssim, msssim_settings, psnr, run_image
from .report import markdown

__all__ = ["METHODS", "Row", "image_paths", "load_images", "markdown", "msssim", "msssim_settings", "psnr", "run_image"]

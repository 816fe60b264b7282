"""Time what a search by example costs inside one web request (no database needed).

    python scripts/similar_request_timing.py [--runs 20]

Prints the first embedding (includes loading the EfficientNet-Lite0 weights), then p50/p95
of ``search.embed_query_file`` (bounded upload -> RGB -> vector) for a 640x480 and a
4000x3000 JPEG, and of ``search.embed_query_text`` (a token URL -> decode -> vector).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emmmsite.settings")
_SHARED_MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models"
if _SHARED_MODELS.is_dir():  # as `make` does: the codec's weights for the token part
    os.environ.setdefault("EMMM_MODEL_DIR", str(_SHARED_MODELS))


def jpeg(w: int, h: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (h // 40 + 1, w // 40 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import django

    django.setup()
    import codec
    import torch

    from imagehost.services import search

    print(f"torch threads: {torch.get_num_threads()}")
    small, large = jpeg(640, 480), jpeg(4000, 3000)
    t = time.perf_counter()
    search.embed_query_file(small)
    print(f"first query (loads the weights): {(time.perf_counter() - t) * 1000:.0f} ms")
    for name, data in (("640x480 JPEG", small), ("4000x3000 JPEG", large)):
        p50, p95 = timed(lambda d=data: search.embed_query_file(d), args.runs)
        print(f"embed_query_file {name} ({len(data):,} bytes): p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    for side in (128, 300):
        token = codec.encode(jpeg(side, side), refine_steps=0).token
        p50, p95 = timed(lambda tk=token: search.embed_token_image(tk), args.runs)
        print(f"embed_token_image {side}x{side} token ({len(token):,} chars, decode + embed): p50 {p50:.0f} ms, p95 {p95:.0f} ms")


if __name__ == "__main__":
    main()

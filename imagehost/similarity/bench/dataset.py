"""The near-duplicate set as the benchmark uses it.

Index: the 24 Kodak originals, each embedded from its token's decode (as the site would).
Queries: for each original, its five edited copies as they are (``crop70`` …) and the same
five copies after a token round trip (``crop70+token`` …): ten queries per original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .tokens import TokenCache
from .variants import EDITS, kodak_images


@dataclass
class NearDuplicateSet:
    names: list[str]  # kodimNN, index order
    indexed: list[Image.Image]  # token decodes of the originals
    originals: list[Image.Image]
    queries: list[tuple[int, str, Image.Image]]  # (index of the original, variant, image)


def fill_token_cache(kodak: Path, cache: TokenCache, budget_s: float) -> tuple[int, int]:
    """Encode what is missing until ``budget_s`` runs out; returns (done, total)."""
    started = time.monotonic()
    images = kodak_images(kodak)
    jobs = [img for img in images.values()]
    jobs += [edit(img) for img in images.values() for edit in EDITS.values()]
    done = 0
    for image in jobs:
        encode = time.monotonic() - started < budget_s
        if cache.round_trip(image, encode=encode) is not None:
            done += 1
    return done, len(jobs)


def load_set(kodak: Path, cache: TokenCache) -> NearDuplicateSet:
    """The whole set; raises SystemExit when the token cache is not complete."""
    images = kodak_images(kodak)
    names = list(images)
    indexed, queries = [], []
    for i, name in enumerate(names):
        decoded = cache.round_trip(images[name], encode=False)
        if decoded is None:
            raise SystemExit("token cache incomplete: run `python -m imagehost.similarity.bench tokens` again")
        indexed.append(decoded)
        for variant, edit in EDITS.items():
            copy = edit(images[name])
            queries.append((i, variant, copy))
            through = cache.round_trip(copy, encode=False)
            if through is None:
                raise SystemExit("token cache incomplete: run `python -m imagehost.similarity.bench tokens` again")
            queries.append((i, f"{variant}+token", through))
    return NearDuplicateSet(names, indexed, list(images.values()), queries)

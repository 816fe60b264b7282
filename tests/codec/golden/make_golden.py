"""Regenerate the golden tokens in this folder. ONLY run this when the token format version
changes (a new version byte): the point of these files is that tokens written by an older
release keep decoding the same way, so regenerating them for any other reason would hide
exactly the regressions test_golden.py exists to catch.

    EMMM_MODEL_DIR=../shared/models .venv/bin/python tests/codec/golden/make_golden.py

Writes, per case: NAME.token (the token text), NAME.png (its reference decode), and
headers.json (what codec.inspect() reports for each token).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root

import codec  # noqa: E402
from codec import core, packing, token  # noqa: E402
from codec.models import registry  # noqa: E402
from tests.codec.imagegen import photo  # noqa: E402


def webp8_token(image) -> str:
    """A webp8 (kind 2) token, as the original project packed latents."""
    spec = registry.get_spec("taef2")
    latent = core.encode_latent(codec.load_model("taef2"), image, 0)
    payload = packing.pack_webp8(latent)
    header = core._header(spec, image.size, image.size, latent.shape, packing.WEBP8, payload)
    return token.to_text(token.pack(header, payload))


def cases() -> dict[str, str]:
    return {
        "photo-64x48": codec.encode(photo(64, 48, seed=1)).token,
        "photo-40x40": codec.encode(photo(40, 40, seed=2)).token,
        "photo-96x64": codec.encode(photo(96, 64, seed=3)).token,
        "photo-96x64-max400": codec.encode(photo(96, 64, seed=4), max_chars=400).token,
        "photo-48x32-webp8": webp8_token(photo(48, 32, seed=5)),
    }


def main() -> None:
    headers = {}
    for name, text in cases().items():
        (HERE / f"{name}.token").write_text(text + "\n")
        codec.decode(text).save(HERE / f"{name}.png", optimize=True)
        info = dataclasses.asdict(codec.inspect(text))
        info["latent_shape"] = list(info["latent_shape"])
        headers[name] = info
        print(f"{name}: {info['chars']} chars, coded {info['coded_width']}x{info['coded_height']}")
    (HERE / "headers.json").write_text(json.dumps(headers, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

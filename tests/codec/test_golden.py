"""Golden tokens: tokens written by this release must decode the same way in every later
release (docs/token-format.md). Regenerate only on a format version change (see
golden/make_golden.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

import codec

from .imagegen import psnr

GOLDEN = Path(__file__).parent / "golden"
HEADERS = json.loads((GOLDEN / "headers.json").read_text())
NAMES = sorted(HEADERS)


def test_golden_set_is_complete():
    assert len(NAMES) == 5
    assert {p.stem for p in GOLDEN.glob("*.token")} == set(NAMES)
    assert {HEADERS[n]["payload_kind"] for n in NAMES} == {"gauss-rc", "webp8"}
    # one token was made under a max_chars budget that forced a smaller coded size
    assert any(h["coded_width"] < h["width"] for h in HEADERS.values())


@pytest.mark.parametrize("name", NAMES)
def test_inspect_matches_the_recorded_header(name):
    info = dataclasses.asdict(codec.inspect((GOLDEN / f"{name}.token").read_text().strip()))
    info["latent_shape"] = list(info["latent_shape"])
    assert info == HEADERS[name]


@pytest.mark.parametrize("name", NAMES)
def test_golden_token_decodes_to_its_reference(name, taef2):
    reference = Image.open(GOLDEN / f"{name}.png").convert("RGB")
    decoded = codec.decode((GOLDEN / f"{name}.token").read_text().strip())
    assert decoded.size == reference.size == (HEADERS[name]["width"], HEADERS[name]["height"])
    assert psnr(decoded, reference) >= 50.0  # float noise across CPUs/threads only

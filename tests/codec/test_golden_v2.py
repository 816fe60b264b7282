"""Golden version 2 tokens (klt-ctx, klt-rc): written once by tests/codec/golden_v2/
make_golden.py, they must decode the same in every later release: the same integer symbols
(bit-exact) and the same pixels (float noise only)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

import codec

from .golden_v2.make_golden import symbols_sha256
from .imagegen import psnr

GOLDEN = Path(__file__).parent / "golden_v2"
CASES = json.loads((GOLDEN / "golden.json").read_text())
NAMES = sorted(CASES)


def text_of(name: str) -> str:
    return (GOLDEN / f"{name}.token").read_text().strip()


def test_golden_v2_set_is_complete():
    assert {p.stem for p in GOLDEN.glob("*.token")} == set(NAMES)
    assert {CASES[n]["inspect"]["payload_kind"] for n in NAMES} == {"klt-ctx", "klt-rc"}
    assert any(c["inspect"]["coded_width"] < c["inspect"]["width"] for c in CASES.values())  # one under max_chars


@pytest.mark.parametrize("name", NAMES)
def test_inspect_and_symbols_match_the_record(name):
    info = dataclasses.asdict(codec.inspect(text_of(name)))
    info["latent_shape"] = list(info["latent_shape"])
    assert info == CASES[name]["inspect"]
    assert symbols_sha256(text_of(name)) == CASES[name]["symbols_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_golden_v2_token_decodes_to_its_reference(name, taef2):
    reference = Image.open(GOLDEN / f"{name}.png").convert("RGB")
    decoded = codec.decode(text_of(name))
    assert decoded.size == reference.size
    assert psnr(decoded, reference) >= 50.0  # float noise across CPUs/threads only

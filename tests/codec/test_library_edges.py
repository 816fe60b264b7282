"""The library's public functions against what a caller may pass them: every refusal is a
CodecError with a clear message (a bare TypeError or ZeroDivisionError was a bug), and the
codec's environment variables are checked by one table (codec/environment.py)."""

from __future__ import annotations

import pytest
from PIL import Image

import codec
from codec import environment

from .imagegen import photo


@pytest.mark.parametrize("steps", [1.5, "2", -1, float("nan"), True, 101])
def test_refine_steps_must_be_a_whole_number_in_range(steps):
    with pytest.raises(codec.CodecError, match="refine_steps must be"):
        codec.encode(photo(16, 16), refine_steps=steps)


def test_an_empty_or_huge_picture_in_memory_is_refused(monkeypatch):
    """A PIL image skipped the size checks a file gets: (0, 0) was a ZeroDivisionError."""
    for call in (codec.encode, codec.probe_image):
        with pytest.raises(codec.InvalidImage, match="empty"):
            call(Image.new("RGB", (0, 0)))
    monkeypatch.setattr("codec.images.MAX_INPUT_PIXELS", 1000)
    with pytest.raises(codec.InvalidImage, match="the limit is 1,000"):
        codec.probe_image(Image.new("RGB", (40, 30)))


@pytest.mark.parametrize("args", [(0, 0), (0, 10), (-5, 10), (10, 10, -1), (10, 10, 0), (10, 10, True), ("10", 10), (10.0, 10)])
def test_stored_size_takes_whole_numbers_from_one(args):
    with pytest.raises(codec.CodecError, match="must be a whole number from 1"):
        codec.stored_size(*args)
    assert codec.stored_size(768, 512) == (627, 418) and codec.stored_size(768, 512, None) == (627, 418)


def test_names_of_kinds_and_models_are_checked():
    with pytest.raises(codec.CodecError, match="unknown kind 'bogus'"):
        codec.minimum_chars(kind="bogus")
    for call in (codec.model_available, codec.load_model):
        with pytest.raises(codec.CodecError, match="a model name is text"):
            call(["taef2"])


def test_an_empty_model_name_means_the_default_everywhere(taef2):
    token = codec.encode(photo(16, 16), model="").token
    assert codec.decode(token, model="").size == (16, 16)


def test_budgets_are_monotonic_for_the_smallest_picture(taef2):
    """A 1x1 picture: max_chars=87 gave an 83-character token, but 83 to 86 were refused (the
    size had no smaller one to go to, and its quantiser-aware steps were skipped, then the
    refusal blamed the 8x upscale bound); every budget from the floor up fits now."""
    import numpy as np

    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (12, 12, 3), dtype=np.uint8))
    for image in (Image.new("RGB", (1, 1), (90, 140, 200)), noise):  # noise: 46-52 were refused
        for budget in (codec.minimum_chars(), 48, 52, 84, 86, 87, 120):
            assert codec.encode(image, max_chars=budget).chars <= budget


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("EMMM_MAX_PIXELS", "0", "EMMM_MAX_PIXELS='0': expected a whole number from 1"),
        ("EMMM_MAX_PIXELS", "-5", "expected a whole number from 1"),
        ("EMMM_REFINE_STEPS", "x", "EMMM_REFINE_STEPS='x': expected a whole number from 0 to 100"),
        ("EMMM_TORCH_THREADS", "abc", "EMMM_TORCH_THREADS='abc'"),
        ("EMMM_VAE_FORMAT", "v3", "EMMM_VAE_FORMAT='v3': expected v1 or v2"),
        ("EMMM_V2_TARGET_DB", "0", "EMMM_V2_TARGET_DB='0': expected a number above 0"),
        ("EMMM_V2_DEADZONE", "0.7", "expected a number from 0 to 0.5"),
        ("EMMM_V2_SECOND_SIZE", "inf", "EMMM_V2_SECOND_SIZE='inf'"),
    ],
)
def test_a_bad_codec_variable_is_refused_naming_it(monkeypatch, name, raw, message):
    """EMMM_MAX_PIXELS=0 coded every picture at 1x1; "abc" was a traceback at import."""
    monkeypatch.setenv(name, raw)
    with pytest.raises(codec.ConfigurationError) as refused:
        environment.check()
    assert message in str(refused.value)


def test_codec_variables_default_when_empty(monkeypatch):
    monkeypatch.setenv("EMMM_MAX_PIXELS", " ")
    monkeypatch.delenv("EMMM_TORCH_THREADS", raising=False)
    assert environment.value("EMMM_MAX_PIXELS") == 512 * 512 and environment.value("EMMM_TORCH_THREADS") is None
    environment.check()


def test_submodules_are_reachable_after_a_plain_import():
    """``import codec`` loads its names on first use; ``codec.images`` (a submodule the site
    reads) raised AttributeError unless something had imported it before."""
    import subprocess
    import sys

    code = "import codec; print(codec.images.load_rgb.__name__, codec.token.token_id.__name__, hasattr(codec, 'nothing'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["load_rgb", "token_id", "False"]


def test_whole_numbers_too_large_for_a_float_are_codec_errors_or_clamped(taef2):
    """max_chars=10**400 escaped as OverflowError (max_chars * BUDGET_SLACK), and so did
    stored_size(10**309, 1). A budget over MAX_TOKEN_CHARS means no tighter budget than that
    (no longer token can be decoded): the same token as at MAX_TOKEN_CHARS."""
    from codec.limits import MAX_TOKEN_CHARS

    picture = photo(24, 16)
    at_limit = codec.encode(picture, refine_steps=0, max_chars=MAX_TOKEN_CHARS).token
    for kind in ("vae", "vae-v1"):
        assert codec.encode(picture, refine_steps=0, max_chars=10**400, kind=kind).chars <= MAX_TOKEN_CHARS
    assert codec.encode(picture, refine_steps=0, max_chars=10**400).token == at_limit
    assert codec.encode(picture, max_chars=10**400, kind="avif").chars <= MAX_TOKEN_CHARS
    assert codec.encode(picture, refine_steps=0, max_pixels=10**400, kind="avif").width == 24
    for args in ((10**309, 1), (1, 10**400), (2**32, 1)):
        with pytest.raises(codec.CodecError, match="must be a whole number from 1 to 4,294,967,295"):
            codec.stored_size(*args)
    assert codec.stored_size(2**32 - 1, 1) == (8192, 1) and codec.stored_size(10, 10, 10**400) == (10, 10)


def test_the_default_model_variable_is_in_the_table(monkeypatch):
    """EMMM_DEFAULT_MODEL was read straight from os.environ: empty named no model at all (a
    CodecError "unknown model ''" from encode), and a bad name was not a ConfigurationError."""
    assert "EMMM_DEFAULT_MODEL" in environment.VARIABLES
    for empty in ("", "  "):
        monkeypatch.setenv("EMMM_DEFAULT_MODEL", empty)
        assert codec.default_model() == "taef2"
        environment.check()
    monkeypatch.setenv("EMMM_DEFAULT_MODEL", "taesd")
    assert codec.default_model() == "taesd" and codec.minimum_chars() == codec.minimum_chars("taesd")
    monkeypatch.setenv("EMMM_DEFAULT_MODEL", "nope")
    for call in (environment.check, codec.default_model, codec.minimum_chars, lambda: codec.encode(photo(8, 8))):
        with pytest.raises(codec.ConfigurationError, match=r"EMMM_DEFAULT_MODEL='nope': expected a registered model name \("):
            call()
    assert codec.minimum_chars("taef2") > 0  # a model named explicitly needs no default


def test_the_default_model_is_checked_without_torch():
    """The site checks the codec's table at start-up without loading torch."""
    import subprocess
    import sys

    code = ("import os, sys; os.environ['EMMM_DEFAULT_MODEL'] = 'nope'\n"
            "from codec import environment\n"
            "try:\n    environment.check()\nexcept environment.ConfigurationError as e:\n    print(e)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    message = "EMMM_DEFAULT_MODEL='nope': expected a registered model name (sd-vae-ft-mse, taef2, taesd)"
    assert out.splitlines() == [message, "False"]


def test_the_models_the_table_knows_without_torch_are_the_registered_ones():
    from codec.models import available_models

    assert sorted(environment.BUILTIN_MODELS) == available_models()

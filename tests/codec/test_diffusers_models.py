"""The Stable Diffusion VAE family (diffusers AutoencoderKL / AutoencoderTiny) end to end.

Small randomly initialised diffusers models are built from a config, saved with
``save_pretrained`` into ``$EMMM_MODEL_DIR/<name>/`` and registered as test specs (codes 200+)
whose ``files`` pin the saved safetensors' sha256, so every test goes through the real
loading code (folder lookup, sha256 check, diffusers ``from_pretrained``, the adapter).
Random weights: these tests check shapes, types, determinism and conventions, not quality.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace

import pytest
import torch

import codec
from codec.models import _diffusers_builder, registry
from codec.models.diffusers_vae import DiffusersVAE
from codec.models.registry import ModelSpec
from codec.models.weights import WeightFile, sha256_of

KL, TINY = "test-sd-kl", "test-sd-tiny"
WEIGHTS = "diffusion_pytorch_model.safetensors"
#: Hub repos that must never be reached (HF_HUB_OFFLINE and a dead endpoint make sure).
NO_REPO = "emmmbedding-tests/does-not-exist"
NO_REVISION = "0" * 40


def _tiny_kl():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )


def _tiny_taesd():
    from diffusers import AutoencoderTiny

    torch.manual_seed(1)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    )


def _spec(name: str, code: int, kind: str, sha: str | None, *, revision: str | None = NO_REVISION) -> ModelSpec:
    """A test model in the test latent space "sd1-test", whose hub origin does not exist."""
    return ModelSpec(
        name=name, code=code, latent_space="sd1-test", latent_channels=4, downscale=8,
        build=_diffusers_builder(kind, NO_REPO, revision), files=(WeightFile(WEIGHTS, sha),),
    )  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """``$EMMM_MODEL_DIR`` with the two test models, registered for the module, removed after."""
    root = tmp_path_factory.mktemp("emmm-models")
    shas = {}
    for name, make in ((KL, _tiny_kl), (TINY, _tiny_taesd)):
        make().save_pretrained(root / name, safe_serialization=True)
        shas[name] = sha256_of(root / name / WEIGHTS)
    mp = pytest.MonkeyPatch()
    mp.setenv("EMMM_MODEL_DIR", str(root))
    registry.unload_all()
    registry.register(_spec(KL, 201, "kl", shas[KL]))
    registry.register(_spec(TINY, 202, "tiny", shas[TINY]))
    try:
        yield root, shas
    finally:
        for name in (KL, TINY):
            registry._SPECS.pop(name, None)
        registry.unload_all()
        mp.undo()


@pytest.fixture
def extra_specs():
    """Register further test specs; they (and every loaded model) are dropped afterwards."""
    names = []

    def add(spec: ModelSpec) -> ModelSpec:
        names.append(spec.name)
        return registry.register(spec)

    yield add
    for name in names:
        registry._SPECS.pop(name, None)
    registry.unload_all()


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """The model hub points at nothing: offline mode, an empty cache, a dead endpoint."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")


def _images(seed: int = 0, h: int = 32, w: int = 40) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --- registration of the real SD models ------------------------------------------------------
def test_sd_models_are_registered_and_pinned():
    kl, tiny = registry.get_spec("sd-vae-ft-mse"), registry.get_spec("taesd")
    assert (kl.code, tiny.code) == (2, 3)
    assert kl.latent_space == tiny.latent_space == "sd1"
    assert (kl.latent_channels, kl.downscale, tiny.latent_channels, tiny.downscale) == (4, 8, 4, 8)
    for spec in (kl, tiny):
        (file,) = spec.files
        assert file.name == WEIGHTS
        assert len(file.sha256) == 64 and int(file.sha256, 16) >= 0


def test_real_sd_models_refuse_cleanly_offline(model_dir, offline_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("EMMM_MODEL_DIR", str(tmp_path))  # no folder for them here
    registry.unload_all()
    for name, repo in (("sd-vae-ft-mse", "stabilityai/sd-vae-ft-mse"), ("taesd", "madebyollin/taesd")):
        # a request (load) never tries the hub and says nothing about it
        assert not codec.model_available(name)
        started = time.perf_counter()
        with pytest.raises(codec.ModelUnavailable) as info:
            codec.load_model(name)
        assert time.perf_counter() - started < 1.0
        assert str(info.value) == f"weights for model {name!r} are missing or unusable on this server"
        assert repo not in str(info.value) and "python -m codec fetch" in str(info.value.__cause__)
        # the explicit fetch says where the weights come from
        with pytest.raises(codec.ModelUnavailable, match="model hub") as info:
            codec.fetch_model(name)
        message = str(info.value)
        assert repo in message and f"$EMMM_MODEL_DIR/{name}/" in message
    registry.unload_all()


# --- loading ---------------------------------------------------------------------------------
def test_loads_from_model_dir_with_sha_check(model_dir):
    from diffusers import AutoencoderKL, AutoencoderTiny

    registry.unload_all()
    assert codec.model_available(KL) and codec.model_available(TINY)  # files found, nothing loaded yet
    kl, tiny = codec.load_model(KL), codec.load_model(TINY)
    assert isinstance(kl, DiffusersVAE) and isinstance(tiny, DiffusersVAE)
    assert isinstance(kl.vae, AutoencoderKL) and kl._is_kl
    assert isinstance(tiny.vae, AutoencoderTiny) and not tiny._is_kl
    assert (kl.latent_channels, kl.downscale, tiny.latent_channels) == (4, 8, 4)
    assert kl.scaling_factor == pytest.approx(0.18215) and tiny.scaling_factor == 1.0
    for net in (kl, tiny):
        assert not net.vae.training
        assert not any(p.requires_grad for p in net.vae.parameters())


def test_sha_mismatch_is_refused(model_dir, extra_specs):
    root, shas = model_dir
    shutil.copytree(root / KL, root / "test-sd-bad")
    extra_specs(_spec("test-sd-bad", 203, "kl", "0" * 64))
    with pytest.raises(codec.ModelUnavailable) as info:
        codec.load_model("test-sd-bad")
    assert "sha256" in str(info.value.__cause__) and shas[KL] in str(info.value.__cause__)


def test_tampered_weights_are_refused(model_dir, extra_specs):
    root, shas = model_dir
    shutil.copytree(root / TINY, root / "test-sd-tampered")
    with open(root / "test-sd-tampered" / WEIGHTS, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    extra_specs(_spec("test-sd-tampered", 204, "tiny", shas[TINY]))
    with pytest.raises(codec.ModelUnavailable) as info:
        codec.load_model("test-sd-tampered")
    assert "wrong or corrupted" in str(info.value.__cause__)


def test_missing_safetensors_in_folder_is_refused(model_dir, extra_specs):
    root, shas = model_dir
    (root / "test-sd-nofile").mkdir()
    shutil.copy(root / KL / "config.json", root / "test-sd-nofile" / "config.json")
    extra_specs(_spec("test-sd-nofile", 205, "kl", shas[KL]))
    with pytest.raises(codec.ModelUnavailable, match="missing") as info:
        codec.load_model("test-sd-nofile")
    assert "does not exist" in str(info.value.__cause__)


def test_hub_loading_offline_is_model_unavailable(model_dir, extra_specs, offline_hub):
    extra_specs(_spec("test-sd-hub", 206, "kl", "0" * 64))  # no folder in $EMMM_MODEL_DIR
    with pytest.raises(codec.ModelUnavailable, match="cannot load 'test-sd-hub' from the model hub") as info:
        codec.fetch_model("test-sd-hub")
    assert NO_REPO in str(info.value) and "$EMMM_MODEL_DIR/test-sd-hub/" in str(info.value)


@pytest.mark.parametrize("offline", ["1", "true"])
def test_emmm_offline_refuses_hub_loading(model_dir, extra_specs, offline_hub, monkeypatch, offline):
    monkeypatch.setenv("EMMM_OFFLINE", offline)
    extra_specs(_spec("test-sd-offline", 210, "tiny", "0" * 64))
    with pytest.raises(codec.ModelUnavailable, match=f"EMMM_OFFLINE={offline}"):
        codec.fetch_model("test-sd-offline")


def test_missing_pin_refuses_hub_loading(model_dir, extra_specs, offline_hub):
    extra_specs(_spec("test-sd-unpinned", 207, "tiny", None, revision=None))
    with pytest.raises(codec.ModelUnavailable, match="pin missing"):
        codec.fetch_model("test-sd-unpinned")


@pytest.mark.parametrize(
    "suffix, code, change, message",
    [
        # the spec expects 8 channels; the folder's config.json says 4
        ("-8ch", 208, {"latent_channels": 8}, "latent channels"),
        # config.json is not covered by the weights' sha256; the pinned scaling factor is
        ("-scaled", 211, {"build": _diffusers_builder("kl", NO_REPO, NO_REVISION, scaling_factor=0.5)}, "scaling_factor"),
    ],
)
def test_config_that_does_not_match_the_spec_is_refused(model_dir, extra_specs, suffix, code, change, message):
    root, shas = model_dir
    spec = replace(_spec(KL + suffix, code, "kl", shas[KL]), **change)
    shutil.copytree(root / KL, root / spec.name)
    extra_specs(spec)
    with pytest.raises(codec.ModelUnavailable) as info:
        codec.load_model(spec.name)
    assert message in str(info.value.__cause__)


def test_model_is_loaded_once_per_process(model_dir, extra_specs):
    root, shas = model_dir
    shutil.copytree(root / TINY, root / "test-sd-count")
    builds = []
    build = _diffusers_builder("tiny", NO_REPO, NO_REVISION)

    def counting(spec):
        builds.append(spec.name)
        return build(spec)

    spec = extra_specs(replace(_spec("test-sd-count", 209, "tiny", shas[TINY]), build=counting))
    results = []
    threads = [threading.Thread(target=lambda: results.append(codec.load_model(spec.name))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(net is results[0] for net in results)
    assert codec.load_model(spec.name) is results[0]
    assert builds == ["test-sd-count"]


# --- adapter conventions ---------------------------------------------------------------------
def test_kl_adapter_is_the_scaled_posterior_mean_of_minus_one_to_one_input(model_dir):
    net = codec.load_model(KL)
    x = _images()
    with torch.inference_mode():
        z = net.encode(x)
        assert torch.equal(z, net.encode(x))  # deterministic: the mean, never a sample
        posterior = net.vae.encode(x * 2 - 1).latent_dist
        expected = posterior.mean * net.vae.config.scaling_factor
        wrong_range = net.vae.encode(x).latent_dist.mean * net.vae.config.scaling_factor
        assert z.shape == (1, 4, 4, 5)
        torch.testing.assert_close(z, expected)
        assert not torch.allclose(z, wrong_range)
        assert not torch.allclose(z, posterior.sample(torch.Generator().manual_seed(0)) * net.scaling_factor)

        image = net.decode(z)
        direct = ((net.vae.decode(z / net.vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
        assert image.shape == x.shape
        torch.testing.assert_close(image, direct)
        assert image.min() >= 0 and image.max() <= 1


def test_tiny_adapter_feeds_taesd_its_native_zero_one_range(model_dir):
    net = codec.load_model(TINY)
    x = _images(1)
    with torch.inference_mode():
        z = net.encode(x)
        # TAESD's own layers take [0, 1] and emit SD's scaled latents (no extra factor).
        torch.testing.assert_close(z, net.vae.encoder.layers(x))
        assert z.shape == (1, 4, 4, 5)
        image = net.decode(z)
        torch.testing.assert_close(image, net.vae.decoder.layers(torch.tanh(z / 3) * 3).clamp(0, 1))
        assert image.shape == x.shape and image.min() >= 0 and image.max() <= 1


def test_decode_is_differentiable_for_refinement(model_dir):
    for name in (KL, TINY):
        net = codec.load_model(name)
        z = torch.zeros(1, 4, 2, 3, requires_grad=True)
        net.decode(z).mean().backward()
        assert z.grad is not None and z.grad.shape == z.shape


# --- through the codec -----------------------------------------------------------------------
@pytest.mark.parametrize("name", [KL, TINY])
def test_round_trip_through_the_codec(model_dir, png_bytes, name):
    data = png_bytes(44, 30, seed=3)
    result = codec.encode(data, model=name, refine_steps=2)
    assert isinstance(result.token, str) and result.token.isascii()
    assert result.model == name and (result.width, result.height) == (44, 30)
    assert result.chars == len(result.token)
    again = codec.encode(data, model=name, refine_steps=2)
    assert again.token == result.token  # deterministic

    info = codec.inspect(result.token)
    assert info.model == name and info.latent_shape == (4, 4, 6)
    image = codec.decode(result.token)
    assert image.mode == "RGB" and image.size == (44, 30)
    assert codec.decode(result.token).tobytes() == image.tobytes()


def test_kl_token_decodes_with_tiny_of_same_latent_space(model_dir, png_bytes):
    token = codec.encode(png_bytes(40, 24, seed=5), model=KL, refine_steps=0).token
    via_tiny = codec.decode(token, model=TINY)
    assert via_tiny.size == (40, 24) and via_tiny.mode == "RGB"
    back = codec.encode(png_bytes(40, 24, seed=5), model=TINY, refine_steps=0).token
    assert codec.decode(back, model=KL).size == (40, 24)


def test_token_is_refused_by_a_model_of_another_latent_space(model_dir, png_bytes):
    token = codec.encode(png_bytes(32, 16), model=KL, refine_steps=0).token
    with pytest.raises(codec.InvalidToken, match="different latent space"):
        codec.decode(token, model="taef2")
    with pytest.raises(codec.InvalidToken, match="different latent space"):
        codec.decode(token, model="taesd")  # "sd1" is not the test models' "sd1-test"

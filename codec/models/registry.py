"""The model registry: every model a token may name, pinned to exact weights.

The machinery (ModelSpec, register, load, fetch, ...) is ``codec.models.specs``; it is
re-exported here so that ``registry.load(name)`` etc. read naturally.
"""

from __future__ import annotations

import torch

from .base import configure_torch, device
from .specs import (  # noqa: F401  (re-exported)
    _LOADED, _SPECS, ModelSpec, available_models, fetch, get_spec, is_available, load, register, spec_for_code,
    unload_all,
)
from .weights import WeightFile, resolve

_TAESD_COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"
_TAESD_RAW = f"https://raw.githubusercontent.com/madebyollin/taesd/{_TAESD_COMMIT}"


def _build_taef2(spec: ModelSpec):
    from .taef2 import TAEF2, build_decoder, build_encoder

    configure_torch()
    encoder, decoder = build_encoder(), build_decoder()
    for module, file in zip((encoder, decoder), spec.files):
        state = torch.load(resolve(spec.name, file), map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    return TAEF2(_freeze(encoder), _freeze(decoder))


def _freeze(module: torch.nn.Module) -> torch.nn.Module:
    module.eval().requires_grad_(False)
    return module.to(device())


class DiffusersBuild:
    """Build function for a diffusers VAE (``kind`` "kl" or "tiny") pinned to ``revision``.

    ``scaling_factor`` pins the config's latent scaling (it defines the latent space, and
    ``config.json`` is not covered by the weights' sha256). Calling it loads local files only;
    ``fetch`` may download the pinned hub revision; ``is_local`` looks for the files.
    """

    def __init__(self, kind: str, repo_id: str, revision: str | None, scaling_factor: float | None = None) -> None:
        self.kind, self.repo_id, self.revision, self.scaling_factor = kind, repo_id, revision, scaling_factor

    def __call__(self, spec: ModelSpec):
        from .diffusers_vae import load_vae

        return self._wrap(spec, load_vae)

    def fetch(self, spec: ModelSpec):
        from .diffusers_vae import fetch_vae

        return self._wrap(spec, fetch_vae)

    def is_local(self, spec: ModelSpec) -> bool:
        from .diffusers_vae import local_folder

        folder = local_folder(spec.name, self.repo_id, self.revision, spec.files)
        return folder is not None and all((folder / file.name).is_file() for file in spec.files)

    def _wrap(self, spec: ModelSpec, loader):
        from ..errors import ModelUnavailable
        from .diffusers_vae import DiffusersVAE

        configure_torch()
        net = DiffusersVAE(_freeze(loader(self.kind, spec.name, self.repo_id, self.revision, spec.files)))
        if net.latent_channels != spec.latent_channels or net.downscale != spec.downscale:
            raise ModelUnavailable(
                f"model {spec.name!r} loaded with {net.latent_channels} latent channels / downscale "
                f"{net.downscale}, expected {spec.latent_channels} / {spec.downscale}: wrong config.json"
            )
        if self.scaling_factor is not None and net.scaling_factor != self.scaling_factor:
            raise ModelUnavailable(
                f"model {spec.name!r} has scaling_factor {net.scaling_factor}, expected {self.scaling_factor}: wrong config.json"
            )
        return net


_diffusers_builder = DiffusersBuild  # the name the tests and older code use

TAEF2_SPEC = register(
    ModelSpec(
        name="taef2",
        code=1,
        latent_space="flux2",
        latent_channels=32,
        downscale=8,
        build=_build_taef2,
        files=(
            WeightFile("taef2_encoder.pth", "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6", f"{_TAESD_RAW}/taef2_encoder.pth"),
            WeightFile("taef2_decoder.pth", "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5", f"{_TAESD_RAW}/taef2_decoder.pth"),
        ),
        # Relative decoder sensitivity per channel: output MSE per unit of Gaussian noise
        # variance added to that channel alone, mean over kodim09-12 at long side 316,
        # normalised to mean 1. Encoder-side only: tokens carry the steps they used.
        step_weights=(
            0.38, 1.14, 0.92, 5.86, 0.50, 0.93, 0.60, 0.52, 5.29, 0.41, 0.40, 0.70, 0.49, 0.38, 0.71, 1.66,
            0.44, 0.39, 0.45, 1.64, 0.47, 0.48, 0.64, 0.43, 1.00, 0.58, 1.04, 0.49, 0.48, 0.95, 0.51, 1.13,
        ),  # fmt: skip
        # Token v2 (klt-rc) channel transform: fitted by codec/fit/klt.py on scikit-image's
        # photographs (never Kodak). Pinned: tokens depend on it forever.
        klt=("taef2_klt.npz", "891d0eea596b0cc4ff5f77fa6e7ca69565ff100a27edce95af630f9d43735ac6"),
        # Token v2 klt-ctx context model: fitted by codec/fit/ctx.py on the same photographs
        # (never Kodak). Pinned: tokens depend on it forever.
        ctx=("taef2_ctx.npz", "bb1e9edf1c51796db1c6298df0766f02b6eca38152ff0380b2bb10d52af77bb9"),
        description="Tiny AutoEncoder for FLUX.2 (32 channels); weights from madebyollin/taesd",
    )
)


# Stable Diffusion 1.x/2.x latent space ("sd1"): 4 channels, 8x, scaled by 0.18215.
# Hub commit + sha256 of diffusion_pytorch_model.safetensors, each pair found pinned together in
# several independent public projects (not re-downloaded here: no hub access). Sizes:
# 334,643,276 bytes (sd-vae-ft-mse; the same file is the VAE of SD 2.x) and 9,793,292 bytes (taesd).
SD_VAE_FT_MSE_REPO = "stabilityai/sd-vae-ft-mse"
SD_VAE_FT_MSE_REVISION = "31f26fdeee1355a5c34592e401dd41e45d25a493"
SD_VAE_FT_MSE_SHA256 = "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815"
TAESD_REPO = "madebyollin/taesd"
TAESD_REVISION = "614f76814bbe30edbe2e627ace1c2234c81a2c0e"
TAESD_SHA256 = "db169d69145ec4ff064e49d99c95fa05d3eb04ee453de35824a6d0f325513549"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"


def _hub_url(repo_id: str, revision: str) -> str:
    return f"https://huggingface.co/{repo_id}/resolve/{revision}/{DIFFUSERS_WEIGHTS}"


SD_VAE_FT_MSE_SPEC = register(
    ModelSpec(
        name="sd-vae-ft-mse",
        code=2,
        latent_space="sd1",
        latent_channels=4,
        downscale=8,
        build=DiffusersBuild("kl", SD_VAE_FT_MSE_REPO, SD_VAE_FT_MSE_REVISION, scaling_factor=0.18215),
        files=(
            WeightFile(DIFFUSERS_WEIGHTS, SD_VAE_FT_MSE_SHA256, _hub_url(SD_VAE_FT_MSE_REPO, SD_VAE_FT_MSE_REVISION)),
        ),
        description="Stable Diffusion 1.x VAE, MSE fine-tune (AutoencoderKL, posterior mean x 0.18215)",
    )
)

TAESD_SPEC = register(
    ModelSpec(
        name="taesd",
        code=3,
        latent_space="sd1",
        latent_channels=4,
        downscale=8,
        build=DiffusersBuild("tiny", TAESD_REPO, TAESD_REVISION, scaling_factor=1.0),
        files=(WeightFile(DIFFUSERS_WEIGHTS, TAESD_SHA256, _hub_url(TAESD_REPO, TAESD_REVISION)),),
        description="Tiny AutoEncoder for Stable Diffusion 1.x/2.x (AutoencoderTiny); decodes sd-vae-ft-mse tokens",
    )
)

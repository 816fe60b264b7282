"""Stable Diffusion VAEs through diffusers: ``AutoencoderKL`` and ``AutoencoderTiny``.

Both work in SD's *scaled* latent space: KL latents are the posterior mean (deterministic)
times ``scaling_factor``; TAESD (``AutoencoderTiny``) produces that space directly
(its ``scaling_factor`` is 1.0). So a token made by either decodes with either.
Images go in and come out in [-1, 1]; the adapter converts from and to [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelUnavailable
from . import weights


class DiffusersVAE:
    """Adapter around a diffusers ``AutoencoderKL`` or ``AutoencoderTiny``."""

    downscale = 8

    def __init__(self, vae: torch.nn.Module) -> None:
        self.vae = vae
        self.latent_channels = int(vae.config.latent_channels)
        self.scaling_factor = float(vae.config.scaling_factor)
        self._is_kl = hasattr(vae, "quant_conv")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        encoded = self.vae.encode(images * 2 - 1)
        raw = encoded.latent_dist.mean if self._is_kl else encoded.latents
        return raw * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(latents / self.scaling_factor).sample + 1) / 2).clamp(0, 1)


def load_vae(kind: str, name: str, repo_id: str, revision: str, files: tuple[weights.WeightFile, ...]) -> torch.nn.Module:
    """A diffusers VAE from ``$EMMM_MODEL_DIR/<name>/`` (verified) or the hub at a pinned revision."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    cls = {"kl": AutoencoderKL, "tiny": AutoencoderTiny}[kind]
    local = weights.model_dir() / name if weights.model_dir() else None
    if local is not None and (local / "config.json").is_file():
        for file in files:
            weights.resolve(name, file)
        return cls.from_pretrained(Path(local))
    try:
        folder = _hub_snapshot(repo_id, revision)
    except Exception as exc:  # no network, hub refused, not cached
        raise ModelUnavailable(
            f"cannot load {name!r} from the model hub ({repo_id}@{revision[:12]}): {exc}. Put a diffusers "
            f"folder (config.json, diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/"
        ) from exc
    for file in files:
        weights_path = Path(folder) / file.name
        if weights.sha256_of(weights_path) != file.sha256:
            raise ModelUnavailable(f"{weights_path} does not match the pinned sha256 {file.sha256}")
    return cls.from_pretrained(folder)


def _hub_snapshot(repo_id: str, revision: str) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, revision=revision, allow_patterns=["config.json", "*.safetensors"])

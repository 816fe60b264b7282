"""Stable Diffusion VAEs through diffusers: ``AutoencoderKL`` and ``AutoencoderTiny``.

Both work in SD's *scaled* latent space, ``z = (mean - shift_factor) * scaling_factor``
(``shift_factor`` is unset, i.e. 0, for SD 1.x):

- ``AutoencoderKL``: the posterior *mean* (deterministic; never a sample), shifted and scaled
  by the config's factors (SD 1.x: ``scaling_factor`` 0.18215).
- ``AutoencoderTiny`` (TAESD): the encoder output already *is* the scaled latent (its config's
  ``scaling_factor`` is 1.0, ``shift_factor`` unset), so the same formula is the identity.

So a token made by either decodes with either.

Pixel conventions (checked against diffusers 0.42): both classes take images in [-1, 1] and
return images in [-1, 1]. ``EncoderTiny.forward`` maps [-1, 1] -> [0, 1] itself
(``x.add(1).div(2)``) before TAESD's layers, and ``DecoderTiny.forward`` soft-clamps the
latent (``tanh(x / 3) * 3``) and maps TAESD's [0, 1] output back to [-1, 1] (``x.mul(2).sub(1)``).
The adapter therefore converts [0, 1] <-> [-1, 1] identically for both classes.
``AutoencoderTiny.forward`` (not used here) additionally rounds latents to 8 bits.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ModelUnavailable
from . import weights

#: diffusers class per ``kind``.
KINDS = ("kl", "tiny")


def _classes():
    from diffusers import AutoencoderKL, AutoencoderTiny

    return {"kl": AutoencoderKL, "tiny": AutoencoderTiny}


class DiffusersVAE:
    """Adapter around a diffusers ``AutoencoderKL`` or ``AutoencoderTiny``."""

    downscale = 8

    def __init__(self, vae: torch.nn.Module) -> None:
        from diffusers import AutoencoderKL, AutoencoderTiny

        if isinstance(vae, AutoencoderKL):
            self._is_kl = True
        elif isinstance(vae, AutoencoderTiny):
            self._is_kl = False
        else:
            raise TypeError(f"expected a diffusers AutoencoderKL or AutoencoderTiny, got {type(vae).__name__}")
        self.vae = vae
        self.latent_channels = int(vae.config.latent_channels)
        self.scaling_factor = float(vae.config.scaling_factor)
        shift = getattr(vae.config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> scaled latents (deterministic)."""
        encoded = self.vae.encode(images * 2 - 1)
        raw = encoded.latent_dist.mean if self._is_kl else encoded.latents
        return (raw - self.shift_factor) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images in [0, 1] (differentiable)."""
        raw = latents / self.scaling_factor + self.shift_factor
        return ((self.vae.decode(raw).sample + 1) / 2).clamp(0, 1)


def load_vae(
    kind: str, name: str, repo_id: str, revision: str | None, files: tuple[weights.WeightFile, ...]
) -> torch.nn.Module:
    """A diffusers VAE from ``$EMMM_MODEL_DIR/<name>/`` or the hub at a pinned revision.

    Either way every pinned file is checked against its sha256 before the model is built;
    anything missing, unpinned or mismatched raises ModelUnavailable.
    """
    cls = _classes()[kind]
    base = weights.model_dir()
    local = base / name if base is not None else None
    if local is not None and (local / "config.json").is_file():
        return _from_folder(cls, name, local, files)
    if revision is None or not files or any(file.sha256 is None for file in files):
        raise ModelUnavailable(
            f"model {name!r} has no pinned hub revision and sha256 (pin missing), so it is not loaded "
            f"from the model hub ({repo_id}). Put a verified diffusers folder (config.json, "
            f"diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/ and pin its sha256"
        )
    if os.environ.get("EMMM_OFFLINE") == "1":
        raise ModelUnavailable(
            f"cannot load {name!r} from the model hub ({repo_id}@{revision[:12]}): EMMM_OFFLINE=1. Put a "
            f"diffusers folder (config.json, diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/"
        )
    try:
        folder = Path(_hub_snapshot(repo_id, revision, [file.name for file in files]))
    except Exception as exc:  # no network, hub refused, offline and not cached
        raise ModelUnavailable(
            f"cannot load {name!r} from the model hub ({repo_id}@{revision[:12]}): {exc}. Put a diffusers "
            f"folder (config.json, diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/"
        ) from exc
    return _from_folder(cls, name, folder, files)


def _from_folder(cls, name: str, folder: Path, files: tuple[weights.WeightFile, ...]) -> torch.nn.Module:
    if not files:
        raise ModelUnavailable(f"model {name!r} pins no weight files; refusing unverified weights in {folder}")
    for file in files:
        path = folder / file.name
        if not path.is_file():
            raise ModelUnavailable(f"weights for model {name!r} are missing: {path} does not exist")
        if file.sha256 is None:
            raise ModelUnavailable(
                f"model {name!r} has no pinned sha256 for {file.name} (pin missing); refusing unverified weights"
            )
        actual = weights.sha256_of(path)
        if actual != file.sha256:
            raise ModelUnavailable(
                f"{path} has sha256 {actual}, expected {file.sha256}: wrong or corrupted weights"
            )
    try:
        return cls.from_pretrained(folder, use_safetensors=True)
    except Exception as exc:  # bad config.json, missing keys, ...
        raise ModelUnavailable(f"cannot load model {name!r} from {folder}: {exc}") from exc


def _hub_snapshot(repo_id: str, revision: str, names: list[str]) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, revision=revision, allow_patterns=["config.json", *names])

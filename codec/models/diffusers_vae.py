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

from .. import environment
from ..errors import ModelUnavailable
from . import weights

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
    """A diffusers VAE from local files only: ``$EMMM_MODEL_DIR/<name>/``, else the hub cache at
    the pinned revision (filled by ``fetch_vae``). Never downloads.

    Every pinned file is checked against its sha256 before the model is built; anything
    missing, unpinned or mismatched raises ModelUnavailable.
    """
    folder = local_folder(name, repo_id, revision, files)
    if folder is None:
        raise ModelUnavailable(
            f"model {name!r} is not fetched: no $EMMM_MODEL_DIR/{name}/config.json and no hub cache "
            f"of {repo_id}@{(revision or 'unpinned')[:12]}; run python -m codec fetch {name}"
        )
    return _from_folder(_classes()[kind], name, folder, files)


def local_folder(name: str, repo_id: str, revision: str | None, files: tuple[weights.WeightFile, ...]) -> Path | None:
    """The local folder holding the model (unverified), or None. Touches no network."""
    base = weights.model_dir()
    if base is not None and (base / name / "config.json").is_file():
        return base / name
    if revision is None or not files:
        return None
    try:
        return Path(_hub_snapshot(repo_id, revision, [file.name for file in files], local_only=True))
    except Exception:  # not in the hub cache (huggingface_hub raises several types)
        return None


def fetch_vae(
    kind: str, name: str, repo_id: str, revision: str | None, files: tuple[weights.WeightFile, ...]
) -> torch.nn.Module:
    """Like ``load_vae``, but downloads the pinned revision from the model hub when it is not
    local (the explicit ``python -m codec fetch`` path). Messages name the hub origin."""
    base = weights.model_dir()
    if base is not None and (base / name / "config.json").is_file():
        return _from_folder(_classes()[kind], name, base / name, files)
    if revision is None or not files or any(file.sha256 is None for file in files):
        raise ModelUnavailable(
            f"model {name!r} has no pinned hub revision and sha256 (pin missing), so it is not loaded "
            f"from the model hub ({repo_id}). Put a verified diffusers folder (config.json, "
            f"diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/ and pin its sha256"
        )
    if environment.switch("EMMM_OFFLINE"):
        raise ModelUnavailable(
            f"cannot load {name!r} from the model hub ({repo_id}@{revision[:12]}): "
            f"EMMM_OFFLINE={os.environ['EMMM_OFFLINE'].strip()}. Put a "
            f"diffusers folder (config.json, diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/"
        )
    try:
        folder = Path(_hub_snapshot(repo_id, revision, [file.name for file in files]))
    except Exception as exc:  # no network, hub refused, offline and not cached
        raise ModelUnavailable(
            f"cannot load {name!r} from the model hub ({repo_id}@{revision[:12]}): {exc}. Put a diffusers "
            f"folder (config.json, diffusion_pytorch_model.safetensors) at $EMMM_MODEL_DIR/{name}/"
        ) from exc
    return _from_folder(_classes()[kind], name, folder, files)


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


def _hub_snapshot(repo_id: str, revision: str, names: list[str], *, local_only: bool = False) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(
        repo_id, revision=revision, allow_patterns=["config.json", *names], local_files_only=local_only
    )

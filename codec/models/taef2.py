"""TAEF2: the tiny autoencoder for the FLUX.2 latent space (32 channels, 8x downscale).

The layout follows the published TAESD design so that the upstream ``state_dict``s load
with ``strict=True``: every module sits at the index its key names.
"""

from __future__ import annotations

import torch
from torch import nn

LATENT_CHANNELS = 32


def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class SoftClamp(nn.Module):
    """``tanh(x / 3) * 3``: keeps latents inside the decoder's trained range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block, optionally preceded by a pooling branch (``x = x + pool(x)``)."""

    def __init__(self, n_in: int, n_out: int, *, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out)
        )
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        if pool:
            self.pool = nn.Sequential(
                nn.Conv2d(n_out, 256, 1, bias=False),
                nn.GroupNorm(4, 256),
                nn.ReLU(),
                nn.Conv2d(256, n_out, 1, bias=False),
            )
        else:
            self.pool = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(latent_channels: int = LATENT_CHANNELS) -> nn.Sequential:
    """RGB in [0, 1] (H, W multiples of 8) -> latents (latent_channels, H/8, W/8)."""
    return nn.Sequential(
        _conv(3, 64), Block(64, 64),
        _conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        _conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        _conv(64, 64, stride=2, bias=False),
        Block(64, 64, pool=True), Block(64, 64, pool=True), Block(64, 64, pool=True),
        _conv(64, latent_channels),
    )  # fmt: skip


def build_decoder(latent_channels: int = LATENT_CHANNELS) -> nn.Sequential:
    """Latents -> RGB roughly in [0, 1] at 8x the latent resolution."""
    return nn.Sequential(
        SoftClamp(), _conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64, pool=True), Block(64, 64, pool=True), Block(64, 64, pool=True),
        nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64),
        nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64),
        nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        Block(64, 64), _conv(64, 3),
    )  # fmt: skip


class TAEF2:
    """TAEF2 in the codec's conventions: latents are the raw encoder output."""

    latent_channels = LATENT_CHANNELS
    downscale = 8

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        # channels-last: oneDNN's convolutions run 20-45% faster in it on this CPU, forward and
        # backward (docs/benchmarks.md); the arithmetic differs only by float rounding
        self.encoder = encoder.to(memory_format=torch.channels_last)
        self.decoder = decoder.to(memory_format=torch.channels_last)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images.contiguous(memory_format=torch.channels_last))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents.contiguous(memory_format=torch.channels_last)).clamp(0, 1)

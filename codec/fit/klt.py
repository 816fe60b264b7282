"""Fit the v2 channel transform for TAEF2: a decoder-sensitivity-whitened KLT.

    python -m codec.fit.klt --out codec/models/taef2_klt.npz

Training images: the colour photographs scikit-image ships (``skimage.data``), plus three
grey textures as RGB; never Kodak (the benchmark). Each is resized to long side 316.

1. Sensitivity ``w_c``: output MSE per unit of Gaussian noise variance added to latent
   channel c alone (noise sigma 0.1, mean over images): the diagonal of the decoder's
   linearised J^T J.
2. Whitening ``s_c = sqrt(w_c)``: in ``y = s * z`` a unit of noise variance in any channel
   costs about one unit of output MSE, so one uniform step suits every channel.
3. KLT: eigenvectors of the covariance of ``y`` (all positions of all images), by
   decreasing variance. The codec quantises ``u = V^T (s * z)`` and decodes
   ``z = (V u) / s``.

The result (``scale`` (32,), ``rotation`` (32, 32), float32) is pinned by sha256 in the model
spec; refitting means a new payload kind (tokens must decode the same forever).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import torch
from PIL import Image

TRAINING = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
            "colorwheel", "camera", "brick", "gravel")  # fmt: skip


def training_images(size: int = 316) -> list[Image.Image]:
    import skimage.data

    out = []
    for name in TRAINING:
        array = getattr(skimage.data, name)()
        image = Image.fromarray(array).convert("RGB")
        scale = size / max(image.size)
        out.append(image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS))
    return out


def fit(images: list[Image.Image], noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(scale, rotation) as described in the module docstring."""
    from codec.core import image_to_tensor
    from codec.models import registry

    net = registry.load("taef2")
    rng = torch.Generator().manual_seed(seed)
    sens, latents = np.zeros(net.latent_channels), []
    with torch.inference_mode():
        for image in images:
            x = image_to_tensor(image, net.downscale)
            z = net.encode(x)
            base = net.decode(z)
            for c in range(net.latent_channels):
                bumped = z.clone()
                bumped[:, c] += noise * torch.randn(bumped[:, c].shape, generator=rng)
                sens[c] += torch.mean((net.decode(bumped) - base) ** 2).item() / noise**2
            latents.append(z[0].reshape(net.latent_channels, -1).numpy().astype(np.float64))
    scale = np.sqrt(sens / len(images))
    y = np.concatenate(latents, axis=1) * scale[:, None]
    values, vectors = np.linalg.eigh(np.cov(y))
    rotation = vectors[:, np.argsort(values)[::-1]]
    rotation *= np.where(rotation[np.abs(rotation).argmax(axis=0), range(rotation.shape[1])] < 0, -1, 1)
    return scale.astype(np.float32), rotation.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale, rotation = fit(training_images())
    buf = io.BytesIO()
    np.savez(buf, scale=scale, rotation=rotation)
    with open(args.out, "wb") as fh:
        fh.write(buf.getvalue())
    import hashlib

    print(args.out, hashlib.sha256(buf.getvalue()).hexdigest())
    print("scale", np.round(scale, 3).tolist())


if __name__ == "__main__":
    main()

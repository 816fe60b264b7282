"""Fit the ``klt-ctx`` context model for TAEF2 (codec/klt_ctx.py).

    python -m codec.fit.ctx --out codec/models/taef2_ctx.npz

Training data: the scikit-image photographs of codec/fit/klt.py (never Kodak), at long side
316 and 224, each through the v2 encoder's refinement (codec/encode_v2.py), quantised at
several steps of the v2 ladder so that the model holds across steps.

1. Energy weights ``h_c``: 16 / mean |q_c| (clipped to 1..255), so every channel adds
   comparable amounts to a window's energy.
2. Mean weights: ridge least squares of q on (1, neighbours), per channel, rounded to Q12.
3. Scale weights: least squares of |q - mu| on (1, |neighbours|, energy) with the integer mu,
   per channel, rounded to Q12; thresholds: SCALES quantiles of the integer activity.
4. Tables: per scale index, the residual histogram mixed with a discrete Laplacian of the
   same mean |r| (weight LAPLACE_MIX, for the tails the training data never shows), as
   integers summing to about 2**20, every entry at least 1.

The result is pinned by sha256 in the model spec (``ModelSpec.ctx``); refitting means a new
payload kind (tokens must decode the same forever). The pinned file was fitted when the
refinement used Adam (before commit "v2 refinement: gradient descent with Barzilai-Borwein
steps"); the same command now refines differently and so writes a different file.
"""

from __future__ import annotations

import argparse
import hashlib
import io

import numpy as np
import torch

from codec import klt_ctx

STEPS = (48, 64, 92, 128)
SIZES = (316, 224)
SCALES = 32
LAPLACE_MIX = 0.03
RIDGE = 1.0


def training_symbols() -> list[np.ndarray]:
    """Quantised coefficients (C, H, W) of every training image at every step in STEPS."""
    from codec import core, encode_v2
    from codec.fit.klt import training_images
    from codec.models import registry

    net = registry.load("taef2")
    transform = core.transform_for(registry.get_spec("taef2"))
    out = []
    for size in SIZES:
        for image in training_images(size):
            x = core.image_to_tensor(image, net.downscale)
            coeffs, _ = encode_v2.refine(net, x, image.size, transform)
            out += [klt_ctx.quantise(coeffs, units / klt_ctx.STEP_UNIT) for units in STEPS]
    return out


def _q12(weights: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(weights * (1 << klt_ctx.SHIFT)), -(1 << 24), 1 << 24).astype(np.int64)


def _ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.solve(x.T @ x + RIDGE * np.eye(x.shape[1]), x.T @ y)


def fit(symbols: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The model's integer arrays (module docstring)."""
    channels = symbols[0].shape[0]
    k = len(klt_ctx.NEIGHBOURS)
    mean_abs = np.mean([np.abs(q).mean(axis=(1, 2)) for q in symbols], axis=0)
    energy = np.clip(np.rint(16 / np.maximum(mean_abs, 1 / 16)), 1, 255).astype(np.int64)
    blank = klt_ctx.ContextModel(np.zeros((channels, 1 + k), np.int64), np.zeros((channels, 2 + k), np.int64),
                                 energy, np.zeros(0, np.int64), np.ones((1, 1), np.int64), np.ones(1, np.int64))  # fmt: skip
    rows = [klt_ctx.contexts(blank, q) for q in symbols]
    channel = np.concatenate([r[0].channel for r in rows])
    n = np.concatenate([r[1].astype(np.int16) for r in rows])  # |q| <= 255: 16 bits hold it
    acc = np.concatenate([r[2] for r in rows])
    q = np.concatenate([r[3] for r in rows])
    del rows
    mean, scale = np.zeros((channels, 1 + k), np.int64), np.zeros((channels, 2 + k), np.int64)
    residual, activity = np.zeros(q.size, np.int64), np.zeros(q.size, np.int64)
    for c in range(channels):
        sel = np.flatnonzero(channel == c)
        nc = n[sel].astype(np.int64)
        mean[c] = _q12(_ridge(np.column_stack([np.ones(sel.size), nc]).astype(np.float64), q[sel].astype(np.float64)))
        model = klt_ctx.ContextModel(mean, scale, energy, blank.thresholds, blank.tables, blank.escape)
        mu, _ = klt_ctx.predict(model, channel[sel], nc, acc[sel])
        residual[sel] = q[sel] - mu
        features = np.column_stack([np.ones(sel.size), np.abs(nc), acc[sel]]).astype(np.float64)
        scale[c] = _q12(_ridge(features, np.abs(residual[sel]).astype(np.float64)))
        activity[sel] = scale[c, 0] + np.abs(nc) @ scale[c, 1:-1] + scale[c, -1] * acc[sel]
    thresholds = np.unique(np.quantile(activity, np.linspace(0, 1, SCALES + 1)[1:-1]).astype(np.int64))
    index = np.zeros(q.size, np.int64)
    for c in range(channels):
        sel = np.flatnonzero(channel == c)
        index[sel] = klt_ctx.predict(klt_ctx.ContextModel(mean, scale, energy, thresholds, blank.tables, blank.escape), channel[sel], n[sel].astype(np.int64), acc[sel])[1]
    tables = np.zeros(((len(thresholds) + 1) << klt_ctx.FRACTION_BITS, klt_ctx.ESCAPE + 1), np.int64)
    window = np.arange(-klt_ctx.WINDOW, klt_ctx.WINDOW + 1)
    for i in range(len(tables)):
        r = residual[index == i]
        hist = np.bincount(np.clip(r, -klt_ctx.WINDOW - 1, klt_ctx.WINDOW + 1) + klt_ctx.WINDOW + 1, minlength=klt_ctx.ESCAPE + 2)
        hist = np.r_[hist[1:-1], hist[0] + hist[-1]].astype(np.float64)  # window, then escapes
        b = max(np.abs(r).mean() if r.size else 1.0, 0.05)
        laplace = np.exp(-np.abs(np.r_[window, klt_ctx.WINDOW + 1]) / b)
        laplace[-1] = 2 * np.exp(-(klt_ctx.WINDOW + 1) / b) / (1 - np.exp(-1 / b))  # both tails
        p = (1 - LAPLACE_MIX) * hist / max(hist.sum(), 1) + LAPLACE_MIX * laplace / laplace.sum()
        tables[i] = np.maximum(1, np.rint(p * (1 << 20))).astype(np.int64)
    support = np.arange(-klt_ctx.RADIUS, klt_ctx.RADIUS + 1)
    far = residual[np.abs(residual) > klt_ctx.WINDOW]
    b = max(float(np.abs(far).mean()) - klt_ctx.WINDOW, 1.0) if far.size else 8.0
    escape = np.where(np.abs(support) > klt_ctx.WINDOW, np.exp(-(np.abs(support) - klt_ctx.WINDOW) / b), 0)
    escape = np.maximum(1, np.rint(escape / escape.sum() * (1 << 20))).astype(np.int64)
    return {"mean": mean, "scale": scale, "energy": energy, "thresholds": thresholds, "tables": tables, "escape": escape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    arrays = fit(training_symbols())
    buf = io.BytesIO()
    np.savez(buf, **{k: v.astype(np.int32) for k, v in arrays.items()})
    with open(args.out, "wb") as fh:
        fh.write(buf.getvalue())
    print(args.out, hashlib.sha256(buf.getvalue()).hexdigest())


if __name__ == "__main__":
    main()

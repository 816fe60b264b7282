"""Fixtures for the similarity tests. Nothing here (or in these tests) imports Django or
needs a database: the root conftest's autouse Django fixtures are overridden with no-ops.

- ``photos``: real photographs shipped by scikit-image (``skimage.data``), as RGB PIL images.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("EMMM_TORCH_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["EMMM_TORCH_THREADS"]))


@pytest.fixture(autouse=True)
def isolated_cache():
    """No-op override: no Django cache here."""
    yield


@pytest.fixture(autouse=True)
def fs_broker():
    """No-op override: no Celery here."""
    yield


@pytest.fixture(scope="session")
def photos():
    """name -> RGB PIL image, for photographs shipped inside the scikit-image package."""
    import skimage.data
    from PIL import Image

    def load(name: str) -> Image.Image:
        array = getattr(skimage.data, name)()
        if isinstance(array, tuple):  # stereo_motorcycle returns (left, right, disparity)
            array = array[0]
        return Image.fromarray(array).convert("RGB")

    return {name: load(name) for name in ("chelsea", "coffee", "rocket", "camera", "stereo_motorcycle", "astronaut")}

"""Fixtures for the similarity tests. Nothing here (or in these tests) imports Django or
needs a database: the root conftest's autouse Django fixtures are overridden with no-ops.

- ``photos``: real photographs shipped by scikit-image (``skimage.data``), as RGB PIL images.
"""

from __future__ import annotations

import pytest

from tests.framework_free import fs_broker, isolated_cache, set_torch_threads  # noqa: F401 - fixtures

set_torch_threads()


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

"""Fixtures for the codec tests. Nothing here (or in these tests) imports Django.

- The root conftest's autouse ``isolated_cache`` and ``fs_broker`` fixtures configure
  Django's cache and Celery; they are overridden below with no-ops of the same name, so
  ``pytest tests/codec`` never touches the site.
- ``taef2``: the real TAEF2 model from ``$EMMM_MODEL_DIR``. Tests that use it are skipped
  when the weights are absent on a developer machine, and FAIL when ``CI`` is set
  (CI must run them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.framework_free import fs_broker, isolated_cache, set_torch_threads  # noqa: F401 - fixtures

set_torch_threads()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """``$EMMM_MODEL_DIR`` holding the pinned TAEF2 files (skip locally, fail in CI)."""
    from codec.models import TAEF2_SPEC

    value = os.environ.get("EMMM_MODEL_DIR")
    missing = [f.name for f in TAEF2_SPEC.files if not value or not (Path(value) / "taef2" / f.name).is_file()]
    if missing:
        msg = f"TAEF2 weights not found ({', '.join(missing)}): set EMMM_MODEL_DIR (e.g. ../shared/models)"
        if _in_ci():
            pytest.fail(msg + " -- CI must run the model tests")
        pytest.skip(msg)
    return Path(value)


@pytest.fixture
def taef2(weights_dir):
    """The real TAEF2 model, loaded from the pinned weights (once per process)."""
    import codec

    return codec.load_model("taef2")

"""For test packages that never touch Django (``tests/codec``, ``tests/similarity``).

Their conftests import these no-op fixtures, which override the root conftest's autouse
``isolated_cache`` and ``fs_broker`` (Django's cache and Celery) under the same names, and
call ``set_torch_threads`` once.
"""
from __future__ import annotations

import os

import pytest


def set_torch_threads() -> None:
    """torch uses ``$EMMM_TORCH_THREADS`` threads (2 unless set)."""
    import torch

    os.environ.setdefault("EMMM_TORCH_THREADS", "2")
    torch.set_num_threads(int(os.environ["EMMM_TORCH_THREADS"]))


@pytest.fixture(autouse=True)
def isolated_cache():
    """No-op override: no Django cache here."""
    yield


@pytest.fixture(autouse=True)
def fs_broker():
    """No-op override: no Celery here."""
    yield

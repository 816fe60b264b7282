"""Helpers for the similar-pictures tests (site and API): synthetic vectors, a visibility world.

Visibility tests store synthetic vectors (no model run): every picture in ``world`` gets the
SAME vector, so any picture a scope let through would come back with score 1.0.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from imagehost import similarity as sim
from imagehost.models import Visibility
from imagehost.services import library, similar, tokens

DIM = sim.get_spec(sim.DEFAULT_MODEL).dim


def unit(seed: int) -> np.ndarray:
    """A deterministic random unit vector."""
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def store_vector(picture, vector: np.ndarray):
    """Store ``vector`` as the picture's embedding (the same path as the encode job's hook)."""
    return similar.store_embedding(picture, sim.Embedding(sim.DEFAULT_MODEL, vector))


@pytest.fixture(autouse=True)
def fresh_index():
    """Every test builds this process's index from its own database."""
    similar.reset_live_index()
    yield
    similar.reset_live_index()


def build_world(make_picture, alice, bob) -> SimpleNamespace:
    """Pictures of alice, bob and nobody, in every visibility; all with one vector ``w.v``."""
    w = SimpleNamespace(v=unit(1))
    albums = {}
    for user in (alice, bob):
        for vis in (Visibility.PRIVATE, Visibility.UNLISTED, Visibility.PUBLIC):
            albums[user.username, vis] = library.create_album(user, f"{user.username}-{vis}", vis)
    for user in (alice, bob):
        name = user.username
        setattr(w, f"{name}_loose", make_picture(user, title=f"{name} loose"))
        for vis in (Visibility.PRIVATE, Visibility.UNLISTED, Visibility.PUBLIC):
            setattr(w, f"{name}_{vis}", make_picture(user, album=albums[name, vis], title=f"{name} {vis}"))
    w.anonymous = make_picture(None, title="anonymous")
    w.blocked = make_picture(bob, album=albums[bob.username, Visibility.PUBLIC], title="blocked")
    tokens.block_token(w.blocked.token_sha256)  # a fake token: blocked by its identity
    w.albums = albums
    for pic in [p for p in vars(w).values() if hasattr(p, "token")]:
        store_vector(pic, w.v)
    return w


def ids_of(pictures) -> set[int]:
    return {p.pk for p in pictures}

"""Site-test helpers: real tokens from the real codec, encoded once per session."""
from __future__ import annotations

import io

import pytest


def _image(w: int, h: int, seed: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), ((seed * 53) % 256, 120, 200))
    ImageDraw.Draw(img).ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=(250, 220, (seed * 31) % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def token_pool():
    """Factory ``token_pool(i)`` -> a real codec.EncodeResult for small test image number i."""
    import codec

    done: dict[int, object] = {}

    def get(i: int = 0):
        if i not in done:
            done[i] = codec.encode(_image(64, 48, i))
        return done[i]

    return get


@pytest.fixture
def real_token(token_pool) -> str:
    return token_pool(0).token


@pytest.fixture
def make_picture(token_pool):
    """Factory: a Picture row for a real token (``i`` picks a different image)."""
    from imagehost.models import Picture

    def make(owner=None, i: int = 0, **kw):
        res = token_pool(i)
        return Picture.objects.create(
            owner=owner, token=res.token, model_name=res.model, width=res.width, height=res.height, **kw
        )

    return make


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "correct-horse-battery")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "correct-horse-battery")

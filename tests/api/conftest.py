"""Fixtures for the REST API tests: users, API-token clients, albums and pictures."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from imagehost.services import library
from imagehost.api.models import ApiToken
from imagehost.models import Picture, Visibility

FAKE_TOKEN = "A" * 40  # a well-formed token for rows that are never decoded


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", password="pw-owner-123")


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user("other", password="pw-other-123")


def token_client(user) -> APIClient:
    """A client authenticated with a fresh API token of ``user`` (as programs do)."""
    _, raw = ApiToken.issue(user, "tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_token = raw  # type: ignore[attr-defined]
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def owner_client(owner) -> APIClient:
    return token_client(owner)


@pytest.fixture
def other_client(other) -> APIClient:
    return token_client(other)


@pytest.fixture
def clients(anon_client, owner_client, other_client) -> dict[str, APIClient]:
    return {"anon": anon_client, "owner": owner_client, "other": other_client}


@pytest.fixture
def make_album(owner):
    def make(visibility: str = Visibility.PRIVATE, user=None, title: str = "Holiday"):
        return library.create_album(user or owner, title, visibility)

    return make


@pytest.fixture
def make_picture(owner):
    """A Picture row made directly (no encoding); tokens differ per picture."""
    counter = iter(range(1, 10_000))

    def make(user=None, album=None, title: str = "pic", token: str | None = None) -> Picture:
        return Picture.objects.create(
            owner=user if user is not None else owner,
            album=album,
            title=title,
            token=token or f"{FAKE_TOKEN}{next(counter)}",
            model_name="taef2",
            width=64,
            height=48,
        )

    return make


@pytest.fixture(scope="session")
def real_token() -> tuple[str, int, int]:
    """A real token (real codec, TAEF2 weights) of a 96x64 Pillow image, encoded once per session."""
    import io

    from PIL import Image, ImageDraw

    import codec

    img = Image.new("RGB", (96, 64), (30, 120, 200))
    ImageDraw.Draw(img).ellipse([20, 10, 70, 50], fill=(250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    result = codec.encode(buf.getvalue())
    return result.token, result.width, result.height

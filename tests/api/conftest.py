"""REST API fixtures: users (``owner``, ``other``), API-token clients, albums.

Tokens and pictures (``real_token``, ``make_picture``, ``FAKE_TOKEN``): ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from imagehost.services import library
from imagehost.api.models import ApiToken
from imagehost.models import Visibility


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

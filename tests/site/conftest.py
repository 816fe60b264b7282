"""Site-test fixtures: users (``user``, ``other_user``). Tokens, pictures, images: ``tests/conftest.py``."""
from __future__ import annotations

import pytest


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "correct-horse-battery")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "correct-horse-battery")

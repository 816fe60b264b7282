"""Absolute URLs of site resources, as the API hands them out."""

from __future__ import annotations

from django.urls import reverse
from rest_framework.request import Request


def absolute(request: Request, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


def token_url(request: Request, token: str) -> str:
    """The URL that carries the token and decodes to the image (``/i/<token>``)."""
    return absolute(request, "image", token)


def short_url(request: Request, slug: str) -> str:
    """The short URL that answers with the image itself (``/s/<slug>``)."""
    return absolute(request, "short_image", slug)


def token_url_prefix(request: Request) -> str:
    """Everything of a token URL before the token (``https://host/i/``): what a budget must leave room for."""
    return token_url(request, "x")[:-1]

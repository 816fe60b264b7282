"""ShareX custom-uploader (``.sxcu``) files for a user's API token."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.http.request import split_domain_port
from django.urls import reverse

SXCU_VERSION = "16.1.0"


def sharex_config(request: HttpRequest, raw_token: str | None, *, album: str | None = None) -> dict[str, Any]:
    """The ``.sxcu`` document: multipart upload to ``/api/v1/images``.

    The upload answers at once (it never waits for the encoding, which can take minutes): ShareX
    copies ``short_url``, a link reserved before encoding that shows "encoding…" until the
    picture exists, and keeps ``deletion_url``, the upload's secret deletion link.
    ``raw_token`` may be None, for a file the user completes by hand (the raw value of an
    existing token cannot be shown again).
    """
    url = request.build_absolute_uri(reverse("api:image-upload"))
    args: dict[str, str] = {}
    if album:
        args["album"] = album
    host = split_domain_port(request.get_host())[0]  # "[::1]:8000" -> "[::1]"
    return {
        "Version": SXCU_VERSION,
        "Name": f"emmmbedding ({host})",
        "DestinationType": "ImageUploader",
        "RequestMethod": "POST",
        "RequestURL": url,
        "Parameters": args,
        "Headers": {"Authorization": f"Bearer {raw_token or 'PASTE-YOUR-API-TOKEN-HERE'}"},
        "Body": "MultipartFormData",
        "FileFormName": "file",
        "URL": "{json:short_url}",
        "DeletionURL": "{json:deletion_url}",
        "ErrorMessage": "{json:error.message}",
    }


def sxcu_bytes(config: dict[str, Any]) -> bytes:
    """Serialise a ``.sxcu`` document."""
    return json.dumps(config, indent=2).encode("utf-8")

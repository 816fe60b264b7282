"""POST /api/v1/decode and /api/v1/inspect with real tokens (real codec, TAEF2 weights)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagehost.services import tokens

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fmt, content_type, pil", [("webp", "image/webp", "WEBP"), ("png", "image/png", "PNG"), ("jpg", "image/jpeg", "JPEG")])
def test_decode_returns_the_image(anon_client, real_encoded, fmt, content_type, pil):
    token, width, height = real_encoded.token, real_encoded.width, real_encoded.height
    r = anon_client.post("/api/v1/decode", {"token": token, "format": fmt}, format="json", HTTP_ACCEPT="image/*")
    assert r.status_code == 200, r.content[:300]
    assert r["Content-Type"] == content_type
    image = Image.open(io.BytesIO(r.content))
    assert image.format == pil
    assert image.size == (width, height)


def test_decode_shrinks_to_width(anon_client, real_encoded):
    token, width, height = real_encoded.token, real_encoded.width, real_encoded.height
    r = anon_client.post("/api/v1/decode", {"token": token, "format": "png", "width": 48}, format="json")
    assert Image.open(io.BytesIO(r.content)).size == (48, round(height * 48 / width))


@pytest.mark.parametrize(
    "body, status",
    [
        ({"token": "not a token!"}, 400),
        ({"token": "AAAAAAAAAAAAAAAAAAAAAAAA"}, 400),
        ({}, 400),
        ({"token": "AAAA", "format": "gif"}, 400),
    ],
)
def test_decode_rejects_bad_tokens(anon_client, body, status):
    r = anon_client.post("/api/v1/decode", body, format="json", HTTP_ACCEPT="image/webp")
    assert r.status_code == status
    assert r["Content-Type"] == "application/json"
    assert r.json()["error"]["message"]


def test_too_long_token_is_413(anon_client, settings):
    settings.EMMM_MAX_TOKEN_CHARS = 100
    r = anon_client.post("/api/v1/decode", {"token": "A" * 101}, format="json")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "token_too_long"


def test_blocked_token_is_410(anon_client, real_token):
    tokens.block_token(real_token, reason="test")
    assert anon_client.post("/api/v1/decode", {"token": real_token}, format="json").status_code == 410
    r = anon_client.post("/api/v1/inspect", {"token": real_token}, format="json")
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "blocked"


def test_inspect_reads_the_header(anon_client, real_encoded):
    token, width, height = real_encoded.token, real_encoded.width, real_encoded.height
    r = anon_client.post("/api/v1/inspect", {"token": token}, format="json")
    assert r.status_code == 200
    info = r.json()
    assert (info["model"], info["width"], info["height"], info["chars"]) == ("taef2", width, height, len(token))
    assert info["latent_shape"][0] == 32


def test_inspect_rejects_garbage(anon_client):
    r = anon_client.post("/api/v1/inspect", {"token": "AAAAAAAAAAAAAAAA"}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_token"

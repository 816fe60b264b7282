"""Issue 8.4: a web request never downloads weights; unavailable models are refused plainly."""
from __future__ import annotations

import socket

import numpy as np
import pytest
from rest_framework.test import APIClient

import codec
from codec import packing
from codec import token as token_format

pytestmark = pytest.mark.django_db


def taesd_token() -> str:
    """A well-formed token naming ``taesd`` (4 latent channels), made without any model."""
    latent = np.random.default_rng(0).normal(0, 1, (4, 2, 2)).astype(np.float32)
    payload = packing.pack_webp8(latent)
    header = token_format.Header(1, 3, 16, 16, 16, 16, 4, 2, 2, packing.WEBP8, len(payload))
    return token_format.to_text(token_format.pack(header, payload))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (a download would need one)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access from a web request: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_token_of_an_unavailable_model_is_a_plain_503(client, no_network):
    token = taesd_token()
    assert codec.inspect(token).model == "taesd" and not codec.model_available("taesd")
    for url in (f"/i/{token}", f"/i/{token}.png", f"/image?q={token}"):
        r = client.get(url)
        assert r.status_code == 503, url
        assert b"taesd" in r.content
        assert b"huggingface" not in r.content.lower() and b"http" not in r.content.split(b"<body")[-1].lower()
    r = APIClient().post("/api/v1/decode", {"token": token}, format="json")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "taesd" in error["message"] and "huggingface" not in error["message"].lower()


def test_the_503_names_the_model_but_no_server_path_and_says_when_to_retry(client, no_network, monkeypatch):
    """The codec's reason reached every visitor: for weights in a model folder it names files
    ("/srv/models/taesd/….safetensors has sha256 …, expected …")."""
    token = taesd_token()

    def unavailable(*args, **kwargs):
        raise codec.ModelUnavailable("/srv/secret/models/taesd/diffusion_pytorch_model.safetensors does not exist")

    monkeypatch.setattr(codec, "decode", unavailable)
    for r in (client.get(f"/i/{token}"), APIClient().post("/api/v1/decode", {"token": token}, format="json")):
        assert r.status_code == 503 and b"taesd" in r.content
        assert b"/srv/secret" not in r.content and b"safetensors" not in r.content
        assert int(r["Retry-After"]) > 0


@pytest.mark.parametrize("model", ["taesd", "sd-vae-ft-mse"])
def test_upload_naming_an_unavailable_model_is_refused_at_submit(png_bytes, model, no_network):
    """The API is the surface that names models (the site's form always uses the default)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from imagehost.models import EncodeJob

    api = APIClient()
    r = api.post(f"/api/v1/images?model={model}", png_bytes(), content_type="image/png")
    assert r.status_code == 400, r.content
    assert model in r.json()["error"]["message"]
    r = api.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "model": model})
    assert r.status_code == 400
    assert not EncodeJob.objects.exists()
    assert api.post("/api/v1/images?model=taef2", png_bytes(), content_type="image/png").status_code == 202

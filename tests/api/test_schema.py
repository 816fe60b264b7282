"""The OpenAPI schema (/api/schema/) is complete; the docs page (/api/docs/) works offline."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

EXPECTED = {
    "/api/v1/images": {"post"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/albums": {"get", "post"},
    "/api/v1/albums/{slug}": {"get", "patch", "delete"},
    "/api/v1/albums/{slug}/pictures": {"get"},
    "/api/v1/pictures": {"get"},
    "/api/v1/pictures/{id}": {"get", "patch", "delete"},
    "/api/v1/pictures/{id}/similar": {"get"},
    "/api/v1/search": {"post"},
    "/api/v1/links": {"get", "post"},
    "/api/v1/links/{slug}": {"delete"},
    "/api/v1/decode": {"post"},
    "/api/v1/inspect": {"post"},
}


@pytest.fixture
def schema(client) -> dict:
    r = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    return r.json()


def test_every_endpoint_is_documented_with_errors(schema):
    paths = {p: {m for m in ops if m in {"get", "post", "patch", "delete", "put"}} for p, ops in schema["paths"].items()}
    assert paths == EXPECTED
    for path, ops in schema["paths"].items():
        for method in EXPECTED[path]:
            op = ops[method]
            codes = set(op["responses"])
            assert codes & {"200", "201", "202", "204"}, (path, method)
            errors = {c for c in codes if c.startswith(("4", "5"))}
            assert errors, (path, method)
            for code in errors:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, code)
            if method in ("post", "patch"):
                assert "requestBody" in op, (path, method)
            if method == "get" and "{" not in path.rsplit("/", 1)[-1] and path != "/api/v1/albums/{slug}":
                params = {p["name"] for p in op.get("parameters", [])}
                assert {"page", "page_size"} <= params, path  # every list is paginated


def test_security_schemes_and_upload_bodies(schema):
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    upload = schema["paths"]["/api/v1/images"]["post"]
    assert {"multipart/form-data", "image/*", "application/octet-stream"} <= set(upload["requestBody"]["content"])
    assert {"201", "202", "413", "415", "429"} <= set(upload["responses"])
    decode = schema["paths"]["/api/v1/decode"]["post"]["responses"]["200"]["content"]
    assert {"image/webp", "image/png", "image/jpeg", "image/avif"} <= set(decode)


def test_docs_page_uses_local_assets_only(client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    script = client.get("/api/docs/?script=")  # Swagger UI's set-up script is a file (CSP: no inline code)
    assert script.status_code == 200
    assert "/api/schema/" in html + script.content.decode()
    assert not re.search(r"(src|href)=\"https?://", html)  # no CDN
    assets = re.findall(r"/static/(drf_spectacular_sidecar/[^\"']+)", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert finders.find(asset), asset


def test_outages_and_chunked_bodies_are_documented_everywhere(schema):
    """Any operation answers 503 + Retry-After when the database or the cache is down, and any
    with a body 411 to a chunked one; the schema listed 503 on four operations and 411 on none."""
    for path, ops in schema["paths"].items():
        for method in EXPECTED[path]:
            responses = ops[method]["responses"]
            assert "503" in responses, (path, method)
            assert ("411" in responses) == ("requestBody" in ops[method]), (path, method)


def test_no_schema_description_is_a_code_comment(schema):
    """A mixin's docstring ("``ApiView.initial`` … made a link that never expires") was the
    public description of eight request and answer bodies."""
    described = {name: c.get("description", "") for name, c in schema["components"]["schemas"].items()}
    assert not {name: d for name, d in described.items() if "``" in d or "ApiView" in d}


def test_request_bodies_say_that_unknown_fields_are_refused(schema, owner_client):
    """Every body the API takes refuses a field it does not know (400); the schema allowed any."""
    bodies = {
        (path, method): content["schema"]["$ref"].rsplit("/", 1)[-1]
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "requestBody" in op
        for content in op["requestBody"]["content"].values()
        if "$ref" in content.get("schema", {})
    }
    assert {"AlbumRequest", "LinkCreateRequest", "DecodeRequest", "UploadRequest"} <= set(bodies.values())
    for name in set(bodies.values()):
        assert schema["components"]["schemas"][name]["additionalProperties"] is False, name
    r = owner_client.post("/api/v1/albums", {"title": "x", "colour": "red"}, format="json")
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, "k" * 255, "!~", "0b1f-uuid"])
def test_the_idempotency_key_header_is_described_as_the_api_checks_it(schema, key):
    from imagehost.services.uploads import IDEMPOTENCY_KEY_RE

    header = next(p for p in schema["paths"]["/api/v1/images"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    rule = header["schema"]
    described = rule["minLength"] <= len(key) <= rule["maxLength"] and re.fullmatch(rule["pattern"].strip("^$"), key)
    assert bool(described) == bool(IDEMPOTENCY_KEY_RE.fullmatch(key))

"""The API answers what its OpenAPI schema says, in one error shape, and a refused request costs
nothing: defects found by a contract review, one test each (each failed before its fix)."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_an_uploads_warning_is_optional_in_the_schema(schema, anon_client, png_bytes):
    """The 202 answer has no ``warning`` unless the broker is down; the schema said required."""
    r = anon_client.post("/api/v1/images", png_bytes(), content_type="image/png")
    assert r.status_code == 202 and "warning" not in r.json()
    ref = schema["paths"]["/api/v1/images"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    assert "warning" not in component(schema, ref).get("required", [])
    assert "deletion_url" in component(schema, ref)["required"]


def test_a_method_a_view_does_not_have_costs_no_rate_limit(settings, anon_client, png_bytes):
    """Three GETs of the upload endpoint (405) used to spend an anonymous client's three uploads."""
    settings.EMMM_API_ANON_UPLOAD_RATE = "3/m"
    assert [anon_client.get("/api/v1/images").status_code for _ in range(4)] == [405] * 4
    assert anon_client.post("/api/v1/images", png_bytes(), content_type="image/png").status_code == 202


def test_options_costs_no_rate_limit(settings, anon_client):
    settings.EMMM_API_ANON_DECODE_RATE = "2/m"
    for _ in range(3):
        assert anon_client.options("/api/v1/inspect").status_code == 200
    assert anon_client.post("/api/v1/inspect", {"token": "A" * 40}, format="json").status_code != 429


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/nope", "/api/v1/albums/"])
@pytest.mark.parametrize("method", ["get", "options", "post", "delete"])
def test_unknown_api_paths_are_404_for_every_method(anon_client, path, method):
    r = getattr(anon_client, method)(path)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path, r.content[:100])


@pytest.mark.parametrize("value", ["json", "xml", "api"])
def test_a_format_query_parameter_is_an_unknown_parameter(owner_client, value):
    """``?format=xml`` was a 404 "Not found." (DRF's format suffix override), ``?format=json`` a 400."""
    r = owner_client.post(f"/api/v1/albums?format={value}", {"title": "x"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"format": ["Unknown query parameter."]}


@pytest.mark.parametrize("method, path", [
    ("post", "/api/v1/links"), ("post", "/api/v1/albums"), ("post", "/api/v1/inspect"),
    ("delete", "/api/v1/links/{slug}"), ("patch", "/api/v1/pictures/{id}"),
])
def test_a_session_request_without_csrf_is_a_documented_403(schema, owner, method, path):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    concrete = path.replace("{slug}", "abcdefgh").replace("{id}", "1")
    r = getattr(client, method)(concrete, {"title": "x", "token": "A" * 40}, format="json")
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    assert "403" in schema["paths"][path][method]["responses"]


def test_an_unacceptable_accept_header_is_a_documented_406(schema, owner_client, make_album):
    r = owner_client.get("/api/v1/albums", HTTP_ACCEPT="text/html")
    assert r.status_code == 406 and r.json()["error"]["code"] == "not_acceptable"
    r = owner_client.delete(f"/api/v1/albums/{make_album().slug}", HTTP_ACCEPT="text/html")
    assert r.status_code == 406  # negotiated before the work, whatever the answer's body
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if path == "/api/v1/decode":  # answers an image whatever Accept says
                assert "406" not in op["responses"]
            elif method in {"get", "post", "patch", "delete"}:
                assert "406" in op["responses"], (path, method)


def test_django_refusals_under_api_are_json_whatever_the_accept_header(anon_client):
    """A bad Host header is refused by Django before DRF; under /api/ it was an HTML page."""
    r = anon_client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000", HTTP_HOST="evil.example", HTTP_ACCEPT="*/*")
    assert r.status_code == 400 and r["Content-Type"].startswith("application/json")
    assert r.json()["error"]["status"] == 400
    site = anon_client.get("/library/", HTTP_HOST="evil.example", HTTP_ACCEPT="*/*")
    assert site.status_code == 400 and site["Content-Type"].startswith("text/html")  # the site stays HTML


def test_an_unexpected_error_under_api_is_json(owner_client, monkeypatch):
    from imagehost import selectors

    monkeypatch.setattr(selectors, "albums_for_owner", lambda *a, **k: 1 / 0)  # stands in for any bug
    owner_client.raise_request_exception = False
    r = owner_client.get("/api/v1/albums", HTTP_ACCEPT="*/*")
    assert r.status_code == 500 and r["Content-Type"].startswith("application/json")
    assert r.json()["error"] == {"status": 500, "code": "error", "message": "Something went wrong on our side."}


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=" + "9" * 5000, "page_size=0", "page_size=101", "page_size=" + "9" * 5000])
def test_page_and_page_size_out_of_bounds_are_400(owner_client, query):
    """``page=0`` was a 404 "Invalid page." and ``page_size=101`` silently 100."""
    r = owner_client.get(f"/api/v1/pictures?{query}")
    assert r.status_code == 400, (query, r.content)
    assert set(r.json()["error"]["fields"]) == {query.split("=")[0]}


def test_page_bounds_are_in_the_schema(schema, owner_client):
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/pictures"]["get"]["parameters"]}
    assert params["page_size"]["minimum"] == 1 and params["page_size"]["maximum"] == 100
    assert params["page"]["minimum"] == 1
    assert owner_client.get("/api/v1/pictures?page_size=100").status_code == 200
    assert owner_client.get("/api/v1/pictures?page=2").status_code == 404  # past the end: no such page


def test_links_list_is_documented_as_signed_in_only(schema, anon_client):
    assert anon_client.get("/api/v1/links").status_code == 401
    assert {} not in schema["paths"]["/api/v1/links"]["get"]["security"]
    assert {} in schema["paths"]["/api/v1/links"]["post"]["security"]  # anyone may shorten


def test_a_json_search_body_documents_no_file(schema):
    content = schema["paths"]["/api/v1/search"]["post"]["requestBody"]["content"]
    fields = component(schema, content["application/json"]["schema"]["$ref"])["properties"]
    assert "file" not in fields and "token" in fields
    assert "file" in component(schema, content["multipart/form-data"]["schema"]["$ref"])["properties"]


@pytest.mark.parametrize("method, query", [("post", ""), ("delete", ""), ("get", "?format=xml")])
def test_the_schema_endpoints_errors_are_json(anon_client, method, query):
    """They were rendered by the schema's own YAML renderer (``application/vnd.oai.openapi``)."""
    r = getattr(anon_client, method)(f"/api/schema/{query}")
    assert r.status_code in (404, 405) and r["Content-Type"].startswith("application/json"), r["Content-Type"]
    assert r.json()["error"]["status"] == r.status_code
    ok = anon_client.get("/api/schema/")
    assert ok.status_code == 200 and ok["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = anon_client.get("/api/schema/?format=json")  # drf-spectacular's usual spelling still works
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json") and "paths" in as_json.json()


def test_throttled_operations_document_429(schema):
    """The album look-ups count against the slugs limit: their 429 is in the schema."""
    for path, method in [("/api/v1/albums/{slug}", "get"), ("/api/v1/albums/{slug}", "patch"),
                         ("/api/v1/albums/{slug}", "delete"), ("/api/v1/albums/{slug}/pictures", "get")]:
        assert "429" in schema["paths"][path][method]["responses"], (path, method)
    width = component(schema, schema["paths"]["/api/v1/decode"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert width["properties"]["width"]["maximum"] == 4096  # EMMM_MAX_RENDER_WIDTH, which the answer enforces


@pytest.mark.parametrize("name", ["page", "page_size"])
def test_a_page_number_padded_with_zeros_is_read_not_a_500(owner_client, owner, make_picture, name):
    """5,000 zeros passed the length check (made on the digits without them) and int() refused
    the whole string (over 4,300 digits): a 500."""
    for i in range(2):
        make_picture(owner, title=f"p{i}")
    r = owner_client.get(f"/api/v1/pictures?{name}=" + "0" * 5000 + "1")
    assert r.status_code == 200
    assert len(r.json()["results"]) == (2 if name == "page" else 1)  # page 1; pages of 1
    assert owner_client.get(f"/api/v1/pictures?{name}=0001").status_code == 200


def test_an_unknown_body_field_is_refused_like_an_unknown_query_parameter(owner_client, make_picture, owner, png_bytes, real_token):
    """A misspelt field was dropped: {"expire_at": ...} made a link that never expires, and an
    upload's `budjet=chat` (a 400 as ?budjet=) a link of any length."""
    r = owner_client.post("/api/v1/links", {"token": real_token, "expire_at": "2031-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"expire_at": ["Unknown field."]}
    r = owner_client.post("/api/v1/images", {"file": io.BytesIO(png_bytes(32, 32)), "budjet": "chat"}, format="multipart")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"budjet": ["Unknown field."]}
    picture = make_picture(owner, title="Gull")
    r = owner_client.patch(f"/api/v1/pictures/{picture.pk}", {"titel": "Tern"}, format="json")
    assert r.status_code == 400 and "titel" in r.json()["error"]["fields"]
    r = owner_client.post("/api/v1/albums", {"title": "Coast", "visiblity": "public"}, format="json")
    assert r.status_code == 400 and "visiblity" in r.json()["error"]["fields"]
    r = owner_client.post("/api/v1/inspect", {"token": real_token, "extra": 1}, format="json")
    assert r.status_code == 400 and "extra" in r.json()["error"]["fields"]


def test_a_refusal_of_one_field_names_the_field_wherever_it_is_checked(owner_client, real_token, png_bytes):
    """The serializer's refusals carried `fields`; the same field refused by the service did
    not (a past `expires_at`, a `max_chars` under the floor, an unknown `model`)."""
    r = owner_client.post("/api/v1/links", {"token": real_token, "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["fields"] == {"expires_at": ["The expiry must be in the future."]}
    r = owner_client.post("/api/v1/images?max_chars=20", png_bytes(32, 32), content_type="image/png")
    assert r.status_code == 400 and list(r.json()["error"]["fields"]) == ["max_chars"]
    r = owner_client.post("/api/v1/images?model=no-such-model", png_bytes(32, 32), content_type="image/png")
    error = r.json()["error"]
    assert r.status_code == 400 and list(error["fields"]) == ["model"] and error["fields"]["model"] == [error["message"]]

"""``GET /api/v1/pictures/{id}/similar`` and ``POST /api/v1/search``: scopes, bounds, errors, leaks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from imagehost.services import similar
from tests.similar_helpers import build_world, fresh_index, store_vector, unit  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_picture, owner, other):
    return build_world(make_picture, owner, other)


def result_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def similar_url(pk: int, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/pictures/{pk}/similar" + (f"?{query}" if query else "")


def test_similar_mine_returns_only_my_pictures(world, owner_client):
    ids = result_ids(owner_client.get(similar_url(world.owner_loose.pk, scope="mine", k=50)))
    expected = {world.owner_private.pk, world.owner_unlisted.pk, world.owner_public.pk}
    assert set(ids) == expected  # itself excluded, nobody else's


def test_similar_public_returns_only_public_album_pictures(world, owner_client, anon_client):
    public = {world.owner_public.pk, world.other_public.pk}  # not the blocked one, nothing unlisted
    assert set(result_ids(owner_client.get(similar_url(world.owner_loose.pk, scope="public", k=50)))) == public
    # anonymous: a public picture's neighbours, default scope public
    assert set(result_ids(anon_client.get(similar_url(world.other_public.pk, k=50)))) == public - {world.other_public.pk}


def test_other_users_private_and_unlisted_pictures_are_404(world, owner_client, anon_client):
    for pic in (world.other_loose, world.other_private, world.other_unlisted, world.anonymous):
        assert owner_client.get(similar_url(pic.pk, scope="public")).status_code == 404
        assert anon_client.get(similar_url(pic.pk, scope="public")).status_code == 404
    assert owner_client.get(similar_url(2**63)).status_code == 404


def test_a_taken_down_public_picture_is_no_query_for_others(world, owner_client, anon_client, other_client):
    """It left every listing others see, so its neighbours go too (they were a 200)."""
    assert owner_client.get(similar_url(world.blocked.pk, scope="public")).status_code == 404
    assert anon_client.get(similar_url(world.blocked.pk)).status_code == 404
    assert other_client.get(similar_url(world.blocked.pk, scope="mine")).status_code == 200  # its owner


def test_public_neighbours_of_someone_elses_public_picture_in_scope_mine_are_mine(world, owner_client):
    ids = result_ids(owner_client.get(similar_url(world.other_public.pk, scope="mine", k=50)))
    assert set(ids) == {world.owner_loose.pk, world.owner_private.pk, world.owner_unlisted.pk, world.owner_public.pk}


def test_album_made_private_leaves_public_scope_at_once(world, other, anon_client):
    from imagehost.services import library

    library.update_album(world.albums["other", "public"], visibility="private")
    ids = set(result_ids(anon_client.get(similar_url(world.owner_public.pk, k=50))))
    assert ids == set()  # the index still holds the vectors; the scope query decides


def test_scores_best_first_and_shape(make_picture, owner, owner_client):
    base = unit(7)
    me = make_picture(owner, title="query")
    store_vector(me, base)
    near, far = make_picture(owner, title="near"), make_picture(owner, title="far")
    mixed = 0.9 * base + 0.1 * unit(8)
    store_vector(near, mixed / np.linalg.norm(mixed))
    store_vector(far, unit(9))
    body = owner_client.get(similar_url(me.pk, scope="mine", k=2)).json()
    assert [r["id"] for r in body["results"]] == [near.pk, far.pk]
    first = body["results"][0]
    assert first["score"] > 0.9 > body["results"][1]["score"]
    assert first["token_url"].startswith("http://testserver/i/") and "short_url" in first
    assert body["count"] == 2 and "next" in body


@pytest.mark.parametrize("query", ["k=0", "k=101", "k=abc", "scope=everyone", "colour=red"])
def test_bad_query_parameters_are_400(world, owner_client, query):
    response = owner_client.get(f"/api/v1/pictures/{world.owner_loose.pk}/similar?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400


def test_anonymous_scope_mine_is_401(world, anon_client):
    response = anon_client.get(similar_url(world.owner_public.pk, scope="mine"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- search by example -----------------------------------------------------------------------
def test_search_by_token_and_by_file_with_real_embeddings(make_picture, owner, owner_client, token_pool, png_bytes):
    first, second = token_pool(0), token_pool(1)
    a = make_picture(owner, token=first.token, title="a")
    b = make_picture(owner, token=second.token, title="b")
    similar.embed_picture(a)
    similar.embed_picture(b)
    body = owner_client.post("/api/v1/search", {"token": first.token, "k": 2}, format="json").json()
    assert [r["id"] for r in body["results"]] == [a.pk, b.pk]
    assert body["results"][0]["score"] > 0.99
    # a token URL and the multipart file path (the query image is embedded, not stored)
    url = body["results"][1]["token_url"]
    assert result_ids(owner_client.post("/api/v1/search", {"token": url, "k": 1}, format="json")) == [b.pk]
    from imagehost.models import EncodeJob, Picture

    before = (Picture.objects.count(), EncodeJob.objects.count())
    response = owner_client.post("/api/v1/search", {"file": _file(png_bytes()), "k": 2}, format="multipart")
    assert len(result_ids(response)) == 2
    assert (Picture.objects.count(), EncodeJob.objects.count()) == before


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("q.png", data, content_type="image/png")


def test_search_never_returns_others_private_pictures(world, other_client, anon_client, real_token, monkeypatch):
    from imagehost.services import search

    monkeypatch.setattr(search, "embed_token_image", lambda token: type("E", (), {"vector": world.v})())
    ids = set(result_ids(other_client.post("/api/v1/search", {"token": real_token, "k": 100}, format="json")))
    assert ids == {world.other_loose.pk, world.other_private.pk, world.other_unlisted.pk, world.other_public.pk}
    ids = set(result_ids(anon_client.post("/api/v1/search", {"token": real_token, "k": 100}, format="json")))
    assert ids == {world.owner_public.pk, world.other_public.pk}  # anonymous default scope: public


@pytest.mark.parametrize(
    "body, status",
    [
        ({"token": "not a token!"}, 400),
        ({"token": "https://example.com/elsewhere"}, 400),
        ({"token": "https://testserver/s/no-such-link"}, 404),
        ({}, 400),
        ({"token": 12}, 400),
        ({"token": "x", "k": 0}, 400),
        ({"token": "x", "k": 101}, 400),
        ({"token": "x", "scope": "all"}, 400),
    ],
)
def test_search_bad_input(owner_client, body, status):
    response = owner_client.post("/api/v1/search", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["status"] == status


def test_search_blocked_token_is_410_and_bad_token_400(owner_client, real_token, make_picture, owner):
    from imagehost.services import tokens

    assert owner_client.post("/api/v1/search", {"token": "AAAA"}, format="json").status_code == 400  # not decodable
    tokens.block_token(real_token)
    response = owner_client.post("/api/v1/search", {"token": real_token}, format="json")
    assert response.status_code == 410 and response.json()["error"]["code"] == "blocked"


def test_search_anonymous_scope_mine_is_401(anon_client, real_token):
    response = anon_client.post("/api/v1/search", {"token": real_token, "scope": "mine"}, format="json")
    assert response.status_code == 401


def test_search_file_bounds(owner_client, settings, png_bytes):
    settings.EMMM_MAX_UPLOAD_BYTES = 1000
    big = png_bytes(200, 200, seed=3)
    assert len(big) > 1000
    assert owner_client.post("/api/v1/search", {"file": _file(big)}, format="multipart").status_code == 413
    settings.EMMM_MAX_UPLOAD_BYTES = 10_000_000
    response = owner_client.post("/api/v1/search", {"file": _file(b"not an image")}, format="multipart")
    assert response.status_code == 415


def test_search_is_throttled(anon_client, settings, real_token):
    settings.EMMM_API_ANON_SEARCH_RATE = "2/m"
    codes = [anon_client.post("/api/v1/search", {"token": "bad!"}, format="json").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_schema_documents_both_endpoints(anon_client):
    schema = json.loads(anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    assert "post" in schema["paths"]["/api/v1/search"]
    similar_op = schema["paths"]["/api/v1/pictures/{id}/similar"]["get"]
    assert {p["name"] for p in similar_op["parameters"]} >= {"scope", "k", "page", "page_size"}
    assert "score" in schema["components"]["schemas"]["SimilarPicture"]["properties"]


def _search_returns(monkeypatch, vector) -> None:
    """Every search by token embeds to ``vector`` (no model run)."""
    from imagehost.services import search

    monkeypatch.setattr(search, "embed_token_image", lambda token: type("E", (), {"vector": vector})())


def test_search_answers_all_k_results_in_one_answer(make_picture, owner, owner_client, settings, monkeypatch):
    """``k`` is how many pictures: the answer was paginated (EMMM_PAGE_SIZE per page) and its
    ``next`` link was a GET, which this POST-only endpoint answers with a 405."""
    settings.EMMM_PAGE_SIZE = 3
    pictures = [make_picture(owner, title=f"p{i}") for i in range(7)]
    for i, picture in enumerate(pictures):
        store_vector(picture, unit(100 + i))
    _search_returns(monkeypatch, unit(100))
    body = owner_client.post("/api/v1/search", {"token": "A" * 40, "k": 5}, format="json").json()
    assert len(body["results"]) == 5 and body["results"][0]["id"] == pictures[0].pk
    assert "next" not in body and "previous" not in body
    body = owner_client.post("/api/v1/search", {"token": "A" * 40, "k": 100}, format="json").json()
    assert {r["id"] for r in body["results"]} == {p.pk for p in pictures}
    response = owner_client.post("/api/v1/search?page=2", {"token": "A" * 40}, format="json")
    assert response.status_code == 400 and "page" in response.json()["error"]["fields"]  # no pages to ask for


def test_schema_documents_search_without_pages(anon_client):
    schema = json.loads(anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    search_op = schema["paths"]["/api/v1/search"]["post"]
    assert not {p["name"] for p in search_op.get("parameters", [])} & {"page", "page_size"}
    ok = search_op["responses"]["200"]["content"]["application/json"]["schema"]
    answer = schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[-1]]
    assert set(answer["properties"]) == {"results"} and answer["required"] == ["results"]
    assert answer["properties"]["results"]["items"]["$ref"].endswith("/SimilarPicture")


def test_model_unavailable_shows_no_server_paths(owner_client, png_bytes, monkeypatch, caplog):
    """The 503 said "...: weights file missing: /srv/models/..." (the server's file layout)."""
    from imagehost import similarity as sim

    def missing(image, model):
        raise sim.ModelUnavailable("weights file missing: /srv/secret-models/efficientnet_lite0.pth")

    monkeypatch.setattr(similar.sim, "embed_image", missing)
    with caplog.at_level("WARNING", logger="imagehost.services.similar"):
        response = owner_client.post("/api/v1/search", {"file": _file(png_bytes())}, format="multipart")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_unavailable" and "similar" in error["message"].lower()
    assert "/srv" not in response.content.decode() and "weights" not in response.content.decode()
    assert "/srv/secret-models/efficientnet_lite0.pth" in caplog.text  # the operator still learns why


def test_empty_optional_form_fields_count_as_absent(make_picture, owner, owner_client, png_bytes, monkeypatch):
    """An HTML form sends every field, empty or not: ``token=`` beside a file was a 400."""
    mine = make_picture(owner, title="mine")
    store_vector(mine, unit(3))
    monkeypatch.setattr(similar.sim, "embed_image", lambda image, model: similar.sim.Embedding(model, unit(3)))
    fields = {"file": _file(png_bytes()), "token": "", "scope": "", "k": ""}
    assert result_ids(owner_client.post("/api/v1/search", fields, format="multipart")) == [mine.pk]  # scope: mine
    _search_returns(monkeypatch, unit(3))
    form = owner_client.post("/api/v1/search", "token=AAAA&scope=&k=", content_type="application/x-www-form-urlencoded")
    assert result_ids(form) == [mine.pk]
    # JSON can leave a field out: an empty string there is a value, and a blank one is refused.
    response = owner_client.post("/api/v1/search", {"token": "", "scope": "public"}, format="json")
    assert response.status_code == 400 and "token" in response.json()["error"]["fields"]
    response = owner_client.post("/api/v1/search", {"token": "AAAA", "scope": ""}, format="json")
    assert response.status_code == 400 and "scope" in response.json()["error"]["fields"]


def test_search_refuses_a_field_it_does_not_have(owner_client, png_bytes):
    """`{"scpoe": "public", "kk": 3}` searched the default scope for 12: a typo went unnoticed."""
    r = owner_client.post("/api/v1/search", {"token": "AAAA", "scpoe": "public", "kk": 3}, format="json")
    assert r.status_code == 400 and set(r.json()["error"]["fields"]) == {"kk", "scpoe"}
    r = owner_client.post("/api/v1/search", {"file": _file(png_bytes()), "scpoe": "public"}, format="multipart")
    assert r.status_code == 400 and set(r.json()["error"]["fields"]) == {"scpoe"}


def test_the_next_page_of_similar_pictures_can_be_fetched(make_picture, owner, owner_client):
    """``page`` and ``page_size`` (published in the schema, and in the ``next`` link) were refused
    by the options' own check as unknown fields: results past the first page were out of reach."""
    me = make_picture(owner, title="query")
    store_vector(me, unit(3))
    for n in range(5):
        mixed = 0.9 * unit(3) + 0.1 * unit(10 + n)
        store_vector(make_picture(owner, title=f"n{n}"), mixed / np.linalg.norm(mixed))
    first = owner_client.get(similar_url(me.pk, scope="mine", k=5, page_size=2))
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 5 and len(body["results"]) == 2
    seen = [r["id"] for r in body["results"]]
    while body["next"]:
        body = owner_client.get(body["next"]).json()
        seen += [r["id"] for r in body["results"]]
    assert len(seen) == len(set(seen)) == 5

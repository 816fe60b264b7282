"""Short links: POST (from a token or a picture; custom slug, expiry), GET (mine), DELETE."""

from __future__ import annotations

from datetime import timedelta

import codec
import pytest
from django.utils import timezone

from imagehost.services import links, tokens
from imagehost.models import ShortLink

pytestmark = pytest.mark.django_db
TOKEN = "C" * 60


def test_anonymous_link_from_token_is_stable(anon_client):
    r = anon_client.post("/api/v1/links", {"token": TOKEN}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["url"] == f"http://testserver/s/{body['slug']}"
    assert body["token_url"] == f"http://testserver/i/{TOKEN}"
    again = anon_client.post("/api/v1/links", {"token": TOKEN}, format="json").json()
    assert again["slug"] == body["slug"]
    assert ShortLink.objects.get(slug=body["slug"]).owner is None


def test_link_from_my_picture_with_custom_slug_and_expiry(owner_client, owner, make_picture):
    picture = make_picture(owner)
    expires = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    r = owner_client.post(
        "/api/v1/links", {"picture": picture.pk, "slug": "my-cat", "expires_at": expires.isoformat()}, format="json"
    )
    assert r.status_code == 201, r.content
    link = ShortLink.objects.get(slug="my-cat")
    assert (link.owner, link.token, link.expires_at) == (owner, picture.token, expires)
    listing = owner_client.get("/api/v1/links").json()
    assert [x["slug"] for x in listing["results"]] == ["my-cat"]


def test_link_from_someone_elses_picture_is_404(other_client, make_picture, anon_client, owner):
    picture = make_picture(owner)
    assert other_client.post("/api/v1/links", {"picture": picture.pk}, format="json").status_code == 404
    assert anon_client.post("/api/v1/links", {"picture": picture.pk}, format="json").status_code == 401


def test_taken_slug_is_409(owner_client, other_client):
    assert owner_client.post("/api/v1/links", {"token": TOKEN, "slug": "taken"}, format="json").status_code == 201
    r = other_client.post("/api/v1/links", {"token": "D" * 40, "slug": "taken"}, format="json")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "slug_taken"


@pytest.mark.parametrize("slug", ["-starts-with-a-dash", "_underscore", "ab"])
def test_someone_elses_generated_slug_is_409_not_a_slug_error(owner_client, other_client, owner, slug):
    """A generated slug need not be a valid new custom one: naming someone else's is still 409."""
    ShortLink.objects.create(slug=slug, token=TOKEN, owner=owner)
    r = other_client.post("/api/v1/links", {"token": TOKEN, "slug": slug}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "slug_taken"
    assert ShortLink.objects.get(slug=slug).owner == owner


def test_generated_slugs_are_valid_custom_slugs(owner_client, owner, anon_client, monkeypatch):
    """Generated slugs start with a letter or digit: safe as a command-line argument, and a slug
    that a person may name again."""
    made = []
    real = links.secrets.token_urlsafe
    monkeypatch.setattr(links.secrets, "token_urlsafe", lambda n=None: "-" + real(n)[1:])  # the worst draw
    made.append(anon_client.post("/api/v1/links", {"token": TOKEN}, format="json").json()["slug"])
    made.append(owner_client.post("/api/v1/links", {"token": "D" * 40}, format="json").json()["slug"])
    made.append(links.reserve_short_link(_job(owner)).slug)
    for slug in made:
        assert links.CUSTOM_SLUG_RE.match(slug), slug
        assert len(slug) == 12


def _job(owner):
    from imagehost.models import EncodeJob
    return EncodeJob.objects.create(owner=owner)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": TOKEN, "picture": 1},
        {"token": "bad token!"},
        {"token": TOKEN, "slug": "x"},
        {"token": TOKEN, "expires_at": "2001-01-01T00:00:00Z"},
        {"token": TOKEN, "expires_at": "soon"},
    ],
)
def test_bad_bodies_are_400(owner_client, body):
    r = owner_client.post("/api/v1/links", body, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["message"]
    assert not ShortLink.objects.exists()


def test_anonymous_custom_slug_is_refused(anon_client):
    r = anon_client.post("/api/v1/links", {"token": TOKEN, "slug": "mine"}, format="json")
    assert r.status_code == 400
    assert "Sign in" in r.json()["error"]["message"]


def test_blocked_token_is_410(anon_client):
    tokens.block_token(codec.token_id(TOKEN))  # a fake token: blocked by its identity
    assert anon_client.post("/api/v1/links", {"token": TOKEN}, format="json").status_code == 410


def test_delete_only_my_links(owner_client, other_client, anon_client, owner):
    link = links.get_or_create_short_link(TOKEN, owner)
    assert anon_client.delete(f"/api/v1/links/{link.slug}").status_code == 401
    assert other_client.delete(f"/api/v1/links/{link.slug}").status_code == 404
    assert owner_client.delete("/api/v1/links/no-such-link").status_code == 404
    assert owner_client.delete(f"/api/v1/links/{link.slug}").status_code == 204
    assert not ShortLink.objects.exists()
    assert anon_client.get("/api/v1/links").status_code == 401


def test_anonymous_expiry_never_changes_the_shared_anonymous_link(anon_client, client):
    """Issue 8.6: the exact repro; anonymous links are never modified by later requests."""
    first = anon_client.post("/api/v1/links", {"token": TOKEN}, format="json").json()
    soon = (timezone.now() + timedelta(seconds=3)).isoformat()
    r = anon_client.post("/api/v1/links", {"token": TOKEN, "expires_at": soon}, format="json")
    assert r.status_code == 400
    assert "sign in" in r.json()["error"]["message"].lower()
    assert ShortLink.objects.get(slug=first["slug"]).expires_at is None
    assert ShortLink.objects.count() == 1
    # the site's form: the same rule
    r = client.post("/shorten", {"token": TOKEN, "expires_at": "2099-01-01T00:00"})
    assert r.status_code == 400
    assert ShortLink.objects.get(slug=first["slug"]).expires_at is None


def test_only_the_owner_changes_their_link(owner_client, other_client, owner):
    expires = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    mine = owner_client.post("/api/v1/links", {"token": TOKEN, "expires_at": expires.isoformat()}, format="json").json()
    theirs = other_client.post("/api/v1/links", {"token": TOKEN}, format="json").json()
    assert theirs["slug"] != mine["slug"]
    assert ShortLink.objects.get(slug=mine["slug"]).expires_at == expires
    later = expires + timedelta(days=1)  # a link's expiry changes when the request names it
    owner_client.post("/api/v1/links", {"token": TOKEN, "slug": mine["slug"], "expires_at": later.isoformat()}, format="json")
    assert ShortLink.objects.get(slug=mine["slug"]).expires_at == later
    assert ShortLink.objects.get(slug=theirs["slug"]).expires_at is None
    r = other_client.post("/api/v1/links", {"token": TOKEN, "slug": mine["slug"], "expires_at": expires.isoformat()}, format="json")
    assert r.status_code == 409 and ShortLink.objects.get(slug=mine["slug"]).expires_at == later


def test_custom_slug_beside_the_automatic_link(owner_client, owner, make_picture):
    """Issue 11: every upload has an automatic link; a custom one is added in one request (not 409)."""
    picture = make_picture(owner)
    automatic = links.get_or_create_short_link(picture.token, owner)
    r = owner_client.post("/api/v1/links", {"picture": picture.pk, "slug": "pemaquid"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["slug"] == "pemaquid" and r.json()["url"] == "http://testserver/s/pemaquid"
    again = owner_client.post("/api/v1/links", {"picture": picture.pk, "slug": "pemaquid"}, format="json")
    assert again.status_code == 201 and again.json()["slug"] == "pemaquid"
    assert sorted(ShortLink.objects.filter(owner=owner).values_list("slug", flat=True)) == sorted([automatic.slug, "pemaquid"])
    plain = owner_client.post("/api/v1/links", {"picture": picture.pk}, format="json").json()
    assert plain["slug"] in (automatic.slug, "pemaquid")  # an existing one, no third link
    assert ShortLink.objects.filter(owner=owner).count() == 2


def test_deleting_a_picture_deletes_its_links_unless_kept(owner_client, owner, make_picture, client):
    picture = make_picture(owner)
    link = links.get_or_create_short_link(picture.token, owner, slug="goes-away")
    assert owner_client.delete(f"/api/v1/pictures/{picture.pk}?links=maybe").status_code == 400
    # An empty choice (a client's template left blank) was taken as absent: the links were deleted.
    assert owner_client.delete(f"/api/v1/pictures/{picture.pk}?links=").status_code == 400
    assert ShortLink.objects.filter(pk=link.pk).exists()
    assert owner_client.get(f"/api/v1/pictures/{picture.pk}?links=keep").status_code == 400  # DELETE only
    assert owner_client.delete(f"/api/v1/pictures/{picture.pk}").status_code == 204
    assert not ShortLink.objects.filter(pk=link.pk).exists()
    assert client.get("/s/goes-away").status_code == 404
    kept = make_picture(owner)
    kept_link = links.get_or_create_short_link(kept.token, owner, slug="stays")
    assert owner_client.delete(f"/api/v1/pictures/{kept.pk}?links=keep").status_code == 204
    assert ShortLink.objects.filter(pk=kept_link.pk).exists()
    assert "stays" in [x["slug"] for x in owner_client.get("/api/v1/links").json()["results"]]


def test_a_link_made_from_a_picture_is_that_pictures(owner_client, owner, make_picture, client):
    """The same file uploaded twice: a link made from the second copy shows the second's title."""
    from imagehost.models import EncodeJob, JobStatus

    first = make_picture(owner, title="Private: bank statement", token=TOKEN)
    second = make_picture(owner, title="Meme for the group chat", token=TOKEN)
    for pic in (first, second):
        EncodeJob.objects.create(owner=owner, picture=pic, status=JobStatus.DONE)
    r = owner_client.post("/api/v1/links", {"picture": second.pk, "slug": "meme"}, format="json")
    assert r.status_code == 201 and ShortLink.objects.get(slug="meme").job.picture == second
    assert "Meme for the group chat" in client.get("/s/meme/").content.decode()

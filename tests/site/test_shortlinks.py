"""Short links: same link for the same owner+token, custom slugs, expiry, takedown, OG page."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from imagehost.services import errors, links, tokens
from imagehost.models import ShortLink
from imagehost.services.hits import flush_hits

pytestmark = pytest.mark.django_db


def test_same_owner_same_token_same_link(real_token, user, other_user):
    a = links.get_or_create_short_link(real_token, user)
    assert links.get_or_create_short_link(real_token, user).pk == a.pk
    anon = links.get_or_create_short_link(real_token, None)
    assert links.get_or_create_short_link(real_token, None).pk == anon.pk
    b = links.get_or_create_short_link(real_token, other_user)
    assert len({a.pk, anon.pk, b.pk}) == 3
    assert len(a.slug) >= 12 and a.slug != b.slug


def test_custom_slugs(real_token, token_pool, user):
    link = links.get_or_create_short_link(real_token, user, slug="my-cat")
    assert link.slug == "my-cat"
    with pytest.raises(errors.SlugTaken):
        links.get_or_create_short_link(token_pool(1).token, user, slug="my-cat")
    with pytest.raises(errors.InvalidInput):
        links.get_or_create_short_link(token_pool(1).token, None, slug="anon-slug")
    with pytest.raises(errors.InvalidInput):
        links.get_or_create_short_link(token_pool(1).token, user, slug="x")
    with pytest.raises(errors.BadToken):
        links.get_or_create_short_link("bad token!", user)


def test_short_link_serves_the_image_itself(client, real_token):
    link = links.get_or_create_short_link(real_token, None)
    direct = client.get(f"/i/{real_token}")
    r = client.get(f"/s/{link.slug}")
    assert r.status_code == 200  # the image, not a redirect
    assert r["Content-Type"] == "image/webp" and r.content == direct.content
    # a link can be deleted or expire: cached, but revalidated each time (the token URL is immutable)
    assert r["Cache-Control"] == "public, no-cache" and r["ETag"] == direct["ETag"]
    assert client.get(f"/s/{link.slug}", HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    assert client.get(f"/s/{link.slug}.png")["Content-Type"] == "image/png"
    flush_hits()  # hits are counted in the cache and flushed in batches (beat)
    link.refresh_from_db()
    assert link.hits == 3  # a revalidated view (304) is a view too


def test_short_page_has_opengraph_tags(client, real_token):
    link = links.get_or_create_short_link(real_token, None)
    r = client.get(f"/s/{link.slug}/")
    body = r.content.decode()
    assert r.status_code == 200 and r["Referrer-Policy"] == "no-referrer"
    assert f'<meta property="og:image" content="http://testserver/s/{link.slug}.png">' in body
    assert 'property="og:image:width" content="64"' in body


def test_unknown_expired_and_blocked_links(client, real_token, token_pool, user, monkeypatch):
    assert client.get("/s/nope-nope").status_code == 404
    assert client.get("/s/nope-nope/").status_code == 404
    link = links.get_or_create_short_link(token_pool(1).token, user, expires_at=timezone.now() + timedelta(hours=1))
    assert client.get(f"/s/{link.slug}").status_code == 200
    later = timezone.now() + timedelta(hours=2)  # the link expires while its look-up is cached
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: later)
        assert client.get(f"/s/{link.slug}").status_code == 410
    blocked = links.get_or_create_short_link(real_token, None)
    tokens.block_token(real_token)
    assert client.get(f"/s/{blocked.slug}").status_code == 410
    assert client.get(f"/s/{blocked.slug}/").status_code == 410


def test_shorten_form(client, real_token, user):
    r = client.post("/shorten", {"token": real_token})
    assert r.status_code == 302
    link = ShortLink.objects.get(owner__isnull=True)
    assert r["Location"] == f"/s/{link.slug}/"
    client.force_login(user)
    r = client.post("/shorten", {"token": real_token, "slug": "holiday"})
    assert r["Location"] == "/s/holiday/"
    assert client.post("/shorten", {"token": "a b"}).status_code == 400
    assert client.post("/shorten", {"token": real_token, "expires_at": "soon"}).status_code == 400


def test_signed_in_plain_shorten_form(client, real_token, user):
    """A signed-in user's plain shorten (no custom slug) through the site: request.user is a
    lazy object, and the link is theirs, the same one again on a second try."""
    client.force_login(user)
    first = client.post("/shorten", {"token": real_token})
    assert first.status_code == 302
    link = ShortLink.objects.get(owner=user)
    assert first["Location"] == f"/s/{link.slug}/"
    assert client.post("/shorten", {"token": real_token})["Location"] == first["Location"]


def test_shortening_again_never_revives_an_expired_link(user, token_pool, monkeypatch):
    """The owner's permanent link P, then a custom link "party" that expired: shortening the
    token again returned "party", made permanent again, instead of P."""
    token = token_pool(1).token
    permanent = links.get_or_create_short_link(token, user)
    party = links.get_or_create_short_link(token, user, slug="party", expires_at=timezone.now() + timedelta(hours=1))
    later = timezone.now() + timedelta(hours=2)
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: later)
        again = links.get_or_create_short_link(token, user)
    assert again.pk == permanent.pk
    party.refresh_from_db()
    assert party.expires_at is not None  # still expired


def test_an_expiry_without_a_slug_adds_a_link_and_leaves_the_others_alone(user, token_pool):
    """"Add this short link" with only an expiry gave the newest existing link (a custom one)
    that expiry instead of adding a link."""
    token = token_pool(1).token
    permanent = links.get_or_create_short_link(token, user)
    custom = links.get_or_create_short_link(token, user, slug="my-cat")
    soon = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    expiring = links.get_or_create_short_link(token, user, expires_at=soon)
    assert expiring.pk not in (permanent.pk, custom.pk) and expiring.expires_at == soon
    assert links.get_or_create_short_link(token, user, expires_at=soon).pk == expiring.pk  # a retry: the same one
    for link in (permanent, custom):
        link.refresh_from_db()
        assert link.expires_at is None
    assert links.get_or_create_short_link(token, user).pk in (permanent.pk, custom.pk)  # a permanent one


def test_an_expiry_that_cannot_be_stored_is_a_400(client, user, token_pool):
    """Year 9999 at UTC-5 is year 10000 in UTC: the form's /shorten answered 500 (OverflowError)."""
    token = token_pool(1).token
    from datetime import datetime as dt, timezone as tz

    with pytest.raises(errors.InvalidInput, match="too far"):
        links.get_or_create_short_link(token, user, expires_at=dt(9999, 12, 31, 23, 59, tzinfo=tz(timedelta(hours=-5))))
    client.force_login(user)
    r = client.post("/shorten", {"token": token, "expires_at": "9999-12-31T23:59:59-05:00"})
    assert r.status_code == 400
    links.get_or_create_short_link(token, user, slug="far-away")
    r = client.post("/shorten", {"token": token, "slug": "far-away", "expires_at": "9999-12-31T23:30:00-01:00"})
    assert r.status_code == 400


def test_any_of_the_owners_slugs_names_its_link_to_change_its_expiry(user, token_pool):
    """Generated slugs may start with '-' or '_', which a new custom slug may not."""
    token = token_pool(1).token
    link = links.get_or_create_short_link(token, user)
    ShortLink.objects.filter(pk=link.pk).update(slug="-made-by-site")
    soon = timezone.now() + timedelta(days=1)
    assert links.get_or_create_short_link(token, user, slug="-made-by-site", expires_at=soon).pk == link.pk
    with pytest.raises(errors.InvalidInput, match="3-40 characters"):
        links.get_or_create_short_link(token, user, slug="-new-one")


def test_my_links_say_which_links_have_expired(client, user, make_picture):
    """An expired link (visitors get 410) was listed like a live one, its time in the past, and
    "never expire" beside it quietly made it work again."""
    from imagehost.models import ShortLink

    soon = timezone.now() + timedelta(hours=1)
    expired = links.get_or_create_short_link(make_picture(user).token, user, slug="was-party", expires_at=soon)
    ShortLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    links.get_or_create_short_link(make_picture(user).token, user, slug="party-soon", expires_at=soon)
    client.force_login(user)
    rows = {m.group(1): m.group(2) for m in re.finditer(r'data-slug="([^"]+)">(.*?)</tr>', client.get("/links/").content.decode(), re.S)}
    assert "Expired" in rows["was-party"] and "make it work again" in rows["was-party"] and "never expire" not in rows["was-party"]
    assert "Expired" not in rows["party-soon"] and "never expire" in rows["party-soon"]
    r = client.post("/links/was-party/", {"action": "clear_expiry", "next": "/links/"}, follow=True)
    assert "/s/was-party works again and no longer expires." in r.content.decode()

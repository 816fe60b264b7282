"""HEAD answers wherever GET does (RFC 9110 9.3.2): the same status and headers, no body, and no
side effect. Uptime monitors, link checkers and chat-preview bots send HEAD first."""
from __future__ import annotations

import pytest

from imagehost.api.models import ApiToken
from imagehost.models import EncodeJob
from imagehost.services import library, links

pytestmark = pytest.mark.django_db

ANONYMOUS_PAGES = ["/", "/accounts/signup/", "/accounts/login/", "/albums/public/", "/search/", "/healthz"]
SIGNED_IN_PAGES = ["/library/", "/albums/", "/links/", "/accounts/settings/", "/accounts/delete/", "/api/tokens/"]


def assert_head_matches_get(client, url: str) -> None:
    got, head = client.get(url), client.head(url)
    assert head.status_code == got.status_code, url
    assert head.status_code != 405, url
    assert head["Content-Type"] == got["Content-Type"], url
    assert head.content == b"", url


@pytest.mark.parametrize("url", ANONYMOUS_PAGES)
def test_anonymous_pages_answer_head(client, url):
    assert_head_matches_get(client, url)


@pytest.mark.parametrize("url", SIGNED_IN_PAGES)
def test_signed_in_pages_answer_head(client, user, url):
    client.force_login(user)
    assert_head_matches_get(client, url)


def test_picture_album_and_short_link_pages_answer_head(client, user, make_picture, real_token):
    album = library.create_album(user, "Pets", visibility="public")
    picture = make_picture(user, album=album, token=real_token)
    slug = links.get_or_create_short_link(real_token).slug
    client.force_login(user)
    for url in (f"/p/{picture.pk}/", f"/albums/{album.slug}/", f"/s/{slug}/", f"/s/{slug}/qr.svg"):
        assert_head_matches_get(client, url)


def test_head_has_no_side_effect(client, user):
    """HEAD on a page that also takes POST runs its GET branch: no job, no API token."""
    client.force_login(user)
    assert client.head("/").status_code == 200
    assert client.head("/api/tokens/").status_code == 200
    assert not EncodeJob.objects.exists()
    assert not ApiToken.objects.exists()

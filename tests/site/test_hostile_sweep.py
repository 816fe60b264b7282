"""Every page and API endpoint, signed in and not, under hostile parameters, path segments and
headers: a clear answer below 500, never a 500 or an exception. Runs on SQLite and on
PostgreSQL (which refuses NUL in text: the sweep that found the NUL 500s fixed beside it)."""
from __future__ import annotations

import pytest

from imagehost.api.models import ApiToken
from imagehost.services import library, links

pytestmark = pytest.mark.django_db

VALUES = ["", "-1", "x\x00y", "9" * 30, "é١", "²", "١٢", "http://[x/i/A", "a" * 3000]  # ² and ١٢: str.isdigit() but not int()-able; [x: urlsplit raises
PARAMS = ["w", "f", "q", "t", "page", "page_size", "album", "next", "kind", "max_chars", "visibility", "scope", "k",
          "ids", "token", "slug", "title", "action", "picture", "name"]
SEGMENTS = ["a%00b", "%00", "%FF%FE", "a" * 300, "..%2F..", "%0A"]
PATHS = ["/links/{}/", "/delete/{}/", "/s/{}", "/s/{}/", "/s/{}/qr.svg", "/i/{}", "/i/{}.webp", "/albums/{}/",
         "/api/v1/links/{}", "/api/v1/albums/{}", "/api/v1/albums/{}/pictures", "/api/v1/jobs/{}", "/image?t={}"]
HEADERS = {
    "HTTP_ACCEPT": ["*/*;q=abc", "image/avif;q=2, text/html;q=-1", "a" * 9000],
    "HTTP_IF_NONE_MATCH": ["*", '"' * 500, 'W/"x", "y"' * 300],
    "HTTP_IF_MODIFIED_SINCE": ["garbage", "Mon, 32 Foo 99999 99:99:99 GMT"],
    "HTTP_COOKIE": ["sessionid=" + "a" * 5000, "csrftoken=\x00", "=;=;="],
    "HTTP_AUTHORIZATION": ["Token", "Token \x00", "Token " + "a" * 10000, "Basic !!!", "Token a b c"],
    "HTTP_X_FORWARDED_FOR": ["garbage", "1.1.1.1, " * 500],
    "HTTP_ACCEPT_LANGUAGE": ["x" * 5000, "*;q=x"],
}


@pytest.fixture
def pages(user, make_picture, real_token, settings):
    settings.EMMM_RATELIMIT_ENABLE = False
    album = library.create_album(user, "Sweep", visibility="public")
    picture = make_picture(user, album=album, token=real_token)
    slug = links.get_or_create_short_link(real_token, user).slug
    return [
        "/", "/healthz", "/jobs/", f"/i/{real_token}", f"/image?t={real_token}", f"/s/{slug}/qr.svg", f"/s/{slug}/",
        f"/s/{slug}", "/shorten", "/links/", f"/links/{slug}/", "/accounts/signup/", "/accounts/login/",
        "/accounts/settings/", "/library/", f"/p/{picture.pk}/", "/search/", "/albums/", "/albums/public/",
        f"/albums/{album.slug}/", "/api/tokens/", "/api/tokens/sharex.sxcu", "/api/v1/images", "/api/v1/pictures",
        f"/api/v1/pictures/{picture.pk}", f"/api/v1/pictures/{picture.pk}/similar", "/api/v1/albums",
        f"/api/v1/albums/{album.slug}", "/api/v1/links", f"/api/v1/links/{slug}", "/api/v1/decode",
        "/api/v1/inspect", "/api/v1/search",
    ]


def _server_errors(client, requests) -> list:
    failures = []
    for method, url, kwargs in requests:
        try:
            status = getattr(client, method)(url, **kwargs).status_code
        except Exception as exc:  # noqa: BLE001 - the test reports every one
            failures.append((method, url[:60], str(kwargs)[:60], repr(exc)[:200]))
            continue
        if status >= 500 and not (status == 503 and url == "/healthz"):  # no worker runs here
            failures.append((method, url[:60], str(kwargs)[:60], status))
    return failures


@pytest.mark.parametrize("signed_in", [False, True])
def test_hostile_parameters(client, user, pages, signed_in):
    if signed_in:
        client.force_login(user)
    requests = [(method, url, {"data": {param: value}}) for url in pages for method in ("get", "post")
                for param in PARAMS for value in VALUES]
    assert _server_errors(client, requests) == []


@pytest.mark.parametrize("signed_in", [False, True])
def test_hostile_path_segments(client, user, pages, signed_in):
    if signed_in:
        client.force_login(user)
    requests = [(method, path.format(segment), {}) for path in PATHS for segment in SEGMENTS
                for method in ("get", "head", "post", "delete")]
    assert _server_errors(client, requests) == []


def test_hostile_headers(client, user, pages):
    _, raw = ApiToken.issue(user, "sweep")
    requests = [("get", url, {header: value}) for url in pages for header, values in HEADERS.items() for value in values]
    requests += [("get", url, {"HTTP_AUTHORIZATION": f"Token {raw}", "HTTP_ACCEPT": "x" * 5000}) for url in pages]
    assert _server_errors(client, requests) == []

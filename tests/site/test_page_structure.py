"""Every page has one <h1> (screen readers navigate by it) and a title of its own (tabs,
history, bookmarks): some had none ("done" pages, a share page of an untitled picture)."""
from __future__ import annotations

import re

import pytest

from imagehost.models import Visibility
from imagehost.services import library, links

pytestmark = pytest.mark.django_db


def test_every_page_has_one_h1_and_its_own_title(client, user, make_picture, real_token):
    pic = make_picture(user, title="", token=real_token)
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    untitled_link = links.get_or_create_short_link(make_picture(None, title="").token)
    anonymous = ["/", "/albums/public/", f"/albums/{album.slug}/", f"/s/{untitled_link.slug}/", "/search/",
                 "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/", "/accounts/password_reset/done/",
                 "/accounts/reset/done/"]
    signed_in = ["/library/", f"/p/{pic.pk}/", "/albums/", "/links/", "/accounts/settings/", "/accounts/delete/", "/accounts/password_change/",
                 "/accounts/password_change/done/", "/api/tokens/"]
    problems = {}
    for path in anonymous + ["(sign in)"] + signed_in:
        if path == "(sign in)":
            client.force_login(user)
            continue
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        body = r.content.decode()
        h1s = re.findall(r"<h1[ >]", body)
        title = re.search(r"<title>(.*?)</title>", body, re.S).group(1).strip()
        if len(h1s) != 1 or title == "emmmbedding":
            problems[path] = (len(h1s), title)
    assert problems == {}
    logged_out = client.post("/accounts/logout/", follow=True).content.decode()
    assert len(re.findall(r"<h1[ >]", logged_out)) == 1


def test_times_say_their_zone_and_are_shown_in_the_viewers(client, user):
    """The API token page printed bare UTC times (no zone, no local time) unlike the links pages."""
    from imagehost.api.models import ApiToken

    token, _ = ApiToken.issue(user, "script")
    client.force_login(user)
    body = client.get("/api/tokens/").content.decode()
    assert f'<time class="local-time" datetime="{token.created_at.isoformat()}">' in body and " UTC</time>" in body
    assert body.count('src="/static/localtime.js"') == 1


def test_the_no_javascript_result_page_has_its_own_title(client, png_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post("/", {"images": [SimpleUploadedFile(f"{n}.png", png_bytes(seed=n), "image/png") for n in (1, 2)]})
    body = client.get(r["Location"]).content.decode()
    assert "<title>Your uploads · emmmbedding</title>" in body


def test_every_page_names_an_icon_and_favicon_ico_finds_it(client):
    """Every fresh browser asked for /favicon.ico: a 404 (an error in the console, a full page rendered)."""
    icon = re.search(r'<link rel="icon" href="([^"]+)"', client.get("/").content.decode()).group(1)
    assert icon.endswith(".svg")
    r = client.get("/favicon.ico")
    assert r.status_code == 302 and r["Location"] == icon


def test_no_template_comment_is_shown_as_text(client):
    """``{# … #}`` ends on its line in Django: a three-line one was a paragraph of template notes
    above the fields of every account form (sign-in, sign-up, settings, password pages)."""
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    unclosed = [f"{path.relative_to(templates)}:{number}" for path in templates.rglob("*.html")
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if "{#" in line and "#}" not in line.split("{#", 1)[1]]
    assert not unclosed, unclosed
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"):
        assert "{#" not in client.get(path).content.decode(), path

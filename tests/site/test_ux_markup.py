"""Markup the pages' layout depends on (Django test client): the API tokens page without tokens,
similar cards whose score is not part of the ellipsised title, thumbnails with a size before
they load, and the picture page's token URL with a Copy button like every other URL field."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.template.loader import render_to_string

from imagehost.models import EncodeJob, JobStatus, deletion_digest

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def find_all(self, match):
        for c in self.children:
            if isinstance(c, Node):
                if match(c):
                    yield c
                yield from c.find_all(match)


class Tree(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {})
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str) -> Node:
    return Tree(html).root


def main(response) -> Node:
    assert response.status_code == 200, response.status_code
    return next(parse(response.content.decode()).find_all(lambda n: n.tag == "main"))


# 1. the API tokens page without tokens ------------------------------------------------------
def test_no_tokens_shows_the_sentence_without_the_table_headers(client, user):
    """"Name, Starts with, Created, Last used" stood above "No tokens yet."."""
    client.force_login(user)
    page = main(client.get("/api/tokens/"))
    assert "No tokens yet." in page.text
    assert list(page.find_all(lambda n: n.tag in ("table", "th"))) == []


def test_tokens_are_listed_in_the_table(client, user):
    from imagehost.api.models import ApiToken

    ApiToken.issue(user, "backup")
    client.force_login(user)
    page = main(client.get("/api/tokens/"))
    table = next(page.find_all(lambda n: n.tag == "table" and "tokens" in n.classes))
    assert "backup" in table.text and "No tokens yet." not in page.text


# 4. similar cards ---------------------------------------------------------------------------
def test_a_similar_card_keeps_the_score_out_of_the_title(client):
    """"<title> · 0.93" was one ellipsised span: a long title hid the score."""
    card = {"title": "A long title " * 5, "thumb": "/t/x", "href": "/p/1/", "score": "0.93"}
    html = render_to_string("imagehost/_similar_cards.html", {"cards": [card]})
    link = next(parse(html).find_all(lambda n: n.tag == "a"))
    spans = list(link.find_all(lambda n: n.tag == "span"))
    titled = [s for s in spans if card["title"] in s.text]
    scored = [s for s in spans if "0.93" in s.text]
    assert titled and scored and not any("0.93" in s.text for s in titled), [s.text for s in spans]


# 5. thumbnails with a size ------------------------------------------------------------------
def thumb(response) -> dict:
    return next(main(response).find_all(lambda n: n.tag == "img" and "thumb" in n.classes)).attrs


def test_the_confirm_delete_thumbnails_have_their_size(client, user, make_picture):
    """No width/height: the page below jumped when (or if) the thumbnail came."""
    pic = make_picture(user, title="Gull")  # 64x48, shown 320 px wide
    client.force_login(user)
    attrs = thumb(client.post(f"/p/{pic.pk}/", {"action": "delete"}))  # the confirm page
    assert (attrs.get("width"), attrs.get("height")) == ("320", "240")
    tall = make_picture(None, title="Tern")
    tall.width, tall.height = 300, 1000
    tall.save()
    EncodeJob.objects.create(status=JobStatus.DONE, picture=tall, deletion_digest=deletion_digest("k" * 32))
    attrs = thumb(client.get(f"/delete/{'k' * 32}/"))
    assert (attrs.get("width"), attrs.get("height")) == ("320", "1067")


# 6. the token URL's Copy button -------------------------------------------------------------
def test_the_picture_pages_token_url_has_a_copy_button(client, user, make_picture):
    """A bare read-only field, unlike every other URL field of the site."""
    pic = make_picture(user, title="Gull")
    client.force_login(user)
    page = main(client.get(f"/p/{pic.pk}/"))
    token_url = f"http://testserver/i/{pic.token}"
    field = next(page.find_all(lambda n: n.tag == "input" and n.attrs.get("value") == token_url))
    row = field.parent
    assert "copy-row" in row.classes and "readonly" in field.attrs and field.attrs.get("id")
    buttons = [b for b in row.find_all(lambda n: n.tag == "button") if "copy" in b.classes]
    labels = list(row.find_all(lambda n: n.tag == "label"))
    assert [b.attrs.get("data-copy") for b in buttons] == [field.attrs["id"]]
    assert [(lb.attrs.get("for"), lb.text.strip()) for lb in labels] == [(field.attrs["id"], "Token URL")]

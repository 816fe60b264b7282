"""The lists read on every page view are served by an index in their own order: the first page
of a user with 20,000 pictures read and sorted all 20,000 rows (62 ms on SQLite), the public
gallery every album of every user."""
from __future__ import annotations

import pytest
from django.db import connection, transaction

from imagehost import selectors
from imagehost.models import Visibility
from imagehost.services import library, links

pytestmark = pytest.mark.django_db


def sorts_rows(queryset) -> list[str]:
    """The plan's sort steps for the first page of ``queryset`` (empty: an index gives the order)."""
    sql, params = queryset[:24].query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask for the plan of a big one
            cursor.execute("EXPLAIN " + sql, params)
            return [row[0] for row in cursor.fetchall() if "Sort" in row[0]]
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall() if "TEMP B-TREE" in row[-1]]


def test_a_users_newest_pictures_links_and_the_gallery_come_from_an_index(user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    for i in range(3):
        links.get_or_create_short_link(make_picture(user, album=album, title=f"p{i}").token, user)
    lists = {
        "library": selectors.pictures_for_owner(user),
        "links": selectors.short_links_for_owner(user),
        "album": selectors.album_pictures(album, user),
        "gallery": selectors.public_albums(),
    }
    assert {name: sorts_rows(qs) for name, qs in lists.items()} == {name: [] for name in lists}

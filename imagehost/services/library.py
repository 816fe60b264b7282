"""A signed-in user's library: pictures and albums."""
from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max

from ..models import Album, EncodeJob, Picture, Visibility
from ..selectors import links_deleted_with
from .errors import InvalidInput, NotFound
from .links import new_slug
from .rows import lock_or_not_found

NO_PICTURE = "No such picture."
TITLE_MAX_CHARS = 200
#: Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069): in a title they reverse
#: or reorder whatever the page shows after it (the tab's title, a message, a preview's text).
BIDI_CONTROLS_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_title(title: str | None, *, strip: bool = True) -> str:
    """A title as pictures, albums and uploads keep it: without bidi controls
    (``BIDI_CONTROLS_RE``; the direction marks U+200E/U+200F stay, they embed nothing),
    stripped of surrounding white space unless ``strip=False``, cut to ``TITLE_MAX_CHARS``."""
    title = BIDI_CONTROLS_RE.sub("", title or "")
    return (title.strip() if strip else title)[:TITLE_MAX_CHARS]


def lock_album(album: Album | int) -> None:
    """Hold the album's row until the transaction ends, so that pictures going into it (moves,
    uploads, finishing encodes) and its deletion take turns. Take it before any job or picture
    row, as every caller here does, so that no two of them wait on each other. NotFound if the
    album has been deleted."""
    lock_or_not_found(Album, album.pk if isinstance(album, Album) else album, "No such album.")


def next_position(album: Album) -> int:
    """The position after the album's last picture. Call it inside the transaction that adds
    the picture: it locks the album (``lock_album``), so pictures added at once queue for their
    places. NotFound if the album has been deleted."""
    lock_album(album)
    top = album.pictures.aggregate(m=Max("position"))["m"]
    return 0 if top is None else top + 1


# --- pictures ---------------------------------------------------------------------------
def update_picture(picture: Picture, *, title: str | None = None) -> Picture:
    """Change a picture's title. NotFound if it has been deleted."""
    if title is not None:
        with transaction.atomic():
            lock_or_not_found(Picture, picture.pk, NO_PICTURE)
            picture.title = clean_title(title)
            picture.save(update_fields=["title"])
    return picture


def move_picture_to_album(picture: Picture, album: Album | None) -> Picture:
    """Put a picture in one of its owner's albums (at the end), or take it out (None).
    NotFound if either has been deleted."""
    if album is not None and album.owner_id != picture.owner_id:
        raise NotFound("No such album.")
    with transaction.atomic():
        position = next_position(album) if album else 0  # the album's lock first (lock_album)
        lock_or_not_found(Picture, picture.pk, NO_PICTURE)
        picture.album, picture.position = album, position
        picture.save(update_fields=["album", "position"])
    return picture


def delete_picture(picture: Picture, *, delete_links: bool = True) -> int:
    """Delete a picture row and, by default, its short links (they answer 404 from then on);
    returns how many links went.

    Links to the same token stay while another of the owner's pictures (for an anonymous
    picture, another anonymous upload) has that token: they are listed on its page, or are its
    shared link; only links reserved for this picture's own upload go then. The token itself
    cannot be recalled: anyone holding the token URL keeps the image.
    """
    with transaction.atomic():
        deleted_links = 0
        if delete_links:
            doomed = links_deleted_with(picture)
            deleted_links = len([link.delete() for link in doomed])  # one by one: signals drop cached look-ups
        # its deletion link: "deleted already"; the title typed for it goes with it
        EncodeJob.objects.filter(picture=picture).update(deletion_digest="", title="")
        picture.delete()
    return deleted_links


# --- albums -----------------------------------------------------------------------------
def unguessable_album_slug(title: str = "") -> str:
    """A new album's slug: random only (``links.new_slug``: about 71 random bits), since an
    unlisted album's only protection is its slug. It names no title words: the slug never
    changes, and a title typed for a private album ("Divorce evidence") would stay in the
    address after a rename and once the album is shared. ``title`` is not used (the admin
    passes it). Albums made before keep their slugs (``slugify(title)-<random>``)."""
    return new_slug()


def _check_visibility(visibility: str) -> str:
    if visibility not in Visibility.values:
        raise InvalidInput(f"Visibility must be one of: {', '.join(Visibility.values)}.", field="visibility")
    return visibility


def create_album(owner: Any, title: str, visibility: str = Visibility.PRIVATE) -> Album:
    """Create an album for a signed-in user; its slug is unguessable."""
    title = clean_title(title)
    if not title:
        raise InvalidInput("An album needs a title.", field="title")
    return Album.objects.create(
        owner=owner, title=title, slug=unguessable_album_slug(), visibility=_check_visibility(visibility)
    )


def update_album(album: Album, *, title: str | None = None, visibility: str | None = None) -> Album:
    """Rename an album and/or change its visibility. NotFound if it has been deleted."""
    if title is not None:
        title = clean_title(title)
        if not title:
            raise InvalidInput("An album needs a title.", field="title")
        album.title = title
    if visibility is not None:
        album.visibility = _check_visibility(visibility)
    with transaction.atomic():
        lock_album(album)  # NotFound if deleted meanwhile (a plain save() would write it back)
        album.save(update_fields=["title", "visibility", "updated"])
    return album


def delete_album(album: Album) -> None:
    """Delete an album; its pictures stay in the library, outside any album. NotFound if it has
    been deleted already."""
    with transaction.atomic():
        lock_album(album)  # a picture going into it now finishes first, and is then taken out
        album.delete()


def reorder_album(album: Album, picture_ids: list[int]) -> None:
    """Set the album's order: ``picture_ids`` must be exactly the album's pictures. Holds the
    album (``lock_album``), so pictures joining or leaving it meanwhile wait their turn."""
    with transaction.atomic():
        lock_album(album)
        current = dict(album.pictures.values_list("pk", "position"))
        if len(picture_ids) != len(set(picture_ids)) or set(picture_ids) != set(current):
            raise InvalidInput("The new order must list each picture of the album exactly once.")
        moved = [Picture(pk=pk, position=i) for i, pk in enumerate(picture_ids) if current[pk] != i]
        Picture.objects.bulk_update(moved, ["position"], batch_size=500)  # one UPDATE per 500 moved rows


def move_picture_in_album(picture: Picture, delta: int) -> tuple[int, int]:
    """Move a picture up (delta<0) or down (delta>0) in its album's order; returns its new place
    (from 0) and the album's size. InvalidInput if it is not (or no longer) in an album."""
    album = picture.album
    if album is None:
        raise InvalidInput("This picture is not in an album.")
    with transaction.atomic():
        lock_album(album)  # held until the order read here is written back (reorder_album)
        ids = list(album.pictures.order_by("position", "created", "pk").values_list("pk", flat=True))
        if picture.pk not in ids:
            raise InvalidInput("This picture is no longer in that album.")
        i = ids.index(picture.pk)
        j = max(0, min(len(ids) - 1, i + delta))
        ids.insert(j, ids.pop(i))
        reorder_album(album, ids)
    return j, len(ids)

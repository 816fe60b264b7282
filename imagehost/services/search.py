"""Similar pictures, the read side: who may see what, search by vector, by example, by picture.

Scopes (both surfaces): ``mine`` = the viewer's own pictures (sign-in required);
``public`` = pictures in a **public album** (this codebase has no per-picture visibility:
a picture is public exactly when its album is public; unlisted albums and pictures outside
albums are never in ``public``). Pictures whose token is blocked are never returned.
The allowed ids are read from the database for every search and passed into FAISS, and
the hits are re-read through the same scope query, so no other user's private or unlisted
picture can come back whatever the index holds.

The query image of a search by example is decoded and embedded in the request, never stored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import codec
import numpy as np
from django.db.models import QuerySet

from .. import similarity as sim
from ..models import Picture, PictureEmbedding, Visibility
from ..selectors import not_taken_down, stored_token, with_link_slugs, with_takedowns
from .errors import BadToken, InvalidInput, NotFound, ServiceError, UnsupportedImage
from .links import resolve_short_link
from .rendering import decode_slot
from .similar import MODEL, embed_picture, embed_pil, embed_token_image, live_index
from .tokens import checked_token_sha256, identity_key_matches, is_blocked, split_pasted_url
from .uploads import validate_upload

SCOPES = ("mine", "public")
MAX_K = 100
DEFAULT_K = 12
QUERY_MAX_PIXELS = 512 * 512  # the model sees 224x224; a larger decode only costs time

_TOKEN_PATH = re.compile(r"^/i/([A-Za-z0-9_-]+)(?:\.[A-Za-z]{3,4})?$")
_SHORT_PATH = re.compile(r"^/s/([A-Za-z0-9_-]+)(?:\.[A-Za-z]{3,4})?/?$")
_IDENTITY_PATH = re.compile(r"^/t/([0-9a-f]{64})(?:\.[A-Za-z]{3,4})?$")


class SignInRequired(ServiceError):
    status, code = 401, "not_authenticated"


@dataclass(frozen=True)
class SimilarPicture:
    picture: Picture
    score: float  # cosine similarity, 1.0 = the same vector


def _signed_in(viewer: Any) -> bool:
    return viewer is not None and getattr(viewer, "is_authenticated", False)


def default_scope(viewer: Any) -> str:
    return "mine" if _signed_in(viewer) else "public"


def scope_pictures(scope: str, viewer: Any) -> QuerySet[Picture]:
    """The pictures ``viewer`` may get back in ``scope`` (blocked tokens left out)."""
    if scope == "mine":
        if not _signed_in(viewer):
            raise SignInRequired("Sign in to search your own pictures (or use scope=public).")
        pictures = Picture.objects.filter(owner=viewer)
    elif scope == "public":
        pictures = Picture.objects.filter(album__visibility=Visibility.PUBLIC)
    else:
        raise InvalidInput(f"scope must be one of: {', '.join(SCOPES)}.", field="scope")
    return not_taken_down(pictures)


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be a whole number from 1 to {MAX_K}.", field="k")
    return k


def search_vector(
    vector: np.ndarray, *, scope: str, viewer: Any, k: int = DEFAULT_K, exclude: tuple[int, ...] = ()
) -> list[SimilarPicture]:
    """The ``k`` pictures in ``scope`` nearest to ``vector``, best first (each read with its
    album, owner, ``taken_down`` and ``link_slug``: no query per picture to show them)."""
    check_k(k)
    allowed = scope_pictures(scope, viewer)
    ids = np.fromiter(allowed.values_list("pk", flat=True), dtype=np.int64)
    hits = live_index().get().search(vector, k, allowed_ids=ids, exclude_ids=list(exclude))
    found = with_link_slugs(with_takedowns(allowed)).select_related("album", "owner").in_bulk([pid for pid, _ in hits])
    return [SimilarPicture(found[pid], score) for pid, score in hits if pid in found]


def visible_picture(pk: int, viewer: Any) -> Picture:
    """A picture whose neighbours ``viewer`` may ask for: their own, or a public one not taken down."""
    query = Picture.objects.filter(pk=pk).select_related("album").first()
    own = query is not None and _signed_in(viewer) and query.owner_id == viewer.pk
    public = (
        query is not None and query.album is not None and query.album.visibility == Visibility.PUBLIC
        and not is_blocked(query.token_sha256)
    )
    if not (own or public):
        raise NotFound("No such picture.")
    return query


def similar_to_picture(picture: Picture, *, scope: str, viewer: Any, k: int = DEFAULT_K) -> list[SimilarPicture]:
    """Pictures like ``picture`` (itself excluded), embedding it first if it has no vector yet."""
    row = PictureEmbedding.objects.filter(picture=picture, model=MODEL).first() or embed_picture(picture)
    vector = sim.blob_to_vector(row.vector, sim.get_spec(MODEL).dim)
    return search_vector(vector, scope=scope, viewer=viewer, k=k, exclude=(picture.pk,))


# --- the query of a search by example --------------------------------------------------------
def token_from_text(text: str) -> str:
    """A pasted token, token URL (``/i/<token>``, ``/image?q=``) or short link (``/s/<slug>``) -> the token.

    The token's length, alphabet and takedown are checked (414 / 400 / 410; a short link: 404 / 410).
    """
    text = (text or "").strip()
    if not text:
        raise BadToken("Paste a token, a token URL (/i/…) or a short link (/s/…).")
    token = text
    if "/" in text or "?" in text:
        url = split_pasted_url(text)
        if m := _TOKEN_PATH.match(url.path):
            token = m.group(1)
        elif m := _SHORT_PATH.match(url.path):
            token = resolve_short_link(m.group(1), count_hit=False).token
        elif m := _IDENTITY_PATH.match(url.path):  # a grid's image address (what "copy image address" gives)
            key = parse_qs(url.query).get("k", [""])[0]
            token = stored_token(m.group(1)) if identity_key_matches(m.group(1), key) else None
            if token is None:
                raise NotFound("No such image.")
        elif url.path.endswith("/image") and parse_qs(url.query).get("q"):
            token = parse_qs(url.query)["q"][0]
        else:
            raise BadToken("That is not a token URL (/i/…) or a short link (/s/…) of this site.")
    checked_token_sha256(token)
    return token


def embed_query_file(data: bytes) -> np.ndarray:
    """An uploaded query image (bounded like uploads: 413 / 415) -> its vector; nothing is stored."""
    facts = validate_upload(data)
    with decode_slot(facts.width * facts.height):  # decoded here, in the web process: bounded like /i/
        try:
            image = codec.images.load_rgb(data, max_pixels=QUERY_MAX_PIXELS)
        except codec.InvalidImage as exc:
            raise UnsupportedImage(str(exc)) from exc
    return embed_pil(image).vector


def embed_query_text(text: str) -> np.ndarray:
    """A pasted token / token URL / short link -> the vector of what it decodes to."""
    return embed_token_image(token_from_text(text)).vector

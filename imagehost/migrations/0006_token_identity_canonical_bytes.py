"""Token identity becomes ``codec.token_id`` (sha256 of the canonical bytes), issue 8.1.

Until now ``token_sha256`` was the sha256 of the token *text*; several texts spell the same
bytes, which let a blocked token through. This migration:

- canonicalises every ShortLink token (a link made from a second spelling now stores the
  canonical text of the same image) and recomputes ``token_sha256`` on Picture and ShortLink;
- maps each BlockedToken (a text hash) through the Picture / ShortLink rows whose old text
  hash it equals, to their new identity. A block that matches no row is kept as it is: it
  can no longer match anything (no token identity equals a text hash), so the operator
  must block that token again by its text or URL (``manage.py block_token``); the count of
  such blocks is printed;
- a second anonymous link for the same image (made through another spelling) would break
  ``shortlink_anon_token``; the later one is deleted (printed), the first one stays;
- a token text that is not base64url at all (cannot happen for rows the site made) keeps
  its text hash and is printed;
- the Django cache is cleared: its short-link, takedown and rendering entries are keyed by
  (or remember verdicts about) the old identities.
"""
from __future__ import annotations

import base64
import binascii
import hashlib

from django.db import migrations


def _text_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def canonical(token: str) -> str | None:
    """The canonical spelling of a token's bytes (lenient decode), or None if it has none."""
    text = token.strip()
    if len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def identity(token: str) -> str:
    """sha256 of the canonical bytes (``codec.token_id`` for canonical text), else the text hash."""
    text = canonical(token)
    return hashlib.sha256(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))).hexdigest() if text else _text_hash(token)


def to_canonical_identity(apps, schema_editor) -> None:
    Picture = apps.get_model("imagehost", "Picture")
    ShortLink = apps.get_model("imagehost", "ShortLink")
    BlockedToken = apps.get_model("imagehost", "BlockedToken")
    old_to_new: dict[str, str] = {}
    unreadable = deleted = 0
    for pic in Picture.objects.only("pk", "token").iterator():
        old_to_new[_text_hash(pic.token)] = new = identity(pic.token)
        unreadable += canonical(pic.token) is None
        Picture.objects.filter(pk=pic.pk).update(token_sha256=new)
    seen: set[str] = set()
    for link in ShortLink.objects.order_by("created", "pk").only("pk", "token", "owner_id").iterator():
        text = canonical(link.token)
        unreadable += text is None
        new = identity(link.token)
        old_to_new[_text_hash(link.token)] = new
        owner_key = f"{link.owner_id}:{new}"
        if owner_key in seen:
            ShortLink.objects.filter(pk=link.pk).delete()
            deleted += 1
            continue
        seen.add(owner_key)
        ShortLink.objects.filter(pk=link.pk).update(token=text or link.token, token_sha256=new)
    unmatched = 0
    for block in BlockedToken.objects.all().iterator():
        new = old_to_new.get(block.token_sha256)
        if new is None:
            unmatched += 1
        elif new != block.token_sha256:
            if BlockedToken.objects.filter(token_sha256=new).exists():
                block.delete()
            else:
                BlockedToken.objects.filter(pk=block.pk).update(token_sha256=new)
    # Every cached look-up (short links, blocks, renderings) is keyed by the old identity or
    # remembers a verdict about it; historical models send no signals, so drop them all.
    from django.core.cache import cache

    cache.clear()
    if unreadable or deleted or unmatched:
        print(
            f"\n  token identity: {unmatched} block(s) matched no stored token (block them again by token),"
            f" {deleted} duplicate short link(s) deleted, {unreadable} unreadable token(s) kept their text hash"
        )


class Migration(migrations.Migration):
    dependencies = [("imagehost", "0005_encodejob_kind")]

    operations = [
        migrations.RunPython(to_canonical_identity, migrations.RunPython.noop, elidable=False),
    ]

"""The admin: its takedown action and its forms refuse what the site cannot serve, inside the
admin (a message or a form error), never the site's error page or a 500."""
from __future__ import annotations

import pytest

from imagehost.models import BlockedToken, ShortLink
from imagehost.services import links, uploads

pytestmark = pytest.mark.django_db


def test_block_action_skips_links_still_waiting_for_their_upload(admin_client, user, png_bytes, make_picture):
    """A reserved link (no token yet) among the selection made the action stop half-way on the
    site's 400 page ("the token is empty"), one of the tokens blocked and no message."""
    reserved = ShortLink.objects.get(job=uploads.submit_uploads([png_bytes()], owner=user).jobs[0])
    live = links.get_or_create_short_link(make_picture(user).token, user)
    already = links.get_or_create_short_link(make_picture(user).token, user)
    admin_client.post("/admin/imagehost/shortlink/", {"action": "block_tokens", "_selected_action": [already.pk]})
    r = admin_client.post(
        "/admin/imagehost/shortlink/", {"action": "block_tokens", "_selected_action": [live.pk, reserved.pk, already.pk]},
        follow=True,
    )
    assert r.status_code == 200 and r.redirect_chain[0][1] == 302
    body = r.content.decode()
    assert "Blocked 1 token(s)" in body and "1 already blocked" in body and "1 still encoding (no token yet)" in body
    assert set(BlockedToken.objects.values_list("token_sha256", flat=True)) == {live.token_sha256, already.token_sha256}


def test_a_short_links_slug_is_checked_in_the_admin(admin_client, client, user, make_picture):
    """A slug with a "/" broke its owner's pages (500, NoReverseMatch)."""
    link = links.get_or_create_short_link(make_picture(user).token, user)
    r = admin_client.post(f"/admin/imagehost/shortlink/{link.pk}/change/", {"slug": "holiday/2024", "owner": user.pk, "job": ""})
    assert r.status_code == 200 and "letters, digits" in r.content.decode()
    link.refresh_from_db()
    assert link.slug != "holiday/2024"
    client.force_login(user)
    assert client.get("/links/").status_code == 200


def test_tokens_are_not_edited_in_the_admin(admin_client, user, make_picture):
    """A token is the picture itself: a garbage one typed into the admin was a 500 (InvalidToken
    on save). Pictures and links come from uploads and the site, so the admin neither edits
    their tokens nor adds them by hand."""
    pic = make_picture(user)
    r = admin_client.post(f"/admin/imagehost/picture/{pic.pk}/change/", {
        "title": "renamed", "token": "garbage token!!", "owner": user.pk, "album": "", "model_name": "taef2",
        "width": 64, "height": 48, "position": 0,
    })
    assert r.status_code == 302
    pic.refresh_from_db()
    assert pic.title == "renamed" and pic.token != "garbage token!!"
    assert admin_client.get("/admin/imagehost/picture/add/").status_code == 403
    assert admin_client.get("/admin/imagehost/shortlink/add/").status_code == 403
    # a job by hand had no original to encode and no deletion key: only uploads make them
    assert admin_client.get("/admin/imagehost/encodejob/add/").status_code == 403


def test_revoking_api_tokens_in_the_admin_says_what_it_did(admin_client, user):
    from imagehost.api.models import ApiToken

    first, _ = ApiToken.issue(user, "one")
    second, _ = ApiToken.issue(user, "two")
    second.revoke()
    r = admin_client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [first.pk, second.pk]}, follow=True)
    assert "Revoked 1 token(s). 1 were revoked already." in r.content.decode()
    first.refresh_from_db()
    assert first.revoked_at is not None

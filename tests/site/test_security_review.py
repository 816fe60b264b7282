"""Findings of a security review, one test each (each failed before its fix)."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from imagehost.api.models import ApiToken
from imagehost.models import EncodeJob, JobStatus, Visibility
from imagehost.services import library, links

pytestmark = pytest.mark.django_db
OLD, NEW, NEWER = "Old-pass-12345", "New-pass-67890x", "Third-pass-24680"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_password_change_or_reset_revokes_the_accounts_api_tokens(django_user_model):
    """A stolen session could mint an API token; the victim's new password logged the session
    out but the token kept working, through a change and a reset alike."""
    bob = django_user_model.objects.create_user("bob", "bob@example.com", OLD)
    _, raw = ApiToken.issue(bob, "backup")  # what the thief made
    api = bearer(raw)
    assert api.get("/api/v1/pictures").status_code == 200
    victim = Client()
    victim.force_login(bob)
    r = victim.post("/accounts/password_change/", {"old_password": OLD, "new_password1": NEW, "new_password2": NEW}, follow=True)
    assert r.status_code == 200 and "1 API token was revoked" in r.content.decode()
    assert api.get("/api/v1/pictures").status_code == 401
    _, raw = ApiToken.issue(bob, "again")
    bob.refresh_from_db()
    url = f"/accounts/reset/{urlsafe_base64_encode(force_bytes(bob.pk))}/{default_token_generator.make_token(bob)}/"
    anon = Client()
    form = anon.get(url)["Location"]
    assert anon.post(form, {"new_password1": NEWER, "new_password2": NEWER}).status_code == 302
    assert bearer(raw).get("/api/v1/pictures").status_code == 401
    assert ApiToken.objects.filter(user=bob).active().count() == 0


def test_album_slugs_are_long_and_guessing_them_is_rate_limited(user, settings):
    """An unlisted album's only protection is its slug: it was slugify(title) + 8 hex digits
    (2**32 for a known title) and its pages took unlimited guesses."""
    album = library.create_album(user, "Photos", Visibility.UNLISTED)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{11}", album.slug), album.slug  # 72 random bits and more, no title words
    settings.EMMM_SLUG_RATE = "5/m"
    codes = [Client().get(f"/albums/photos-guess{i:04d}/").status_code for i in range(7)]
    assert codes[:5] == [404] * 5 and codes[5:] == [429, 429]
    api = APIClient()
    codes = [api.get(f"/api/v1/albums/photos-guess{i:04d}/pictures").status_code for i in range(7)]
    assert 429 in codes


def test_a_jobs_answer_shows_the_album_only_to_its_owner(user, make_picture):
    """The job id lets its holder see one upload; its album's slug opened the whole unlisted album."""
    album = library.create_album(user, "Family", Visibility.UNLISTED)
    pic = make_picture(user, album=album)
    job = EncodeJob.objects.create(owner=user, status=JobStatus.DONE, picture=pic, album=album)
    assert APIClient().get(f"/api/v1/jobs/{job.pk}").json()["picture"]["album"] is None
    owner = APIClient()
    owner.force_authenticate(user)
    assert owner.get(f"/api/v1/jobs/{job.pk}").json()["picture"]["album"] == album.slug


def test_the_sharex_file_names_an_ipv6_host_whole(user, settings):
    settings.ALLOWED_HOSTS = ["[::1]", "testserver"]
    client = Client()
    client.force_login(user)
    r = client.post("/api/tokens/sharex.sxcu", HTTP_HOST="[::1]:8000")
    assert r["Content-Disposition"] == 'attachment; filename="emmmbedding-[__1].sxcu"'
    assert r.json()["Name"] == "emmmbedding ([::1])"


def test_the_delete_link_pages_cancel_goes_back_on_this_site_only(client, user, make_picture):
    link = links.get_or_create_short_link(make_picture(user).token, user)
    client.force_login(user)
    r = client.post(f"/links/{link.slug}/", {"action": "delete", "next": "https://evil.example/x"})
    assert "evil.example" not in r.content.decode() and '<a href="/library/">Cancel</a>' in r.content.decode()
    r = client.post(f"/links/{link.slug}/", {"action": "delete", "next": "/links/?page=2"})
    assert '<a href="/links/?page=2">Cancel</a>' in r.content.decode()


def test_a_password_set_anywhere_revokes_the_tokens(django_user_model):
    """The admin's password form and ``manage.py changepassword`` save the user like the site does."""
    cy = django_user_model.objects.create_user("cy", password=OLD)
    _, raw = ApiToken.issue(cy, "script")
    cy.last_login = None
    cy.save(update_fields=["last_login"])  # a login's save touches no password: tokens stay
    cy.save()
    assert bearer(raw).get("/api/v1/pictures").status_code == 200
    cy.set_password(NEW)
    cy.save()  # what the admin and changepassword do
    assert bearer(raw).get("/api/v1/pictures").status_code == 401


def test_a_password_hash_upgraded_at_login_revokes_nothing(django_user_model, settings):
    """Django re-hashes a password with a stronger hasher when its user logs in: not a new password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    dee = django_user_model.objects.create_user("dee", password=OLD)
    _, raw = ApiToken.issue(dee, "script")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]
    old_hash = dee.password
    assert Client().login(username="dee", password=OLD)
    dee.refresh_from_db()
    assert dee.password != old_hash and dee.password.startswith("pbkdf2_")  # upgraded
    assert bearer(raw).get("/api/v1/pictures").status_code == 200

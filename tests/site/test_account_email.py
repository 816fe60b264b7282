"""Issue 11: sign-up collects an optional e-mail address, account settings change it, and
"Forgot your password?" works end to end (Django's locmem e-mail backend: mail.outbox)."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(autouse=True)
def locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_signup_with_and_without_an_email(client):
    page = client.get("/accounts/signup/").content.decode()
    assert 'name="email"' in page and "Optional" in page
    r = client.post("/accounts/signup/", {"username": "carol", "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 302
    assert get_user_model().objects.get(username="carol").email == "carol@example.com"
    client.logout()
    r = client.post("/accounts/signup/", {"username": "dave", "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 302 and get_user_model().objects.get(username="dave").email == ""
    client.logout()
    r = client.post("/accounts/signup/", {"username": "erin", "email": "not-an-address", "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 400 and "valid email" in r.content.decode()
    assert not get_user_model().objects.filter(username="erin").exists()


def test_account_settings_change_the_email(client, django_user_model):
    assert client.get("/accounts/settings/").status_code == 302  # sign-in first
    user = django_user_model.objects.create_user("frank", password=PASSWORD)
    client.force_login(user)
    assert "No e-mail address yet" in client.get("/accounts/settings/").content.decode()
    assert client.post("/accounts/settings/", {"email": "frank@example.com"}).status_code == 302
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    assert client.post("/accounts/settings/", {"email": "nope"}).status_code == 400
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    too_long = "f" * 60 + "@" + ".".join(["d" * 60] * 4) + ".com"  # a valid address of 309 characters
    r = client.post("/accounts/settings/", {"email": too_long})  # was stored (SQLite) or a DataError 500 (PostgreSQL)
    assert r.status_code == 400 and "at most 254 characters" in r.content.decode()
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    client.post("/accounts/settings/", {"email": ""})
    user.refresh_from_db()
    assert user.email == ""


def test_password_reset_end_to_end(client):
    client.post("/accounts/signup/", {"username": "gina", "email": "gina@example.com", "password1": PASSWORD, "password2": PASSWORD})
    client.logout()
    r = client.post("/accounts/password_reset/", {"email": "gina@example.com"})
    assert r.status_code == 302 and r["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["gina@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[0].body).group(1)
    r = client.get(link)  # Django swaps the token for a session value and redirects to set-password
    assert r.status_code == 302
    form_url = r["Location"]
    assert client.get(form_url).status_code == 200
    r = client.post(form_url, {"new_password1": "a-new-password-77", "new_password2": "a-new-password-77"})
    assert r.status_code == 302 and r["Location"] == "/accounts/reset/done/"
    assert not client.login(username="gina", password=PASSWORD)
    assert client.login(username="gina", password="a-new-password-77")
    client.logout()
    used = client.get(link)  # used once: a refused link is a 400 page that offers a new one (was a 200)
    assert used.status_code == 400 and "invalid or has been used" in used.content.decode()
    assert 'href="/accounts/password_reset/"' in used.content.decode()
    assert client.get("/accounts/reset/zz/not-a-token/").status_code == 400
    assert client.post("/accounts/reset/zz/not-a-token/", {"new_password1": "x-pass-123456"}).status_code == 400
    mail.outbox.clear()
    client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert mail.outbox == []  # no account, no mail (and the page does not say so)


def test_refused_account_forms_answer_400_with_the_form(client, django_user_model):
    """A wrong password, a mismatched new password or a malformed address is a 400 page that
    shows the form and its error, as sign-up and settings do (Django's views answer 200)."""
    django_user_model.objects.create_user("hana", "hana@example.com", PASSWORD)
    r = client.post("/accounts/login/", {"username": "hana", "password": "wrong"})
    assert r.status_code == 400 and b"correct username and password" in r.content
    assert client.post("/accounts/password_reset/", {"email": "not-an-address"}).status_code == 400
    assert client.login(username="hana", password=PASSWORD)
    r = client.post("/accounts/password_change/", {"old_password": "wrong", "new_password1": "x-pass-123456", "new_password2": "x-pass-123456"})
    assert r.status_code == 400 and b"old password was entered incorrectly" in r.content
    client.logout()
    client.post("/accounts/password_reset/", {"email": "hana@example.com"})
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[-1].body).group(1)
    form_url = client.get(link)["Location"]
    r = client.post(form_url, {"new_password1": "a-new-password-77", "new_password2": "another-password-88"})
    assert r.status_code == 400 and b"didn" in r.content
    assert client.login(username="hana", password=PASSWORD)  # nothing changed

"""Issue 11: sign-up collects an optional e-mail address, account settings change it, and
"Forgot your password?" works end to end (Django's locmem e-mail backend: mail.outbox).

An address becomes the account's only once a link mailed to it is opened and confirmed:
otherwise anyone could name someone else's address, and reset mails for their account would
go there."""
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


def confirm_link(message) -> str:
    return re.search(r"http://testserver(/accounts/email/confirm/[^/\s]+/)", message.body).group(1)


def confirm(client, message, user=None) -> None:
    link = confirm_link(message)
    if user is not None:
        client.force_login(user)
    page = client.get(link)  # a page with a button: mail scanners that open links change nothing
    assert page.status_code == 200 and 'name="confirm"' in page.content.decode()
    assert client.post(link, {"confirm": "yes"}).status_code == 302


def test_signup_with_and_without_an_email(client):
    page = client.get("/accounts/signup/").content.decode()
    assert 'name="email"' in page and "Optional" in page
    r = client.post("/accounts/signup/", {"username": "carol", "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert carol.email == ""  # not before it is confirmed
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["carol@example.com"]
    assert "carol" in mail.outbox[0].body
    assert "sent a link to carol@example.com" in client.get("/library/", follow=True).content.decode()
    client.logout()
    assert client.get(confirm_link(mail.outbox[0]))["Location"].startswith("/accounts/login/?next=")  # sign in first
    confirm(client, mail.outbox[0], carol)
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"
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
    assert user.email == ""
    assert "sent a link to frank@example.com" in client.get("/accounts/settings/").content.decode()
    confirm(client, mail.outbox[-1])
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
    client.post("/accounts/password_reset/", {"email": "gina@example.com"})
    assert len(mail.outbox) == 1  # only the confirmation: no reset to an address not confirmed
    confirm(client, mail.outbox.pop(), get_user_model().objects.get(username="gina"))
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


def test_someone_elses_address_gets_no_reset_mail_for_an_account_it_did_not_confirm(client, django_user_model):
    """Mallory names Victor's address: Victor gets one confirmation mail (he ignores it), and
    a password reset for that address then mails him nothing for Mallory's account."""
    mallory = django_user_model.objects.create_user("mallory", password=PASSWORD)
    client.force_login(mallory)
    client.post("/accounts/settings/", {"email": "victor@example.com"})
    client.logout()
    mail.outbox.clear()
    client.post("/accounts/password_reset/", {"email": "victor@example.com"})
    assert mail.outbox == []


def test_a_confirmation_link_that_is_altered_expired_or_for_another_account(client, settings, django_user_model):
    henry = django_user_model.objects.create_user("henry", password=PASSWORD)
    client.force_login(henry)
    client.post("/accounts/settings/", {"email": "henry@example.com"})
    link = confirm_link(mail.outbox[-1])
    tampered = link.replace(link.split("/")[-2], link.split("/")[-2][:-3] + "AAA")
    for bad in (tampered, "/accounts/email/confirm/not-a-link/"):
        r = client.post(bad, {"confirm": "yes"})
        assert r.status_code == 400 and "invalid or has expired" in r.content.decode()
        assert client.get(bad).status_code == 400
    settings.EMMM_EMAIL_CONFIRM_MAX_AGE_S = -1  # every link is too old
    assert client.post(link, {"confirm": "yes"}).status_code == 400
    henry.refresh_from_db()
    assert henry.email == ""
    settings.EMMM_EMAIL_CONFIRM_MAX_AGE_S = 3600
    other = django_user_model.objects.create_user("ines", password=PASSWORD)
    client.force_login(other)  # someone else's link: not theirs to confirm
    r = client.post(link, {"confirm": "yes"})
    assert r.status_code == 400 and "another account" in r.content.decode()
    assert django_user_model.objects.get(pk=henry.pk).email == ""


def test_a_confirmation_link_works_once_and_not_after_a_newer_one(client, django_user_model):
    """A mistyped address's link, opened later by whoever owns that mailbox, must not take the
    account: links are for the signed-in account holder only, and stop working once the
    address (or the password) changes."""
    kim = django_user_model.objects.create_user("kim", password=PASSWORD)
    client.force_login(kim)
    client.post("/accounts/settings/", {"email": "typo@exmaple.com"})
    client.post("/accounts/settings/", {"email": "kim@example.com"})
    typo, good = confirm_link(mail.outbox[0]), confirm_link(mail.outbox[1])
    assert client.post(good, {"confirm": "yes"}).status_code == 302
    stranger = django_user_model.objects.create_user("stranger", password=PASSWORD)
    for who in (None, stranger, kim):  # not signed in, signed in as someone else, even kim
        client.logout()
        if who:
            client.force_login(who)
        assert client.post(typo, {"confirm": "yes"}).status_code in (302, 400)
    assert client.post(good, {"confirm": "yes"}).status_code == 400  # used: the address changed
    kim.refresh_from_db()
    assert kim.email == "kim@example.com"
    client.post("/accounts/settings/", {"email": ""})
    client.force_login(stranger)  # the mailbox's owner, signed in as themselves: still not theirs
    assert client.post(typo, {"confirm": "yes"}).status_code == 400
    kim.refresh_from_db()
    assert kim.email == ""


def test_confirmation_mails_are_rate_limited(client, settings, django_user_model):
    settings.EMMM_PASSWORD_RESET_RATE = "2/h"
    client.force_login(django_user_model.objects.create_user("ivy", password=PASSWORD))
    codes = [client.post("/accounts/settings/", {"email": f"ivy{i}@example.com"}).status_code for i in range(3)]
    assert codes == [302, 302, 429] and len(mail.outbox) == 2


def test_removing_the_address_needs_no_confirmation(client, django_user_model):
    jo = django_user_model.objects.create_user("jo", "jo@example.com", PASSWORD)
    client.force_login(jo)
    assert "Password reset links go to <strong>jo@example.com</strong>" in client.get("/accounts/settings/").content.decode()
    client.post("/accounts/settings/", {"email": ""})
    jo.refresh_from_db()
    assert jo.email == "" and mail.outbox == []


@pytest.fixture
def mail_server_down(settings):
    """A real SMTP backend pointed at a port nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2


def test_a_mail_server_outage_is_a_clear_503_not_a_500(client, django_user_model, mail_server_down):
    lee = django_user_model.objects.create_user("lee", "lee@example.com", PASSWORD)
    r = client.post("/accounts/password_reset/", {"email": "lee@example.com"})
    assert r.status_code == 302  # Django logs the failure and says nothing: the page never tells who has an account
    client.force_login(lee)
    r = client.post("/accounts/settings/", {"email": "lee2@example.com"})
    assert r.status_code == 503 and "could not be sent" in r.content.decode()
    client.logout()
    r = client.post("/accounts/signup/", {"username": "max", "email": "max@example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    assert r.status_code == 200 and "could not send the confirmation mail" in r.content.decode()
    assert django_user_model.objects.filter(username="max").exists()  # the account is made all the same


def test_signing_up_past_the_mail_limit_makes_the_account_without_the_mail(client, settings, django_user_model):
    """It was a 429 and no account (the limit was checked first); a mail outage already made the account."""
    settings.EMMM_PASSWORD_RESET_RATE = "1/h"
    client.post("/accounts/password_reset/", {"email": "someone@example.com"})  # the one mail this hour
    r = client.post("/accounts/signup/", {"username": "ned", "email": "ned@example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    assert r.status_code == 200 and "could not send the confirmation mail" in r.content.decode()
    assert django_user_model.objects.filter(username="ned").exists() and mail.outbox == []

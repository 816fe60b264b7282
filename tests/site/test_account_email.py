"""Issue 11: sign-up collects an optional e-mail address, account settings change it, and
"Forgot your password?" works end to end (Django's locmem e-mail backend: mail.outbox).

An address becomes the account's only once a link mailed to it is opened and confirmed:
otherwise anyone could name someone else's address, and reset mails for their account would
go there."""
from __future__ import annotations

import re
import socket
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

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
    assert client.post("/accounts/settings/", {"email": "frank@example.com", "password": PASSWORD}).status_code == 302
    user.refresh_from_db()
    assert user.email == ""
    assert "sent a link to frank@example.com" in client.get("/accounts/settings/").content.decode()
    confirm(client, mail.outbox[-1])
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    assert client.post("/accounts/settings/", {"email": "nope", "password": PASSWORD}).status_code == 400
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    too_long = "f" * 60 + "@" + ".".join(["d" * 60] * 4) + ".com"  # a valid address of 309 characters
    r = client.post("/accounts/settings/", {"email": too_long, "password": PASSWORD})  # was stored (SQLite) or a DataError 500 (PostgreSQL)
    assert r.status_code == 400 and "at most 254 characters" in r.content.decode()
    user.refresh_from_db()
    assert user.email == "frank@example.com"
    client.post("/accounts/settings/", {"email": "", "password": PASSWORD})
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
    client.post("/accounts/settings/", {"email": "victor@example.com", "password": PASSWORD})
    client.logout()
    mail.outbox.clear()
    client.post("/accounts/password_reset/", {"email": "victor@example.com"})
    assert mail.outbox == []


def test_a_confirmation_link_that_is_altered_expired_or_for_another_account(client, settings, django_user_model):
    henry = django_user_model.objects.create_user("henry", password=PASSWORD)
    client.force_login(henry)
    client.post("/accounts/settings/", {"email": "henry@example.com", "password": PASSWORD})
    link = confirm_link(mail.outbox[-1])
    signature = link.split("/")[-2]
    tampered = link.replace(signature, signature[:-3] + "".join("B" if c == "A" else "A" for c in signature[-3:]))
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
    client.post("/accounts/settings/", {"email": "typo@exmaple.com", "password": PASSWORD})
    client.post("/accounts/settings/", {"email": "kim@example.com", "password": PASSWORD})
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
    client.post("/accounts/settings/", {"email": "", "password": PASSWORD})
    client.force_login(stranger)  # the mailbox's owner, signed in as themselves: still not theirs
    assert client.post(typo, {"confirm": "yes"}).status_code == 400
    kim.refresh_from_db()
    assert kim.email == ""


def test_confirmation_mails_are_rate_limited(client, settings, django_user_model):
    settings.EMMM_PASSWORD_RESET_RATE = "2/h"
    client.force_login(django_user_model.objects.create_user("ivy", password=PASSWORD))
    codes = [client.post("/accounts/settings/", {"email": f"ivy{i}@example.com", "password": PASSWORD}).status_code for i in range(3)]
    assert codes == [302, 302, 429] and len(mail.outbox) == 2


def test_removing_the_address_needs_no_confirmation(client, django_user_model):
    jo = django_user_model.objects.create_user("jo", "jo@example.com", PASSWORD)
    client.force_login(jo)
    assert "Password reset links go to <strong>jo@example.com</strong>" in client.get("/accounts/settings/").content.decode()
    client.post("/accounts/settings/", {"email": "", "password": PASSWORD})
    jo.refresh_from_db()
    assert jo.email == "" and [m.to for m in mail.outbox] == [["jo@example.com"]]  # told, not asked


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
    r = client.post("/accounts/settings/", {"email": "lee2@example.com", "password": PASSWORD})
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


def test_changing_or_removing_the_address_needs_the_password(client, django_user_model):
    """A stolen session (or an unlocked computer) could move the address to the thief's, then
    reset the password there: the whole account, for good."""
    kim = django_user_model.objects.create_user("kim", "kim@example.com", PASSWORD)
    client.force_login(kim)
    assert 'name="password"' in client.get("/accounts/settings/").content.decode()
    for password in ("", "wrong-horse"):
        for email in ("thief@example.net", ""):
            r = client.post("/accounts/settings/", {"email": email, "password": password})
            assert r.status_code == 400 and ("required" in r.content.decode() or "incorrect" in r.content.decode())
    kim.refresh_from_db()
    assert kim.email == "kim@example.com" and mail.outbox == []
    assert client.post("/accounts/settings/", {"email": "kim2@example.com", "password": PASSWORD}).status_code == 302
    assert [m.to for m in mail.outbox] == [["kim2@example.com"]]


def test_the_old_address_is_told_when_the_address_or_the_password_changes(client, django_user_model, django_capture_on_commit_callbacks):
    lou = django_user_model.objects.create_user("lou", "lou@example.com", PASSWORD)
    client.force_login(lou)
    client.post("/accounts/settings/", {"email": "lou@new.example", "password": PASSWORD})
    confirm(client, mail.outbox.pop())
    notice = mail.outbox.pop()
    assert notice.to == ["lou@example.com"] and "lou@new.example" in notice.body and "lou" in notice.body
    with django_capture_on_commit_callbacks(execute=True):  # sent once the new password is committed
        client.post("/accounts/password_change/", {"old_password": PASSWORD, "new_password1": PASSWORD + "x", "new_password2": PASSWORD + "x"})
    notice = mail.outbox.pop()
    assert notice.to == ["lou@new.example"] and "password" in notice.subject.lower()
    client.post("/accounts/settings/", {"email": "", "password": PASSWORD + "x"})
    notice = mail.outbox.pop()
    assert notice.to == ["lou@new.example"] and "removed" in notice.body
    assert mail.outbox == []


def test_a_reset_tells_the_account_its_password_changed(client, django_user_model, django_capture_on_commit_callbacks):
    django_user_model.objects.create_user("mo", "mo@example.com", PASSWORD)
    client.post("/accounts/password_reset/", {"email": "mo@example.com"})
    link = re.search(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox.pop().body).group(1)
    form = client.get(link, follow=True)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(form.redirect_chain[-1][0], {"new_password1": PASSWORD + "y", "new_password2": PASSWORD + "y"})
    notice = mail.outbox.pop()
    assert notice.to == ["mo@example.com"] and "password" in notice.subject.lower()


@pytest.mark.parametrize("address", ["a@" + "ü" * 60 + ".example", "b@münchen-stadtwerke-kundenservice-abteilung-süd-ost-nord-west.example"])
def test_an_address_whose_domain_cannot_be_mailed_is_refused_not_a_500(client, django_user_model, address):
    """Django's EmailField takes a Unicode label of up to 63 characters; its IDNA form can be
    longer, and sending then failed (UnicodeError): a 500, and a sign-up half made."""
    r = client.post("/accounts/signup/", {"username": "nia", "email": address, "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 400 and "valid email" in r.content.decode()
    assert not django_user_model.objects.filter(username="nia").exists()
    client.force_login(django_user_model.objects.create_user("oz", password=PASSWORD))
    r = client.post("/accounts/settings/", {"email": address, "password": PASSWORD})
    assert r.status_code == 400 and "valid email" in r.content.decode() and mail.outbox == []


@pytest.mark.parametrize("taken, new", [("Émile", "émile"), ("alice", "аlice"), ("bob", "ｂｏｂ")])
def test_a_name_that_only_looks_like_a_taken_one_is_refused(client, django_user_model, taken, new):
    """On SQLite "Émile" and "émile" were two accounts; anywhere, "аlice" (a Cyrillic а) or
    "ｂｏｂ" (full-width) showed as "by alice" or "by bob" on public albums."""
    django_user_model.objects.create_user(taken, password=PASSWORD)
    r = client.post("/accounts/signup/", {"username": new, "password1": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 400
    assert not django_user_model.objects.filter(username=new).exists()


def test_typing_the_current_address_in_another_case_sends_nothing(client, django_user_model):
    kit = django_user_model.objects.create_user("kit", "Kit@Example.com", PASSWORD)
    client.force_login(kit)
    r = client.post("/accounts/settings/", {"email": "kit@example.com", "password": PASSWORD}, follow=True)
    assert "That is your address already" in r.content.decode() and mail.outbox == []


def test_the_reset_page_speaks_of_the_server_console_only_when_mail_goes_there(client, settings):
    assert "server console" not in client.get("/accounts/password_reset/done/").content.decode()  # locmem here
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert "server console" in client.get("/accounts/password_reset/done/").content.decode()


def test_one_address_gets_a_few_mails_an_hour_however_many_clients_ask(client, settings, django_user_model):
    """The limit was per client only: three addresses (or twelve IPv6 /64s) sent one inbox a
    reset mail each time. Past the address's own limit, a reset sends nothing (the page says
    the same, so it tells nobody whether the address has an account); a confirmation is a 429."""
    settings.EMMM_MAILS_TO_ADDRESS_RATE = "2/h"
    django_user_model.objects.create_user("pat", "pat@example.com", PASSWORD)
    for i in range(4):
        r = client.post("/accounts/password_reset/", {"email": "PAT@example.com"}, REMOTE_ADDR=f"2001:db8:{i}::1")
        assert r.status_code == 302 and r["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == 2
    client.force_login(django_user_model.objects.create_user("quin", password=PASSWORD))
    codes = [client.post("/accounts/settings/", {"email": "victim@example.org", "password": PASSWORD},
                         REMOTE_ADDR=f"192.0.2.{i}").status_code for i in range(3)]
    assert codes == [302, 302, 429] and len(mail.outbox) == 4


def gated_smtp_server(release: threading.Event, received: list) -> socket.socket:
    """An SMTP server that greets only once ``release`` is set; each mail's data goes to ``received``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def session(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            release.wait(30)
            conn.sendall(b"220 ready\r\n")
            data: list[bytes] | None = None
            for line in lines:
                if data is not None:
                    if line.strip() == b".":
                        received.append(b"".join(data))
                        data = None
                        conn.sendall(b"250 ok\r\n")
                    else:
                        data.append(line)
                    continue
                verb = line[:4].upper()
                conn.sendall({b"DATA": b"354 go\r\n", b"QUIT": b"221 bye\r\n"}.get(verb, b"250 ok\r\n"))
                if verb == b"DATA":
                    data = []
                elif verb == b"QUIT":
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=session, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def test_a_reset_answers_without_waiting_for_the_mail_server(client, settings, django_user_model, wait_for):
    """Sent during the request, a reset took the mail server's time for an address with an
    account and none for an unknown one, so the answer's time said whether the address has an
    account (357 ms against 2 ms with a server answering in 50 ms). It is sent in the background."""
    settings.EMMM_MAIL_IN_BACKGROUND = True
    release, received = threading.Event(), []
    server = gated_smtp_server(release, received)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.getsockname()[1], 5
    django_user_model.objects.create_user("rae", "rae@example.com", PASSWORD)
    try:
        r = client.post("/accounts/password_reset/", {"email": "rae@example.com"})
        assert r.status_code == 302 and received == []  # answered before the server even greeted
        release.set()
        wait_for(lambda: received, timeout=30, what="the reset mail")
        assert b"/accounts/reset/" in received[0]
    finally:
        release.set()
        server.close()


def test_an_account_holder_deletes_their_account_and_everything_in_it(client, django_user_model, make_picture,
                                                                      django_capture_on_commit_callbacks):
    """Only an admin could delete an account: a user who wanted their pictures, albums and
    links gone had no way to do it."""
    from imagehost.api.models import ApiToken
    from imagehost.models import Album, Picture, ShortLink
    from imagehost.services import library, links

    sam = django_user_model.objects.create_user("sam", "sam@example.com", PASSWORD)
    keep = make_picture(django_user_model.objects.create_user("tess", password=PASSWORD), title="Not Sam's")
    album = library.create_album(sam, "Coast", "public")
    picture = make_picture(sam, album=album, title="Gull")
    slug = links.get_or_create_short_link(picture.token, sam).slug
    ApiToken.issue(sam, "laptop")
    client.force_login(sam)
    assert 'href="/accounts/delete/"' in client.get("/accounts/settings/").content.decode()
    page = client.get("/accounts/delete/").content.decode()
    assert "1 picture" in page and "1 album" in page and "1 short link" in page and 'name="password"' in page
    assert client.post("/accounts/delete/", {"password": "wrong-horse"}).status_code == 400
    assert django_user_model.objects.filter(username="sam").exists()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/accounts/delete/", {"password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/"
    assert not django_user_model.objects.filter(username="sam").exists()
    assert not Picture.objects.filter(owner__isnull=True, title="Gull").exists() and not Album.objects.filter(title="Coast").exists()
    assert not ShortLink.objects.filter(slug=slug).exists() and client.get(f"/s/{slug}").status_code == 404
    assert ApiToken.objects.count() == 0 and Picture.objects.filter(pk=keep.pk).exists()
    assert client.get("/library/").status_code == 302  # signed out
    assert [m.to for m in mail.outbox] == [["sam@example.com"]] and "deleted" in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_the_password_notice_goes_after_the_new_password_is_saved_and_not_if_it_is_not(client, django_user_model, monkeypatch):
    """Registered from pre_save, the notice ran at once outside a transaction: before the new
    hash was written, and even when the write failed."""
    from imagehost.services import accounts

    uma = django_user_model.objects.create_user("uma", "uma@example.com", PASSWORD)
    seen = []
    monkeypatch.setattr(accounts, "notify_password_changed",
                        lambda user: seen.append(django_user_model.objects.get(pk=user.pk).check_password("new-horse-battery-7")))
    uma.set_password("new-horse-battery-7")
    uma.save()
    assert seen == [True]  # sent once the new hash is there
    uma.set_password("third-horse-battery-7")
    with pytest.raises(RuntimeError), transaction.atomic():
        uma.save()
        raise RuntimeError("the request failed after the save")
    assert seen == [True]  # rolled back: nothing to tell


def test_a_reset_link_sent_in_the_background_keeps_the_sites_url_prefix(client, settings, django_user_model, wait_for):
    """The mail thread reversed the link without the request's prefix: under a site served at
    /img/ the link pointed outside it."""
    from django.urls import clear_script_prefix, set_script_prefix

    settings.EMMM_MAIL_IN_BACKGROUND = True
    django_user_model.objects.create_user("val", "val@example.com", PASSWORD)
    set_script_prefix("/img/")  # what the WSGI handler sets from SCRIPT_NAME (the test client does not)
    try:
        client.post("/accounts/password_reset/", {"email": "val@example.com"})
    finally:
        clear_script_prefix()
    wait_for(lambda: mail.outbox, timeout=30, what="the reset mail")
    assert re.search(r"http://testserver/img/accounts/reset/\S+/", mail.outbox[0].body), mail.outbox[0].body


def test_deleting_an_account_takes_as_many_queries_for_30_pictures_as_for_3(django_user_model, make_picture):
    """One change-log INSERT per picture (the similar index's removals), all in one transaction:
    2,058 queries and 1.8 s for 2,000 pictures on SQLite. Each removal is still logged."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from imagehost.models import EmbeddingChange, PictureEmbedding
    from imagehost.services import accounts

    def delete_with(count: int) -> int:
        owner = django_user_model.objects.create_user(f"u{count}", password=PASSWORD)
        pictures = [make_picture(owner, title=f"p{i}") for i in range(count)]
        PictureEmbedding.objects.bulk_create([PictureEmbedding(picture=p, model="m", vector=b"v") for p in pictures])
        before = set(EmbeddingChange.objects.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            accounts.delete_account(owner)
        logged = EmbeddingChange.objects.exclude(pk__in=before).values_list("picture_id", flat=True)
        assert sorted(logged) == sorted(p.pk for p in pictures)  # every process's index drops them
        return len(queries.captured_queries)

    few, many = delete_with(3), delete_with(30)
    assert few == many, (few, many)

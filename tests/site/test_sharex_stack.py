"""Issue 11, the whole way: ShareX's request (as built from the downloaded ``.sxcu``) over real
HTTP to gunicorn, a real Celery worker encoding, then ShareX's ``URL`` and ``DeletionURL``."""
from __future__ import annotations

import re
import time

import pytest
import requests

from imagehost.api.models import ApiToken
from tests.sharex import sharex_request, sharex_template

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def download_sxcu(server_url: str, user) -> dict:
    """The ``.sxcu`` as the tokens page hands it out (signed in through the real login form)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    # The server checks passwords with the site's own hashers (the tests' fast MD5 is in this process only).
    user.password = PBKDF2PasswordHasher().encode("correct-horse-battery", "sharexsalt")
    user.save(update_fields=["password"])
    s = requests.Session()
    login = s.get(server_url + "/accounts/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    s.post(server_url + "/accounts/login/", data={"csrfmiddlewaretoken": csrf, "username": user.username,
           "password": "correct-horse-battery"}, headers={"Origin": "null"}, timeout=30).raise_for_status()
    page = s.get(server_url + "/api/tokens/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = s.post(server_url + "/api/tokens/sharex.sxcu", data={"csrfmiddlewaretoken": csrf}, headers={"Origin": "null"}, timeout=30)
    assert r.status_code == 200 and ".sxcu" in r.headers["Content-Disposition"]
    return r.json()


def test_sharex_upload_link_and_deletion_over_http(gunicorn_server_factory, celery_worker, redis_broker, user, png_bytes):
    # The web server sends to the worker's broker; each keeps its own cache (a stale "reserved"
    # look-up in the web server's cache must not hold the link back).
    gunicorn_server = gunicorn_server_factory(CELERY_BROKER_URL=redis_broker.url)
    cfg = download_sxcu(gunicorn_server.url, user)
    assert ApiToken.objects.filter(user=user).count() == 1
    url, headers, body = sharex_request(cfg, "Screenshot_2026-11-22_0930.png", png_bytes(96, 64, seed=21))
    started = time.monotonic()
    r = requests.post(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text  # at once, not after the encode
    assert time.monotonic() - started < 10
    link, deletion = sharex_template(cfg["URL"], r.content), sharex_template(cfg["DeletionURL"], r.content)
    assert link.startswith(gunicorn_server.url + "/s/") and deletion.startswith(gunicorn_server.url + "/delete/")

    deadline, seen = time.monotonic() + 180, []
    while time.monotonic() < deadline:  # what a browser refreshing the "encoding…" page sees
        page = requests.get(link, headers=HTML, timeout=30)
        seen.append(page.status_code)
        if page.status_code != 503:
            break
        assert "Encoding…" in page.text and page.headers["Retry-After"] == "3"
        time.sleep(1)
    assert seen[-1] == 200, (seen, celery_worker.log()[-2000:])
    assert page.headers["Content-Type"] == "image/webp"
    assert requests.get(link + ".png", timeout=30).headers["Content-Type"] == "image/png"

    confirm = requests.get(deletion, timeout=30)  # GET never deletes
    assert confirm.status_code == 200 and "Delete this upload?" in confirm.text
    assert requests.get(link, timeout=30).status_code == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.text).group(1)
    done = requests.post(deletion, data={"csrfmiddlewaretoken": csrf}, cookies=confirm.cookies,
                         headers={"Origin": "null"}, timeout=30)  # a browser's form post under no-referrer
    assert done.status_code == 200 and "upload-deleted" in done.text
    assert requests.get(link, timeout=30).status_code == 404
    assert requests.get(deletion, timeout=30).status_code == 404

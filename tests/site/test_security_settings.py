"""Issue 8.8: Content-Security-Policy without inline code; ``check --deploy`` clean in production."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_pages_send_a_policy_without_inline_code(client):
    r = client.get("/")
    policy = r["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert client.get("/accounts/login/")["Content-Security-Policy"] == policy


def test_templates_have_no_inline_scripts_or_handlers():
    """What the policy would block: inline <script> code, on…= handlers, style= attributes."""
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert not re.search(r"\sstyle\s*=|<style", text), template


def test_api_docs_load_their_script_from_a_url(client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    assert "script-src 'self'" in r["Content-Security-Policy"]
    body = r.content.decode()
    inline = [s for s in re.findall(r"<script\b[^>]*>(.*?)</script>", body, re.S) if s.strip()]
    assert inline == []


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "img.example.com",
        "DJANGO_BEHIND_TLS_PROXY": "1",
        "DJANGO_EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",  # else emmm.W001: mail printed, not sent
        "EMMM_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SECURE_COOKIES", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def settings_value(expression: str, **variables: str) -> subprocess.CompletedProcess:
    """``expression`` over ``emmmsite.settings`` (as ``s``) in a fresh interpreter with these variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_BEHIND_TLS_PROXY", "EMMM_NUM_PROXIES")}
    return subprocess.run([sys.executable, "-c", f"import emmmsite.settings as s; print({expression})"],
                          cwd=ROOT, env={**env, **variables}, capture_output=True, text=True, timeout=120)


def test_behind_a_tls_proxy_rate_limits_key_on_the_address_the_proxy_saw():
    """With DJANGO_BEHIND_TLS_PROXY=1 every request comes from the proxy's address: keyed on it,
    one client's five reset mails (or ten wrong passwords) locked every user out."""
    proxies = "s.REST_FRAMEWORK['NUM_PROXIES']"
    assert settings_value(proxies, DJANGO_BEHIND_TLS_PROXY="1").stdout.strip() == "1"
    assert settings_value(proxies).stdout.strip() == "0"  # no proxy: the socket's address
    assert settings_value(proxies, DJANGO_BEHIND_TLS_PROXY="1", EMMM_NUM_PROXIES="2").stdout.strip() == "2"


def test_check_deploy_warns_when_a_proxy_hides_every_client(settings):
    from django.core.checks import run_checks

    from imagehost.checks import clients_are_told_apart

    settings.BEHIND_TLS_PROXY = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert [w.id for w in clients_are_told_apart(None)] == ["emmm.W002"]
    assert "emmm.W002" in [w.id for w in run_checks(include_deployment_checks=True)]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert clients_are_told_apart(None) == []
    settings.BEHIND_TLS_PROXY = False
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert clients_are_told_apart(None) == []


def test_the_https_redirect_spares_the_health_check_and_keeps_a_post_a_post(client, settings):
    """Behind the proxy /healthz answered 301 to https on a port without TLS (a probe that counts
    3xx as up never saw a 503), and a POST over http got a 301, which clients follow as a GET
    (405)."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code in (200, 503)
    page = client.get("/albums/?x=1")
    assert page.status_code == 301 and page["Location"] == "https://testserver/albums/?x=1"
    post = client.post("/accounts/login/", {"username": "a", "password": "b"})
    assert post.status_code == 308 and post["Location"] == "https://testserver/accounts/login/"
    # An API client set up with http:// kept working through a redirect, sending its bearer token
    # in clear on every call: it is refused, loudly, and told where to go.
    for call in (client.post("/api/v1/images", data=b"x", content_type="image/png", HTTP_AUTHORIZATION="Bearer emmm_x"),
                 client.get("/api/v1/pictures")):
        error = call.json()["error"]
        assert call.status_code == 403 and error["code"] == "https_required" and "https://testserver/api/v1/" in error["message"]

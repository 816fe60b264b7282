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

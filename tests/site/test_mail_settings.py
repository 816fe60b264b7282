"""Production mail: an SMTP server can be configured (there was no way to set its host), and
`check --deploy` warns while mail is only printed (reset links in the log, nothing sent)."""
from __future__ import annotations

import os
import subprocess
import sys

from django.core.checks import run_checks

from imagehost.checks import mail_is_sent


def test_check_deploy_warns_while_mail_is_printed(settings):
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert [w.id for w in mail_is_sent(None)] == ["emmm.W001"]
    assert "emmm.W001" in [w.id for w in run_checks(include_deployment_checks=True)]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert mail_is_sent(None) == []
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"  # sends none, on purpose
    assert mail_is_sent(None) == []


def test_an_smtp_server_is_one_url():
    code = "import emmmsite.settings as s; print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS)"
    env = {**os.environ, "DJANGO_EMAIL_URL": "smtp+tls://mailer:p%40ss@smtp.example.com:587"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.com", "587", "mailer", "p@ss", "True"]

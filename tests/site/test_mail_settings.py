"""Production mail: an SMTP server can be configured (there was no way to set its host), and
`check --deploy` warns while mail is only printed (reset links in the log, nothing sent)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


def mail_settings(**variables: str) -> subprocess.CompletedProcess:
    code = "import emmmsite.settings as s; print(getattr(s, 'EMAIL_HOST', '-'), s.EMAIL_TIMEOUT)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_EMAIL")}
    return subprocess.run([sys.executable, "-c", code], env={**env, **variables}, capture_output=True, text=True, timeout=120)


def test_a_silent_mail_server_cannot_hold_a_request_for_ever():
    """EMAIL_TIMEOUT was None: a server that accepts and never greets held the request (and its
    web thread) until it went away; a ``?timeout=`` in the URL was ignored."""
    assert mail_settings(DJANGO_EMAIL_URL="smtp+tls://m:p@smtp.example.com:587").stdout.split()[-1] == "10"
    assert mail_settings(DJANGO_EMAIL_TIMEOUT_S="3").stdout.split()[-1] == "3"
    refused = mail_settings(DJANGO_EMAIL_TIMEOUT_S="0")
    assert refused.returncode != 0 and "ImproperlyConfigured: DJANGO_EMAIL_TIMEOUT_S=" in refused.stderr


@pytest.mark.parametrize("url", ["smtp+tls://me:pa/ss@mail.example:587", "smtp+tls://me:12/34@mail.example:587",
                                 "smtp+tls://me:se#cret@mail.example:587", "smtp://mail.example:notaport"])
def test_a_mail_url_it_cannot_read_stops_the_site_naming_it_without_the_password(url):
    """A "/" in the password was a ValueError quoting part of it, or (digits) a quiet
    EMAIL_HOST=me, EMAIL_PORT=12 and no login: every reset mail lost."""
    result = mail_settings(DJANGO_EMAIL_URL=url)
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: DJANGO_EMAIL_URL ") and "percent-encode" in last
    assert not any(secret in result.stderr for secret in ("pa/ss", "12/34", "se#cret")), result.stderr


@pytest.mark.parametrize("url, backend", [("consolemail://", "console"), ("dummymail://", "dummy"), ("memorymail://", "locmem")])
def test_the_other_mail_urls_of_django_environ_still_work(url, backend):
    """The check for SMTP URLs (a host, nothing after the port) refused these, which have neither."""
    code = "import emmmsite.settings as s; print(s.EMAIL_BACKEND)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_EMAIL")}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "DJANGO_EMAIL_URL": url}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-300:]
    assert result.stdout.strip() == f"django.core.mail.backends.{backend}.EmailBackend"

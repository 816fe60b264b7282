"""No whole token (the image itself) and no secret link (deletion key, password reset, e-mail
confirmation: each acts without signing in) in a log line: gunicorn's access log had them
redacted, Django's own lines (a 500's "Internal Server Error: /i/<token>" and its traceback)
did not, and deletion keys (32 characters) were short of the token pattern."""
from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from emmmsite.gunicorn_logging import RedactingFormatter, redact_tokens
from imagehost.services import rendering

pytestmark = pytest.mark.django_db

KEY = "q2Vx1cD_r8sTbW0yZ-a9LmNoPk4ReS7u"  # an upload's deletion key (secrets.token_urlsafe(24))


@pytest.mark.parametrize(
    "line, kept, secret",
    [
        (f'"POST /delete/{KEY}/ HTTP/1.1" 302', '"POST /delete/…/ HTTP/1.1" 302', KEY),
        ('"GET /accounts/reset/MQ/c4x1q2-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d/ HTTP/1.1"', '"GET /accounts/reset/…/ HTTP/1.1"', "MQ/c4x1q2"),
        ("GET /accounts/email/confirm/eyJ1IjoxfQ:1vXyZ:abcDEF/?x=1", "GET /accounts/email/confirm/…/?x=1", "eyJ1IjoxfQ"),
    ],
)
def test_secret_links_are_cut_to_their_start(line, kept, secret):
    assert redact_tokens(line) == kept and secret not in redact_tokens(line)


def test_a_500_on_a_token_url_logs_no_token(real_token, monkeypatch):
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, RedactingFormatter))
    stream = io.StringIO()
    monkeypatch.setattr(handler, "stream", stream)

    def crash(*args, **kwargs):
        raise RuntimeError(f"decoding {real_token} failed")

    monkeypatch.setattr(rendering, "render_token_image", crash)
    monkeypatch.setattr(rendering, "cached_rendering", lambda *a, **k: None)
    response = Client(raise_request_exception=False).get(f"/i/{real_token}")
    assert response.status_code == 500
    logged = stream.getvalue()
    assert "Internal Server Error: /i/" in logged and "Traceback" in logged
    assert real_token not in logged and real_token[:40] not in logged
    assert f"{real_token[:8]}…sha256:" in logged


def test_every_django_logger_redacts_under_debug_too(real_token, monkeypatch, settings):
    """With DJANGO_DEBUG=1 Django's own console handler (on the "django" logger, no formatter)
    printed the 500's path, the whole token, beside the redacted root handler."""
    settings.DEBUG = True
    for name in ("django", "django.request", "django.server"):
        logger = logging.getLogger(name)
        while logger is not None:
            assert all(isinstance(h.formatter, RedactingFormatter) for h in logger.handlers), (name, logger.handlers)
            logger = logger.parent if logger.propagate else None
    logging.getLogger("django.request").error("Internal Server Error: /i/%s", real_token)  # must not raise


def test_celery_worker_handlers_are_redacted_keeping_their_format():
    from emmmsite.celery import _redact_worker_logs

    logger, stream = logging.getLogger("emmm.test.celery"), io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    try:
        _redact_worker_logs(logger=logger)
        logger.error("job for /delete/%s/ failed", KEY)
        assert stream.getvalue() == "[ERROR] job for /delete/…/ failed\n"
    finally:
        logger.removeHandler(handler)


def test_a_request_for_another_host_is_one_warning_line_without_a_traceback(monkeypatch):
    """A scanner's Host header is a client error (400): logged as one line, not a traceback
    at ERROR (Django's default for DisallowedHost)."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, RedactingFormatter))
    stream = io.StringIO()
    monkeypatch.setattr(handler, "stream", stream)
    records: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "emit", lambda record, emit=handler.emit: (records.append(record), emit(record)))
    response = Client(raise_request_exception=False).get("/", HTTP_HOST="scanner.example")
    assert response.status_code == 400
    logged = stream.getvalue()
    assert "Invalid HTTP_HOST header: 'scanner.example'" in logged
    assert "Traceback" not in logged
    assert [r.levelno for r in records if "HTTP_HOST" in r.getMessage()] == [logging.WARNING]


def test_importing_faiss_logs_nothing_at_info(caplog):
    """faiss's loader logged six INFO lines per process (the CPU builds it tried, one with a
    ModuleNotFoundError) into every program's output."""
    import importlib

    import faiss.loader

    with caplog.at_level(logging.INFO):
        importlib.reload(faiss.loader)
    assert not [r for r in caplog.records if r.name.startswith("faiss") and r.levelno < logging.WARNING]


SHORT = "AgUA" + "x7Qm-9_k" * 7  # 60 characters: the API takes max_chars down to the codec's floor (46)


@pytest.mark.parametrize(
    "line",
    [f'"GET /i/{SHORT} HTTP/1.1" 200', f'"GET /i/{SHORT}.png?w=300 HTTP/1.1" 200', f'"GET /image?q={SHORT}&f=png HTTP/1.1" 200',
     f'"GET /image?f=png&q={SHORT} HTTP/1.1" 200'],
)
def test_a_token_shorter_than_64_characters_is_redacted_in_urls(line):
    """Runs of 64 or more characters were redacted; a 60-character token was logged whole."""
    logged = redact_tokens(line)
    assert SHORT not in logged and SHORT[8:30] not in logged
    assert f"{SHORT[:8]}…sha256:" in logged and "(60)" in logged


def test_other_query_words_stay(line='"GET /library/?q=holiday HTTP/1.1" 200'):
    assert redact_tokens(line) == line

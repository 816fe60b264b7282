"""The database unreachable (connections refused, or a silent black hole): requests that need it
answer a clear 503 with Retry-After on both surfaces, within the connect timeout; never a 500,
a traceback or a hang. Through a real gunicorn, pointed at a port where PostgreSQL is not."""
from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from imagehost.services.errors import outage_error


def _get(server, path: str, headers: dict | None = None) -> tuple[int, bytes, dict, float]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    started = time.monotonic()
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, dict(r.getheaders()), time.monotonic() - started


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("database", ["refusing", "silent"])
def test_pages_and_api_answer_503_with_retry_after(gunicorn_server_factory, database):
    with socket.socket() as unreachable:
        unreachable.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        if database == "silent":
            unreachable.listen(64)  # the kernel completes handshakes; nobody ever answers
        port = unreachable.getsockname()[1]
        server = gunicorn_server_factory(DATABASE_URL=f"postgres://emmm:emmm@127.0.0.1:{port}/emmm",
                                         EMMM_DATABASE_TIMEOUT_S="2")
        status, body, headers, elapsed = _get(server, "/albums/public/")
        assert (status, headers.get("Retry-After")) == (503, "5"), server.log()[-3000:]
        assert b"try again in a few seconds" in body and elapsed < 15
        status, body, headers, elapsed = _get(server, "/api/v1/pictures", {"Authorization": "Token emmm_" + "a" * 43})
        assert (status, headers.get("Retry-After")) == (503, "5")
        assert b'"code":"database_unavailable"' in body.replace(b" ", b"") and elapsed < 15
        status, body, _, elapsed = _get(server, "/healthz")
        assert status == 503 and b"database" in body and elapsed < 15
        assert _get(server, "/")[0] == 200  # a page that needs no database still works
    assert "Traceback" not in server.log(), server.log()[-6000:]


@pytest.mark.django_db
def test_an_error_on_a_live_connection_is_not_an_outage():
    """A missing table or a lock timeout is a bug or a load problem to see as a 500, not a 503."""
    from django.db import OperationalError, connection

    connection.ensure_connection()
    assert outage_error(OperationalError("no such table: imagehost_thing")) is None

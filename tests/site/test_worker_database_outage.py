"""The database goes away under a running worker (a restart, a failover): the encode task that
cannot reach it is retried by Celery with a short backoff, so the job is done seconds after the
database is back instead of waiting for the sweeper. A real worker process, its PostgreSQL
connections going through a TCP proxy that the test cuts and restores."""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imagehost.models import EncodeJob, JobStatus
from tests.conftest import database_url

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


class CuttableProxy:
    """127.0.0.1:<port> -> ``target``; ``cut()`` drops every connection and refuses new ones
    (accepted, then closed at once) until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.up, self._open = target, True, set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            open_now = list(self._open)
        for s in open_now:
            self._drop(s)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture
def proxied_database():
    parts = urlsplit(database_url())
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}" if "@" in parts.netloc else f"127.0.0.1:{proxy.port}"
    yield proxy, urlunsplit(parts._replace(netloc=netloc))
    proxy.close()


def test_a_job_sent_while_the_database_is_down_is_done_soon_after_it_is_back(
    client, celery_worker_factory, proxied_database, png_bytes, wait_for
):
    proxy, url = proxied_database
    # The sweeper would re-send the job only after 10 minutes: only the task's own retry can finish it here.
    worker = celery_worker_factory(DATABASE_URL=url, EMMM_REQUEUE_AFTER_S="600", EMMM_RUNNING_STALE_S="600",
                                   EMMM_DATABASE_TIMEOUT_S="2")
    proxy.cut()
    r = client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(40, 32, seed=9), content_type="image/png")},
                    HTTP_ACCEPT="application/json")  # the web side reaches the database; the worker does not
    assert r.status_code == 202
    job_id = r.json()["id"]
    wait_for(lambda: "database is unavailable" in worker.log(), timeout=60, interval=0.3,
             what="the worker to meet the outage")
    assert EncodeJob.objects.get(pk=job_id).status == JobStatus.QUEUED  # nothing was lost or half-done
    proxy.restore()
    wait_for(lambda: EncodeJob.objects.get(pk=job_id).status == JobStatus.DONE, timeout=90, interval=0.5,
             what="the retried task to encode the job")
    assert EncodeJob.objects.get(pk=job_id).attempts == 1  # the attempts that never reached the job do not count

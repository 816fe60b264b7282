"""Shared fixtures for every test package (site, api, codec).

Fixtures (all real components, nothing mocked):

- ``fs_broker`` (autouse): points the in-process Celery app at a fresh kombu
  *filesystem* broker in a temp folder; ``fs_broker.messages()`` counts what was sent.
- ``isolated_cache`` (autouse): a fresh file cache, in-memory renderings and lock folder
  (``EMMM_LOCK_DIR``) per test.
- ``png_bytes(w, h, seed=0, fmt="PNG")``: make a test image with Pillow (a factory).
- ``token_pool(i)`` (session): a real ``codec.EncodeResult`` (real codec, TAEF2 weights) of
  small test image number ``i``, encoded once per session; ``real_encoded`` is
  ``token_pool(0)`` and ``real_token`` its token text. Use them only where a test decodes.
- ``FAKE_TOKEN`` / ``fake_token(n)``: well-formed tokens that are never decoded.
- ``make_picture(owner, *, album=None, title="pic", token=None)``: a Picture row; a unique
  fake token unless ``token=`` gives a real one.
- ``fast_password_hashing`` (autouse): MD5 hashing for test users (Django's default PBKDF2
  costs about a second per user on this machine).
- ``codec_environment`` (session, autouse): ``EMMM_TORCH_THREADS`` and ``EMMM_MODEL_DIR``
  (``../shared/models`` when present) for the test process and its subprocesses.
- ``redis_server`` (session): a private ``redis-server`` process on 127.0.0.1:<free port>;
  ``.url``, ``.stop()``, ``.start()`` (same port), ``.ping()``.
- ``redis_broker``: flushes ``redis_server`` and points the in-process Celery app at it.
- ``celery_worker_factory``: ``start(**env) -> WorkerProcess`` runs a real
  ``celery worker -B --pool=solo`` subprocess against the test database (PostgreSQL
  only) and ``redis_broker``; ``.kill()`` (SIGKILL), ``.stop()``, ``.log()``.
- ``celery_worker``: one worker started with the defaults.
- ``wait_for(predicate, timeout=30)``: poll until true (bounded), else fail.
- ``gunicorn_server``: the project's gunicorn config serving the test database on a
  free 127.0.0.1 port; ``.url``, ``.log()``. ``gunicorn_server_factory(**env)`` starts
  more, with other environment (e.g. ``DJANGO_BEHIND_TLS_PROXY="1"``).

Processes: every subprocess above runs in its own process group (``tests/processes.py``)
and is stopped by group (SIGTERM, then SIGKILL after a bound). ``pytest_sessionfinish``
fails the run if any process the tests started (a worker, beat, gunicorn, redis-server,
supervisord) is still alive at the end, and kills it.

Markers: ``stack`` (PostgreSQL + Redis + worker), ``browser`` (Chromium), ``slow``.
``make test`` runs everything on PostgreSQL, then ``-m "not stack and not browser"`` on SQLite.
Tests using worker/gunicorn fixtures need ``@pytest.mark.django_db(transaction=True)``.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.processes import leftovers, spawn, stop_group

REPO = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "A" * 40  # a well-formed token for rows and requests that are never decoded


def fake_token(n: int) -> str:
    """A distinct well-formed (canonical base64url) token that is never decoded."""
    from codec.token import to_text

    return to_text(bytes(24) + n.to_bytes(6, "big"))


@pytest.fixture(scope="session", autouse=True)
def codec_environment():
    """The codec's environment for this process and the workers/servers it starts."""
    patch = pytest.MonkeyPatch()
    if "EMMM_TORCH_THREADS" not in os.environ:
        patch.setenv("EMMM_TORCH_THREADS", "2")
    if "EMMM_MODEL_DIR" not in os.environ and (REPO.parent / "shared" / "models").is_dir():
        patch.setenv("EMMM_MODEL_DIR", str(REPO.parent / "shared" / "models"))
    yield
    patch.undo()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate: Callable[[], object], timeout: float, interval: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def wait_for():
    """``wait_for(predicate, timeout=30, interval=0.1, what="...")``: bounded polling."""

    def wait(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
        return _wait(predicate, timeout, interval, what)

    return wait


@pytest.fixture(autouse=True)
def mail_sent_before_the_answer(settings):
    """``mail.outbox`` is filled when the request returns (the site sends reset mail after the
    answer: ``imagehost/services/mail.py``, tested on its own in ``test_account_email.py``)."""
    settings.EMMM_MAIL_IN_BACKGROUND = False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- images ---------------------------------------------------------------------------
@pytest.fixture
def png_bytes():
    """Factory: ``png_bytes(w, h, seed=0, fmt="PNG") -> bytes`` of a smooth test picture."""
    from PIL import Image, ImageDraw

    def make(w: int = 64, h: int = 48, seed: int = 0, fmt: str = "PNG") -> bytes:
        img = Image.new("RGB", (w, h), ((seed * 53) % 256, 120, 200))
        draw = ImageDraw.Draw(img)
        for i in range(0, max(w, h), 8):
            draw.line([(i, 0), (0, i)], fill=((i * 7 + seed) % 256, (i * 3) % 256, 90), width=3)
        draw.ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=(250, 220, (seed * 31) % 256))
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        return buf.getvalue()

    return make


def small_image(w: int, h: int, seed: int) -> bytes:
    """The small PNG behind ``token_pool(seed)``."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), ((seed * 53) % 256, 120, 200))
    ImageDraw.Draw(img).ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=(250, 220, (seed * 31) % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def token_pool():
    """Factory ``token_pool(i)`` -> a real codec.EncodeResult for small test image number i."""
    import codec

    done: dict[int, object] = {}

    def get(i: int = 0):
        if i not in done:
            done[i] = codec.encode(small_image(64, 48, i), refine_steps=0)  # refinement only costs time here
        return done[i]

    return get


@pytest.fixture
def real_encoded(token_pool):
    """``token_pool(0)``: a real token with its width and height."""
    return token_pool(0)


@pytest.fixture
def real_token(real_encoded) -> str:
    return real_encoded.token


@pytest.fixture
def make_picture():
    """Factory ``make_picture(owner, *, album=None, title="pic", token=None)`` -> a Picture row.

    ``owner`` may be None (anonymous). The token is a unique fake one unless ``token=`` gives a
    real one (only tests that decode need that).
    """
    from imagehost.models import Picture

    counter = iter(range(1, 1_000_000))

    def make(owner, *, album=None, title: str = "pic", token: str | None = None, **kw):
        return Picture.objects.create(
            owner=owner, album=album, title=title, token=token or fake_token(next(counter)),
            model_name="taef2", width=64, height=48, **kw,
        )

    return make


# --- cache and brokers -------------------------------------------------------------------
@pytest.fixture(autouse=True)
def isolated_cache(settings, tmp_path):
    """Fresh file caches (the default and the rate-limit counters', as ``make run`` has them) and
    lock folder for each test, in a temp folder."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        },
        "ratelimits": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "ratelimits"),
        },
    }
    settings.EMMM_LOCK_DIR = tmp_path / "locks"
    from imagehost.services import cache, rendering_cache

    rendering_cache.memory().clear()  # what this process keeps in memory: fresh too
    cache.forget_recent_links()
    yield


def point_celery_at(url: str, transport_options: dict) -> None:
    """Re-point the in-process Celery app (used by the web code to send tasks)."""
    from emmmsite.celery import app

    app.conf.broker_url = url
    app.conf.broker_transport_options = transport_options
    app.conf.broker_connection_timeout = 2
    app._pool = None
    app.amqp._producer_pool = None


@dataclass
class FsBroker:
    folder: Path

    def messages(self) -> list[Path]:
        """Messages sent and not yet consumed."""
        return sorted((self.folder / "out").glob("*.msg"))


@pytest.fixture(autouse=True)
def fs_broker(tmp_path) -> FsBroker:
    folder = tmp_path / "broker"
    for sub in ("out", "processed"):
        (folder / sub).mkdir(parents=True)
    point_celery_at(
        "filesystem://",
        {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
        },
    )
    return FsBroker(folder)


@dataclass
class RedisServer:
    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (make test installs the Debian package)")
        self.proc = spawn(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            log=self.workdir / "redis.log",
            cwd=self.workdir,
        )
        _wait(self.ping, 15, 0.05, "redis-server to start")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=10)
            self.proc = None

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.exceptions.RedisError:
            return False

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(redis_server, fs_broker):
    """The private Redis, flushed, as the in-process Celery broker."""
    if not redis_server.ping():
        redis_server.start()
    redis_server.client().flushall()
    point_celery_at(redis_server.url, {"visibility_timeout": 3600})
    yield redis_server
    if not redis_server.ping():
        redis_server.start()


# --- worker and servers ---------------------------------------------------------------------
def database_url() -> str:
    """URL of the database the tests use (the test database), for subprocesses."""
    from django.db import connection

    sd = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.fail("worker/server subprocess tests need PostgreSQL (set DATABASE_URL; `make test` does)")
    from urllib.parse import quote

    auth = quote(sd["USER"] or "")
    if sd.get("PASSWORD"):
        auth += ":" + quote(sd["PASSWORD"])
    host = sd.get("HOST") or "localhost"
    port = f":{sd['PORT']}" if sd.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{sd['NAME']}" if auth else f"postgres://{host}{port}/{sd['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        EMMM_TORCH_THREADS="2",
        PYTHONUNBUFFERED="1",
        EMMM_RATELIMIT_ENABLE="0",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    logfile: Path
    stopped: bool = field(default=False)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the main process: it dies at once, without acknowledging anything.

        Its beat child is left in the process group, which :meth:`stop` (run by the
        fixture at the end of the test) kills with everything else."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stopped = True

    def stop(self) -> None:
        """SIGTERM the worker's whole process group (worker and beat), SIGKILL after 20 s."""
        stop_group(self.proc, timeout=20)
        self.stopped = True


@pytest.fixture
def celery_worker_factory(redis_broker, transactional_db, tmp_path):
    """``start(**env)``: a real Celery worker (with beat) on the private Redis broker."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        n = len(started)
        logfile = tmp_path / f"worker{n}.log"
        defaults = dict(
            CELERY_BROKER_URL=redis_broker.url,
            EMMM_SWEEP_INTERVAL_S="1",
            EMMM_REQUEUE_AFTER_S="5",
            EMMM_RUNNING_STALE_S="30",
            EMMM_VISIBILITY_TIMEOUT_S="6",
            EMMM_VAR_DIR=str(tmp_path / f"var{n}"),
        )
        defaults.update(env)
        proc = spawn(
            [sys.executable, "-m", "celery", "-A", "tests.stack_worker", "worker", "-B", "--pool=solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
             "-n", f"test{n}@%h", "-s", str(tmp_path / f"beat{n}")],
            log=logfile,
            cwd=REPO,
            env=subprocess_env(**defaults),
        )
        worker = WorkerProcess(proc, logfile)
        started.append(worker)

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{worker.log()[-3000:]}")
            return " ready." in worker.log()

        _wait(ready, 90, 0.2, "the celery worker to be ready")
        return worker

    yield start
    for w in started:
        w.stop()
        try:  # the embedded beat is a child in the worker's session: never leave it orphaned
            os.killpg(w.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def celery_worker(celery_worker_factory) -> WorkerProcess:
    return celery_worker_factory()


@dataclass
class GunicornServer:
    proc: subprocess.Popen
    url: str
    logfile: Path

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")


@pytest.fixture
def gunicorn_server_factory(transactional_db, tmp_path):
    """``start(**env) -> GunicornServer``: gunicorn with the project's gunicorn.conf.py on
    127.0.0.1:<free port> (one worker), serving the test database; stopped (whole process
    group) at the end of the test."""
    started: list[GunicornServer] = []

    def start(**env: str) -> GunicornServer:
        n = len(started)
        port = free_port()
        logfile = tmp_path / f"gunicorn{n}.log"
        defaults = dict(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1",
                        EMMM_CACHE_DIR=str(tmp_path / f"gcache{n}"), EMMM_VAR_DIR=str(tmp_path / f"gvar{n}"))
        defaults.update(env)
        proc = spawn([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "emmmsite.wsgi"],
                     log=logfile, cwd=REPO, env=subprocess_env(**defaults))
        server = GunicornServer(proc, f"http://127.0.0.1:{port}", logfile)
        started.append(server)

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{server.log()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        _wait(up, 60, 0.2, "gunicorn to listen")
        return server

    yield start
    for server in started:
        stop_group(server.proc, timeout=15)


@pytest.fixture
def gunicorn_server(gunicorn_server_factory) -> GunicornServer:
    """gunicorn with the project's gunicorn.conf.py, on 127.0.0.1:<free port>."""
    return gunicorn_server_factory()


# --- no process outlives the run ------------------------------------------------------------
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a worker, beat, server or redis-server started by the tests is alive.

    Runs after the session fixtures are torn down. Whatever is found is reported and then
    killed (so it does not outlive the run either)."""
    roots = [REPO]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and factory._basetemp is not None:
        roots.append(factory.getbasetemp())
    left = leftovers(roots)
    if not left:
        return
    lines = "\n".join(f"  {pid}: {cmd[:160]}" for pid, cmd in sorted(left.items()))
    session.config.get_terminal_writer().line(
        f"\nFAILED: processes started by the tests are still running after the session:\n{lines}", red=True)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""`make run`'s process supervision (issue 9.2) and the tests' own process hygiene (9.2).

The supervisor test runs scripts/run.sh (what `make run` runs after migrate/collectstatic)
on the embedded defaults: SQLite and kombu's filesystem broker in a temporary EMMM_VAR_DIR,
on a free port.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, _wait, free_port
from tests.processes import SESSION_MARKER, alive, children, leftovers, spawn, stop_group


def _role(argv: list[str]) -> str | None:
    joined = " ".join(argv)
    if "celery" in joined and " worker" in joined:
        return "worker"
    if "celery" in joined and " beat" in joined:
        return "beat"
    if "gunicorn" in joined:
        return "web"
    return None


def _main_processes(supervisord: int) -> dict[str, list[int]]:
    """The programs supervisord runs (its direct children), by role."""
    roles: dict[str, list[int]] = {}
    for pid, argv in children(supervisord, recursive=False).items():
        if role := _role(argv):
            roles.setdefault(role, []).append(pid)
    return roles


@pytest.mark.slow
@pytest.mark.stack  # full suite only (needs no PostgreSQL, but starts three servers)
def test_make_run_restarts_a_dead_worker_and_sigterm_stops_everything(tmp_path):
    var, port = tmp_path / "var", free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(EMMM_VAR_DIR=str(var), PORT=str(port), HOST="127.0.0.1", GUNICORN_WORKERS="1",
               VENV=str(Path(sys.executable).parent.parent), PYTHONUNBUFFERED="1", EMMM_RATELIMIT_ENABLE="0")
    log = tmp_path / "run.log"  # run.sh migrates the new database itself
    sup = spawn(["bash", "scripts/run.sh"], log=log, cwd=REPO, env=env)
    seen: set[int] = set()
    try:
        def ready(count: int):
            if sup.poll() is not None:
                pytest.fail(f"run.sh exited:\n{log.read_text()[-3000:]}")
            roles = _main_processes(sup.pid)
            seen.update(children(sup.pid))
            return roles if log.read_text().count(" ready.") >= count and len(roles.get("worker", [])) == 1 else None

        roles = _wait(lambda: ready(1), 180, 0.5, "web, worker and beat to start")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200
        # A second `make run` on the same folder, or on another folder but the same port, is
        # refused at once (it started a second scheduler, and removed the first one's pid file).
        second = subprocess.run(["bash", "scripts/run.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr
        assert "Operations to perform" not in second.stdout  # refused before it touched the database
        other = subprocess.run(["bash", "scripts/run.sh"], cwd=REPO, env={**env, "EMMM_VAR_DIR": str(tmp_path / "other")},
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 1 and f"127.0.0.1:{port} is in use" in other.stderr
        assert (var / "supervisord.pid").exists()
        assert len(roles["beat"]) == 1 and len(roles["web"]) == 1
        old_worker = roles["worker"][0]
        old_pool = set(children(old_worker))

        os.kill(old_worker, signal.SIGKILL)
        killed = time.monotonic()
        roles = _wait(lambda: ready(2), 180, 0.5, "supervisord to restart the worker")
        print(f"\nworker restarted and ready {time.monotonic() - killed:.1f}s after SIGKILL")
        assert roles["worker"][0] != old_worker
        assert len(roles["beat"]) == 1  # still exactly one scheduler
        _wait(lambda: not any(alive(p) for p in old_pool), 10, 0.2, "the dead worker's pool children to go")
        seen.update(children(sup.pid))

        sup.send_signal(signal.SIGTERM)
        sup.wait(150)
        assert sup.returncode == 0, log.read_text()[-3000:]
        left = [p for p in seen if alive(p)]
        assert not left, {p: " ".join(children(1).get(p, [])) for p in left}
        assert not leftovers([REPO, tmp_path], groups={sup.pid})
    finally:
        stop_group(sup, timeout=30)


def test_leftover_check_finds_a_watched_process_left_behind(tmp_path):
    # A stand-in with a celery worker's command line (`python .../celery worker`), just sleeping.
    script = tmp_path / "celery"
    script.write_text("import time\ntime.sleep(60)\n")
    proc = spawn([sys.executable, str(script), "worker"], cwd=tmp_path)
    try:
        found = leftovers([tmp_path], groups=set())
        assert proc.pid in found
        assert proc.pid in leftovers([], groups={proc.pid})  # by process group alone
    finally:
        stop_group(proc, timeout=5)
    assert not alive(proc.pid)
    assert proc.pid not in leftovers([tmp_path], groups={proc.pid})


def test_leftover_check_ignores_processes_of_another_session(tmp_path):
    script = tmp_path / "celery"
    script.write_text("import time\ntime.sleep(60)\n")
    env = {k: v for k, v in os.environ.items() if k != SESSION_MARKER}  # e.g. a concurrent test run
    proc = spawn([sys.executable, str(script), "worker"], cwd=tmp_path, env=env)
    try:
        assert proc.pid not in leftovers([tmp_path], groups=set())
    finally:
        stop_group(proc, timeout=5)


@pytest.mark.stack  # full suite only: it runs a second pytest
def test_stress_script_interrupted_stops_pytest_and_what_its_fixtures_started(tmp_path):
    """scripts/stress-tests.sh on SIGTERM: its pytest gets a SIGINT it acts on (fixtures tear
    down), so nothing the test started outlives the script. Before: the SIGINT was ignored
    (background jobs of a script start with SIGINT ignored), the script could only kill pytest,
    and the worker and redis-server of that run were left behind."""
    pidfile = tmp_path / "sleeper.pid"
    env = {**os.environ, "EMMM_STRESS_TARGET_PIDFILE": str(pidfile), "VENV": str(Path(sys.executable).parent.parent)}
    script = spawn(["bash", "scripts/stress-tests.sh", "1", "tests/stress_target.py"], log=tmp_path / "stress.log",
                   cwd=REPO, env=env)
    try:
        _wait(lambda: pidfile.exists() and pidfile.read_text(), timeout=60, interval=0.1, what="the target test to start")
        sleeper = int(pidfile.read_text())
        assert alive(sleeper)
        os.kill(script.pid, signal.SIGTERM)
        script.wait(timeout=60)  # before the fix: the script waited out the target's 120 s sleep
        assert not alive(sleeper), (tmp_path / "stress.log").read_text()[-2000:]
    finally:
        stop_group(script)


@pytest.mark.slow
@pytest.mark.stack
def test_make_run_under_systemd_logs_to_a_file(tmp_path):
    """With stdout on a socket (systemd's journal), supervisord could not open /dev/stdout
    (ENXIO) and no program ever started."""
    import socket

    var, port = tmp_path / "var", free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(EMMM_VAR_DIR=str(var), PORT=str(port), HOST="127.0.0.1", GUNICORN_WORKERS="1",
               VENV=str(Path(sys.executable).parent.parent), PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, timeout=300)
    journal, ours = socket.socketpair()
    sup = subprocess.Popen(["bash", "scripts/run.sh"], cwd=REPO, env=env, stdout=ours, stderr=subprocess.STDOUT, start_new_session=True)
    ours.close()
    try:
        programs = var / "programs.log"
        _wait(lambda: programs.exists() and programs.read_text().count(" ready.") >= 1 or sup.poll() is not None,
              180, 0.5, "the worker to start")
        assert sup.poll() is None, (var / "supervisord.log").read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
            assert r.status in (200, 503)  # up; the worker's heartbeat may not be in yet
        journal.settimeout(5)
        assert b"the programs log to" in journal.recv(65536)
        sup.send_signal(signal.SIGTERM)
        sup.wait(150)
        assert sup.returncode == 0
    finally:
        stop_group(sup, timeout=30)
        journal.close()

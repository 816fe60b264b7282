"""What the benchmark scripts share: free ports, process groups, waiting for a server, the CPU lock."""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:  # anything left in the group (gunicorn workers)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise SystemExit(f"server did not answer {url}")


@contextlib.contextmanager
def cpu_turn(lock: str | None, what: str) -> Iterator[None]:
    """Hold the shared CPU lock (flock on ``lock``) for one heavy piece of the run; no-op without one."""
    if not lock:
        yield
        return
    with open(lock, "a") as f:
        print(f"waiting for {lock} ({what}) ...", file=sys.stderr, flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
        print(f"got it at {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)
        yield

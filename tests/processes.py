"""Processes started by the tests: own process groups, killed whole, none left behind.

Every server or worker a fixture starts goes through :func:`spawn` (a new session, so a
new process group whose id is the child's pid) and is stopped by :func:`stop_group`
(SIGTERM to the whole group, SIGKILL after a bound). :func:`leftovers` finds what is still
alive at the end of the run: any process in a group the tests started, and any celery,
gunicorn, redis-server, honcho or supervisord whose working directory is the repository or
the run's temporary folder (what /work/shared/hooks/before-stop looks for).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

WATCHED_NAMES = ("celery", "gunicorn", "redis-server", "honcho", "supervisord")
STARTED_GROUPS: set[int] = set()
# Every process this test session starts inherits this marker (set in os.environ at import),
# so a leftover is recognised as ours even after it was orphaned, and a concurrent run in the
# same checkout (another session's processes) is never mistaken for one.
SESSION_MARKER = "EMMM_TEST_SESSION"
os.environ.setdefault(SESSION_MARKER, f"{os.getpid()}-{time.time_ns()}")


def spawn(argv: list[str], *, log: Path | None = None, **kwargs) -> subprocess.Popen:
    """Start ``argv`` in its own session/process group (output to ``log`` when given)."""
    if log is not None:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
    else:
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    STARTED_GROUPS.add(proc.pid)
    return proc


def _live_processes() -> dict[int, tuple[int, int]]:
    """Every live (not zombie) process: ``{pid: (parent pid, process group)}``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = info
    return found


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, process group)`` of a live process, None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid, pgrp = stat[stat.rfind(")") + 2:].split()[:3]  # after "pid (comm) "
    return None if state == "Z" else (int(ppid), int(pgrp))


def alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) process?"""
    return _stat(pid) is not None


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in process group ``pgid``."""
    return [pid for pid, (_, pgrp) in _live_processes().items() if pgrp == pgid]


def _gone(proc: subprocess.Popen, bound: float) -> bool:
    """Wait up to ``bound`` s for the leader to exit and its group to be empty."""
    deadline = time.monotonic() + bound
    while True:
        proc.poll()  # reaps the leader
        if proc.returncode is not None and not group_members(proc.pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def stop_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process's whole group, SIGKILL whatever is left after ``timeout`` s."""
    for sig, bound in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if _gone(proc, bound):
            break
    proc.poll()


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return []


def _is_watched(cmdline: list[str]) -> bool:
    """Is this a celery/gunicorn/redis-server/honcho/supervisord process (not just a command
    line that mentions one, like ``pytest tests/site/test_gunicorn.py``)?"""
    programs = [Path(a).name for a in cmdline[:2]]
    if "-m" in cmdline[:3]:
        i = cmdline.index("-m")
        programs += cmdline[i + 1:i + 2]
    programs = [p.split()[0].split(":")[0] for p in programs if p.strip()]  # "gunicorn: worker [...]"
    return any(p in WATCHED_NAMES for p in programs)


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and (info := _stat(pid)) is not None:
        pids.add(pid)
        pid = info[0]
    return pids


def _from_this_session(pid: int) -> bool:
    marker = f"{SESSION_MARKER}={os.environ[SESSION_MARKER]}".encode()
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def leftovers(roots: list[Path], groups: set[int] | None = None) -> dict[int, str]:
    """Live processes the tests left behind: ``{pid: command line}``.

    Members of the process groups the tests started, and celery/gunicorn/redis-server/
    honcho/supervisord processes of this session (its environment marker) whose working
    directory is under one of ``roots``."""
    groups = STARTED_GROUPS if groups is None else groups
    mine = _ancestors()
    found: dict[int, str] = {}
    for pgid in groups:
        for pid in group_members(pgid):
            if pid not in mine:
                found[pid] = " ".join(_argv(pid))
    resolved = [str(r.resolve()) for r in roots]
    for pid in _live_processes():
        if pid in mine:
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        argv = _argv(pid)
        if any(cwd == r or cwd.startswith(r + "/") for r in resolved) and _is_watched(argv) \
                and _from_this_session(pid):
            found[pid] = " ".join(argv)
    return found


def children(pid: int, recursive: bool = True) -> dict[int, list[str]]:
    """Live descendants (or only the direct children) of ``pid``: ``{pid: argv}``."""
    parents = {child: ppid for child, (ppid, _) in _live_processes().items()}
    found: dict[int, list[str]] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = _argv(child)
                if recursive:
                    frontier.append(child)
    return found

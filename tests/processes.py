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


def group_members(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


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
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
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
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        argv = _argv(int(entry.name))
        if state != "Z" and any(cwd == r or cwd.startswith(r + "/") for r in resolved) and _is_watched(argv) \
                and _from_this_session(int(entry.name)):
            found[int(entry.name)] = " ".join(argv)
    return found


def children(pid: int) -> dict[int, list[str]]:
    """Live descendants of ``pid``: ``{pid: argv}``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: dict[int, list[str]] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = _argv(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) process?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"

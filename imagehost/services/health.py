"""What ``/healthz`` checks: database, cache, broker, a live worker, model weights on disk.

Each check returns ``(ok, detail)`` and never raises; ``run_checks`` runs them all.
"""
from __future__ import annotations

import logging
import os
import uuid
from typing import Callable

import codec
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from . import workers

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]


def _database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


def _cache() -> tuple[bool, str]:
    key, value = "healthz:probe", uuid.uuid4().hex
    cache.set(key, value, 30)
    return (cache.get(key) == value), "write and read back"


def _broker() -> tuple[bool, str]:
    """Bounded like an upload's send (``jobs.broker_connection``): a broker that accepts the
    connection and never answers is down after ``EMMM_BROKER_TIMEOUT_S``, not a hung probe."""
    from .jobs import broker_connection

    with broker_connection() as conn:
        if conn.transport_cls == "filesystem":  # it "connects" to anything: its folder must take files
            folder = conn.transport_options.get("data_folder_out") or ""
            writable = bool(folder) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
            return writable, "its folder takes messages" if writable else "its folder is missing or read-only"
        # One try: a load balancer asks again in a few seconds; retrying here only doubles the wait.
        conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0, interval_max=0,
                               timeout=settings.EMMM_BROKER_TIMEOUT_S)
        return True, "reachable"


def _worker() -> tuple[bool, str]:
    seen = workers.last_heartbeat()
    if workers.worker_alive():
        return True, f"last heartbeat {seen.isoformat()}"
    return False, "no worker heartbeat" + (f" since {seen.isoformat()}" if seen else " ever")


def _model() -> tuple[bool, str]:
    name = codec.default_model()
    return codec.model_available(name), f"default model {name}"


CHECKS: dict[str, Check] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
    "worker": _worker,
    "model": _model,
}


def run_checks() -> dict[str, dict]:
    """``{name: {"ok": bool, "detail": str}}`` for every check; a check that raises is down."""
    results = {}
    for name, check in CHECKS.items():
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - a failing dependency is the answer, not an error
            # one line per poll during an outage (a load balancer asks every few seconds)
            log.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
            ok, detail = False, f"unavailable ({type(exc).__name__})"  # no hosts or paths in a public answer
        results[name] = {"ok": bool(ok), "detail": detail}
    return results

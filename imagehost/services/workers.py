"""Is an encode worker running? Each Celery worker refreshes a ``WorkerHeartbeat`` row.

A thread in the worker's main process (started on ``worker_ready``, see ``imagehost/tasks.py``)
writes the row every ``EMMM_WORKER_HEARTBEAT_S``; a clean shutdown deletes it. The row lives
in the database, so this works with any broker (filesystem or Redis) and any cache. The site
reads it: no row fresher than ``EMMM_WORKER_STALE_S`` means no worker is running.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from ..models import WorkerHeartbeat

log = logging.getLogger(__name__)

WORKER_DOWN_MESSAGE = (
    "The encoder is not running right now; your upload is kept and will be encoded when it is back."
)


def record_heartbeat(name: str, now: datetime | None = None) -> None:
    """This worker is alive now."""
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now or timezone.now()})


def forget(name: str) -> None:
    """This worker stopped cleanly."""
    WorkerHeartbeat.objects.filter(name=name).delete()


def last_heartbeat() -> datetime | None:
    """When any worker was last seen alive (None: never)."""
    return WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()


def worker_alive(now: datetime | None = None) -> bool:
    """Whether some worker refreshed its heartbeat within EMMM_WORKER_STALE_S."""
    since = (now or timezone.now()) - timedelta(seconds=settings.EMMM_WORKER_STALE_S)
    return WorkerHeartbeat.objects.filter(seen_at__gte=since).exists()


class HeartbeatThread(threading.Thread):
    """Refreshes ``name``'s heartbeat every ``interval_s`` until :meth:`stop`; then forgets it."""

    def __init__(self, name: str, interval_s: float | None = None):
        super().__init__(name=f"worker-heartbeat-{name}", daemon=True)
        self.worker_name = name
        self.interval_s = settings.EMMM_WORKER_HEARTBEAT_S if interval_s is None else interval_s
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while True:
                try:
                    record_heartbeat(self.worker_name)
                except Exception:  # noqa: BLE001 - the database may be back at the next beat
                    log.warning("worker heartbeat not recorded", exc_info=True)
                if self._stopped.wait(self.interval_s):
                    break
            forget(self.worker_name)
        except Exception:  # noqa: BLE001
            log.warning("worker heartbeat not removed", exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections

    def stop(self, timeout: float = 10) -> None:
        self._stopped.set()
        self.join(timeout)

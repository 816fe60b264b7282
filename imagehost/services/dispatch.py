"""Which waiting jobs go to the broker, and in what order: first come, first served, per owner.

The broker is a FIFO: if every upload were sent at once, one user's batch of 10 would be
encoded before anyone else's single image. Instead a job is saved ``queued`` with
``sends == 0`` and *dispatched*: each owner (a signed-in user; all anonymous uploads share
one share) has at most ``EMMM_DISPATCH_PER_OWNER`` jobs on the broker or running at a time,
and among owners the order is round robin: every owner's oldest waiting job first (owners in
the order of their oldest waiting job), then every owner's second, and so on.

Dispatching happens after an upload commits, after each job a worker ends
(``imagehost/tasks.py``) and at each sweep, so a held job is sent as soon as its owner's
earlier one finishes. The order itself is the plain function ``fair_order``.

Dispatches pick jobs one at a time, so each counts the jobs the one before it picked: on
PostgreSQL a transaction-level advisory lock; SQLite's write transactions (``IMMEDIATE``) never
overlap. The broker is asked after that transaction commits (``dispatch_waiting``).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Hashable
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from ..models import EncodeJob, JobStatus
from .errors import BrokerUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waiting:
    """A job not yet sent: its id, whose it is, when it was uploaded."""

    job_id: UUID
    owner: Hashable
    created: datetime


def fair_order(waiting: Sequence[Waiting], in_flight: Mapping[Hashable, int], per_owner: int) -> list[UUID]:
    """The waiting jobs to send now, in order (see the module docstring).

    ``in_flight``: per owner, jobs already sent and not finished. An owner with
    ``per_owner`` of those gets nothing now; the others get their oldest jobs, up to the
    limit, interleaved round robin (rank within the owner, then upload time).
    """
    by_owner: dict[Hashable, list[Waiting]] = defaultdict(list)
    for job in sorted(waiting, key=lambda w: w.created):
        by_owner[job.owner].append(job)
    picked = []
    for owner, jobs in by_owner.items():
        room = max(0, per_owner - in_flight.get(owner, 0))
        picked += [(rank, job.created, job.job_id) for rank, job in enumerate(jobs[:room])]
    return [job_id for _rank, _created, job_id in sorted(picked)]


#: The advisory lock key of ``dispatch_waiting`` (any int8 no other code uses).
DISPATCH_LOCK_KEY = 0x656D6D6D_64697370  # "emmmdisp"


def _one_dispatch_at_a_time() -> None:
    """Inside a transaction: wait for any other dispatch to commit (see the module docstring)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DISPATCH_LOCK_KEY])


@dataclass
class DispatchReport:
    sent: int = 0
    broker_down: bool = False


def dispatch_waiting() -> DispatchReport:
    """Send the waiting jobs ``fair_order`` picks; stop at the first broker error (they stay waiting).

    Two steps, so that no transaction is open while the broker is asked (a broker that never
    answers holds a publish for up to ``EMMM_BROKER_TIMEOUT_S``; inside the transaction every
    other upload and write waited behind it):

    1. in a short transaction (one dispatch at a time), pick the jobs and count them sent
       (``sends`` 0 → 1), so a dispatch that starts meanwhile counts them in flight and never
       picks them again; commit;
    2. publish them (``jobs.publish_job``), in order. At the first broker error, the jobs not
       published go back to waiting (``sends`` → 0) and the upload says ``queue_unavailable``;
       the sweeper dispatches them later. A process that dies between the two steps leaves
       jobs counted but not on the broker: the sweeper re-sends them after
       ``EMMM_REQUEUE_AFTER_S``, as it does a lost message.
    """
    from . import jobs

    report = DispatchReport()
    with transaction.atomic():
        _one_dispatch_at_a_time()
        rows = EncodeJob.objects.select_for_update(skip_locked=True).filter(status=JobStatus.QUEUED, sends=0)
        waiting = [Waiting(pk, owner, created) for pk, owner, created in
                   rows.order_by("created").values_list("pk", "owner_id", "created")[:500]]
        if not waiting:
            return report
        in_flight = dict(
            EncodeJob.objects.filter(Q(status=JobStatus.RUNNING) | Q(status=JobStatus.QUEUED, sends__gt=0))
            .values_list("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n")
        )
        picked = fair_order(waiting, in_flight, settings.EMMM_DISPATCH_PER_OWNER)
        if picked:
            EncodeJob.objects.filter(pk__in=picked).update(sends=F("sends") + 1, updated=timezone.now())
    for done, job_id in enumerate(picked):
        try:
            jobs.publish_job(job_id)
        except BrokerUnavailable:
            report.broker_down = True
            _back_to_waiting(picked[done:])
            break
        report.sent += 1
    return report


def _back_to_waiting(job_ids: list[UUID]) -> None:
    """Jobs counted sent that the broker did not take: waiting again (``sends`` 1 → 0)."""
    try:
        EncodeJob.objects.filter(pk__in=job_ids, sends__gt=0).update(sends=F("sends") - 1)
    except Exception:  # noqa: BLE001 - counted but not sent: the sweeper re-sends them (EMMM_REQUEUE_AFTER_S)
        log.warning("could not put %d unsent job(s) back to waiting; the sweeper will send them", len(job_ids),
                    exc_info=True)

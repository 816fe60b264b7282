"""The Celery app for stack tests: the project's app plus test-only fault injection.

``celery -A tests.stack_worker worker …`` (see ``celery_worker_factory``). With
``EMMM_TEST_ENCODE_DELAY_S=N`` in its environment the worker sleeps N seconds after
claiming a job (the job is ``running``) and before encoding, so a test can kill it
mid-encode. Production code knows nothing of this.
"""
from __future__ import annotations

import os
import time

from celery.signals import task_prerun

from emmmsite.celery import app

__all__ = ["app"]

DELAY_S = float(os.environ.get("EMMM_TEST_ENCODE_DELAY_S") or 0)


@task_prerun.connect
def _slow_down_encodes(**_kwargs) -> None:
    """Wrap ``jobs.encode`` once, on the first task (Django is set up by then)."""
    if not DELAY_S:
        return
    from imagehost.services import jobs

    if getattr(jobs.encode, "_delayed", False):
        return
    real_encode = jobs.encode

    def delayed_encode(claimed):
        time.sleep(DELAY_S)
        return real_encode(claimed)

    delayed_encode._delayed = True  # type: ignore[attr-defined]
    jobs.encode = delayed_encode

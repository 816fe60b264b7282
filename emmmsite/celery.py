"""Celery application: configured from Django settings (CELERY_* names).

Broker outages (issue 9.1): the worker retries the broker connection forever
(``broker_connection_max_retries=None``; Celery's default gives up after 100 attempts and
shuts the worker down), at start-up and after a loss. A task running when the connection
drops is left to finish (``worker_cancel_long_running_tasks_on_connection_loss=False``): jobs
are idempotent and their row records the result, so cancelling it would only redo the work.
In `make run`/`make run-prod` supervisord restarts a worker that dies anyway.

Sizing (issue 9.6): ``worker_concurrency`` prefork processes (``CELERY_WORKER_CONCURRENCY``
in the settings), each with ``EMMM_TORCH_THREADS`` torch threads, from
``emmmsite/worker_sizing.py``; set for the worker's processes only, before the pool forks.
"""
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emmmsite.settings")

app = Celery("emmmsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    broker_connection_retry=True,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    worker_cancel_long_running_tasks_on_connection_loss=False,
)
app.autodiscover_tasks()


@celeryd_init.connect
def _size_torch_threads(conf=None, **_kwargs) -> None:
    """The pool's children inherit this; the codec applies it when it loads a model."""
    from django.conf import settings

    os.environ["EMMM_TORCH_THREADS"] = str(settings.EMMM_WORKER_SIZE.torch_threads)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger=None, **_kwargs) -> None:
    """Celery replaces the root logger's handlers: its lines get the site's redaction too (no
    whole token, no secret link: emmmsite/gunicorn_logging.py)."""
    from .gunicorn_logging import redact_handlers

    redact_handlers(logger)

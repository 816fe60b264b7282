"""Issue 9.4: a burst of uploads on the embedded SQLite file database, run as its own process.

``python -m tests.sqlite_burst VAR_DIR`` migrates a fresh SQLite database under VAR_DIR (the
settings `make run` uses: no DATABASE_URL), then, at the same time, submits 30 one-file
uploads and three 10-file uploads (web-request threads) while four worker threads run the
real ``jobs.run_encode_job`` (claim → encode with the real codec → complete) on each job.
Prints one JSON line: jobs, done, and every ``database is locked`` (raised or logged).
Used by ``tests/site/test_sqlite_burst.py``.
"""
from __future__ import annotations

import io
import json
import logging
import os
import queue
import sys
import threading

SINGLE_UPLOADS = 30
BATCHES = 3
BATCH_SIZE = 10
WORKERS = 4


def _image(i: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (24, 24), ((i * 37) % 256, 90, 160))
    ImageDraw.Draw(img).ellipse([4, 4, 4 + i % 16, 20], fill=(240, (i * 11) % 256, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class _LockLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        if "database is locked" in text:
            self.lines.append(text.splitlines()[-1])


def main(var_dir: str) -> dict:
    os.environ.update(DATABASE_URL="", EMMM_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="emmmsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from imagehost.models import EncodeJob, JobStatus
    from imagehost.services import jobs, uploads

    call_command("migrate", verbosity=0)
    lock_log = _LockLog()
    logging.getLogger().addHandler(lock_log)
    errors: list[str] = []
    todo: queue.Queue = queue.Queue()

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - every failure is the result
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                connections.close_all()
        return run

    @guarded
    def upload(first: int, count: int, per_upload: int) -> None:
        for n in range(first, first + count, per_upload):
            for job in uploads.submit_uploads([_image(i) for i in range(n, n + per_upload)]).jobs:
                todo.put(job.pk)

    @guarded
    def work() -> None:
        while (job_id := todo.get()) is not None:
            try:
                jobs.run_encode_job(job_id)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=upload, args=(k * 10, 10, 1)) for k in range(SINGLE_UPLOADS // 10)]
    threads += [threading.Thread(target=upload, args=(100 + k * BATCH_SIZE, BATCH_SIZE, BATCH_SIZE))
                for k in range(BATCHES)]
    workers = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads + workers:
        t.start()
    for t in threads:
        t.join()
    for _ in workers:
        todo.put(None)
    for t in workers:
        t.join()
    statuses = list(EncodeJob.objects.values_list("status", flat=True))
    return {
        "jobs": len(statuses),
        "done": statuses.count(JobStatus.DONE),
        "errors": errors,
        "locked": [e for e in errors if "database is locked" in e] + lock_log.lines,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))

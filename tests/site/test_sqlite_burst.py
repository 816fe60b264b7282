"""Issue 9.4: SQLite under a burst of uploads (the embedded database of `make run`)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.sqlite_burst import BATCH_SIZE, BATCHES, SINGLE_UPLOADS


def test_a_burst_of_uploads_completes_on_sqlite_with_no_lock_error(tmp_path):
    """30 uploads + three 10-file uploads while four workers claim/encode/complete: all done,
    no ``database is locked`` (a deferred transaction's lock upgrade fails at once, whatever
    the timeout; write transactions must begin IMMEDIATE)."""
    run = subprocess.run([sys.executable, "-m", "tests.sqlite_burst", str(tmp_path / "var")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    expected = SINGLE_UPLOADS + BATCHES * BATCH_SIZE
    assert result["locked"] == [], result["locked"][:5]
    assert result["errors"] == []
    assert result["jobs"] == expected and result["done"] == expected

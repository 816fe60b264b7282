"""A pytest target for ``test_stress_script_interrupted_stops_everything`` (never collected by
itself: its name does not start with ``test_``). Its fixture starts a sleeper the way the
stack fixtures start servers; the test writes the sleeper's pid and waits to be interrupted."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tests.processes import spawn, stop_group


@pytest.fixture
def sleeper():
    proc = spawn([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    stop_group(proc)


def test_waits_to_be_interrupted(sleeper):
    Path(os.environ["EMMM_STRESS_TARGET_PIDFILE"]).write_text(str(sleeper.pid))
    time.sleep(120)

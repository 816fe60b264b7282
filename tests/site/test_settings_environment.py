"""Settings from the environment are typed and checked at start-up: a bad value stops the
process with ImproperlyConfigured naming the variable. Before, a rate of ``10/5m`` passed
``manage.py check`` and then made every sign-in a 500, ``EMMM_PAGE_SIZE=0`` made the gallery a
500, a space after a comma locked a host out, and ``EMMM_VAE_FORMAT=V1`` quietly meant v2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from emmmsite import environment



READERS = {
    "X_RATE": lambda: environment.rate("X_RATE", "30/m"),
    "X_SIZE": lambda: environment.integer("X_SIZE", 24, minimum=1),
    "X_S": lambda: environment.number("X_S", 5.0, above=0),
    "X_FLAG": lambda: environment.boolean("X_FLAG", False),
    "X_FORMAT": lambda: environment.choice("X_FORMAT", "v2", ("v1", "v2")),
}


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("X_RATE", "10/5m", "X_RATE='10/5m': expected <count>/<period>"),
        ("X_RATE", "10 per minute", "X_RATE='10 per minute'"),
        ("X_RATE", "10/M", "X_RATE='10/M'"),
        ("X_RATE", "3/month", "X_RATE='3/month'"),  # was read as 3 a minute (DRF reads the first letter)
        ("X_RATE", "10/ms", "X_RATE='10/ms'"),
        ("X_RATE", "5/sunday", "X_RATE='5/sunday'"),
        ("X_SIZE", "0", "X_SIZE='0': expected a whole number of at least 1"),
        ("X_SIZE", "abc", "X_SIZE='abc': expected a whole number"),
        ("X_SIZE", "2.5", "X_SIZE='2.5'"),
        ("X_S", "0", "X_S='0': expected a number greater than 0"),
        ("X_S", "nan", "X_S='nan'"),
        ("X_FLAG", "ture", "X_FLAG='ture': expected 1 or 0"),
        ("X_FORMAT", "V1", "X_FORMAT='V1': expected one of v1, v2"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ImproperlyConfigured) as refused:
        READERS[name]()
    assert str(refused.value).startswith(message)


def test_good_values_empty_means_the_default_and_lists_are_trimmed(monkeypatch):
    monkeypatch.setenv("X_RATE", "10/minute")
    monkeypatch.setenv("X_SIZE", " 12 ")
    monkeypatch.setenv("X_FLAG", "Off")
    monkeypatch.setenv("X_HOSTS", "example.com, www.example.com ,,")
    monkeypatch.setenv("X_EMPTY", "  ")
    assert environment.rate("X_RATE", "30/m") == "10/minute"
    for good in ("5/s", "5/sec", "5/secs", "5/second", "5/min", "5/mins", "5/minutes", "5/h", "5/hr", "5/hrs", "5/hour",
                 "5/hours", "5/d", "5/day", "5/days"):  # each read as its first letter, which means what it says
        monkeypatch.setenv("X_RATE", good)
        assert environment.rate("X_RATE", "30/m") == good
    assert environment.integer("X_SIZE", 24, minimum=1) == 12
    assert environment.boolean("X_FLAG", True) is False
    assert environment.names("X_HOSTS", []) == ["example.com", "www.example.com"]
    assert environment.integer("X_EMPTY", 24, minimum=1) == 24 and environment.rate("X_EMPTY", "30/m") == "30/m"
    assert environment.integer("X_UNSET", 24) == 24


def test_a_heartbeat_must_beat_more_often_than_its_stale_bound():
    environment.below("A_S", 5, "B_S", 20)
    with pytest.raises(ImproperlyConfigured, match="A_S=20 must be below B_S=20"):
        environment.below("A_S", 20, "B_S", 20)


def settings_import(**variables: str) -> subprocess.CompletedProcess:
    """``import emmmsite.settings`` in a fresh interpreter with these variables set."""
    code = "import sys, emmmsite.settings as s; print(s.ALLOWED_HOSTS, s.EMMM_ALLOWED_FORMATS, 'torch' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **variables}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "variable, value",
    [("EMMM_LOGIN_RATE", "10/5m"), ("EMMM_PAGE_SIZE", "0"), ("EMMM_DATABASE_TIMEOUT_S", "0"), ("EMMM_VAE_FORMAT", "V1"),
     ("EMMM_DEVICE", "cuda:x"), ("EMMM_MAX_PIXELS", "0"), ("EMMM_V2_STEP_UNITS", "abc"), ("EMMM_WORKER_HEARTBEAT_S", "30"), ("DJANGO_LOG_LEVEL", "verbose"), ("EMMM_WORKER_CONCURRENCY", "-1"), ("EMMM_MAX_WAITERS", "-1")],
)
def test_the_site_does_not_start_with_a_bad_setting(variable, value):
    result = settings_import(**{variable: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}=" in result.stderr.splitlines()[-1]


def test_the_site_reads_trimmed_lists():
    result = settings_import(DJANGO_ALLOWED_HOSTS="example.com, www.example.com", EMMM_ALLOWED_FORMATS="PNG, JPEG")
    # ... and checks the codec's variables without loading torch (seconds, and memory, per process)
    assert result.stdout.strip() == "['example.com', 'www.example.com'] ['PNG', 'JPEG'] False"


def test_zero_keeps_its_meaning_where_it_had_one():
    """0 turned these off (or meant automatic) before they were checked; it still does."""
    code = ("import emmmsite.settings as s; from imagehost import concurrency\n"
            "with concurrency.slot('w', s.EMMM_MAX_WAITERS, timeout=0) as got: print(got, s.EMMM_CACHE_MAX_ENTRY_BYTES, "
            "s.EMMM_WORKER_SIZE.processes >= 1)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "EMMM_MAX_WAITERS": "0", "EMMM_CACHE_MAX_ENTRY_BYTES": "0", "EMMM_WORKER_CONCURRENCY": "0",
                                 "DJANGO_SETTINGS_MODULE": "emmmsite.settings"})
    assert result.stdout.split() == ["False", "0", "True"], result.stderr[-500:]

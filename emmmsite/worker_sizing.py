"""How many worker processes, and how many torch threads each: sized to the machine.

Encoding one image uses torch's intra-op threads, which scale poorly on the small tensors of
a 512² image; separate processes encode separate images with no shared lock. So on small
machines every core gets its own process with one thread (``EMMM_TORCH_THREADS=1``); above
8 cores each process gets 2 threads (fewer copies of torch and the model in memory).
Measured on the 2-core build machine: README, *Throughput* (``scripts/bench_jobs.py``).

Overrides: ``EMMM_WORKER_CONCURRENCY`` (processes) and ``EMMM_TORCH_THREADS`` (threads per
process); with only one of them given, the other fills the cores.
"""
from __future__ import annotations

import os
from typing import NamedTuple


class WorkerSize(NamedTuple):
    processes: int
    torch_threads: int


def size_worker(cores: int, processes: int | None = None, torch_threads: int | None = None) -> WorkerSize:
    """processes × torch threads ≈ cores (each at least 1); explicit values win."""
    cores = max(1, cores)
    if torch_threads is None:
        torch_threads = max(1, cores // processes) if processes else (1 if cores <= 8 else 2)
    if processes is None:
        processes = max(1, cores // torch_threads)
    return WorkerSize(max(1, processes), max(1, torch_threads))


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, so a container's CPU set counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def worker_size_from_environment() -> WorkerSize:
    """``size_worker`` for this machine and the EMMM_WORKER_CONCURRENCY / EMMM_TORCH_THREADS overrides."""
    return size_worker(available_cores(), _int_env("EMMM_WORKER_CONCURRENCY"), _int_env("EMMM_TORCH_THREADS"))

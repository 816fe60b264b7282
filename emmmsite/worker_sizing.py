"""How many worker processes, and how many torch threads each: sized to the machine.

Measured on the 2-core build machine (README, *Throughput*; ``scripts/bench_jobs.py``): one
process with 2 torch threads encodes a single 512² photo in half the time of a process with
one thread, and two 1-thread processes are no faster for 2 or 4 concurrent uploads. So a
process gets up to ``MAX_THREADS`` (4) threads and the cores are split into such processes:
2 cores → 1 × 2, 4 → 1 × 4, 8 → 2 × 4, 16 → 4 × 4. Only the 2-core case is measured; above
it the 4-thread cap is a guess (torch's scaling flattens and more processes keep more images
moving at once).

Overrides: ``EMMM_WORKER_CONCURRENCY`` (processes) and ``EMMM_TORCH_THREADS`` (threads per
process); with only one of them given, the other fills the cores.
"""
from __future__ import annotations

import os
from typing import NamedTuple

from . import environment


MAX_THREADS = 4


class WorkerSize(NamedTuple):
    processes: int
    torch_threads: int


def size_worker(cores: int, processes: int | None = None, torch_threads: int | None = None) -> WorkerSize:
    """processes × torch threads ≈ cores (each at least 1); explicit values win."""
    cores = max(1, cores)
    if torch_threads is None:
        torch_threads = max(1, cores // processes) if processes else min(cores, MAX_THREADS)
    if processes is None:
        processes = max(1, cores // torch_threads)
    return WorkerSize(max(1, processes), max(1, torch_threads))


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, so a container's CPU set counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _int_env(name: str, minimum: int = 1) -> int | None:
    return environment.integer(name, None, minimum=minimum) or None  # 0 (where allowed): automatic


def worker_size_from_environment() -> WorkerSize:
    """``size_worker`` for this machine and the EMMM_WORKER_CONCURRENCY / EMMM_TORCH_THREADS overrides."""
    return size_worker(available_cores(), _int_env("EMMM_WORKER_CONCURRENCY", minimum=0), _int_env("EMMM_TORCH_THREADS"))

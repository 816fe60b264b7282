"""Issue 9.6: the worker's size from the core count, and the overrides (a plain function)."""
from emmmsite.worker_sizing import WorkerSize, size_worker


def test_cores_split_into_processes_of_up_to_four_threads():
    assert size_worker(1) == WorkerSize(1, 1)
    assert size_worker(2) == WorkerSize(1, 2)
    assert size_worker(4) == WorkerSize(1, 4)
    assert size_worker(8) == WorkerSize(2, 4)
    assert size_worker(16) == WorkerSize(4, 4)


def test_overrides_win_and_the_other_fills_the_cores():
    assert size_worker(2, processes=2) == WorkerSize(2, 1)
    assert size_worker(8, torch_threads=1) == WorkerSize(8, 1)
    assert size_worker(8, processes=3, torch_threads=5) == WorkerSize(3, 5)
    assert size_worker(0) == WorkerSize(1, 1)

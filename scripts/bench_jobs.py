"""Throughput of the encode pipeline: a real Celery worker, the filesystem broker, SQLite.

    flock /tmp/emmm-cpu.lock python scripts/bench_jobs.py --images ../shared/data/kodak \\
        --sizing auto --sizing 1x2 --concurrent 1,2,4 --sizes 316,512

For each worker sizing (``auto`` = ``emmmsite/worker_sizing.py`` for this machine, or
``PxT``: P prefork processes × T torch threads) it starts ``celery -A emmmsite worker`` on
a fresh SQLite database and filesystem broker in a temp folder (like ``make run``), warms
every process up (model load), then for each image size and each number of concurrent
uploads N submits N different Kodak photos at once (``services.uploads.submit_uploads``,
one upload each) and waits for all N to be done. Prints images per minute (N / wall time
from submission to the last ``done``) and the mean time to done, one table row per case.
The resized images live in the temp folder only.
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def photos(folder: Path, size: int, count: int) -> list[bytes]:
    """``count`` Kodak photos: 512 → a 512×512 centre crop; else resized to ``size`` px wide."""
    from PIL import Image

    out = []
    for path in sorted(folder.glob("*.png"))[:count]:
        img = Image.open(path).convert("RGB")
        if size == 512:
            w, h = img.size
            img = img.crop(((w - 512) // 2, (h - 512) // 2, (w + 512) // 2, (h + 512) // 2))
        else:
            img = img.resize((size, round(img.height * size / img.width)), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def start_worker(var: Path, sizing: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL="", EMMM_VAR_DIR=str(var), CELERY_BROKER_URL="filesystem://",
               PYTHONUNBUFFERED="1")
    env.pop("EMMM_WORKER_CONCURRENCY", None)
    env.pop("EMMM_TORCH_THREADS", None)
    if sizing != "auto":
        processes, threads = sizing.split("x")
        env.update(EMMM_WORKER_CONCURRENCY=processes, EMMM_TORCH_THREADS=threads)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "emmmsite", "worker", "-l", "INFO", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-n", f"bench-{sizing}@%h"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def run_round(images: list[bytes]) -> tuple[float, float]:
    """Submit every image at once (one upload each); (wall seconds, mean seconds to done)."""
    from imagehost.models import EncodeJob, JobStatus
    from imagehost.services import uploads

    t0 = time.monotonic()
    ids = [uploads.submit_upload(data).pk for data in images]
    done_at: dict = {}
    while len(done_at) < len(ids):
        for pk, status in EncodeJob.objects.filter(pk__in=ids).values_list("pk", "status"):
            if status in (JobStatus.DONE, JobStatus.FAILED) and pk not in done_at:
                if status == JobStatus.FAILED:
                    raise SystemExit(f"job {pk} failed: {EncodeJob.objects.get(pk=pk).error}")
                done_at[pk] = time.monotonic() - t0
        time.sleep(0.1)
        if time.monotonic() - t0 > 600:
            raise SystemExit("timed out")
    return max(done_at.values()), sum(done_at.values()) / len(done_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "kodak")
    parser.add_argument("--sizing", action="append", help="auto or PxT (processes x torch threads); repeatable")
    parser.add_argument("--sizes", default="316,512")
    parser.add_argument("--concurrent", default="1,2,4")
    args = parser.parse_args()
    sizings = args.sizing or ["auto", "1x2"]
    sizes = [int(s) for s in args.sizes.split(",")]
    concurrent = [int(n) for n in args.concurrent.split(",")]

    shared_models = REPO.parent / "shared" / "models"
    if "EMMM_MODEL_DIR" not in os.environ and shared_models.is_dir():
        os.environ["EMMM_MODEL_DIR"] = str(shared_models)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        var = Path(tmp) / "var"
        os.environ.update(DATABASE_URL="", EMMM_VAR_DIR=str(var), CELERY_BROKER_URL="filesystem://",
                          DJANGO_SETTINGS_MODULE="emmmsite.settings")
        import django

        django.setup()
        from django.core.management import call_command

        from emmmsite.worker_sizing import worker_size_from_environment

        call_command("migrate", verbosity=0)
        rows = []
        for sizing in sizings:
            label = sizing
            if sizing == "auto":
                size = worker_size_from_environment()
                label = f"auto ({size.processes}x{size.torch_threads})"
            proc = start_worker(var, sizing, Path(tmp) / f"worker-{sizing}.log")
            try:
                deadline = time.monotonic() + 120
                while " ready." not in (Path(tmp) / f"worker-{sizing}.log").read_text():
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit((Path(tmp) / f"worker-{sizing}.log").read_text()[-3000:])
                    time.sleep(0.2)
                run_round(photos(args.images, 64, 4))  # warm-up: every process loads the model
                for size in sizes:
                    pics = photos(args.images, size, max(concurrent))
                    for n in concurrent:
                        wall, mean = run_round(pics[:n])
                        rows.append((label, size, n, n / wall * 60, mean))
                        print(f"{label:>12}  {size:>3}px  {n} at once: {n / wall * 60:5.1f} images/min, "
                              f"mean time to done {mean:5.1f} s", flush=True)
            finally:
                stop(proc)
                if os.environ.get("BENCH_KEEP_LOG"):
                    print((Path(tmp) / f"worker-{sizing}.log").read_text()[-int(os.environ["BENCH_KEEP_LOG"]):])
        print("\n| worker (processes × torch threads) | photo | concurrent uploads | images / min | mean time to done |")
        print("| --- | --- | --- | --- | --- |")
        for label, size, n, ipm, mean in rows:
            photo = "512×512" if size == 512 else f"{size} px wide"
            print(f"| {label} | {photo} | {n} | {ipm:.1f} | {mean:.1f} s |")


if __name__ == "__main__":
    main()

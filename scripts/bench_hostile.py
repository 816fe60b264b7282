"""Hostile-decode benchmark (issue 8.3): is the home page still responsive while 8 worst-case
decodes are in flight?

Starts gunicorn with the project's ``gunicorn.conf.py`` on a free port (SQLite + file cache in a
temporary ``EMMM_VAR_DIR``), keeps 8 requests for distinct worst-case tokens in flight (each
declares the largest image the codec accepts: 1024x1024 coded and output, so every one is a
cache miss that runs the decoder; ``--size 512``: the largest that needs no heavy-decode slot),
and meanwhile times ``GET /`` sequentially. Prints p50 / p95 /
max of ``GET /`` and the hostile requests' status counts. ``--root`` runs another checkout
(e.g. main, for the "before" figure) with this script's venv.

    flock /tmp/emmm-cpu.lock python scripts/bench_hostile.py [--root ../main] [--seconds 40]
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench_common import free_port, stop  # scripts/ is on sys.path

HERE = Path(__file__).resolve().parent.parent


def worst_case_token(seed: int, size: int = 1024) -> str:
    sys.path.insert(0, str(HERE))
    from tests.codec.imagegen import synthetic_token

    # about 250 characters; the declared size differs per seed, so that every token is distinct
    # (with a near-zero latent the seed alone would give the same token)
    return synthetic_token(size - 8 * (seed % 8), size - 8 * (seed // 8), seed=seed, scale=0.001)


def taesd_token(seed: int) -> str:
    """A token naming ``taesd`` (weights not installed here): must be a fast 503."""
    import numpy as np

    from codec import packing, token

    latent = np.random.default_rng(seed).normal(0, 1, (4, 2, 2)).astype(np.float32)
    payload = packing.pack_webp8(latent)
    return token.to_text(token.pack(token.Header(1, 3, 16, 16, 16, 16, 4, 2, 2, packing.WEBP8, len(payload)), payload))


def fetch(url: str, timeout: float = 120) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError:
        code = 0
    return code, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE, help="checkout to serve (default: this one)")
    ap.add_argument("--seconds", type=float, default=40.0, help="how long to measure")
    ap.add_argument("--hostile", type=int, default=8, help="worst-case decodes kept in flight")
    ap.add_argument("--size", type=int, default=1024,
                    help="declared (coded = output) size of the hostile tokens: 1024 is the codec's largest; "
                         "512 is just under EMMM_HEAVY_DECODE_PIXELS (a light decode, no slot)")
    args = ap.parse_args()
    root = args.root.resolve()
    port = free_port()
    var = tempfile.mkdtemp(prefix="emmm-bench-hostile-")
    env = {**os.environ, "EMMM_VAR_DIR": var, "PORT": str(port), "DATABASE_URL": "", "REDIS_URL": "",
           "EMMM_RATELIMIT_ENABLE": "0", "DJANGO_DEBUG": "0",
           "EMMM_MODEL_DIR": os.environ.get("EMMM_MODEL_DIR", str(HERE.parent / "shared" / "models"))}
    tokens = [worst_case_token(seed, args.size) for seed in range(64)]  # made before the clock starts
    assert len(set(tokens)) == len(tokens)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "emmmsite.wsgi"],
                              cwd=root, env=env, start_new_session=True,
                              stdout=(log := Path(var) / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if fetch(base + "/", 2)[0] == 200:
                break
            time.sleep(0.2)
        idle = sorted(fetch(base + "/")[1] for _ in range(20))
        unavailable = [fetch(f"{base}/i/{taesd_token(i)}") for i in range(10)]  # issue 8.4: no download
        until = time.monotonic() + args.seconds + 1.0
        hostile: collections.Counter[int] = collections.Counter()
        hostile_times: list[float] = []
        decoded: set[str] = set()  # tokens answered 200 at least once: each was one decode, its repeats cache hits
        lock = threading.Lock()
        pool = iter(tokens * 1000)  # distinct tokens first; a repeat may then be a cache hit

        def attacker() -> None:
            while time.monotonic() < until:
                with lock:
                    token = next(pool)
                code, took = fetch(f"{base}/i/{token}.png")
                with lock:
                    hostile[code] += 1
                    hostile_times.append(took)
                    if code == 200:
                        decoded.add(token)

        threads = [threading.Thread(target=attacker) for _ in range(args.hostile)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # let the attack fill the server
        home: list[float] = []
        home_codes: collections.Counter[int] = collections.Counter()
        while time.monotonic() < until:
            code, took = fetch(base + "/", 30)
            home.append(took)
            home_codes[code] += 1
            time.sleep(0.1)
        for t in threads:
            t.join()
        home.sort()
        p95 = home[max(0, int(len(home) * 0.95) - 1)]
        print(f"checkout: {root}")
        print(f"GET / idle (20 requests): p50 {statistics.median(idle) * 1000:.0f} ms, max {idle[-1] * 1000:.0f} ms")
        print(f"GET / with {args.hostile} hostile decodes in flight ({len(home)} requests, {args.seconds:.0f} s): "
              f"p50 {statistics.median(home) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {home[-1] * 1000:.0f} ms, "
              f"statuses {dict(home_codes)}")
        times = sorted(t for _, t in unavailable)
        print(f"/i/<token naming taesd, no weights>: statuses {sorted({c for c, _ in unavailable})}, "
              f"median {statistics.median(times) * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
        print(f"hostile /i/<{args.size}x{args.size} token>.png: {sum(hostile.values())} requests, statuses {dict(hostile)}, "
              f"median {statistics.median(hostile_times):.2f} s; {len(decoded)} distinct tokens decoded")
        text = log.read_text(errors="replace")
        print(f"gunicorn: {text.count('Booting worker')} worker starts, {text.count('Autorestarting')} recycled, "
              f"{text.count('WORKER TIMEOUT')} timed out")
    finally:
        stop(server)


if __name__ == "__main__":
    main()

"""Serving benchmark: the production-shaped server (gunicorn, the project's config) under wrk.

Measures, side by side in one run with 64 connections for 60 s per URL: a static file of
the same size as the cached image (WhiteNoise, same gunicorn), a cached ``/i/<token>``,
``/s/<slug>`` and uncached decodes (a pool of distinct real tokens, spread over wrk's
threads so that none is asked twice until the pool is used up). Prints req/s, p50/p99
latency, wrk's socket errors by kind (connect/read/write/timeout), the 5xx and other
non-2xx answers counted in gunicorn's access log, worker restarts, and the ratio to the
static file; once on SQLite + file cache and once on PostgreSQL + Redis (a private
redis-server on a free port, the PostgreSQL database ``--pg-db``, dropped and created).

    python scripts/bench_serving.py --cpu-lock /tmp/emmm-cpu.lock

``--cpu-lock`` takes that lock (flock) for the token pool and for each stack separately, so
the run is one command but each locked turn stays short (a stack: about 5 minutes). The pool
(``--pool`` tokens, encoded from Kodak crops) is kept in ``--tokens-file`` for later runs.

Needs ``wrk`` (``apt-get install -y wrk``). Rate limits are off in the benchmark
(``EMMM_RATELIMIT_ENABLE=0``): 64 connections from one address would otherwise measure 429s.
Every process it starts runs in its own process group and is stopped at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_common import cpu_turn, free_port, spawn, stop, wait_http  # scripts/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

ENCODE = r"""
import json, os, random
from pathlib import Path
from PIL import Image
import codec
kodak = sorted(Path(os.environ["BENCH_KODAK"]).glob("*.png"))
# The shared image: a 320x240 crop (a WebP of about 12 KB, the size in issue 8's figures).
token = codec.encode(Image.open(kodak[0]).convert("RGB").crop((200, 100, 520, 340))).token
rng = random.Random(1)
pool = []
for i in range(int(os.environ["BENCH_POOL"])):
    im = Image.open(kodak[i % len(kodak)]).convert("RGB")
    x, y = rng.randrange(0, im.width - 192), rng.randrange(0, im.height - 192)
    pool.append(codec.encode(im.crop((x, y, x + 192, y + 192)), refine_steps=0).token)
print(json.dumps({"token": token, "pool": pool}))
"""

SETUP = r"""
import json, sys
import django
django.setup()
from imagehost.models import Picture
from imagehost.services import links, rendering
token = sys.stdin.read().strip()
Picture.objects.create(token=token, model_name="taef2", width=320, height=240)
link = links.get_or_create_short_link(token, None)
print(json.dumps({"slug": link.slug, "size": len(rendering.render_token_image(token).content)}))
"""

# Each wrk thread walks its own share of the pool (thread n: tokens n, n + threads, ...), so a
# token is asked once until the pool is used up.
WRK_POOL_LUA = r"""
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local n, threads = 0, 1
function setup(thread)
  thread:set("n", n)
  n = n + 1
  thread:set("threads", %d)
end
local i = 0
request = function()
  local t = tokens[((n + i * threads) %% #tokens) + 1]
  i = i + 1
  return wrk.format("GET", "/i/" .. t)
end
"""
WRK_THREADS = 2
ACCESS_STATUS = re.compile(r'" (\d{3}) ')
# The access log names a token by a hash (emmmsite/gunicorn_logging.py): a 200 for a token not
# seen before is a decode, a repeat is a cache hit.
ACCESS_TOKEN_OK = re.compile(r'sha256:([0-9a-f]{16})\(\d+\)\S* HTTP/[\d.]+" 2\d\d ')


def to_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if m is None:  # wrk prints e.g. "-nan%" when nothing completed
        return float("nan")
    num, unit = m.groups()
    return float(num) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(url: str, duration: int, conns: int, script: Path | None = None) -> dict:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    if os.environ.get("BENCH_VERBOSE"):
        print(out, file=sys.stderr)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": to_ms(re.search(r"50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"99%\s+(\S+)", out).group(1)),
        "errors": dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()))) if sock else {},
    }


def server_view(log_text: str) -> dict:
    """What gunicorn's log says about one stretch of a run: answers by status class, worker (re)starts."""
    statuses = [int(m.group(1)) for m in ACCESS_STATUS.finditer(log_text)]
    return {
        "2xx": sum(200 <= s < 300 for s in statuses),
        "5xx": sum(s >= 500 for s in statuses),
        "other_non2xx": sum(not 200 <= s < 300 and s < 500 for s in statuses),
        "boots": log_text.count("Booting worker"),
        "tokens_ok": len(set(ACCESS_TOKEN_OK.findall(log_text))),
    }


def bench_stack(name: str, args, tmp: Path, tokens: dict) -> list[tuple[str, dict]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "EMMM_", "DJANGO_"))}
    var = tmp / name.replace("+", "-")  # a "+" in the SQLite URL would read as a space
    port = free_port()
    env.update(
        EMMM_VAR_DIR=str(var), DJANGO_STATIC_ROOT=str(var / "static"), EMMM_RATELIMIT_ENABLE="0",
        EMMM_MODEL_DIR=args.model_dir, PORT=str(port), GUNICORN_ACCESSLOG="-",
        DJANGO_SETTINGS_MODULE="emmmsite.settings",
        DATABASE_URL="", PYTHONPATH=str(ROOT),
    )
    var.mkdir(parents=True)
    procs: list[subprocess.Popen] = []
    try:
        if name == "postgres+redis":
            rport = free_port()
            procs.append(spawn(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], env, tmp / "redis.log"))
            env["REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
            base = args.pg_url.rsplit("/", 1)[0]
            env["DATABASE_URL"] = f"{base}/{args.pg_db}"
            subprocess.run([PY, "-c", (
                "import psycopg,sys; c=psycopg.connect(sys.argv[1]+'/postgres', autocommit=True);"
                "c.execute(f'DROP DATABASE IF EXISTS {sys.argv[2]}'); c.execute(f'CREATE DATABASE {sys.argv[2]}')"
            ), base, args.pg_db], check=True)
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
        setup = json.loads(subprocess.run([PY, "-c", SETUP], env=env, cwd=ROOT, check=True, input=tokens["token"],
                                          capture_output=True, text=True).stdout.strip().splitlines()[-1])
        setup.update(tokens)
        static = var / "static" / "bench"
        static.mkdir(parents=True)
        (static / "blob.webp").write_bytes(os.urandom(setup["size"]))
        pool_file = tmp / f"{name}-pool.txt"
        pool_file.write_text("\n".join(setup["pool"]) + "\n")
        lua = tmp / f"{name}-pool.lua"
        lua.write_text(WRK_POOL_LUA % (pool_file, WRK_THREADS))
        log = tmp / f"{name}-gunicorn.log"
        gunicorn = spawn([PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "emmmsite.wsgi"], env, log)
        procs.append(gunicorn)
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/static/bench/blob.webp")
        for path in (f"/i/{setup['token']}", f"/s/{setup['slug']}"):
            urllib.request.urlopen(base_url + path, timeout=30).read()  # each worker's first import
        rows = []
        for label, url, dur, script in (
            (f"static file ({setup['size']:,} B)", f"{base_url}/static/bench/blob.webp", args.duration, None),
            ("/i/<token> cached", f"{base_url}/i/{setup['token']}", args.duration, None),
            ("/s/<slug>", f"{base_url}/s/{setup['slug']}", args.duration, None),
            (f"uncached decodes ({len(setup['pool'])} tokens, 192²)", base_url, args.uncached_duration, lua),
        ):
            time.sleep(1)
            start = log.stat().st_size
            result = run_wrk(url, dur, args.connections, script)
            time.sleep(0.5)  # the access log of the last answers
            with log.open("rb") as f:
                f.seek(start)
                result.update(server_view(f.read().decode(errors="replace")))
            rows.append((label, result))
        uncached = rows[-1][1]  # the pool cycles, so a token shed with 503 is asked again later
        decoded = uncached["tokens_ok"]
        uncached["note"] = (f"{decoded} distinct tokens decoded ({decoded / args.uncached_duration:.1f}/s"
                            + (", the whole pool: a lower bound" if decoded >= len(setup["pool"]) else "")
                            + f"); {uncached['2xx'] - decoded:,} more 200s were repeats (cache hits); "
                            f"{uncached['5xx']:,} 503 busy (no decode slot free: load shed at once)")
        return rows
    finally:
        for p in reversed(procs):
            stop(p)


def report(name: str, rows: list[tuple[str, dict]], duration: int, conns: int) -> str:
    static = rows[0][1]["rps"]
    lines = [f"### {name} ({conns} connections, {duration} s per URL)", "",
             "| URL | req/s | p50 ms | p99 ms | socket errors connect/read/write/timeout | 5xx | other non-2xx "
             "| worker restarts | vs static |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, r in rows:
        errors = "/".join(str(r["errors"].get(k, 0)) for k in ("connect", "read", "write", "timeout"))
        lines.append(f"| {label} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {errors} | {r['5xx']} | "
                     f"{r['other_non2xx']} | {r['boots']} | {r['rps'] / static:.0%} |")
        if r.get("note"):
            lines.append(f"| ↳ {r['note']} | | | | | | | | |")
    return "\n".join(lines) + "\n"


def summary(results: dict[str, list[tuple[str, dict]]]) -> str:
    """The targets, one column per stack."""
    names = list(results)
    lines = ["| target | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for label, i in (("`/i/<token>` cached ≥ 50% of static", 1), ("`/s/<slug>` ≥ 50% of static", 2)):
        lines.append(f"| {label} | " + " | ".join(
            f"{rows[i][1]['rps'] / rows[0][1]['rps']:.0%}" for rows in results.values()) + " |")
    for label, key in (("socket errors, static + cached + short link", "errors"), ("5xx, same rows", "5xx")):
        cells = []
        for rows in results.values():
            cells.append(str(sum(sum(r[key].values()) if key == "errors" else r[key] for _, r in rows[:3])))
        lines.append(f"| {label} (target 0) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pool_tokens(args, tokens_file: Path) -> dict:
    """The shared token and the uncached pool: from ``tokens_file`` when it holds at least ``--pool``."""
    if tokens_file.exists():
        tokens = json.loads(tokens_file.read_text())
        if len(tokens["pool"]) >= args.pool:
            return {"token": tokens["token"], "pool": tokens["pool"][:args.pool]}
    env = dict(os.environ, EMMM_MODEL_DIR=args.model_dir, BENCH_KODAK=args.kodak, BENCH_POOL=str(args.pool), EMMM_TORCH_THREADS="2",
               PYTHONPATH=str(ROOT))
    with cpu_turn(args.cpu_lock, f"encoding {args.pool} tokens"):
        tokens = json.loads(subprocess.run([PY, "-c", ENCODE], env=env, cwd=ROOT, check=True, capture_output=True,
                                           text=True).stdout.strip().splitlines()[-1])
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(json.dumps(tokens))
    return tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=60, help="seconds per URL (default 60)")
    p.add_argument("--uncached-duration", type=int, default=None, help="seconds for the uncached decodes (default: --duration)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pool", type=int, default=600, help="distinct tokens for the uncached decodes (default 600)")
    p.add_argument("--tokens-file", type=Path, default=ROOT / "var" / "bench-serving-tokens.json")
    p.add_argument("--stacks", default="sqlite+file,postgres+redis")
    p.add_argument("--cpu-lock", default=None, help="flock this file for the pool and for each stack (e.g. /tmp/emmm-cpu.lock)")
    p.add_argument("--pg-url", default="postgres://emmm:emmm@127.0.0.1:5432/emmm")
    p.add_argument("--pg-db", default="emmm_bench")
    p.add_argument("--model-dir", default=os.environ.get("EMMM_MODEL_DIR", str(ROOT.parent / "shared" / "models")))
    p.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    args = p.parse_args()
    args.uncached_duration = args.uncached_duration or args.duration
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    tokens = pool_tokens(args, args.tokens_file)
    print(f"image token: {len(tokens['token']):,} characters; {len(tokens['pool'])} tokens for uncached decodes\n", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="emmm-bench-"))
    results = {}
    try:
        for name in args.stacks.split(","):
            with cpu_turn(args.cpu_lock, name):
                print(f"{name}: started {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
                results[name] = bench_stack(name, args, tmp, tokens)
            print(report(name, results[name], args.duration, args.connections), flush=True)
        print(summary(results), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

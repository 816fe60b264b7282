"""``python -m imagehost.similarity.bench [tokens|retrieval|cost|report|all]`` (no Django).

The pieces each stay under ~10 minutes on the 2-core machine, and keep their results
under ``--cache`` so they can run one at a time (under the CPU lock) and be reassembled:

- ``tokens``: encode + decode the Kodak originals and their edited copies through the token
  codec (cached; run again until it says all are done).
- ``retrieval``: near-duplicate recall@1 / mAP, the threshold, the neighbour contact sheet.
- ``cost --sizes 10000,100000`` and ``cost --sizes 1000000``: embedding time, index latency/memory.
- ``report``: writes docs/benchmarks-similarity.md from the saved results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "emmm-similarity-cache"
DEFAULT_KODAK = REPO.parent / "shared" / "data" / "kodak"
SHEET = "benchmarks-similarity-neighbours.png"


def _threads(n: int) -> None:
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def _save(cache: Path, name: str, data: dict) -> None:
    (cache / "results").mkdir(parents=True, exist_ok=True)
    (cache / "results" / f"{name}.json").write_text(json.dumps(data, indent=1))


def _load(cache: Path, name: str) -> dict | None:
    path = cache / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagehost.similarity.bench", description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["tokens", "retrieval", "cost", "report", "all"])
    parser.add_argument("--kodak", type=Path, default=Path(os.environ.get("EMMM_KODAK_DIR", DEFAULT_KODAK)))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--refine-steps", type=int, default=0, help="codec refine steps for the copies (default 0)")
    parser.add_argument("--budget-s", type=float, default=480, help="tokens: stop encoding after this long")
    parser.add_argument("--sizes", default="10000,100000", help="cost: index sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="cost: queries per index")
    parser.add_argument("--threads", type=int, default=1, help="torch/FAISS threads for embedding and search")
    parser.add_argument("--docs", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    _threads(args.threads)

    from .tokens import TokenCache

    tokens = TokenCache(args.cache / "tokens", args.refine_steps)
    if args.part in ("tokens", "all"):
        from .dataset import fill_token_cache

        done, total = fill_token_cache(args.kodak, tokens, args.budget_s)
        print(f"token round trips cached: {done}/{total}" + ("" if done == total else " (run again to go on)"))
    if args.part in ("retrieval", "all"):
        from .dataset import load_set
        from .retrieval import contact_sheet, neighbours, retrieval

        data = load_set(args.kodak, tokens)
        started = time.perf_counter()
        figures, vectors = retrieval(data)
        figures["seconds"] = round(time.perf_counter() - started, 1)
        near = neighbours(vectors)
        figures["neighbours"] = {data.names[i]: [[data.names[j], round(s, 3)] for j, s in row] for i, row in enumerate(near)}
        figures["sheet_bytes"] = contact_sheet(data, near, args.docs / SHEET)
        figures["refine_steps"] = args.refine_steps
        figures["token_chars"] = [tokens.token_chars(img) for img in data.originals]
        _save(args.cache, "retrieval", figures)
        print(json.dumps({k: v for k, v in figures.items() if k != "neighbours"}, indent=1))
    if args.part in ("cost", "all"):
        from .cost import embedding_cost, index_cost

        result = _load(args.cache, "cost") or {"indexes": {}}
        result["embedding"] = embedding_cost(args.kodak)
        print(json.dumps(result["embedding"]))
        for n in [int(s) for s in args.sizes.split(",") if s]:
            result["indexes"][str(n)] = index_cost(n, args.queries if n < 1_000_000 else min(args.queries, 100))
            print(json.dumps(result["indexes"][str(n)]), flush=True)
            _save(args.cache, "cost", result)
        result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        _save(args.cache, "cost", result)
    if args.part in ("report", "all"):
        from .report import write_report

        path = write_report(_load(args.cache, "retrieval"), _load(args.cache, "cost"), args.docs, SHEET)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

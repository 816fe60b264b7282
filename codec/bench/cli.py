"""``python -m codec.bench``: measure (all images or a subset, optionally into a JSON piece),
merge pieces, write the markdown report.

    python -m codec.bench --images ../shared/data/kodak --size 316 --out docs/benchmarks.md
    python -m codec.bench --images DIR --only kodim01,kodim02 --json piece1.json   # a piece
    python -m codec.bench --merge piece1.json piece2.json --out docs/benchmarks.md
    python -m codec.bench --images DIR --json-dir pieces/   # one piece per image; images
                                                             # already in pieces/ are skipped
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from . import measure, report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codec.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", help="folder of images")
    parser.add_argument("--size", type=int, default=316, help="long side in pixels (default 316)")
    parser.add_argument("--only", help="comma-separated image names (file stems) to measure")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", help="write the measurements to this JSON piece")
    parser.add_argument("--json-dir", help="write one JSON piece per image here (skip images already there)")
    parser.add_argument("--v2-target-db", type=float, metavar="DB",
                        help="measure only v2 at this EMMM_V2_TARGET_DB (method v2-<DB>dB), to merge with a full run")
    parser.add_argument("--v2-only", action="store_true",
                        help="measure only what depends on v2 (merge it after a full run: later pieces win)")
    parser.add_argument("--v1-budgets", metavar="N,N",
                        help="measure only v1 rate control at these budgets (v1@N), to merge with a full run")
    parser.add_argument("--merge", nargs="+", metavar="PIECE", help="JSON pieces to merge instead of measuring")
    parser.add_argument("--out", help="write the markdown report here")
    return parser


def measure_all(folder: str, size: int, threads: int, only: list[str] | None, log=print, piece_dir: str | None = None,
                variant_db: float | None = None, v2_only: bool = False, v1_budgets: tuple[int, ...] = ()) -> dict:
    """Measurements of every method on every image, as a JSON-ready dict (with ``piece_dir``,
    also one piece per image, written as soon as that image is done)."""
    import torch

    os.environ.setdefault("EMMM_TORCH_THREADS", str(threads))
    import codec

    codec.load_model()
    torch.set_num_threads(threads)
    paths = measure.image_paths(folder, only)
    if piece_dir:
        os.makedirs(piece_dir, exist_ok=True)
        paths = [p for p in paths if not os.path.exists(os.path.join(piece_dir, p.stem + ".json"))]
    images = measure.load_images(paths, size)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    start = time.perf_counter()
    if images:
        measure.warm_up(images[0][1])
    rows, ceiling = [], {}
    for name, image in images:
        began = time.perf_counter()
        if v1_budgets:
            image_rows = measure.run_v1_budgets(name, image, v1_budgets)
        elif variant_db is None:
            image_rows, ceiling[name] = measure.run_image(name, image, v2_only=v2_only)
        else:
            image_rows = measure.run_variant(name, image, variant_db)
        rows += [r.to_json() for r in image_rows]
        log(f"{name}: " + "  ".join(f"{r.method} {r.chars}c {r.psnr:.2f}dB" for r in image_rows[:5]))
        if piece_dir:
            piece = {"rows": [r.to_json() for r in image_rows], "ceiling": {k: v for k, v in ceiling.items() if k == name}, "size": size,
                     "threads": threads, "folder": folder, "seconds": time.perf_counter() - began, "machine": machine}
            with open(os.path.join(piece_dir, name + ".json"), "w") as fh:
                json.dump(piece, fh)
    return {"rows": rows, "ceiling": ceiling, "size": size, "threads": threads, "folder": folder,
            "seconds": time.perf_counter() - start, "machine": machine}  # fmt: skip


def merge(pieces: list[dict]) -> dict:
    """One measurement set from several (same size and threads)."""
    first = dict(pieces[0])
    if any(p["size"] != first["size"] or p["threads"] != first["threads"] for p in pieces):
        raise SystemExit("pieces were measured with different --size or --threads")
    rows = {(r["method"], r["image"]): r for p in pieces for r in p["rows"]}  # later pieces win
    first["rows"] = list(rows.values())
    first["ceiling"] = {k: v for p in pieces for k, v in p["ceiling"].items()}
    first["seconds"] = sum(p["seconds"] for p in pieces)
    return first


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    if args.merge:
        data = merge([json.loads(open(path).read()) for path in args.merge])
        data["pieces"] = len(args.merge)
    elif args.images:
        only = args.only.split(",") if args.only else None
        data = measure_all(args.images, args.size, args.threads, only, log=lambda m: print(m, file=sys.stderr),
                           piece_dir=args.json_dir, variant_db=args.v2_target_db, v2_only=args.v2_only,
                           v1_budgets=tuple(int(b) for b in args.v1_budgets.split(",")) if args.v1_budgets else ())
        data["pieces"] = 1
    else:
        _parser().error("give --images (measure) or --merge (combine pieces)")
    data.setdefault("args", argv_text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh)
    if args.out:
        text = report.markdown({**data, "args": data.get("args", argv_text)})
        with open(args.out, "w") as fh:
            fh.write(text)
    return 0

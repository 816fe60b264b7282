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
import math
import os
import platform
import sys
import time

from ..__main__ import positive_int
from . import measure, report


def _budgets(text: str) -> tuple[int, ...]:
    try:
        budgets = tuple(int(b) for b in text.split(","))
    except ValueError:
        budgets = ()
    if not budgets or min(budgets) < 1:
        raise argparse.ArgumentTypeError(f"expected whole numbers from 1, comma-separated (such as 2000,4000), not {text!r}")
    return budgets


def _decibels(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m codec.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", help="folder of images")
    parser.add_argument("--size", type=positive_int, default=316, help="long side in pixels (default 316)")
    parser.add_argument("--only", help="comma-separated image names (file stems) to measure")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", help="write the measurements to this JSON piece")
    parser.add_argument("--json-dir", help="write one JSON piece per image here (skip images already there)")
    parser.add_argument("--v2-target-db", type=_decibels, metavar="DB",
                        help="measure only v2 at this EMMM_V2_TARGET_DB (method v2-<DB>dB), to merge with a full run")
    parser.add_argument("--v2-only", action="store_true",
                        help="measure only what depends on v2 (merge it after a full run: later pieces win)")
    parser.add_argument("--v1-budgets", type=_budgets, metavar="N,N",
                        help="measure only v1 rate control at these budgets (v1@N), to merge with a full run")
    parser.add_argument("--merge", nargs="+", metavar="PIECE", help="JSON pieces to merge instead of measuring")
    parser.add_argument("--out", help="write the markdown report here")
    return parser


def measure_all(folder: str, size: int, threads: int, only: list[str] | None, log=print, piece_dir: str | None = None,
                variant_db: float | None = None, v2_only: bool = False, v1_budgets: tuple[int, ...] = ()) -> dict:
    """Measurements of every method on every image, as a JSON-ready dict (with ``piece_dir``,
    also one piece per image, written as soon as that image is done). measure.BenchError for
    a folder without images or a file there that is not one (before the model is loaded)."""
    paths = measure.image_paths(folder, only)
    if piece_dir:
        os.makedirs(piece_dir, exist_ok=True)
        paths = [p for p in paths if not os.path.exists(os.path.join(piece_dir, p.stem + ".json"))]
    images = measure.load_images(paths, size)
    import torch

    os.environ.setdefault("EMMM_TORCH_THREADS", str(threads))
    import codec

    codec.load_model()
    torch.set_num_threads(threads)
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


#: What a JSON piece holds (``measure_all``), with the type of each.
PIECE_FIELDS = {"rows": list, "ceiling": dict, "size": int, "threads": int, "seconds": (int, float),
                "machine": str, "folder": str}  # fmt: skip


def read_piece(path: str) -> dict:
    """A JSON piece written by ``--json`` / ``--json-dir``; measure.BenchError if it is not one."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise measure.BenchError(f"--merge: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        piece = json.loads(text)
    except ValueError:
        piece = None
    fields = set(measure.Row.__dataclass_fields__)
    if not (isinstance(piece, dict)
            and all(isinstance(piece.get(k), t) and not isinstance(piece.get(k), bool) for k, t in PIECE_FIELDS.items())
            and all(isinstance(r, dict) and {"method", "image"} <= set(r) <= fields for r in piece["rows"])):
        raise measure.BenchError(f"--merge: {path} is not a measurement piece (written by --json or --json-dir)")
    return piece


def merge(pieces: list[dict]) -> dict:
    """One measurement set from several (same size and threads)."""
    first = dict(pieces[0])
    if any(p["size"] != first["size"] or p["threads"] != first["threads"] for p in pieces):
        raise measure.BenchError("pieces were measured with different --size or --threads")
    rows = {(r["method"], r["image"]): r for p in pieces for r in p["rows"]}  # later pieces win
    first["rows"] = list(rows.values())
    first["ceiling"] = {k: v for p in pieces for k, v in p["ceiling"].items()}
    first["seconds"] = sum(p["seconds"] for p in pieces)
    return first


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    try:
        if args.merge:
            data = merge([read_piece(path) for path in args.merge])
            data["pieces"] = len(args.merge)
        elif args.images:
            if not os.path.isdir(args.images):
                what = "not a folder" if os.path.exists(args.images) else "no such folder"
                parser.error(f"--images: {what}: {args.images}")
            only = args.only.split(",") if args.only else None
            data = measure_all(args.images, args.size, args.threads, only, log=lambda m: print(m, file=sys.stderr),
                               piece_dir=args.json_dir, variant_db=args.v2_target_db, v2_only=args.v2_only,
                               v1_budgets=args.v1_budgets or ())
            data["pieces"] = 1
        else:
            parser.error("give --images (measure) or --merge (combine pieces)")
    except measure.BenchError as exc:
        parser.error(str(exc))
    data.setdefault("args", argv_text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(data, fh)
    if args.out:
        text = report.markdown({**data, "args": data.get("args", argv_text)})
        with open(args.out, "w") as fh:
            fh.write(text)
    return 0

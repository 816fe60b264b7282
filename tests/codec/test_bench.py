"""codec.bench on two small generated pictures (never Kodak): measurement pieces, the merge,
the report's sections, and that its numbers are sane."""

from __future__ import annotations

import json
import math

from codec import bench
from codec.bench import cli, measure, report

from .imagegen import photo


def test_bench_pieces_merge_into_one_report(tmp_path, taef2, monkeypatch):
    folder = tmp_path / "images"
    folder.mkdir()
    photo(96, 72, seed=1).save(folder / "one.png")
    photo(72, 96, seed=2).save(folder / "two.png")
    images = bench.load_images(bench.image_paths(folder), 64)
    assert sorted(im.size for _, im in images) == [(48, 64), (64, 48)]
    monkeypatch.setattr(measure, "BUDGETS", (1000,))
    monkeypatch.setattr(measure, "V1_BUDGETS", (1000,))
    monkeypatch.setattr(report, "BUDGETS", (1000,))

    assert cli.main(["--images", str(folder), "--size", "64", "--only", "one", "--json", str(tmp_path / "p0.json")]) == 0
    # one piece per image; images already measured there are skipped
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    (pieces / "one.json").write_text((tmp_path / "p0.json").read_text())
    assert cli.main(["--images", str(folder), "--size", "64", "--json-dir", str(pieces), "--json", str(tmp_path / "rest.json")]) == 0
    assert {r["image"] for r in json.loads((tmp_path / "rest.json").read_text())["rows"]} == {"two"}
    (tmp_path / "p1.json").write_text((pieces / "two.json").read_text())
    out = tmp_path / "report.md"
    assert cli.main(["--merge", str(tmp_path / "p0.json"), str(tmp_path / "p1.json"), "--out", str(out)]) == 0
    text = out.read_text()
    for heading in ("## Targets (issue 10)", "## Means, side by side in one run", "## Rate control (max_chars)", "## Per image"):
        assert heading in text
    for method in bench.METHODS:
        assert f"| {method} | " in text
    assert "pieces merged: 2" in text and "Images: 2 from" in text

    rows = [r for i in range(2) for r in json.loads((tmp_path / f"p{i}.json").read_text())["rows"]]
    assert {r["method"] for r in rows} == set(bench.METHODS) | {"v1@1000", "v2@1000", "avif-token@1000"}
    for r in rows:
        row = bench.Row(**r)
        if r["method"].endswith("@1000"):
            assert row.over_budget or row.chars <= 1000
        if row.over_budget:
            continue
        assert row.chars > 0 and row.nbytes > 0
        assert 10 < row.psnr < 60, row
        assert 0 < row.msssim <= 1, row
        assert row.encode_s > 0 and row.decode_s > 0
    by = {(r["method"], r["image"]): bench.Row(**r) for r in rows}
    for name in ("one", "two"):
        v2 = by[("v2", name)]
        assert v2.chars == math.ceil(v2.nbytes * 4 / 3)
        assert 0 <= v2.outside_share < 1
        for fmt in ("avif", "webp"):
            f = by[(fmt, name)]
            assert f.over_budget or f.nbytes <= v2.nbytes
            assert 0 <= f.quality <= 100


def test_msssim_settings_fit_the_image():
    assert bench.msssim_settings(316, 211) == (11, 5)  # Kodak at 316: the standard settings
    assert bench.msssim_settings(64, 48) == (3, 5)
    assert bench.msssim_settings(40, 40) == (3, 4)
    assert bench.msssim_settings(30, 200) is None


def _fails_with(capsys, argv: list[str], message: str) -> None:
    import pytest

    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_bad_arguments_are_one_clear_error_not_a_traceback(tmp_path, capsys):
    """A missing --images folder, a file there, a non-image .png in it, a malformed --merge
    piece, --v1-budgets x and --threads 0 were tracebacks; --size 0 measured 1x1 pictures."""
    folder = tmp_path / "images"
    folder.mkdir()
    photo(24, 16).save(folder / "one.png")
    _fails_with(capsys, ["--images", str(tmp_path / "missing")], f"--images: no such folder: {tmp_path / 'missing'}")
    _fails_with(capsys, ["--images", str(folder / "one.png")], "--images: not a folder")
    _fails_with(capsys, ["--images", str(tmp_path)], f"no images in {tmp_path}")
    for option, value, message in (("--size", "0", "--size: must be at least 1"), ("--size", "-5", "--size: must be at least 1"),
                                   ("--threads", "0", "--threads: must be at least 1"), ("--threads", "x", "not an integer"),
                                   ("--v1-budgets", "x", "--v1-budgets: expected whole numbers from 1, comma-separated"),
                                   ("--v1-budgets", "4000,0", "--v1-budgets: expected whole numbers"),
                                   ("--v2-target-db", "nan", "--v2-target-db: expected a number above 0")):
        _fails_with(capsys, ["--images", str(folder), option, value], message)
    (folder / "two.png").write_bytes(b"not a picture")
    _fails_with(capsys, ["--images", str(folder)], f"cannot read {folder / 'two.png'}: not an image")
    bad = tmp_path / "piece.json"
    for text, message in (('{"a": 1}', "is not a measurement piece"), ("{", "is not a measurement piece"),
                          ('{"rows": 3, "size": 64, "threads": 1, "ceiling": {}, "seconds": 1}', "is not a measurement piece")):
        bad.write_text(text)
        _fails_with(capsys, ["--merge", str(bad)], f"--merge: {bad} is not a measurement piece")
    _fails_with(capsys, ["--merge", str(tmp_path / "none.json")], f"--merge: cannot read {tmp_path / 'none.json'}")

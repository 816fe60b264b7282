"""codec.bench on two small generated pictures (never Kodak): the report's columns and
that its numbers are sane."""

from __future__ import annotations

import math
import re

from codec import bench

from .imagegen import photo


def test_bench_report_on_tiny_images(tmp_path, taef2):
    folder = tmp_path / "images"
    folder.mkdir()
    photo(96, 72, seed=1).save(folder / "one.png")
    photo(72, 96, seed=2).save(folder / "two.png")
    images = bench.load_images(bench.image_paths(folder), 64)
    assert sorted(im.size for _, im in images) == [(48, 64), (64, 48)]

    report = bench.run(images, 64, 1, log=lambda _msg: None)
    text = bench.markdown(report, folder=str(folder), args="--size 64")

    for heading in ("## Means", "## Side by side in one run", "## Decode time outside the model",
                    "## Where the VAE token loses", "## Per image"):  # fmt: skip
        assert heading in text
    assert "| image | size | chars | bytes | bpp | PSNR dB | MS-SSIM | encode s | decode s |" in text
    for method in bench.METHODS:
        assert f"### {method}: " in text
        assert f"| {method}: " in text
    assert re.search(r"mean chars \(a\) / mean chars \(b\) = \d+ / \d+ = \d\.\d{3}", text)

    assert len(report.rows) == 2 * len(bench.METHODS)
    for row in report.rows:
        assert row.chars > 0 and row.nbytes > 0
        assert row.bpp == row.nbytes * 8 / (row.width * row.height)
        assert 10 < row.psnr < 60, row
        assert 0 < row.msssim <= 1, row
        assert row.encode_s > 0 and row.decode_s > 0
    by = {(r.method, r.image): r for r in report.rows}
    for name, _ in images:
        a = by[("a", name)]
        assert a.chars == math.ceil(a.nbytes * 4 / 3)
        assert 0 <= a.outside_share < 1
        for fmt in ("avif", "webp"):
            f = by[(fmt, name)]
            assert f.over_budget or f.nbytes <= a.nbytes
            assert 0 <= f.quality <= 100


def test_msssim_settings_fit_the_image():
    assert bench.msssim_settings(316, 211) == (11, 5)  # Kodak at 316: the standard settings
    assert bench.msssim_settings(64, 48) == (3, 5)
    assert bench.msssim_settings(40, 40) == (3, 4)
    assert bench.msssim_settings(30, 200) is None

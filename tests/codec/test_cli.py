"""``python -m codec``: encode -> decode -> inspect through real subprocesses, and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from codec.__main__ import main

from .imagegen import encoded, photo, psnr, synthetic_token

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, EMMM_TORCH_THREADS="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "codec", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, timeout=120)


def test_encode_decode_inspect(tmp_path, weights_dir):
    image = photo(70, 45, seed=2)
    (tmp_path / "in.png").write_bytes(encoded(image))
    enc = run("encode", str(tmp_path / "in.png"), "--max-chars", "900")
    assert enc.returncode == 0, enc.stderr
    text = enc.stdout.decode().strip()
    assert 0 < len(text) <= 900 and enc.stdout.decode().count("\n") == 1
    (tmp_path / "t.tok").write_text(text + "\n")

    dec = run("decode", str(tmp_path / "t.tok"), "-o", str(tmp_path / "out.png"))
    assert dec.returncode == 0 and dec.stdout == b"" and dec.stderr == b"", dec.stderr
    out = Image.open(tmp_path / "out.png")
    assert out.format == "PNG" and out.size == (70, 45)
    assert psnr(image, out) > 24

    ins = run("inspect", text)  # the token itself as the argument
    assert ins.returncode == 0, ins.stderr
    fields = json.loads(ins.stdout)
    assert fields["model"] == "taef2" and (fields["width"], fields["height"]) == (70, 45)
    assert fields["chars"] == len(text) and fields["version"] == 2 and fields["payload_kind"] == "klt-ctx"  # the default (EMMM_VAE_FORMAT)


def test_bad_token_is_a_one_line_error_with_exit_2():
    result = run("decode", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "-o", "/tmp/never.png")
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode() == "python -m codec: error: unknown token version 0 (this server reads versions 1 and 2)\n"


def test_bad_image_is_a_one_line_error_with_exit_2(tmp_path):
    (tmp_path / "x.png").write_bytes(b"%PDF-1.4 not an image")
    result = run("encode", str(tmp_path / "x.png"))
    assert result.returncode == 2 and result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.startswith("python -m codec: error: not an image in a supported format") and stderr.count("\n") == 1
    assert "Traceback" not in stderr


def test_codec_imports_no_django():
    code = ("import sys, codec, codec.__main__; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'rest_framework', 'celery', 'emmmsite', 'imagehost'}))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "[]"


def altered(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :]


# In-process for the remaining cases (the same main() the subprocesses run).


def test_inspect_from_file_and_stdin(tmp_path, capsys, monkeypatch):
    import io

    text = synthetic_token(33, 17)
    (tmp_path / "t.txt").write_text(f"\n  {text}\n")
    assert main(["inspect", str(tmp_path / "t.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["width"] == 33
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["inspect", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["latent_shape"] == [32, 3, 5]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "not a token!"], "the token is not base64url text"),
        (["inspect", synthetic_token(8, 8)[:-6]], "the token is truncated: it declares 186 bytes but carries 181"),
        (["inspect", altered(synthetic_token(8, 8), 40)], "checksum mismatch"),
        (["decode", synthetic_token(8, 8), "-o", "x.unknownext"], "cannot tell the output format from 'x.unknownext'"),
        (["decode", synthetic_token(8, 8), "-o", "x.blp"], "cannot write BLP images: use .png, .jpg, .webp"),  # was a traceback
        (["decode", synthetic_token(8, 8), "-o", "x.xbm"], "cannot write XBM images"),  # was "cannot write" as an I/O error
        (["encode", "/nonexistent/file.png"], "no such file: /nonexistent/file.png"),
        (["encode", "/nonexistent/file.png", "--model", "nope"], "unknown model 'nope'"),
    ],
)
def test_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("python -m codec: error: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["encode", "x.png", "--max-chars", "0"])
    assert info.value.code == 2
    assert "--max-chars: must be at least 1, got 0" in capsys.readouterr().err


def test_unwritable_output_exits_1(tmp_path, capsys, weights_dir):
    assert main(["decode", synthetic_token(8, 8), "-o", str(tmp_path / "no" / "dir" / "x.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


@pytest.fixture
def offline_without_weights(tmp_path, monkeypatch):
    """No weights anywhere, no downloads, nothing loaded (restored afterwards)."""
    from codec.models import registry

    monkeypatch.setenv("EMMM_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("EMMM_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EMMM_OFFLINE", "1")
    registry.unload_all()
    yield tmp_path
    registry.unload_all()


def test_missing_weights_exit_3(offline_without_weights, capsys):
    assert main(["decode", synthetic_token(8, 8), "-o", str(offline_without_weights / "x.png")]) == 3
    err = capsys.readouterr().err
    assert "weights for model 'taef2' are missing" in err and err.count("\n") == 1


def test_fetch_verifies_present_weights(weights_dir, capsys):
    assert main(["fetch", "taef2"]) == 0
    assert capsys.readouterr().out == "taef2: weights present and verified\n"


def test_fetch_offline_without_weights_exit_3_with_details(offline_without_weights, capsys):
    assert main(["fetch", "taef2"]) == 3
    err = capsys.readouterr().err
    assert "weights for model 'taef2' are missing (no download allowed)" in err and err.count("\n") == 1


def test_encode_kind_avif_and_decode(tmp_path, capsys):
    from .imagegen import photo

    photo(80, 60, seed=3).save(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), "--kind", "avif", "--max-chars", "2000"]) == 0
    text = capsys.readouterr().out.strip()
    assert len(text) <= 2000
    assert main(["inspect", text]) == 0
    assert json.loads(capsys.readouterr().out)["payload_kind"] == "avif"
    assert main(["decode", text, "-o", str(tmp_path / "out.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "out.png").size == (80, 60)


def test_missing_weights_is_one_line_in_a_real_process(tmp_path):
    """The model registry's warning also reached stderr through logging's last resort: the
    error came twice, on two lines (pytest's log capture hid it in-process)."""
    (tmp_path / "in.png").write_bytes(encoded(photo(24, 16)))
    env = dict(os.environ, EMMM_MODEL_DIR=str(tmp_path / "none"), EMMM_MODEL_CACHE=str(tmp_path / "cache"), EMMM_OFFLINE="1",
               PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "codec", "encode", str(tmp_path / "in.png")], cwd=REPO, env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 3 and r.stderr.decode().count("\n") == 1, r.stderr.decode()


def test_a_result_that_cannot_be_written_is_exit_1_not_a_traceback_or_a_success(tmp_path, weights_dir):
    token = synthetic_token(16, 16)
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "codec", "inspect", token], cwd=REPO, stdout=full, stderr=subprocess.PIPE,
                           env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode == 1 and b"Traceback" not in r.stderr and b"cannot write the result" in r.stderr
    closed = subprocess.run(f"{sys.executable} -m codec inspect {token} >&-", shell=True, cwd=REPO, capture_output=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert closed.returncode == 1 and b"standard output is closed" in closed.stderr
    piped = subprocess.run(f"{sys.executable} -m codec inspect {token} | head -c 1 > /dev/null; exit ${{PIPESTATUS[0]}}",
                           shell=True, executable="/bin/bash", cwd=REPO, capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert b"Traceback" not in piped.stderr


@pytest.mark.parametrize("arg, message", [("missing.tok", "no such file: missing.tok"), ("/tmp", "/tmp is a folder")])
def test_a_token_file_that_is_not_there_is_named(arg, message, capsys):
    """It answered "the token is not base64url text" for a mistyped file name."""
    assert main(["inspect", arg]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_codec_variable_is_one_line(tmp_path):
    env = dict(os.environ, EMMM_MAX_PIXELS="abc", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "codec", "inspect", synthetic_token(16, 16)], cwd=REPO, env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.decode() == "python -m codec: error: EMMM_MAX_PIXELS='abc': expected a whole number from 1\n"

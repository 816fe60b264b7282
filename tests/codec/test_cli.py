"""``python -m codec``: encode -> decode -> inspect through real subprocesses, and errors."""

from __future__ import annotations

import io
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


class EndlessZeros(io.RawIOBase):
    """Standard input that never ends; fails the test once far more than ``allowed`` was read."""

    def __init__(self, allowed: int) -> None:
        self.allowed, self.given = allowed, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.given > 4 * self.allowed:
            raise AssertionError(f"standard input read without a bound ({self.given:,} bytes so far)")
        n = min(len(buffer), 65536)
        buffer[:n] = bytes(n)
        self.given += n
        return n


def test_encode_reads_standard_input_up_to_the_limit(monkeypatch, capsys):
    """``head -c 1200M /dev/zero | python -m codec encode -`` read it all, then died of a
    MemoryError traceback; it reads at most MAX_INPUT_BYTES + 1 now."""
    monkeypatch.setattr("codec.limits.MAX_INPUT_BYTES", 1 << 20)
    endless = EndlessZeros(1 << 20)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(endless)))
    assert main(["encode", "-", "--kind", "avif"]) == 2
    err = capsys.readouterr().err
    assert err == "python -m codec: error: the image on standard input is over 1,048,576 bytes\n"
    assert endless.given <= (1 << 20) + (1 << 17)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(encoded(photo(16, 12)))))
    assert main(["encode", "-", "--kind", "avif"]) == 0 and capsys.readouterr().out.count("\n") == 1


def test_the_input_limit_is_the_largest_accepted_image_uncompressed():
    from codec.limits import MAX_INPUT_BYTES, MAX_INPUT_PIXELS

    assert MAX_INPUT_BYTES == 8 * MAX_INPUT_PIXELS + (16 << 20)


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    import codec

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(codec, "encode", exhausted)
    assert main(["encode", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m codec: error: out of memory") and err.count("\n") == 1


def test_input_that_cannot_be_read_is_one_line_with_exit_2(tmp_path, monkeypatch, capsys):
    """An unreadable token file (EIO, no permission) and a closed standard input were
    tracebacks (OSError; AttributeError on None.buffer)."""
    import builtins

    assert main(["inspect", "/proc/self/mem"]) == 2  # a regular file whose read fails with EIO
    assert "cannot read /proc/self/mem: Input/output error" in capsys.readouterr().err
    denied = tmp_path / "t.tok"
    denied.write_text(synthetic_token(8, 8))
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file) == str(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    for argv in (["inspect", str(denied)], ["decode", str(denied), "-o", str(tmp_path / "x.png")], ["encode", str(denied)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err == f"python -m codec: error: cannot read {denied}: Permission denied\n", argv
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(sys, "stdin", None)
    for argv in (["inspect", "-"], ["encode", "-"]):
        assert main(argv) == 2
        assert capsys.readouterr().err == "python -m codec: error: cannot read standard input: it is closed\n"


def test_closed_standard_input_in_a_real_process():
    r = subprocess.run(f"{sys.executable} -m codec inspect - <&-", shell=True, cwd=REPO, capture_output=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 2 and r.stderr == b"python -m codec: error: cannot read standard input: it is closed\n"


def test_library_warnings_and_messages_stay_off_the_command_line(tmp_path):
    """libtiff printed "LZWDecode: Not enough data at scanline 0" and Pillow a "Truncated File
    Read" UserWarning on standard error beside the documented one line (or none at all)."""
    picture = photo(32, 24)
    lzw = bytearray(encoded(picture, "TIFF", compression="tiff_lzw"))
    lzw[40:100] = bytes(range(60))  # corrupt the LZW codes: libtiff prints "LZWDecode: Not enough data"
    (tmp_path / "noisy.tif").write_bytes(bytes(lzw))
    exif = Image.Exif()
    exif[0x0112] = 1
    jpeg = bytearray(encoded(picture, "JPEG", exif=exif.tobytes()))
    at = jpeg.find(b"Exif\0\0") + 6
    jpeg[at + 14 : at + 18] = b"\x00\x01\x00\x00"  # the Orientation entry's count: far past the block
    (tmp_path / "badexif.jpg").write_bytes(bytes(jpeg))
    noisy = run("encode", str(tmp_path / "noisy.tif"), "--kind", "avif")
    assert noisy.returncode == 2 and noisy.stderr.decode().count("\n") == 1, noisy.stderr.decode()
    bad_exif = run("encode", str(tmp_path / "badexif.jpg"), "--kind", "avif")
    assert bad_exif.returncode == 0 and bad_exif.stderr == b"", bad_exif.stderr.decode()

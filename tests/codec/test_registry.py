"""Model registry and weights: load once per process, pinned sha256, download, clear errors.

Real components only: weights served by a local http.server, a closed port for a failed
download, the real TAEF2 files copied into temp folders.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

import codec
from codec.errors import ModelUnavailable
from codec.models import TAEF2_SPEC, registry, weights
from codec.models.weights import WeightFile

ENCODER = TAEF2_SPEC.files[0]


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.unload_all()
    yield
    registry.unload_all()  # later tests load the real weights again


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty model folder and an empty download cache."""
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("EMMM_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("EMMM_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMMM_OFFLINE", raising=False)
    return tmp_path


def assert_plain(message: str) -> None:
    """What a web user may see: no URL, host, hub repository, revision, path or hash."""
    for secret in ("http", "127.0.0.1", "huggingface", "/", "sha256", "Errno", "$EMMM"):
        assert secret not in message, (secret, message)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_eight_threads_get_one_model_built_once():
    calls = []

    def build(spec):
        calls.append(threading.get_ident())
        time.sleep(0.2)  # a slow load: every thread arrives while it runs
        return object()

    spec = registry.register(registry.ModelSpec("test-slow", 250, "test", 4, 8, build=build))
    try:
        barrier = threading.Barrier(8)
        results = [None] * 8

        def worker(i):
            barrier.wait()
            results[i] = registry.load("test-slow")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(calls) == 1
        assert all(r is results[0] for r in results) and results[0] is not None
        assert registry.load("test-slow") is results[0]
    finally:
        registry._SPECS.pop(spec.name)


def test_real_model_is_shared_between_threads(weights_dir):
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        results.append(codec.load_model("taef2"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and len({id(m) for m in results}) == 1
    assert codec.load_model() is results[0]


def test_model_codes_are_never_reused():
    with pytest.raises(ValueError, match="model code 1 already belongs to taef2"):
        registry.register(registry.ModelSpec("other", 1, "x", 4, 8, build=lambda s: None))
    assert "other" not in codec.available_models()


def test_sha256_mismatch_is_model_unavailable(no_weights):
    folder = no_weights / "models" / "taef2"
    folder.mkdir()
    (folder / ENCODER.name).write_bytes(b"not the weights")
    with pytest.raises(ModelUnavailable, match="weights for model 'taef2' are missing or unusable on this server") as info:
        codec.load_model("taef2")
    assert_plain(str(info.value))
    with pytest.raises(ModelUnavailable, match=rf"{ENCODER.name} has sha256 [0-9a-f]{{64}}, expected {ENCODER.sha256}: wrong or corrupted weights"):
        raise info.value.__cause__


@pytest.mark.parametrize("offline", ["1", "true", "Yes", "on"])  # only "1" held: "true" went to download
def test_missing_weights_offline_says_where_to_put_them(no_weights, monkeypatch, offline):
    monkeypatch.setenv("EMMM_OFFLINE", offline)
    with pytest.raises(ModelUnavailable) as info:
        codec.fetch_model("taef2")
    message = str(info.value)
    assert "weights for model 'taef2' are missing (no download allowed)" in message
    assert f"Put {ENCODER.name}" in message and f"with sha256 {ENCODER.sha256}" in message
    assert f"at $EMMM_MODEL_DIR/taef2/{ENCODER.name}" in message
    assert str(no_weights / "cache" / "taef2") in message


def test_failed_download_says_where_to_put_the_files(no_weights):
    file = WeightFile(ENCODER.name, ENCODER.sha256, f"http://127.0.0.1:{closed_port()}/{ENCODER.name}")
    with pytest.raises(ModelUnavailable) as info:
        weights.fetch("taef2", file)
    message = str(info.value)
    assert "are missing (download failed:" in message and "refused" in message.lower()
    assert f"at $EMMM_MODEL_DIR/taef2/{ENCODER.name}" in message
    assert not list((no_weights / "cache" / "taef2").iterdir())  # no partial file left


def test_download_verifies_and_lands_in_the_cache(no_weights, file_server, weights_dir, monkeypatch):
    root, base = file_server
    for f in TAEF2_SPEC.files:
        shutil.copyfile(weights_dir / "taef2" / f.name, root / f.name)
        path = weights.fetch("taef2", WeightFile(f.name, f.sha256, f"{base}/{f.name}"))
        assert path == no_weights / "cache" / "taef2" / f.name
        assert weights.sha256_of(path) == f.sha256
    assert sorted(p.name for p in (no_weights / "cache" / "taef2").iterdir()) == sorted(f.name for f in TAEF2_SPEC.files)
    # the cache is then used without any network, and the model works from it
    monkeypatch.setenv("EMMM_OFFLINE", "1")
    model = codec.load_model("taef2")
    assert model.latent_channels == 32


def test_download_with_the_wrong_hash_is_refused(no_weights, file_server):
    root, base = file_server
    (root / ENCODER.name).write_bytes(b"tampered" * 1000)
    with pytest.raises(ModelUnavailable, match=rf"downloaded from {base}/{ENCODER.name} has sha256 [0-9a-f]{{64}}, expected {ENCODER.sha256}"):
        weights.fetch("taef2", WeightFile(ENCODER.name, ENCODER.sha256, f"{base}/{ENCODER.name}"))
    assert not list((no_weights / "cache" / "taef2").iterdir())  # nothing unverified is kept


def test_http_error_is_model_unavailable(no_weights, file_server):
    _, base = file_server
    with pytest.raises(ModelUnavailable, match="download failed: HTTP Error 404"):
        weights.fetch("taef2", WeightFile(ENCODER.name, ENCODER.sha256, f"{base}/missing.pth"))


def test_model_dir_takes_precedence_over_the_cache(tmp_path, monkeypatch, weights_dir):
    cache = tmp_path / "cache" / "taef2"
    cache.mkdir(parents=True)
    (cache / ENCODER.name).write_bytes(b"stale")
    monkeypatch.setenv("EMMM_MODEL_CACHE", str(tmp_path / "cache"))
    assert weights.resolve("taef2", ENCODER) == Path(weights_dir) / "taef2" / ENCODER.name


def test_loading_never_downloads(no_weights, file_server, weights_dir, monkeypatch):
    """Issue 8.4: a request path (load, decode) uses local files only, fails fast and plainly."""
    root, base = file_server
    for f in TAEF2_SPEC.files:
        shutil.copyfile(weights_dir / "taef2" / f.name, root / f.name)
    served = registry.register(registry.ModelSpec(
        "test-served", 251, "flux2", 32, 8, build=TAEF2_SPEC.build,
        files=tuple(WeightFile(f.name, f.sha256, f"{base}/{f.name}") for f in TAEF2_SPEC.files),
    ))  # fmt: skip
    try:
        assert not codec.model_available("test-served")
        started = time.perf_counter()
        with pytest.raises(ModelUnavailable) as info:
            codec.load_model("test-served")
        assert time.perf_counter() - started < 1.0
        assert str(info.value) == "weights for model 'test-served' are missing or unusable on this server"
        assert_plain(str(info.value))
        assert "python -m codec fetch test-served" in str(info.value.__cause__)
        assert not (no_weights / "cache" / "test-served").exists()  # nothing was downloaded
        # the explicit fetch downloads, verifies, and then loading works offline
        assert codec.fetch_model("test-served").latent_channels == 32
        assert codec.model_available("test-served")
        registry.unload_all()
        assert codec.model_available("test-served")  # files on disk, not loaded
        assert codec.load_model("test-served").latent_channels == 32
    finally:
        registry._SPECS.pop(served.name)


def test_decode_with_a_missing_model_is_plain_and_fast(no_weights):
    from .imagegen import synthetic_token

    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        codec.decode(synthetic_token(16, 16))
    assert time.perf_counter() - started < 1.0
    assert_plain(str(info.value))
    assert isinstance(info.value.__cause__, ModelUnavailable)


def test_model_available_is_local_and_knows_names(no_weights, weights_dir, monkeypatch):
    assert not codec.model_available("taef2")
    monkeypatch.setenv("EMMM_MODEL_DIR", str(weights_dir))
    assert codec.model_available("taef2")
    with pytest.raises(codec.CodecError, match="unknown model 'nope'"):
        codec.model_available("nope")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda"])
def test_a_device_this_server_lacks_makes_the_model_unavailable(monkeypatch, taef2, name):
    """EMMM_DEVICE=gpu (or cuda on a CPU build) made every decode a 500 while the health check
    said the model was fine."""
    import torch

    if name == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("EMMM_DEVICE", name)
    assert codec.model_available("taef2") is False
    with pytest.raises(codec.ModelUnavailable, match=f"EMMM_DEVICE='{name}'"):
        codec.load_model("taef2")
    monkeypatch.setenv("EMMM_DEVICE", "cpu")
    assert codec.model_available("taef2") and codec.load_model("taef2") is not None


def test_a_bad_offline_switch_is_refused(no_weights, monkeypatch):
    from codec.environment import ConfigurationError

    monkeypatch.setenv("EMMM_OFFLINE", "ture")
    with pytest.raises(ConfigurationError, match="EMMM_OFFLINE='ture': expected 1 or 0"):
        codec.fetch_model("taef2")
    monkeypatch.setenv("EMMM_OFFLINE", "off")
    file = WeightFile(ENCODER.name, ENCODER.sha256, f"http://127.0.0.1:{closed_port()}/{ENCODER.name}")
    with pytest.raises(ModelUnavailable, match="download failed"):  # off: it tries
        weights.fetch("taef2", file)

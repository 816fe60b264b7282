"""Issue 8.3 (site side): widths snap to a ladder, heavy decodes take a machine-wide slot, big renderings are not cached."""
from __future__ import annotations

import io
import json
import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from django.core.cache import cache
from PIL import Image

from imagehost import concurrency
from imagehost.models import token_sha256
from imagehost.services import rendering
from tests.conftest import REPO
from tests.processes import spawn, stop_group

pytestmark = pytest.mark.django_db


def size_of(response) -> tuple[int, int]:
    return Image.open(io.BytesIO(response.content)).size


def test_width_snaps_up_to_the_ladder_and_to_the_native_width(client, token_pool):
    res = token_pool(0)  # 64 x 48
    assert rendering.RENDER_WIDTHS[:3] == (32, 48, 64)
    r40, r48 = client.get(f"/i/{res.token}.png?w=40"), client.get(f"/i/{res.token}.png?w=48")
    assert size_of(r40) == size_of(r48) == (48, 36)
    assert r40["ETag"] == r48["ETag"]
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:48") is not None
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:40") is None
    native = client.get(f"/i/{res.token}.png")
    for w in (50, 63, 64, 1000, 4096):
        r = client.get(f"/i/{res.token}.png?w={w}")
        assert size_of(r) == (64, 48) and r["ETag"] == native["ETag"], w


def test_a_token_has_a_handful_of_renderings_per_format(token_pool):
    res = token_pool(0)
    widths = {rendering.rendering_width(res.token, w) for w in range(1, 4097)}
    assert widths == {32, 48, None}


def test_superscript_width_is_still_400(client, token_pool):
    assert client.get(f"/i/{token_pool(0).token}?w=²").status_code == 400


HOLD_SLOT = """
import sys
from pathlib import Path
from imagehost.concurrency import machine_slot
with machine_slot("heavy-decodes", int(sys.argv[1]), Path(sys.argv[2])) as got:
    print("held" if got else "busy", flush=True)
    sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


@contextmanager
def slot_held_by_another_process(lock_dir: Path, limit: int) -> Iterator[subprocess.Popen]:
    """A separate process (another gunicorn worker, say) holding one of ``limit`` heavy-decode slots."""
    proc = spawn([sys.executable, "-c", HOLD_SLOT, str(limit), str(lock_dir)], cwd=REPO,
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        stop_group(proc, timeout=5)


@pytest.fixture
def lock_dir(settings) -> Path:
    return settings.EMMM_LOCK_DIR  # a fresh folder per test (conftest: isolated_cache)


def test_heavy_decode_answers_503_with_retry_after_while_another_process_decodes(client, token_pool, settings, lock_dir):
    res = token_pool(1)
    cached = client.get(f"/i/{res.token}.png")
    with slot_held_by_another_process(lock_dir, settings.EMMM_MAX_DECODES):  # the machine's one heavy-decode slot is taken
        assert client.get(f"/i/{res.token}.jpg").status_code == 200  # 64x48 coded: light, no slot
        settings.EMMM_HEAVY_DECODE_PIXELS = 64 * 48 - 1  # now it counts as heavy
        r = client.get(f"/i/{res.token}.webp")
        assert r.status_code == 503
        assert int(r["Retry-After"]) >= 1
        assert b"busy" in r.content.lower()
        again = client.get(f"/i/{res.token}.png")  # a cached rendering needs no slot
        assert again.status_code == 200 and again.content == cached.content
    assert client.get(f"/i/{res.token}.webp").status_code == 200


def test_a_slot_is_freed_when_its_holder_is_killed(client, token_pool, settings, lock_dir):
    """A worker killed mid-decode (gunicorn's timeout sends SIGKILL) leaves no slot taken."""
    res = token_pool(1)
    settings.EMMM_HEAVY_DECODE_PIXELS = 0  # every decode is heavy
    with slot_held_by_another_process(lock_dir, settings.EMMM_MAX_DECODES) as holder:
        assert client.get(f"/i/{res.token}.webp").status_code == 503
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(5)
        assert client.get(f"/i/{res.token}.webp").status_code == 200


def test_a_worker_keeps_threads_free_for_pages_while_it_decodes(client, token_pool, settings):
    """Every cache-miss decode, light or heavy, takes one of the worker's EMMM_DECODES_PER_WORKER slots."""
    res = token_pool(1)
    cached = client.get(f"/i/{res.token}.png")
    with ExitStack() as held:
        n = settings.EMMM_DECODES_PER_WORKER
        assert all(held.enter_context(concurrency.slot("decodes", n, timeout=0)) for _ in range(n))  # all busy
        r = client.get(f"/i/{res.token}.webp")  # light (64x48 coded), not cached
        assert r.status_code == 503 and int(r["Retry-After"]) >= 1
        assert client.get(f"/i/{res.token}.png").content == cached.content  # cached: no slot needed
        assert client.get("/").status_code == 200
    assert client.get(f"/i/{res.token}.webp").status_code == 200


def test_decodes_leave_two_gunicorn_threads_free(settings):
    conf = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert conf["threads"] >= 8  # a browser's 6 parallel image requests fit in one worker
    assert settings.EMMM_DECODES_PER_WORKER == conf["threads"] - 2


def test_machine_slots_count_every_holder_and_never_wait(lock_dir):
    with slot_held_by_another_process(lock_dir, 2):
        with concurrency.machine_slot("heavy-decodes", 2, lock_dir) as second:
            assert second
            with concurrency.machine_slot("heavy-decodes", 2, lock_dir) as third:  # another thread's, say
                assert not third
        with concurrency.machine_slot("heavy-decodes", 2, lock_dir) as again:  # the second was released
            assert again
        with concurrency.machine_slot("other", 1, lock_dir) as other:  # slots are per name
            assert other


def test_renderings_over_the_size_cap_are_not_cached(client, token_pool, settings):
    res = token_pool(2)
    settings.EMMM_CACHE_MAX_ENTRY_BYTES = 100
    assert client.get(f"/i/{res.token}.png").status_code == 200
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:0") is None
    settings.EMMM_CACHE_MAX_ENTRY_BYTES = 10_000_000
    assert client.get(f"/i/{res.token}.png").status_code == 200
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:0") is not None


def test_search_by_token_decodes_in_a_slot_too(client, token_pool, settings, lock_dir):
    """A search by example decodes the pasted token: it takes a decode slot like /i/ does (503 when
    none is free), and a heavy token the machine's heavy-decode slot (helper-found defect: search
    decoded on the request thread with no slot, a way around EMMM_DECODES_PER_WORKER/MAX_DECODES)."""
    settings.EMMM_RATELIMIT_ENABLE = False
    res = token_pool(2)
    api_body = json.dumps({"token": res.token, "scope": "public"})
    with ExitStack() as held:
        n = settings.EMMM_DECODES_PER_WORKER
        assert all(held.enter_context(concurrency.slot("decodes", n, timeout=0)) for _ in range(n))
        r = client.post("/api/v1/search", api_body, content_type="application/json")
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy" and int(r["Retry-After"]) >= 1
        assert client.post("/search/", {"q": f"/i/{res.token}"}).status_code == 503
    settings.EMMM_HEAVY_DECODE_PIXELS = 0  # every decode is heavy
    with slot_held_by_another_process(lock_dir, settings.EMMM_MAX_DECODES):
        assert client.post("/api/v1/search", api_body, content_type="application/json").status_code == 503
    assert client.post("/api/v1/search", api_body, content_type="application/json").status_code == 200
    assert client.post("/search/", {"q": f"/i/{res.token}"}).status_code == 200


def test_search_by_an_image_file_decodes_it_in_a_slot(client, png_bytes, settings, lock_dir):
    """A query file is decoded in the web process (a 6300x6300 palette PNG of 5 KB took about
    1 GB): it takes a decode slot, and above EMMM_HEAVY_DECODE_PIXELS the machine's heavy one."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.EMMM_RATELIMIT_ENABLE = False
    data = png_bytes(64, 48, seed=4)

    def search():
        return client.post("/api/v1/search", {"file": SimpleUploadedFile("q.png", data, "image/png")})

    with ExitStack() as held:
        n = settings.EMMM_DECODES_PER_WORKER
        assert all(held.enter_context(concurrency.slot("decodes", n, timeout=0)) for _ in range(n))
        assert search().status_code == 503
    settings.EMMM_HEAVY_DECODE_PIXELS = 64 * 48 - 1  # this query counts as heavy
    with slot_held_by_another_process(lock_dir, settings.EMMM_MAX_DECODES):
        r = search()
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
    assert search().status_code == 200


def _decode_waiting_for_followers(monkeypatch, followers: int, outcome=None, until=lambda: True):
    """``rendering.decode_token`` that counts its calls and, before answering, waits until
    ``followers`` other requests wait for the same token and ``until()`` holds (so the test
    does not race)."""
    import threading
    import time

    calls: list[str] = []
    real = rendering.decode_token

    def decode(token):
        calls.append(threading.current_thread().name)
        flight = rendering._flights[token_sha256(token)]
        deadline = time.monotonic() + 20
        while (flight.followers < followers or not until()) and time.monotonic() < deadline:
            time.sleep(0.01)
        if outcome is not None:
            raise outcome
        return real(token)

    monkeypatch.setattr(rendering, "decode_token", decode)
    return calls


def _at_once(n: int, request) -> list:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda i: request(i), range(n)))


def test_requests_for_a_token_being_decoded_wait_for_that_decode(token_pool, settings, monkeypatch):
    """Six cold requests for one token (thumbnails, a preview, the share page's image) in six
    threads of one worker: one decode (it was six, each holding its own decoded picture)."""
    settings.EMMM_DECODES_PER_WORKER = 8
    res = token_pool(2)
    calls = _decode_waiting_for_followers(monkeypatch, followers=5)
    asked = [("webp", None), ("png", None), ("webp", 32), ("png", 32), ("jpg", None), ("jpg", 48)]
    rendered = _at_once(6, lambda i: rendering.render_token_image(res.token, *asked[i]))
    assert len(calls) == 1
    assert [(r.fmt, r.content[:4]) for r in rendered][:2] == [("webp", b"RIFF"), ("png", b"\x89PNG")]
    assert [r.width for r in rendered] == [64, 64, 32, 32, 64, 48]
    monkeypatch.undo()
    alone = rendering.decode_token(res.token)  # the same picture a decode of its own gives
    assert Image.open(io.BytesIO(rendered[1].content)).tobytes() == alone.tobytes()
    assert rendering._flights == {}


def test_a_decode_that_fails_fails_its_followers_alike(token_pool, settings, monkeypatch):
    from imagehost.services.errors import ModelUnavailable

    settings.EMMM_DECODES_PER_WORKER = 8
    res = token_pool(3)
    calls = _decode_waiting_for_followers(monkeypatch, followers=2, outcome=ModelUnavailable("cannot decode now"))

    def ask(i):
        try:
            rendering.render_token_image(res.token, "png", [None, 32, 48][i])
        except ModelUnavailable as exc:
            return exc.message
    assert _at_once(3, ask) == ["cannot decode now"] * 3 and len(calls) == 1
    assert rendering._flights == {}


def test_waiting_for_another_decode_takes_a_worker_slot(token_pool, settings, monkeypatch):
    """A follower holds a thread as a decode does: the slots keep threads free for pages."""
    settings.EMMM_DECODES_PER_WORKER = 2
    res = token_pool(4)
    outcomes: list[str] = []
    calls = _decode_waiting_for_followers(monkeypatch, followers=1, until=lambda: "busy" in outcomes)
    _at_once(3, lambda i: _outcome(lambda: rendering.render_token_image(res.token, "png", [None, 32, 48][i]), outcomes))
    assert sorted(outcomes) == ["busy", "ok", "ok"] and len(calls) == 1


def _outcome(call, outcomes: list[str]) -> None:
    from imagehost.services.errors import DecoderBusy

    try:
        call()
        outcomes.append("ok")
    except DecoderBusy:
        outcomes.append("busy")

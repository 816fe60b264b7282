"""Issue 8.3 (site side): widths snap to a ladder, heavy decodes take a slot, big renderings are not cached."""
from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from PIL import Image

from imagehost import concurrency
from imagehost.models import token_sha256
from imagehost.services import rendering

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


def test_heavy_decode_waits_for_a_slot_then_answers_503_with_retry_after(client, token_pool, settings):
    res = token_pool(1)
    settings.EMMM_DECODE_WAIT_S = 0.05
    cached = client.get(f"/i/{res.token}.png")
    with concurrency.slot("decodes", settings.EMMM_MAX_DECODES, timeout=0) as got:  # busy decoding
        assert got
        assert client.get(f"/i/{res.token}.jpg").status_code == 200  # 64x48 coded: light, no slot
        settings.EMMM_HEAVY_DECODE_PIXELS = 64 * 48 - 1  # now it counts as heavy
        r = client.get(f"/i/{res.token}.webp")
        assert r.status_code == 503
        assert int(r["Retry-After"]) >= 1
        assert b"busy" in r.content.lower()
        again = client.get(f"/i/{res.token}.png")  # a cached rendering needs no slot
        assert again.status_code == 200 and again.content == cached.content
    assert client.get(f"/i/{res.token}.webp").status_code == 200


def test_renderings_over_the_size_cap_are_not_cached(client, token_pool, settings):
    res = token_pool(2)
    settings.EMMM_CACHE_MAX_ENTRY_BYTES = 100
    assert client.get(f"/i/{res.token}.png").status_code == 200
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:0") is None
    settings.EMMM_CACHE_MAX_ENTRY_BYTES = 10_000_000
    assert client.get(f"/i/{res.token}.png").status_code == 200
    assert cache.get(f"emmm:img:v1:{token_sha256(res.token)}:png:0") is not None

"""Kind 5's probability tables and range decoder are integer arithmetic: the integer reference
(``codec.range_reference``, the spec in executable form) decodes every payload to the same
symbols as the production decoder (constriction, which builds its 24-bit tables from the
pinned integer frequencies with IEEE doubles). Synthetic data and photos only, never Kodak."""

from __future__ import annotations

import numpy as np
import pytest

from codec import core, encode_v2, klt_ctx, token
from codec.errors import InvalidToken
from codec.models import TAEF2_SPEC
from codec.range_reference import PRECISION, quantised_cdf, unpack_symbols

from .imagegen import photo

MODEL = core.context_for(TAEF2_SPEC)
PINNED_TABLES = [*MODEL.tables, MODEL.escape]


def constriction_cdf(frequencies) -> list[int]:
    """constriction 0.5's lazy categorical model (``from_floating_point_probabilities_fast``
    and ``left_cumulative_and_probability``), step by step in IEEE doubles as it computes it."""
    n = len(frequencies)
    normalisation = 0.0
    for f in frequencies:
        normalisation += float(f)
    scale = float((1 << PRECISION) - n) / normalisation
    cdf, running = [], 0.0
    for s, f in enumerate(frequencies):
        cdf.append(int(running * scale) + s)
        running += float(f)
    return cdf + [1 << PRECISION]


def test_every_pinned_table_is_the_same_in_integers_and_in_doubles():
    """For the pinned model, floor(F_s (2^24 - n) / N) + s (integers) equals what the doubles
    give for every entry of every table: the tables are defined by the integer formula."""
    assert len(PINNED_TABLES) == MODEL.tables.shape[0] + 1
    for frequencies in PINNED_TABLES:
        cdf = quantised_cdf(frequencies)
        assert cdf == constriction_cdf(frequencies)
        assert all(b > a for a, b in zip(cdf, cdf[1:]))  # every symbol decodable


def test_the_integer_formula_is_not_the_doubles_for_every_table():
    """Why the check above is needed: with other frequencies the doubles can round below the
    exact quotient: for frequencies (45, 190), 45 (2^24 - 2) / 235 is exactly 3,212,658, and
    45.0 times the double (2^24 - 2) / 235.0 is just below it."""
    assert quantised_cdf([45, 190])[1] == 3_212_658 + 1
    assert constriction_cdf([45, 190])[1] == 3_212_657 + 1


def reference_and_production(payload: bytes, shape):
    try:
        units, q = unpack_symbols(payload, shape, MODEL)
        reference = q * (units / klt_ctx.STEP_UNIT)
    except InvalidToken:
        reference = None
    try:
        production = klt_ctx.unpack(payload, shape, MODEL)
    except InvalidToken:
        production = None
    return reference, production


@pytest.mark.parametrize("shape, scale, units", [((32, 5, 7), 0.2, 410), ((32, 3, 3), 3.0, 40), ((32, 2, 9), 0.05, 20)])
def test_reference_decodes_packed_coefficients(shape, scale, units):
    rng = np.random.default_rng(7)
    coeffs = rng.laplace(0, scale, shape) * np.linspace(1, 0.1, 32)[:, None, None]
    coeffs[3, 1, 1] = 240 * units / klt_ctx.STEP_UNIT  # an escaped residual
    reference, production = reference_and_production(klt_ctx.pack(coeffs, units, MODEL), shape)
    assert reference is not None and np.array_equal(reference, production)


def test_reference_decodes_a_real_token(taef2):
    image = photo(64, 48, seed=5)
    header, payload = token.unpack(token.from_text(encode_v2_token(image)))
    assert header.payload_kind == encode_v2.KLT_CTX
    reference, production = reference_and_production(payload, header.latent_shape)
    assert reference is not None and np.array_equal(reference, production)


def encode_v2_token(image) -> str:
    from codec import encode

    return encode(image, kind="vae-v2").token


def test_reference_and_production_agree_on_random_payloads():
    """Any bytes: both decode the same values, or both refuse the payload."""
    rng = np.random.default_rng(11)
    outcomes = set()
    for _ in range(40):
        payload = b"\x00\x40" + rng.integers(0, 256, 4 * int(rng.integers(0, 12)), dtype=np.uint8).tobytes()
        reference, production = reference_and_production(payload, (32, 2, 3))
        assert (reference is None) == (production is None)
        if reference is not None:
            assert np.array_equal(reference, production)
        outcomes.add(reference is None)
    assert outcomes == {True, False}  # both kinds of outcome were exercised


def spec_gauss_table(radius: int, rho_units: int) -> list[float]:
    """Kind 1's table as docs/token-format.md writes it: rho = max(rho_c, 1) / 65536, t(n) =
    t(n-1) * (rho * rho), g(n) = g(n-1) * t(n), each product rounded once, in that order."""
    rho = max(rho_units, 1) / 65536
    rho2, t, g, half = rho * rho, rho, 1.0, []
    for n in range(1, radius + 1):
        t = rho if n == 1 else t * rho2
        g = g * t
        half.append(g)
    return half[::-1] + [1.0] + half


@pytest.mark.parametrize("kind", ["gauss-rc", "klt-rc"])
def test_kinds_1_and_3_decode_with_the_spec_double_tables(kind):
    """The spec's tables for kinds 1 and 3 (doubles, not kind 5's integer formula) decode what
    constriction encodes, symbol for symbol, on random tables and on the spec's example where
    the two formulas differ (kind 3, r = 5, rho = 36977: cdf[7] 16009098, not 16009099)."""
    import constriction

    from codec import klt_rc
    from codec.range_reference import RangeDecoder

    assert kind == "gauss-rc" or constriction_cdf(klt_rc.integer_pmf(5, 36977))[7] == 16_009_098 != quantised_cdf(klt_rc.integer_pmf(5, 36977))[7]
    rng = np.random.default_rng(7)
    cases = [(5, 36977), (1, 0), (255, 65535), (64, 1), *zip(rng.integers(1, 256, 40), rng.integers(0, 65536, 40))]
    for radius, rho in cases:
        radius, rho = int(radius), int(rho)
        if kind == "klt-rc" and rho == 0:
            continue  # kind 3 refuses rho 0 with r > 0
        table = spec_gauss_table(radius, rho) if kind == "gauss-rc" else [float(p) for p in klt_rc.integer_pmf(radius, rho)]
        symbols = rng.integers(0, 2 * radius + 1, 300).astype(np.int32)
        symbols[:4] = [radius, max(radius - 1, 0), min(radius + 2, 2 * radius), 0]
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, constriction.stream.model.Categorical(np.asarray(table), perfect=False))
        decoder, cdf = RangeDecoder([int(w) for w in encoder.get_compressed()]), constriction_cdf(table)
        assert [decoder.decode(cdf) for _ in symbols] == symbols.tolist(), (kind, radius, rho)

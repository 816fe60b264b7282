"""Payload kind 5, ``klt-ctx`` (token version 2): the coefficients of ``klt-rc`` (same pinned
whitened KLT, one uniform step), range-coded with a context model: each symbol's probability
table is chosen from already decoded causal neighbours, in integer arithmetic only.

Payload: u16 step units (step = units / 4096), then the range coder's u32 words
(little-endian). No per-channel table: the model is the pinned file ``ModelSpec.ctx``.

Symbol (c, y, x), |q| <= QMAX, is decoded at step t = x + 2y + 4c (all symbols of one step
at once, so a whole wavefront is one vectorised numpy call). Its neighbours ``NEIGHBOURS``
(same channel: left, left-left, up-left, up, up-right, up-up; channels c-1 and c-2: the 3x3
window around (y, x); zero outside the image) are all decoded at earlier steps. Then, with
the model's integer weights (Q12):

    fine  = clip((M[c,0] + sum_k M[c,k+1] * n_k + 2**9) >> 10, -4 QMAX, 4 QMAX)   (quarters)
    mu    = fine >> 2
    a     = S[c,0] + sum_k S[c,k+1] * |n_k| + S[c,25] * acc
    table = 4 * (number of thresholds <= a) + (fine & 3)
    q     = mu + r,  r in -WINDOW..WINDOW coded with ``tables[table]`` (else its escape symbol,
            and r follows, after the step's other symbols, with the ``escape`` table)

``acc`` is the energy of the decoded 3x3 window: sum of h[c'] * |q| over every symbol decoded
before step t at the 9 positions around (y, x) (all channels). Within a step, symbols are
coded in order of channel, row, column. Specified in docs/token-format.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import constriction
import numpy as np

from .errors import InvalidToken
from .klt_rc import pinned_arrays

STEP_UNIT = 4096
QMAX = 255
RADIUS = 2 * QMAX
#: Residuals -WINDOW..WINDOW are coded with the context's table (its last entry: escape);
#: an escaped residual is then coded with the escape table over -RADIUS..RADIUS.
WINDOW = 15
ESCAPE = 2 * WINDOW + 1
SHIFT = 12
#: The mean is rounded to 1 / 2**FRACTION_BITS; its fraction selects one of that many tables.
FRACTION_BITS = 2
HALF_FINE = 1 << (SHIFT - FRACTION_BITS - 1)
_PARAMS = struct.Struct(">H")
#: Bytes before the coded words (the step).
TABLE_BYTES = _PARAMS.size
SELF = ((0, 0, -1), (0, 0, -2), (0, -1, -1), (0, -1, 0), (0, -1, 1), (0, -2, 0))
PREVIOUS = tuple((dc, dy, dx) for dc in (-1, -2) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
NEIGHBOURS = SELF + PREVIOUS
#: Same-channel neighbours that are decoded before (c, y, x) inside its 3x3 window.
_OWN_WINDOW = (0, 2, 3, 4)  # left, up-left, up, up-right
_PAD = (2, 2, 2)  # channels before, rows above, columns left (one more row/column after)
BOX = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@dataclass(frozen=True)
class ContextModel:
    """The pinned integer model: weights, thresholds and frequency tables (see module doc)."""

    mean: np.ndarray  # (C, 1 + len(NEIGHBOURS)) int64
    scale: np.ndarray  # (C, 2 + len(NEIGHBOURS)) int64
    energy: np.ndarray  # (C,) int64
    thresholds: np.ndarray  # (S - 1,) int64, ascending
    tables: np.ndarray  # (S << FRACTION_BITS, ESCAPE + 1) int64, every entry >= 1
    escape: np.ndarray  # (2 * RADIUS + 1,) int64, every entry >= 1

    def coder_tables(self) -> tuple[np.ndarray, object, object]:
        """(tables as float64, the per-symbol model family, the escape model) for constriction."""
        key = id(self)
        if key not in _CODERS:
            _CODERS[key] = (self.tables.astype(np.float64), constriction.stream.model.Categorical(perfect=False),
                            constriction.stream.model.Categorical(self.escape.astype(np.float64), perfect=False))  # fmt: skip
        return _CODERS[key]


_MODELS: dict[str, ContextModel] = {}
_CODERS: dict[int, tuple] = {}
FIELDS = ("mean", "scale", "energy", "thresholds", "tables", "escape")


def load_model(path: Path, sha256: str) -> ContextModel:
    """The context model in ``path`` (an .npz of integer arrays), verified against ``sha256``."""
    key = f"{path}:{sha256}"
    if key not in _MODELS:
        arrays = pinned_arrays(path, sha256)
        _MODELS[key] = ContextModel(*(arrays[k].astype(np.int64) for k in FIELDS))
    return _MODELS[key]


@dataclass(frozen=True)
class Schedule:
    """Decoding order for one latent shape: symbols sorted by (step, channel, row, column)."""

    channel: np.ndarray
    flat: np.ndarray  # index of the symbol in the padded array
    window: np.ndarray  # index of (y, x) in the padded energy plane
    bounds: np.ndarray  # symbols of step i: bounds[i]:bounds[i + 1]
    offsets: np.ndarray  # flat offsets of NEIGHBOURS in the padded array
    box: np.ndarray  # flat offsets of the 3x3 window in the padded energy plane
    padded: tuple[int, int, int]


@lru_cache(maxsize=4)  # a 1024 x 1024 image's schedule is ~20 MB
def schedule(shape: tuple[int, int, int]) -> Schedule:
    """The decoding order of a (C, H, W) latent (module docstring)."""
    channels, height, width = shape
    padded = (channels + _PAD[0], height + _PAD[1] + 1, width + _PAD[2] + 1)
    c, y, x = (a.ravel() for a in np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij"))
    step = x + 2 * y + 4 * c
    order = np.lexsort((x, y, c, step))
    c, y, x, step = c[order], y[order], x[order], step[order]
    plane = padded[1] * padded[2]
    flat = (c + _PAD[0]) * plane + (y + _PAD[1]) * padded[2] + (x + _PAD[2])
    window = (y + _PAD[1]) * padded[2] + (x + _PAD[2])
    bounds = np.searchsorted(step, np.arange(step[-1] + 2)) if step.size else np.zeros(1, dtype=np.int64)
    offsets = np.array([dc * plane + dy * padded[2] + dx for dc, dy, dx in NEIGHBOURS])
    box = np.array([dy * padded[2] + dx for dy, dx in BOX])
    return Schedule(c, flat, window, bounds, offsets, box, padded)


def predict(model: ContextModel, channel: np.ndarray, n: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, table index) of symbols with channels ``channel``, neighbours ``n`` (N, K) and
    window energies ``acc`` (N,), all int64: the integer formulas of the module docstring."""
    m, s = model.mean[channel], model.scale[channel]
    fine = np.clip((m[:, 0] + np.einsum("nk,nk->n", m[:, 1:], n) + HALF_FINE) >> (SHIFT - FRACTION_BITS), -QMAX << FRACTION_BITS, QMAX << FRACTION_BITS)
    a = s[:, 0] + np.einsum("nk,nk->n", s[:, 1:-1], np.abs(n)) + s[:, -1] * acc
    index = (np.searchsorted(model.thresholds, a, side="right") << FRACTION_BITS) + (fine & ((1 << FRACTION_BITS) - 1))
    return fine >> FRACTION_BITS, index


def contexts(model: ContextModel, q: np.ndarray) -> tuple[Schedule, np.ndarray, np.ndarray, np.ndarray]:
    """Encoder side: (schedule, neighbours (N, K), window energies (N,), symbols (N,)) of every
    symbol in decoding order, computed at once from the whole quantised latent ``q``."""
    sched = schedule(q.shape)
    grid = np.zeros(sched.padded, dtype=np.int64)
    channels, height, width = q.shape
    grid[_PAD[0]:, _PAD[1] : _PAD[1] + height, _PAD[2] : _PAD[2] + width] = q
    n = grid.ravel()[sched.flat[:, None] + sched.offsets[None, :]]
    # energy decoded before (c, y, x) in its window: every earlier channel, plus the own
    # channel's left / up-left / up / up-right (the only ones decoded before it)
    weighted = np.abs(grid) * np.concatenate([np.zeros(_PAD[0], dtype=np.int64), model.energy])[:, None, None]
    plane = weighted.reshape(sched.padded[0], -1)
    box = sum(np.roll(plane, -int(o), axis=1) for o in sched.box)
    before = np.cumsum(box, axis=0) - box  # channels < c
    acc = before.ravel()[sched.flat] + model.energy[sched.channel] * np.abs(n[:, _OWN_WINDOW]).sum(axis=1)
    return sched, n, acc, grid.ravel()[sched.flat]


def quantise(coeffs: np.ndarray, step: float, deadzone: float = 0.0) -> np.ndarray:
    """Integer symbols of the coefficients at one uniform step, clipped to |q| <= QMAX; with a
    ``deadzone`` (encoder's choice), magnitudes round up only past ``0.5 + deadzone``."""
    q = np.rint(coeffs / step) if deadzone == 0 else np.sign(coeffs) * np.floor(np.abs(coeffs) / step + 0.5 - deadzone)
    return np.clip(q, -QMAX, QMAX).astype(np.int64)


def pack(coeffs: np.ndarray, step_units: int, model: ContextModel, deadzone: float = 0.0) -> bytes:
    """Quantise and range-code (C, H, W) coefficients u at step ``step_units / 4096``."""
    q = quantise(coeffs, step_units / STEP_UNIT, deadzone)
    sched, n, acc, symbols = contexts(model, q)
    mu, index = predict(model, sched.channel, n, acc)
    residual = symbols - mu
    inside = np.abs(residual) <= WINDOW
    coded = np.where(inside, residual + WINDOW, ESCAPE).astype(np.int32)
    escaped = (residual + RADIUS).astype(np.int32)
    tables, family, escape = model.coder_tables()
    encoder = constriction.stream.queue.RangeEncoder()
    for lo, hi in zip(sched.bounds[:-1], sched.bounds[1:]):
        if lo < hi:
            encoder.encode(coded[lo:hi], family, tables[index[lo:hi]])
            if not inside[lo:hi].all():
                encoder.encode(escaped[lo:hi][~inside[lo:hi]], escape)
    return _PARAMS.pack(step_units) + encoder.get_compressed().astype("<u4").tobytes()


def unpack(payload: bytes, shape: tuple[int, int, int], model: ContextModel) -> np.ndarray:
    """The dequantised coefficients û (C, H, W): decoded one step (wavefront) at a time.
    InvalidToken for any payload that is not a klt-ctx payload of this shape."""
    try:
        return _unpack(payload, shape, model)
    except InvalidToken:
        raise
    except (ValueError, RuntimeError, AssertionError, OverflowError) as exc:  # the range decoder's
        raise InvalidToken("the token's payload is corrupt") from exc


def _unpack(payload: bytes, shape: tuple[int, int, int], model: ContextModel) -> np.ndarray:
    if len(payload) < _PARAMS.size or (len(payload) - _PARAMS.size) % 4:
        raise InvalidToken("the token's payload has the wrong length for its latent shape")
    (units,) = _PARAMS.unpack_from(payload)
    if units == 0:
        raise InvalidToken("the token declares a zero quantisation step")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4", offset=_PARAMS.size).astype(np.uint32))
    sched = schedule(shape)
    grid = np.zeros(int(np.prod(sched.padded)), dtype=np.int64)
    plane = sched.padded[1] * sched.padded[2]
    energy = np.zeros(plane, dtype=np.int64)
    tables, family, escape = model.coder_tables()
    for lo, hi in zip(sched.bounds[:-1], sched.bounds[1:]):
        if lo == hi:
            continue
        channel, flat, window = sched.channel[lo:hi], sched.flat[lo:hi], sched.window[lo:hi]
        n = grid[flat[:, None] + sched.offsets[None, :]]
        mu, index = predict(model, channel, n, energy[window])
        residual = decoder.decode(family, tables[index]).astype(np.int64) - WINDOW
        out = residual == ESCAPE - WINDOW
        if out.any():
            residual[out] = decoder.decode(escape, int(out.sum())).astype(np.int64) - RADIUS
        q = mu + residual
        if np.abs(q).max() > QMAX:
            raise InvalidToken("the token's payload decodes to a value out of range")
        grid[flat] = q
        spread = (window[:, None] + sched.box[None, :]).ravel()
        energy += np.bincount(spread, np.repeat(model.energy[channel] * np.abs(q), len(sched.box)), minlength=plane).astype(np.int64)
    channels, height, width = shape
    q = grid.reshape(sched.padded)[_PAD[0]:, _PAD[1] : _PAD[1] + height, _PAD[2] : _PAD[2] + width]
    return q.astype(np.float64) * (units / STEP_UNIT)

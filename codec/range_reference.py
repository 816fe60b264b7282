"""Integer reference of kind 5's entropy decoding (``docs/token-format.md``, "Integer tables
and the range decoder"): Python integers only, no floating point, no constriction.

``codec.klt_ctx`` decodes with constriction (fast, vectorised); this module is the
specification in executable form, slow and plain, for the tests (which check that both give
the same symbols for every table of the pinned model) and as the starting point of a decoder
in another language.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidToken
from .klt_ctx import _PAD, ESCAPE, QMAX, RADIUS, STEP_UNIT, TABLE_BYTES, WINDOW, ContextModel, predict, schedule

PRECISION = 24
WORD_BITS = 32
STATE_BITS = 64
_STATE_MASK = (1 << STATE_BITS) - 1


def quantised_cdf(frequencies: np.ndarray | list[int]) -> list[int]:
    """The 24-bit cumulative table of n integer frequencies f (all >= 1), n + 1 entries:

        cdf[s] = floor(F_s * (2**24 - n) / N) + s    (F_s = f_0 + ... + f_{s-1}, N = F_n)
        cdf[n] = 2**24

    so that every symbol has probability cdf[s + 1] - cdf[s] >= 1."""
    counts = [int(f) for f in frequencies]
    n, total = len(counts), sum(counts)
    free = (1 << PRECISION) - n
    cdf, running = [], 0
    for s, count in enumerate(counts):
        cdf.append(running * free // total + s)
        running += count
    return cdf + [1 << PRECISION]


class RangeDecoder:
    """The range decoder of constriction's queue coder: u32 words, a u64 state, 24-bit
    probabilities (the integer algorithm of ``docs/token-format.md``)."""

    def __init__(self, words: list[int]) -> None:
        self.words, self.next = words, 2
        head = (list(words[:2]) + [0, 0])[:2]
        self.point = (head[0] << WORD_BITS) | head[1]
        self.lower, self.range = 0, _STATE_MASK

    def decode(self, cdf: list[int]) -> int:
        """The next symbol under the cumulative table ``cdf`` (from ``quantised_cdf``)."""
        scale = self.range >> PRECISION
        quantile = ((self.point - self.lower) & _STATE_MASK) // scale
        if quantile >= 1 << PRECISION:
            raise InvalidToken("the token's payload is corrupt")
        lo, hi = 0, len(cdf) - 2  # the symbol s with cdf[s] <= quantile < cdf[s + 1]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if cdf[mid] <= quantile:
                lo = mid
            else:
                hi = mid - 1
        self.lower = (self.lower + scale * cdf[lo]) & _STATE_MASK
        self.range = scale * (cdf[lo + 1] - cdf[lo])
        if self.range < 1 << (STATE_BITS - WORD_BITS):
            self.lower = (self.lower << WORD_BITS) & _STATE_MASK
            self.range <<= WORD_BITS
            word = self.words[self.next] if self.next < len(self.words) else 0
            self.next += 1
            self.point = ((self.point << WORD_BITS) & _STATE_MASK) | word
        return lo


def unpack_symbols(payload: bytes, shape: tuple[int, int, int], model: ContextModel) -> tuple[int, np.ndarray]:
    """(step units, integer symbols q (C, H, W)) of a kind 5 payload, decoded with integer
    tables and the integer range decoder, one symbol at a time."""
    if len(payload) < TABLE_BYTES or (len(payload) - TABLE_BYTES) % 4:
        raise InvalidToken("the token's payload has the wrong length for its latent shape")
    units = int.from_bytes(payload[:TABLE_BYTES], "big")
    if units == 0:
        raise InvalidToken("the token declares a zero quantisation step")
    words = [int(w) for w in np.frombuffer(payload, dtype="<u4", offset=TABLE_BYTES)]
    decoder = RangeDecoder(words)
    tables = [quantised_cdf(t) for t in model.tables]
    escape = quantised_cdf(model.escape)
    sched = schedule(shape)
    grid = np.zeros(int(np.prod(sched.padded)), dtype=np.int64)
    plane = sched.padded[1] * sched.padded[2]
    energy = np.zeros(plane, dtype=np.int64)
    for lo, hi in zip(sched.bounds[:-1], sched.bounds[1:]):
        if lo == hi:
            continue
        channel, flat, window = sched.channel[lo:hi], sched.flat[lo:hi], sched.window[lo:hi]
        mu, index = predict(model, channel, grid[flat[:, None] + sched.offsets[None, :]], energy[window])
        residual = [decoder.decode(tables[i]) - WINDOW for i in index]
        for k, r in enumerate(residual):  # the step's escaped residuals follow, in order
            if r == ESCAPE - WINDOW:
                residual[k] = decoder.decode(escape) - RADIUS
        q = mu + np.array(residual, dtype=np.int64)
        if np.abs(q).max() > QMAX:
            raise InvalidToken("the token's payload decodes to a value out of range")
        grid[flat] = q
        for c, w, value in zip(channel, window, q):
            energy[w + sched.box] += int(model.energy[c]) * abs(int(value))
    channels, height, width = shape
    q = grid.reshape(sched.padded)[_PAD[0]:, _PAD[1] : _PAD[1] + height, _PAD[2] : _PAD[2] + width]
    return units, q.copy()


__all__ = ["PRECISION", "RangeDecoder", "STEP_UNIT", "quantised_cdf", "unpack_symbols"]

"""Huffman tables for baseline JPEG: canonical codes, validation, and optimal tables.

``optimal_table`` builds the code lengths from symbol counts by libjpeg's method
(``jpeg_gen_optimal_table``: Huffman, with a pseudo-symbol reserving the all-ones code word,
then T.81 Annex K.3's ``adjust_bits`` to limit lengths to 16 bits), so a container's shared
tables are as good as a whole-image ``optimize=True`` JPEG's. It is not bit-exact with libjpeg:
its pseudo-symbol weighs ½ (libjpeg's: 1) and ties break differently; on the 120 encodes of
the 640×400 benchmark photographs (q30–q90) that never cost a bit and saved at most 4 per image.
``code_lengths`` (rate estimates) follows libjpeg's loop exactly. The coding itself is in
``entropy.py``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np

MAX_CODE_LENGTH = 16


@dataclass(frozen=True)
class HuffmanTable:
    """A JPEG Huffman table: ``bits[i]`` codes of length i + 1 for the symbols ``values``.

    Validated on construction; the per-symbol code lengths and codes, which only the encoder
    needs, are computed on first use (a decoder parses four tables per container)."""

    bits: tuple[int, ...]
    values: bytes

    def __post_init__(self) -> None:
        validate_table(self.bits, self.values)

    @cached_property
    def _canonical(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.zeros(256, dtype=np.uint8)
        codes = np.zeros(256, dtype=np.uint32)
        code, i = 0, 0
        for length, count in enumerate(self.bits, start=1):
            for _ in range(count):
                lengths[self.values[i]] = length
                codes[self.values[i]] = code
                code += 1
                i += 1
            code <<= 1
        return lengths, codes

    @property
    def lengths(self) -> np.ndarray:
        """Code length of each symbol 0..255 (0: not in the table)."""
        return self._canonical[0]

    @property
    def codes(self) -> np.ndarray:
        """Canonical code of each symbol 0..255 (T.81 Annex C)."""
        return self._canonical[1]

    @classmethod
    def from_lengths(cls, lengths: np.ndarray) -> HuffmanTable:
        """The canonical table giving each symbol 0..255 the code length ``lengths[symbol]``
        (0: absent): symbols ordered by length, then by value — the form the container stores
        (its lengths alone determine it)."""
        lengths = np.asarray(lengths).astype(np.int64)
        if lengths.shape != (256,):
            raise ValueError("code lengths must be 256 values in 0..16")
        counts, order, codes, space = _canonical_codes(lengths)
        if space < 0:
            raise ValueError("code lengths must be 256 values in 0..16")
        if not order.size:
            raise ValueError("Huffman table counts do not match its symbols")
        if space > 1 << MAX_CODE_LENGTH:
            raise ValueError("Huffman table over-subscribes the code space")
        # valid by construction (distinct symbols, counts that match them, checked above):
        # built without ``validate_table``, which a decoder would otherwise run on every parse
        table = object.__new__(cls)
        object.__setattr__(table, "bits", tuple(counts.tolist()))
        object.__setattr__(table, "values", order.astype(np.uint8).tobytes())
        # the codes are known already: fill the cached property (no per-symbol Python loop)
        table.__dict__["_canonical"] = (lengths.astype(np.uint8), codes)
        return table

    @property
    def canonical(self) -> bool:
        """Whether symbols of equal length are listed in increasing order (``from_lengths``)."""
        return self == HuffmanTable.from_lengths(self.lengths)

    def dht_payload(self) -> bytes:
        """The table as it appears inside a DHT marker (without the class/id byte)."""
        return bytes(self.bits) + self.values


def validate_table(bits: tuple[int, ...], values: bytes) -> None:
    """Reject tables a baseline decoder would refuse or misread (raises ``ValueError``)."""
    if len(bits) != MAX_CODE_LENGTH or any(b < 0 for b in bits):
        raise ValueError("a Huffman table has 16 code-length counts")
    if sum(bits) != len(values) or not 0 < len(values) <= 256:
        raise ValueError("Huffman table counts do not match its symbols")
    if len(set(values)) != len(values):
        raise ValueError("Huffman table repeats a symbol")
    space = 0
    for length, count in enumerate(bits, start=1):
        space += count << (MAX_CODE_LENGTH - length)
    if space > 1 << MAX_CODE_LENGTH:
        raise ValueError("Huffman table over-subscribes the code space")


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _canonical_codes(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(counts per length 1..16, symbols in canonical order, code of each symbol, code space
    used out of 2^16) for code lengths (256,): symbols by length, then by value; codes
    assigned in that order. The space is -1 where a length lies outside 0..16."""
    counts = np.zeros(MAX_CODE_LENGTH, dtype=np.int64)
    space = 0
    for symbol in range(256):
        if lengths[symbol] < 0 or lengths[symbol] > MAX_CODE_LENGTH:
            return counts, np.empty(0, dtype=np.int64), np.zeros(256, dtype=np.uint32), -1
        if lengths[symbol]:
            counts[lengths[symbol] - 1] += 1
            space += 1 << (MAX_CODE_LENGTH - lengths[symbol])
    order = np.empty(counts.sum(), dtype=np.int64)
    codes = np.zeros(256, dtype=np.uint32)
    i, code = 0, 0
    for length in range(1, MAX_CODE_LENGTH + 1):
        for symbol in range(256):
            if lengths[symbol] == length:
                order[i] = symbol
                codes[symbol] = code
                code += 1
                i += 1
        code <<= 1
    return counts, order, codes, space


_MAX_DEPTH = 258  # a Huffman tree over 257 symbols is at most 256 deep


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fold_and_drop_reserved(bits: np.ndarray) -> None:
    """In place on ``bits[length]`` counts: Annex K.3's ``adjust_bits`` folds codes longer than
    16 bits, then the reserved all-ones code word (one of the longest) is dropped."""
    for i in range(bits.shape[0] - 1, MAX_CODE_LENGTH, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = MAX_CODE_LENGTH
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1


def optimal_table(freq: np.ndarray) -> HuffmanTable:
    """The optimal length-limited table for one slot's symbol counts (libjpeg's method).

    A pseudo-symbol with a count of ½, below every real one, reserves the all-ones code word
    (libjpeg gives it 1; see the module docstring); lengths over 16
    are folded with T.81 Annex K.3's ``adjust_bits``. A slot with no symbols gets a single
    symbol 0 so that the table stays valid. The table is canonical (``from_lengths``), so its
    code lengths alone describe it.
    """
    symbols = [int(s) for s in np.flatnonzero(freq)]
    if not symbols:
        symbols, weights = [0], [1]
    else:
        weights = [int(freq[s]) for s in symbols]
    # Huffman code lengths; the reserved pseudo-symbol (-1) gets the lowest weight.
    heap: list[tuple[float, int, list[int]]] = [(0.5, -1, [-1])]
    heap += [(float(w), s, [s]) for s, w in zip(symbols, weights, strict=True)]
    heapq.heapify(heap)
    depth = {s: 0 for s in [-1, *symbols]}
    tiebreak = 256
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        tiebreak += 1
        heapq.heappush(heap, (w1 + w2, tiebreak, a + b))
    bits = np.zeros(_MAX_DEPTH, dtype=np.int64)
    for length in depth.values():
        bits[length] += 1
    _fold_and_drop_reserved(bits)
    # Symbols ordered by original code length, then symbol value, take the folded lengths in
    # turn; the table is then put in canonical order (the same code lengths).
    order = sorted(symbols, key=lambda s: (depth[s], s))
    folded = HuffmanTable(tuple(int(b) for b in bits[1 : MAX_CODE_LENGTH + 1]), bytes(order))
    return HuffmanTable.from_lengths(folded.lengths)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def code_lengths(freq: np.ndarray) -> np.ndarray:
    """(256,) uint8 code length per symbol of an optimal length-limited table for ``freq``
    (libjpeg's ``jpeg_gen_optimal_table`` loop: a reserved pseudo-symbol, pairwise merging, then
    Annex K.3's length folding). Lengths only, fast: what rate estimation needs; ``optimal_table``
    builds the table that gets written."""
    f = np.zeros(257, dtype=np.int64)
    f[:256] = freq
    f[256] = 1  # the pseudo-symbol reserving the all-ones code word
    size = np.zeros(257, dtype=np.int64)
    others = np.full(257, -1, dtype=np.int64)
    if not np.any(freq > 0):
        f[0] = 1
    while True:
        c1, v = -1, np.int64(1) << 62
        for i in range(257):
            if f[i] > 0 and f[i] <= v:
                v, c1 = f[i], i
        c2, v = -1, np.int64(1) << 62
        for i in range(257):
            if f[i] > 0 and f[i] <= v and i != c1:
                v, c2 = f[i], i
        if c2 < 0:
            break
        f[c1] += f[c2]
        f[c2] = 0
        size[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            size[c1] += 1
        others[c1] = c2
        size[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            size[c2] += 1
    bits = np.zeros(_MAX_DEPTH, dtype=np.int64)
    for i in range(257):
        if size[i] > 0:
            bits[size[i]] += 1
    _fold_and_drop_reserved(bits)
    # Real symbols by (original length, symbol) take the folded lengths in order.
    lengths = np.zeros(256, dtype=np.uint8)
    length = 1
    for depth in range(1, _MAX_DEPTH):
        for sym in range(256):
            if size[sym] == depth:
                while bits[length] == 0:
                    length += 1
                lengths[sym] = length
                bits[length] -= 1
    return lengths

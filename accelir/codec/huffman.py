"""Huffman tables for baseline JPEG: canonical codes, validation, and optimal tables.

``optimal_table`` builds the code lengths from symbol counts exactly as libjpeg's
``jpeg_gen_optimal_table`` does (Huffman, with a pseudo-symbol reserving the all-ones code word,
then T.81 Annex K.3's ``adjust_bits`` to limit lengths to 16 bits), so a container's shared
tables are as good as a whole-image ``optimize=True`` JPEG's. The coding itself is in
``entropy.py``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

MAX_CODE_LENGTH = 16


@dataclass(frozen=True)
class HuffmanTable:
    """A JPEG Huffman table: ``bits[i]`` codes of length i + 1 for the symbols ``values``."""

    bits: tuple[int, ...]
    values: bytes
    lengths: np.ndarray = field(init=False, repr=False, compare=False)
    codes: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_table(self.bits, self.values)
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
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "codes", codes)

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


def optimal_table(freq: np.ndarray) -> HuffmanTable:
    """The optimal length-limited table for one slot's symbol counts (libjpeg's method).

    A pseudo-symbol with the smallest count reserves the all-ones code word; lengths over 16
    are folded with T.81 Annex K.3's ``adjust_bits``. A slot with no symbols gets a single
    symbol 0 so that the table stays valid.
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
    max_len = max(depth.values())
    bits = [0] * (max(max_len, MAX_CODE_LENGTH) + 1)
    for length in depth.values():
        bits[length] += 1
    # Annex K.3 adjust_bits: fold codes longer than 16 bits.
    for i in range(len(bits) - 1, MAX_CODE_LENGTH, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    # Drop the reserved code word (one of the longest).
    i = MAX_CODE_LENGTH
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    # Symbols ordered by original code length, then symbol value.
    order = sorted(symbols, key=lambda s: (depth[s], s))
    return HuffmanTable(tuple(bits[1 : MAX_CODE_LENGTH + 1]), bytes(order))

"""Baseline JPEG entropy coding of block scans, compiled with numba.

Input everywhere: quantised coefficients shaped (blocks, units per block, 64), zigzag order,
the component (0 = Y, 1 = Cb, 2 = Cr) of each unit position in a block, and the (blocks, units)
mask of *absent* units (MCUs wholly outside the image, which edge blocks do not code). Each block is
one scan segment: DC predictors restart at 0 and the segment ends padded with 1-bits to a byte
boundary. Segments are written without byte stuffing (the container stores them so, from
version 3 on); ``jfif.stuff`` inserts the 0x00 after every 0xFF that a JPEG scan needs
(T.81 F.1.2.3).

Kernels:
- ``count_symbols``: Huffman symbol frequencies per table slot (to build optimal tables);
- ``segment_bits``: exact coded size of each block before padding (for rate control: no
  bits are written; the segment is this many bits rounded up to bytes); ``total_bits`` the same for all blocks from symbol counts;
- ``write_segments``: the bytes.

Table slots: 0 = DC luma, 1 = AC luma, 2 = DC chroma, 3 = AC chroma.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def category(value: int) -> int:
    """JPEG size category of a coefficient or DC difference: the bits of its magnitude."""
    mag = abs(value)
    n = 0
    while mag:
        n += 1
        mag >>= 1
    return n


@numba.njit(cache=True, nogil=True, boundscheck=False)
def count_symbols(coefs: np.ndarray, components: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """(4, 256) int64 symbol counts over all blocks."""
    counts = np.zeros((4, 256), dtype=np.int64)
    n_blocks, n_units = coefs.shape[0], coefs.shape[1]
    pred = np.zeros(3, dtype=np.int32)
    for b in range(n_blocks):
        pred[:] = 0
        for u in range(n_units):
            if absent[b, u]:
                continue
            comp = components[u]
            slot = 0 if comp == 0 else 2
            dc = np.int32(coefs[b, u, 0])
            counts[slot, category(dc - pred[comp])] += 1
            pred[comp] = dc
            run = 0
            for k in range(1, 64):
                v = coefs[b, u, k]
                if v == 0:
                    run += 1
                    continue
                while run > 15:
                    counts[slot + 1, 0xF0] += 1
                    run -= 16
                counts[slot + 1, (run << 4) | category(v)] += 1
                run = 0
            if run > 0:
                counts[slot + 1, 0] += 1
    return counts


@numba.njit(cache=True, nogil=True, boundscheck=False)
def segment_bits(
    coefs: np.ndarray, components: np.ndarray, absent: np.ndarray, code_lengths: np.ndarray
) -> np.ndarray:
    """(blocks,) int64 coded bits of each block with the given (4, 256) code lengths."""
    n_blocks, n_units = coefs.shape[0], coefs.shape[1]
    bits = np.zeros(n_blocks, dtype=np.int64)
    pred = np.zeros(3, dtype=np.int32)
    for b in range(n_blocks):
        pred[:] = 0
        total = 0
        for u in range(n_units):
            if absent[b, u]:
                continue
            comp = components[u]
            slot = 0 if comp == 0 else 2
            dc = np.int32(coefs[b, u, 0])
            cat = category(dc - pred[comp])
            total += code_lengths[slot, cat] + cat
            pred[comp] = dc
            run = 0
            for k in range(1, 64):
                v = coefs[b, u, k]
                if v == 0:
                    run += 1
                    continue
                while run > 15:
                    total += code_lengths[slot + 1, 0xF0]
                    run -= 16
                cat = category(v)
                total += code_lengths[slot + 1, (run << 4) | cat] + cat
                run = 0
            if run > 0:
                total += code_lengths[slot + 1, 0]
        bits[b] = total
    return bits


@numba.njit(cache=True, nogil=True, boundscheck=False)
def first_dc_bits(
    coefs: np.ndarray, first_units: np.ndarray, code_lengths: np.ndarray
) -> np.ndarray:
    """(blocks,) int64 bits of the DC code words of each block's units ``first_units`` (Y, Cb,
    Cr: each component's first unit, whose DC is coded from a prediction of 0) — what a
    segment of container version 4 leaves out."""
    n_blocks = coefs.shape[0]
    bits = np.zeros(n_blocks, dtype=np.int64)
    for b in range(n_blocks):
        for c in range(3):
            cat = category(int(coefs[b, first_units[c], 0]))
            bits[b] += code_lengths[0 if c == 0 else 2, cat] + cat
    return bits


def total_bits(counts: np.ndarray, code_lengths: np.ndarray) -> int:
    """Coded bits of all blocks before padding, from the symbol counts alone: a
    symbol costs its code length plus its extra bits (a DC symbol is its own size category; an
    AC symbol's size is its low nibble)."""
    symbols = np.arange(256)
    extra = np.stack([symbols, symbols & 0x0F, symbols, symbols & 0x0F])
    return int(np.sum(counts * (code_lengths.astype(np.int64) + extra)))


@numba.njit(cache=True, nogil=True, boundscheck=False)
def put_bits(
    out: np.ndarray, pos: int, acc: int, n_acc: int, code: int, length: int
) -> tuple[int, int, int]:
    """Append ``length`` bits of ``code``; flush whole bytes (no 0xFF stuffing: the container
    stores segments unstuffed, docs/format.md)."""
    acc = (acc << length) | code
    n_acc += length
    while n_acc >= 8:
        n_acc -= 8
        out[pos] = (acc >> n_acc) & 0xFF
        pos += 1
    acc &= (1 << n_acc) - 1
    return pos, acc, n_acc


@numba.njit(cache=True, nogil=True, boundscheck=False)
def extra_bits(value: int, cat: int) -> int:
    """The ``cat`` bits that follow a value's code word (T.81 F.1.2.1: negatives one less)."""
    return value if value >= 0 else value + (1 << cat) - 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def write_segments(
    coefs: np.ndarray,
    components: np.ndarray,
    absent: np.ndarray,
    code_lengths: np.ndarray,
    codes: np.ndarray,
    out: np.ndarray,
    lengths: np.ndarray,
    omit: np.ndarray,
    data_bits: np.ndarray,
) -> int:
    """Write every block's segment into ``out``; store each segment's byte length in
    ``lengths`` and its bits before padding in ``data_bits``; return the total. ``out`` must
    hold coded bits / 8 + blocks bytes. Segments are padded with one-bits to a byte and not
    stuffed (``jfif.stuff`` makes them JPEG scans). ``omit`` (units,) marks unit positions
    whose DC code word is left out (container version 4: each component's first unit, whose
    value the first-DC map holds); the DC prediction still starts from their value."""
    n_blocks, n_units = coefs.shape[0], coefs.shape[1]
    pred = np.zeros(3, dtype=np.int32)
    pos = 0
    for b in range(n_blocks):
        start = pos
        acc, n_acc = 0, 0
        pred[:] = 0
        for u in range(n_units):
            if absent[b, u]:
                continue
            comp = components[u]
            slot = 0 if comp == 0 else 2
            dc = np.int32(coefs[b, u, 0])
            diff = dc - pred[comp]
            pred[comp] = dc
            if not omit[u]:
                cat = category(diff)
                pos, acc, n_acc = put_bits(
                    out,
                    pos,
                    acc,
                    n_acc,
                    (codes[slot, cat] << cat) | extra_bits(diff, cat),
                    code_lengths[slot, cat] + cat,
                )
            run = 0
            for k in range(1, 64):
                v = np.int32(coefs[b, u, k])
                if v == 0:
                    run += 1
                    continue
                while run > 15:
                    pos, acc, n_acc = put_bits(
                        out, pos, acc, n_acc, codes[slot + 1, 0xF0], code_lengths[slot + 1, 0xF0]
                    )
                    run -= 16
                cat = category(int(v))
                sym = (run << 4) | cat
                code = (codes[slot + 1, sym] << cat) | extra_bits(int(v), cat)
                pos, acc, n_acc = put_bits(
                    out, pos, acc, n_acc, code, code_lengths[slot + 1, sym] + cat
                )
                run = 0
            if run > 0:
                pos, acc, n_acc = put_bits(
                    out, pos, acc, n_acc, codes[slot + 1, 0], code_lengths[slot + 1, 0]
                )
        data_bits[b] = 8 * (pos - start) + n_acc
        if n_acc > 0:
            pad = 8 - n_acc
            pos, acc, n_acc = put_bits(out, pos, acc, n_acc, (1 << pad) - 1, pad)
        lengths[b] = pos - start
    return pos

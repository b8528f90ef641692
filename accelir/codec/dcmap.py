"""The first-DC map of container versions 4 and 5 (docs/format.md, "First-DC map").

A block's standalone scan starts every component's DC prediction at 0, so the first Y, Cb and
Cr unit of each block code their DC as an absolute value: 2.4–3 bytes a block on the benchmark
photographs. Version 4 leaves those three code words out of the stored segments and keeps the
values here, predicted across blocks (the JPEG-LS median of the left, upper and upper-left
blocks' values, compared as dequantised levels so that blocks of different qualities predict
each other) and Rice-coded: about half the bytes. Rebuilding a standalone scan puts the code
words back (``accelir.codec.scan``).

Putting code words back lengthens the scan by ``I`` bits, known from the values and the tables;
whether the rebuilt scan then needs one byte more than ``stored + floor(I / 8)`` depends on
where the stored data ended inside its last byte, which the stored segment (padded to a byte)
no longer says: one bit per block with ``I mod 8 ≠ 0`` records it.

Version 5 predicts a block's first DC from the nearest unit the left block holds — the last
unit of that block's first row of MCUs, which touches it — instead of from the first units of
the left, upper and upper-left blocks (8 pixels away rather than 32: 14 % fewer map bytes under
version 4's Rice code, on the 144 encodes of the size benchmark). The decoder learns that unit's DC relative to the left block's first
DC by Huffman-decoding the left block's first row of MCUs (``scan.first_mcus``). Its residuals,
and the *longer* bits, are range-coded (``arith``) in one stream with the block index.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np

from accelir.codec import arith
from accelir.codec.bitio import (
    ContainerError,
    Reader,
    median_predictor,
    rice_decode,
    rice_encode,
    unzigzag,
    zigzag,
)
from accelir.codec.entropy import category
from accelir.codec.tables import natural_quant_tables

#: The largest magnitude of a baseline 8-bit DC value (size category 11).
MAX_DC = 2047
#: Context edges of the version-5 map (``arith``: sums of the neighbours' residual magnitudes).
EDGES = np.array([1, 3, 8, 20], dtype=np.int64)


@dataclass(frozen=True)
class FirstDC:
    """What the writer knows of every block's first DCs (all (rows, cols, …) int64 grids)."""

    levels: np.ndarray  # (…, 3) the quantised first DC of Y, Cb and Cr
    right: np.ndarray  # (…, 3) the DC of the units that end the first MCU row, minus ``levels``
    omitted: np.ndarray  # bits of the three code words the segment leaves out
    longer: np.ndarray  # bool: the rebuilt scan takes one byte more (docs/format.md)


@cache
def _steps_by_quality() -> np.ndarray:
    """(101, 3) DC quantisation step of Y, Cb and Cr at each quality 0..100 (0 unused)."""
    out = np.ones((101, 3), dtype=np.int64)
    for q in range(1, 101):
        luma, chroma = natural_quant_tables(q)[:, 0]
        out[q] = (luma, chroma, chroma)
    return out


def dc_steps(quality_map: np.ndarray) -> np.ndarray:
    """(rows, cols, 3) int64 DC quantisation step of each block's Y, Cb and Cr."""
    return _steps_by_quality()[quality_map]


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _predicted_level(
    levels: np.ndarray, right: np.ndarray, steps: np.ndarray, r: int, c: int, k: int,
    beside: bool,
) -> int:  # fmt: skip
    """The level of block (r, c), component k, predicted from its decoded neighbours and
    brought to the block's own step (rounding half away from zero). Version 4 (``beside``
    false): the median predictor of JPEG-LS on the dequantised first DCs of the left, upper
    and upper-left blocks. Version 5: the dequantised DC of the left block's last unit in its
    first MCU row (its first DC plus ``right``, that unit's DC relative to it); the upper
    block's first DC in the first column."""
    if r == 0 and c == 0:
        return 0
    if r == 0 or (beside and c > 0):
        p = (levels[r, c - 1, k] + (right[r, c - 1, k] if beside else 0)) * steps[r, c - 1, k]
    elif c == 0:
        p = levels[r - 1, c, k] * steps[r - 1, c, k]
    else:
        p = median_predictor(
            levels[r, c - 1, k] * steps[r, c - 1, k],
            levels[r - 1, c, k] * steps[r - 1, c, k],
            levels[r - 1, c - 1, k] * steps[r - 1, c - 1, k],
        )
    step = steps[r, c, k]
    q = (2 * abs(p) + step) // (2 * step)
    return q if p >= 0 else -q


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _residuals(
    levels: np.ndarray, right: np.ndarray, steps: np.ndarray, beside: bool
) -> np.ndarray:
    rows, cols = levels.shape[0], levels.shape[1]
    out = np.empty((3, rows, cols), dtype=np.int64)
    for k in range(3):
        for r in range(rows):
            for c in range(cols):
                p = _predicted_level(levels, right, steps, r, c, k, beside)
                out[k, r, c] = levels[r, c, k] - p
    return out


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _levels(
    residuals: np.ndarray, right: np.ndarray, steps: np.ndarray, dc_lengths: np.ndarray,
    levels: np.ndarray, beside: bool,
) -> tuple[np.ndarray, int]:  # fmt: skip
    """Inverse of ``_residuals`` into ``levels``, and the bits of the three DC code words
    each block's segment leaves out, given the (2, 256) code lengths of the DC luma and DC
    chroma tables. Returns (omitted, -1), or the raster index of the first block whose value
    leaves the baseline range or whose size category has no code (then ``levels`` is
    incomplete)."""
    rows, cols = levels.shape[0], levels.shape[1]
    omitted = np.zeros((rows, cols), dtype=np.int64)
    for k in range(3):
        slot = 0 if k == 0 else 1
        for r in range(rows):
            for c in range(cols):
                v = residuals[k, r, c] + _predicted_level(levels, right, steps, r, c, k, beside)
                if v < -MAX_DC or v > MAX_DC:
                    return omitted, r * cols + c
                levels[r, c, k] = v
                cat = category(v)
                if dc_lengths[slot, cat] == 0:
                    return omitted, r * cols + c
                omitted[r, c] += dc_lengths[slot, cat] + cat
    return omitted, -1


def _checked_levels(
    residuals: np.ndarray, right: np.ndarray, quality_map: np.ndarray, dc_lengths: np.ndarray,
    levels: np.ndarray, beside: bool,
) -> np.ndarray:  # fmt: skip
    cols = quality_map.shape[1]
    omitted, bad = _levels(
        residuals, right, dc_steps(quality_map), dc_lengths.astype(np.int64), levels, beside
    )
    if bad >= 0:
        raise ContainerError(
            f"first-DC map: block ({bad // cols}, {bad % cols}) holds a value outside the "
            "baseline range or without a code in the DC tables"
        )
    return omitted


def _longer_p1(omitted: np.ndarray) -> np.ndarray:
    """Probability (12-bit) that a block with ``omitted`` bits is *longer*: the stored data
    ends uniformly anywhere in its last byte, so ``(omitted mod 8) / 8``."""
    return (omitted % 8) << (arith.PROB_BITS - 3)


def _odd(omitted: np.ndarray, longer: np.ndarray) -> np.ndarray:
    """The blocks whose omitted bits are not whole bytes: the only ones that can be *longer*."""
    odd = omitted % 8 != 0
    if np.any(longer & ~odd):
        raise ValueError("a block whose omitted bits are whole bytes cannot be longer")
    return odd


def put(encoder: arith.Encoder, first_dc: FirstDC, quality_map: np.ndarray) -> None:
    """Version 5: the three residual grids (each block's first DC predicted from the unit
    beside it: the left block's first DC plus its ``right``), then the *longer* bits of the
    blocks whose omitted bits are not whole bytes."""
    omitted, longer = first_dc.omitted, first_dc.longer
    odd = _odd(omitted, longer)
    levels = first_dc.levels.astype(np.int64)
    right = first_dc.right.astype(np.int64)
    residuals = _residuals(levels, right, dc_steps(quality_map), True)
    for k in range(3):
        encoder.grid(residuals[k], EDGES)
    encoder.bits(longer[odd].astype(np.int64), _longer_p1(omitted[odd]))


def get(
    decoder: arith.Decoder, quality_map: np.ndarray, right: np.ndarray, dc_lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Version 5: what ``put`` wrote — (levels, omitted bits, longer), as ``decode``."""
    rows, cols = quality_map.shape
    residuals = np.stack([decoder.grid(rows, cols, EDGES) for _ in range(3)])
    levels = np.zeros((rows, cols, 3), dtype=np.int64)
    omitted = _checked_levels(
        residuals, right.astype(np.int64), quality_map, dc_lengths, levels, True
    )
    odd = omitted % 8 != 0
    longer = np.zeros((rows, cols), dtype=bool)
    longer[odd] = decoder.bits(_longer_p1(omitted[odd])).astype(bool)
    return levels, omitted, longer


def encode(
    levels: np.ndarray, quality_map: np.ndarray, omitted: np.ndarray, longer: np.ndarray
) -> bytes:
    """Version 4: the map's bytes: a Rice stream of prediction residuals per component (Y, Cb,
    Cr), then one bit per block whose ``omitted`` bits are not a whole number of bytes, in
    raster order, zero-padded: ``longer`` there, i.e. the rebuilt scan takes one byte more than
    the stored segment plus the omitted whole bytes (it never does where ``omitted`` is whole
    bytes)."""
    odd = _odd(omitted, longer)
    levels = levels.astype(np.int64)
    residuals = _residuals(levels, np.zeros_like(levels), dc_steps(quality_map), False)
    streams = b"".join(rice_encode(zigzag(residuals[k])) for k in range(3))
    return streams + np.packbits(longer[odd].astype(np.uint8)).tobytes()


def decode(
    data: bytes, quality_map: np.ndarray, dc_lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Version 4: (levels (rows, cols, 3) int64, omitted bits (rows, cols), longer (rows, cols)
    bool) of a map section; raises ``ContainerError`` on anything malformed."""
    rows, cols = quality_map.shape
    reader = Reader(data)
    residuals = np.stack(
        [rice_decode(reader, rows * cols, "first-DC map").reshape(rows, cols) for _ in range(3)]
    )
    if np.abs(residuals).max(initial=0) > 1 << 40:
        raise ContainerError("first-DC map: value out of range")
    levels = np.zeros((rows, cols, 3), dtype=np.int64)
    omitted = _checked_levels(
        unzigzag(residuals), np.zeros_like(levels), quality_map, dc_lengths, levels, False
    )
    odd = omitted % 8 != 0
    count = int(odd.sum())
    flags = np.unpackbits(np.frombuffer(reader.take(-(-count // 8), "first-DC map"), np.uint8))
    reader.at_end("first-DC map")
    if np.any(flags[count:]):
        raise ContainerError("first-DC map: padding bits must be zero")
    longer = np.zeros((rows, cols), dtype=bool)
    longer[odd] = flags[:count].astype(bool)
    return levels, omitted, longer

"""Exact per-block byte costs at every candidate quality, without writing a bit, and each
block's coding distortion (``block_distortions``).

The DCT is computed once; for each candidate quality the blocks are quantised, the symbol
counts give that quality's optimal Huffman tables, and each block's coded size follows from
the code lengths of its symbols (``entropy.segment_bits``), less the first DC code words that
the container keeps in its first-DC map (version 4 on; the map's own bytes, about 1.3 per
block in version 5, are left to the header allowance). A block's segment then costs exactly that many bits
rounded up to whole bytes: the container stores segments without byte stuffing, so the
estimate is the segment's length whenever the quality map's tables are those of the
estimating quality (uniform maps; mixed maps share one set of tables).
"""

from __future__ import annotations

import numba
import numpy as np

from accelir.codec import entropy
from accelir.codec.huffman import code_lengths
from accelir.codec.tables import quant_tables
from accelir.codec.transform import BlockDCT, quantise_into


def block_rates(dct: BlockDCT, qualities: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """(blocks, len(qualities)) estimated segment bytes of every block at every quality.

    One compiled pass per quality — quantisation by ``transform.quantise_into`` (hidden
    units flattened), symbol counts, that quality's optimal code lengths, each block's bits —
    with no Python in between, so small images pay no per-call overhead."""
    comps = dct.layout.unit_components().astype(np.int64)
    recip = np.stack([1.0 / quant_tables(int(q)) for q in qualities]).astype(np.float32)
    first = dct.layout.first_units()
    bits = _rates_bits(dct.coefs, dct.hidden, dct.absent, comps, first, recip)
    return np.ceil(bits / 8)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _rates_bits(
    coefs: np.ndarray,
    hidden: np.ndarray,
    absent: np.ndarray,
    comps: np.ndarray,
    first: np.ndarray,
    recip: np.ndarray,
) -> np.ndarray:
    n_q = recip.shape[0]
    out = np.empty((coefs.shape[0], n_q), dtype=np.float64)
    quantised = np.empty(coefs.shape, dtype=np.int16)
    lengths = np.empty((4, 256), dtype=np.uint8)
    every_block = np.zeros(coefs.shape[0], dtype=np.int64)
    for t in range(n_q):
        quantise_into(quantised, coefs, hidden, comps, every_block, recip[t : t + 1])
        counts = entropy.count_symbols(quantised, comps, absent)
        for slot in range(4):
            lengths[slot] = code_lengths(counts[slot])
        out[:, t] = entropy.segment_bits(quantised, comps, absent, lengths)
        out[:, t] -= entropy.first_dc_bits(quantised, first, lengths)
    return out


def block_distortions(dct: BlockDCT, qualities: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """(blocks, len(qualities)) squared quantisation error of every block at every quality, in
    the DCT domain (orthonormal, so it equals the YCbCr pixel-domain error before rounding);
    chroma units count once per pixel they cover. Hidden units count nothing. Quantisation is
    ``transform.quantise``'s, fused here into one pass without temporaries."""
    chroma = (dct.layout.unit_components() > 0).astype(np.int64)
    weight = np.where(chroma > 0, float(dct.layout.h_factor**2), 1.0)
    tables = np.stack([quant_tables(int(q)) for q in qualities]).astype(np.float32)  # (Q, 2, 64)
    return _distortions(
        dct.coefs, dct.hidden, chroma, weight, (1.0 / tables).astype(np.float32), tables
    )


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _distortions(
    coefs: np.ndarray,
    hidden: np.ndarray,
    chroma: np.ndarray,
    weight: np.ndarray,
    recip: np.ndarray,
    steps: np.ndarray,
) -> np.ndarray:
    n_blocks, n_units, n_q = coefs.shape[0], coefs.shape[1], steps.shape[0]
    out = np.zeros((n_blocks, n_q), dtype=np.float64)
    for b in range(n_blocks):
        for u in range(n_units):
            if hidden[b, u]:
                continue
            c = chroma[u]
            for t in range(n_q):
                total = 0.0
                for k in range(64):
                    x = coefs[b, u, k]
                    level = np.floor(x * recip[t, c, k] + np.float32(0.5))
                    err = x - level * steps[t, c, k]
                    total += err * err
                out[b, t] += total * weight[u]
    return out

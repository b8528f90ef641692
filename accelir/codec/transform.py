"""Forward JPEG transform: RGB pixels → quantised DCT coefficients of every block, in scan order.

Colour conversion and 2×2 chroma averaging are libjpeg's, bit for bit (fixed-point JFIF YCbCr,
the ``h2v2`` average with alternating bias; numba); the 8×8 DCT is a float32 matrix product and
quantisation rounds to nearest, as libjpeg's float path does. The output is what the entropy coder
consumes: a (blocks, units per block, 64) int16 array in zigzag order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from accelir.codec.layout import Layout
from accelir.codec.tables import ZIGZAG, quant_tables


def _dct_matrix() -> np.ndarray:
    """(64, 64) matrix mapping a row-major 8×8 block to its JPEG DCT in zigzag order."""
    n = np.arange(8)
    c = np.full(8, np.sqrt(2 / 8))
    c[0] = np.sqrt(1 / 8)
    basis = c[:, None] * np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16)  # (u, x)
    full = np.einsum("ux,vy->xyuv", basis, basis).reshape(64, 64)  # pixel → natural coef
    return full[:, ZIGZAG].astype(np.float32)


_DCT = _dct_matrix()


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _fix(x: float) -> int:
    return int(x * 65536 + 0.5)


# libjpeg's jccolor.c fixed-point coefficients (16 fractional bits).
_Y_R, _Y_G, _Y_B = _fix(0.29900), _fix(0.58700), _fix(0.11400)
_CB_R, _CB_G, _CB_B = -_fix(0.16874), -_fix(0.33126), _fix(0.5)
_CR_R, _CR_G, _CR_B = _fix(0.5), -_fix(0.41869), -_fix(0.08131)
_HALF, _CBCR_OFFSET = 1 << 15, 128 << 16


@numba.njit(cache=True, nogil=True)
def _ycc_planes(
    image: np.ndarray, height: int, width: int, subsample: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB → level-shifted Y, Cb, Cr planes of height×width (edges replicated), exactly as libjpeg
    computes them: fixed-point conversion, then for 4:2:0 the h2v2 average with bias 1, 2, …"""
    h, w = image.shape[0], image.shape[1]
    y = np.empty((height, width), dtype=np.float32)
    ch, cw = (height // 2, width // 2) if subsample else (height, width)
    cb = np.zeros((ch, cw), dtype=np.float32)
    cr = np.zeros((ch, cw), dtype=np.float32)
    for i in range(height):
        si = min(i, h - 1)
        for j in range(width):
            sj = min(j, w - 1)
            r = np.int32(image[si, sj, 0])
            g = np.int32(image[si, sj, 1])
            b = np.int32(image[si, sj, 2])
            y[i, j] = ((_Y_R * r + _Y_G * g + _Y_B * b + _HALF) >> 16) - 128
            vb = (_CB_R * r + _CB_G * g + _CB_B * b + _CBCR_OFFSET + _HALF - 1) >> 16
            vr = (_CR_R * r + _CR_G * g + _CR_B * b + _CBCR_OFFSET + _HALF - 1) >> 16
            if subsample:
                cb[i // 2, j // 2] += vb
                cr[i // 2, j // 2] += vr
            else:
                cb[i, j] = vb - 128
                cr[i, j] = vr - 128
    if subsample:
        for i in range(ch):
            for j in range(cw):
                bias = 1 + (j & 1)
                cb[i, j] = ((np.int32(cb[i, j]) + bias) >> 2) - 128
                cr[i, j] = ((np.int32(cr[i, j]) + bias) >> 2) - 128
    return y, cb, cr


def ycc_planes(image: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level-shifted Y, Cb, Cr planes covering whole blocks (chroma subsampled for 4:2:0)."""
    rows, cols = layout.grid(*image.shape[:2])
    return _ycc_planes(np.ascontiguousarray(image), rows * layout.block, cols * layout.block,
                       layout.subsampling == "4:2:0")  # fmt: skip


def _plane_units(plane: np.ndarray) -> np.ndarray:
    """(H, W) → (H/8 · W/8, 64): the 8×8 units of a plane in raster order, row-major inside."""
    h, w = plane.shape
    return plane.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)


@cache
def _scan_indices(rows: int, cols: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Raster unit index of every luma and chroma unit of every block, in scan order:
    shapes (blocks, MCUs × luma units per MCU) and (blocks, MCUs)."""
    m, f = layout.mcus_per_side, layout.h_factor
    r, c, my, mx, uy, ux = np.meshgrid(
        np.arange(rows),
        np.arange(cols),
        np.arange(m),
        np.arange(m),
        np.arange(f),
        np.arange(f),
        indexing="ij",
    )
    luma_cols = cols * m * f
    luma = (r * m * f + my * f + uy) * luma_cols + (c * m * f + mx * f + ux)
    chroma = (r * m + my) * (cols * m) + (c * m + mx)
    return luma.reshape(rows * cols, -1), chroma[..., 0, 0].reshape(rows * cols, -1)


@dataclass(frozen=True)
class BlockDCT:
    """The DCT of every unit of every block, before quantisation: quality-independent, so an
    encoder that tries several qualities transforms once.

    ``coefs`` is (blocks, units per block, 64) float32 in zigzag order; ``hidden`` marks units
    nobody sees: luma units lying wholly outside the image, and every unit of ``absent`` MCUs
    (wholly outside the image), which edge blocks' segments leave out.
    """

    coefs: np.ndarray
    hidden: np.ndarray
    absent: np.ndarray
    layout: Layout
    height: int
    width: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.layout.grid(self.height, self.width)


def block_dct(image: np.ndarray, layout: Layout) -> BlockDCT:
    """Colour conversion, chroma averaging and the DCT of an H×W×3 uint8 image."""
    # The products here are small: a multi-threaded BLAS only adds latency (and stalls badly
    # when another process holds a core), so they run on the calling thread.
    with _blas().limit(limits=1, user_api="blas"):
        h, w = image.shape[:2]
        rows, cols = layout.grid(h, w)
        coefs = planes_dct(*ycc_planes(image, layout), layout)
    m2, lpm = layout.mcus_per_side**2, layout.luma_per_mcu
    hidden = np.zeros((rows * cols, m2, layout.units_per_mcu), dtype=bool)
    hidden[:, :, :lpm] = _hidden_luma(h, w, layout).reshape(rows * cols, m2, lpm)
    shape = (rows * cols, layout.units_per_block)
    absent = layout.absent_units(h, w)
    return BlockDCT(coefs, hidden.reshape(shape) | absent, absent, layout, h, w)


def planes_dct(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray, layout: Layout) -> np.ndarray:
    """(blocks, units per block, 64) float32 zigzag DCT of three planes covering whole blocks
    (chroma at its subsampled size), units in the entropy coder's scan order."""
    rows, cols = luma.shape[0] // layout.block, luma.shape[1] // layout.block
    luma_idx, chroma_idx = _scan_indices(rows, cols, layout)
    m2, lpm = layout.mcus_per_side**2, layout.luma_per_mcu
    units = np.empty((rows * cols, m2, layout.units_per_mcu, 64), dtype=np.float32)
    units[:, :, :lpm] = (_plane_units(luma) @ _DCT)[luma_idx].reshape(rows * cols, m2, lpm, 64)
    units[:, :, lpm] = (_plane_units(cb) @ _DCT)[chroma_idx]
    units[:, :, lpm + 1] = (_plane_units(cr) @ _DCT)[chroma_idx]
    return units.reshape(rows * cols, layout.units_per_block, 64)


@cache
def _reciprocals(quality: int) -> np.ndarray:
    return (1.0 / quant_tables(quality)).astype(np.float32)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def quantise_into(
    out: np.ndarray,
    coefs: np.ndarray,
    hidden: np.ndarray,
    comps: np.ndarray,
    table_of_block: np.ndarray,
    recip: np.ndarray,
) -> None:
    """Quantise every unit into ``out`` (blocks, units, 64) int16, block ``b`` with the
    reciprocal steps ``recip[table_of_block[b]]`` ((tables, 2, 64): luma, chroma). Hidden luma
    units become flat units carrying the DC of the luma unit before them in scan order (the
    first unit of a block is always visible): the cheapest thing to code, and nobody sees them."""
    for b in range(coefs.shape[0]):
        t = table_of_block[b]
        last_dc = np.int16(0)
        for u in range(coefs.shape[1]):
            if comps[u] == 0 and hidden[b, u]:
                out[b, u, :] = 0
                out[b, u, 0] = last_dc
                continue
            c = 1 if comps[u] > 0 else 0
            for k in range(64):
                out[b, u, k] = np.int16(np.floor(coefs[b, u, k] * recip[t, c, k] + np.float32(0.5)))
            if comps[u] == 0:
                last_dc = out[b, u, 0]


def quantise(dct: BlockDCT, qualities: np.ndarray) -> np.ndarray:
    """Quantised coefficients (blocks, units per block, 64) int16 for a (rows, cols) quality map.

    Hidden luma units become flat units carrying their predecessor's DC, the cheapest thing to
    code: nobody sees them.
    """
    q = np.asarray(qualities).reshape(-1)
    uniq, inverse = np.unique(q, return_inverse=True)
    recip = np.stack([_reciprocals(int(v)) for v in uniq])  # (nq, 2, 64)
    out = np.empty(dct.coefs.shape, dtype=np.int16)
    comps = dct.layout.unit_components().astype(np.int64)
    quantise_into(out, dct.coefs, dct.hidden, comps, inverse.astype(np.int64), recip)
    return out


def forward(image: np.ndarray, qualities: np.ndarray, layout: Layout) -> np.ndarray:
    """Quantised coefficients of every unit of every block: (blocks, units per block, 64) int16.

    ``image`` is H×W×3 uint8; ``qualities`` the (rows, cols) JPEG quality of each block.
    Partly visible units keep the replicated edge, as libjpeg pads.
    """
    return quantise(block_dct(image, layout), qualities)


def _hidden_luma(height: int, width: int, layout: Layout) -> np.ndarray:
    """(blocks, luma units per block) mask of luma units wholly outside the image."""
    rows, cols = layout.grid(height, width)
    m, f = layout.mcus_per_side, layout.h_factor
    by, bx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    my, mx, uy, ux = np.meshgrid(
        np.arange(m), np.arange(m), np.arange(f), np.arange(f), indexing="ij"
    )
    oy = by.reshape(-1, 1) * layout.block + (my * layout.mcu + uy * 8).reshape(1, -1)
    ox = bx.reshape(-1, 1) * layout.block + (mx * layout.mcu + ux * 8).reshape(1, -1)
    return (oy >= height) | (ox >= width)

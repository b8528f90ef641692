"""Forward JPEG transform: RGB pixels → quantised DCT coefficients of every block, in scan order.

Colour conversion, 2×2 chroma averaging and the 8×8 DCT follow libjpeg's encoder (JFIF YCbCr,
rounded 8-bit samples, the ``h2v2`` averaging with alternating bias, round-to-nearest
quantisation), computed in float32 with matrix products. The output is what the entropy coder
consumes: a (blocks, units per block, 64) int16 array in zigzag order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from accelir.codec.layout import Layout
from accelir.codec.tables import ZIGZAG, quant_tables

_RGB_TO_YCC = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ],
    dtype=np.float32,
)


def _dct_matrix() -> np.ndarray:
    """(64, 64) matrix mapping a row-major 8×8 block to its JPEG DCT in zigzag order."""
    n = np.arange(8)
    c = np.where(n == 0, np.sqrt(1 / 8), np.sqrt(2 / 8))
    basis = c[:, None] * np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16)  # (u, x)
    full = np.einsum("ux,vy->xyuv", basis, basis).reshape(64, 64)  # pixel → natural coef
    return full[:, ZIGZAG].astype(np.float32)


_DCT = _dct_matrix()


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def pad_to_blocks(image: np.ndarray, layout: Layout) -> np.ndarray:
    """Replicate the last row and column until the image covers whole blocks."""
    h, w = image.shape[:2]
    rows, cols = layout.grid(h, w)
    pad_h, pad_w = rows * layout.block - h, cols * layout.block - w
    if pad_h == 0 and pad_w == 0:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def rgb_to_ycc(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (3, H, W) float32 level-shifted YCbCr samples, rounded like libjpeg."""
    planes = np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)
    ycc = np.tensordot(_RGB_TO_YCC, planes, axes=(1, 0))
    ycc[0] -= 127.5  # level shift luma to -128..127 (chroma is centred already), +0.5 to round
    ycc[1:] += 0.5
    return np.floor(ycc, out=ycc)


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """libjpeg's h2v2 averaging: (a + b + c + d + bias) >> 2 with bias 1, 2, 1, 2 … per column.

    The plane is level-shifted by -128, i.e. the sum of four by -512: the floor stays exact.
    """
    quad = plane[0::2, 0::2] + plane[1::2, 0::2]
    quad += plane[0::2, 1::2]
    quad += plane[1::2, 1::2]
    quad += np.where(np.arange(quad.shape[1]) % 2 == 0, 1.0, 2.0).astype(np.float32)
    quad *= 0.25
    return np.floor(quad, out=quad)


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

    ``coefs`` is (blocks, units per block, 64) float32 in zigzag order; ``hidden`` marks luma
    units lying wholly outside the image.
    """

    coefs: np.ndarray
    hidden: np.ndarray
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
        ycc = rgb_to_ycc(pad_to_blocks(image, layout))
        chroma = [ycc[1], ycc[2]]
        if layout.subsampling == "4:2:0":
            chroma = [downsample_420(p) for p in chroma]
        luma_idx, chroma_idx = _scan_indices(rows, cols, layout)
        m2, lpm = layout.mcus_per_side**2, layout.luma_per_mcu
        units = np.empty((rows * cols, m2, layout.units_per_mcu, 64), dtype=np.float32)
        units[:, :, :lpm] = (_plane_units(ycc[0]) @ _DCT)[luma_idx].reshape(
            rows * cols, m2, lpm, 64
        )
        units[:, :, lpm] = (_plane_units(chroma[0]) @ _DCT)[chroma_idx]
        units[:, :, lpm + 1] = (_plane_units(chroma[1]) @ _DCT)[chroma_idx]
    hidden = np.zeros((rows * cols, m2, layout.units_per_mcu), dtype=bool)
    hidden[:, :, :lpm] = _hidden_luma(h, w, layout).reshape(rows * cols, m2, lpm)
    shape = (rows * cols, layout.units_per_block)
    return BlockDCT(units.reshape(*shape, 64), hidden.reshape(shape), layout, h, w)


@cache
def _reciprocals(quality: int) -> np.ndarray:
    return (1.0 / quant_tables(quality)).astype(np.float32)


def quantise(dct: BlockDCT, qualities: np.ndarray) -> np.ndarray:
    """Quantised coefficients (blocks, units per block, 64) int16 for a (rows, cols) quality map.

    Hidden luma units become flat units carrying their predecessor's DC, the cheapest thing to
    code: nobody sees them.
    """
    q = np.asarray(qualities).reshape(-1)
    uniq, inverse = np.unique(q, return_inverse=True)
    recip = np.stack([_reciprocals(int(v)) for v in uniq])  # (nq, 2, 64)
    is_chroma = (dct.layout.unit_components() > 0).astype(np.intp)
    table = recip[inverse][:, is_chroma]  # (blocks, units, 64)
    scaled = dct.coefs * table
    scaled += 0.5
    out = np.floor(scaled, out=scaled).astype(np.int16)
    if dct.hidden.any():
        _flatten_hidden(out, dct.hidden, dct.layout.unit_components())
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


def _flatten_hidden(units: np.ndarray, hidden: np.ndarray, components: np.ndarray) -> None:
    """Zero hidden luma units and give each the DC of the luma unit before it in scan order
    (the first unit of a block is always visible)."""
    luma = np.flatnonzero(components == 0)
    y = units[:, luma]
    mask = hidden[:, luma]
    idx = np.where(mask, 0, np.arange(luma.size)[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    dc = np.take_along_axis(y[:, :, 0], idx, axis=1)
    y[mask] = 0
    y[:, :, 0] = np.where(mask, dc, y[:, :, 0])
    units[:, luma] = y

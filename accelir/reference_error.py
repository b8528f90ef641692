"""Reference error curves: what coding each block at each quality adds to a stand-in restorer's
error, without running the restoration network.

The allocator needs, for every block and candidate quality, the error of the *restored* image.
Running the network at every quality is what the oracle does (13 restorations). Here the network
is stood in for by the naive restorer, bicubic upscaling ``U`` (×s), and its error is computed
at the degraded image's own resolution. With ``x`` the degraded image, ``e`` the error that
coding at quality q leaves in the decoded image, and ``R`` the original at the output size,

    ‖U(x + e) − R‖² − ‖Ux − R‖² = 2⟨Uᵀ(Ux − R), e⟩ + ⟨e, UᵀU e⟩.

The degradation is Pillow's antialiased bicubic downscale, whose kernel is bicubic upscaling's
own, stretched: ``x = D R`` with ``D = Uᵀ / s²`` (up to rounding and the image edges). So
``Uᵀ R = s² x`` and the first term needs only ``x``: ``Uᵀ(Ux − R) = (UᵀU − s²) x``, a high-pass
of the degraded image. ``UᵀU`` is a separable 7-tap convolution (``gram_taps``). Nothing here
needs the original: the encoder computes the curves from what it encodes.

What this adds over the coding distortion ``‖e‖²`` (``codec.rates.block_distortions``): the
cross term tells whether the detail a quality removes is detail upscaling would have turned into
the target (error grows) or not, and ``UᵀU`` weighs the error's frequencies by how much of them
survives upscaling. The coding error is taken from the decoded image itself (rounding, clipping,
chroma upsampling included): a model of it from the quantisation error of each DCT coefficient
alone, computed without decoding, lost a third of the gain. On held-out profiles the Lagrangian
allocator reaches about 86 % of the oracle's gain with these curves, against about half with
the coding distortion through a per-group law (docs/results.md).

Pure functions on arrays and bytes; no I/O. Super-resolution only (``scale`` ≥ 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np

from accelir import codec
from accelir.codec.transform import BlockDCT
from accelir.groups import utility

#: Keys' cubic convolution parameter of Pillow's BICUBIC filter.
KEYS_A = -0.5


def keys_cubic(d: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = −0.5) at distances ``d``."""
    a, x = KEYS_A, np.abs(d)
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


@cache
def upscale_taps(scale: int) -> np.ndarray:
    """(scale, 5) weights of bicubic ×``scale`` upscaling with half-pixel centres: output
    ``scale·i + p`` takes input ``i + t`` (t = −2 … 2) with weight ``[p, t + 2]``, each phase
    normalised to sum 1 as Pillow does."""
    t = np.arange(-2, 3)
    centres = (np.arange(scale) + 0.5) / scale - 0.5
    w = keys_cubic(t[None, :] - centres[:, None])
    return w / w.sum(axis=1, keepdims=True)


@cache
def gram_taps(scale: int) -> np.ndarray:
    """(9,) taps of ``U₁ᵀU₁``, 1-D upscaling's Gram matrix away from the edges: a symmetric
    convolution at the input resolution (offsets −4 … 4) whose taps sum to ``scale``."""
    w = upscale_taps(scale)
    taps = np.zeros(9)
    for m in range(-4, 5):
        lo, hi = max(0, -m), min(5, 5 - m)
        taps[m + 4] = float(np.sum(w[:, lo:hi] * w[:, lo + m : hi + m]))
    return taps


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _gram(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``UᵀU`` applied to an H×W×C float32 image (separable, edges replicated)."""
    h, w, c = x.shape
    tmp = np.empty((h, w, c), dtype=np.float32)
    out = np.empty((h, w, c), dtype=np.float32)
    for y in range(h):
        for i in range(w):
            for k in range(c):
                acc = np.float32(0.0)
                for t in range(9):
                    acc += taps[t] * x[min(max(y + t - 4, 0), h - 1), i, k]
                tmp[y, i, k] = acc
    for y in range(h):
        for i in range(w):
            for k in range(c):
                acc = np.float32(0.0)
                for t in range(9):
                    acc += taps[t] * tmp[y, min(max(i + t - 4, 0), w - 1), k]
                out[y, i, k] = acc
    return out


def cross_weights(image: np.ndarray, scale: int) -> np.ndarray:
    """``2 (UᵀU − s²) x`` of the degraded H×W×3 uint8 image, float32: the cross term's weights."""
    x = image.astype(np.float32)
    taps = gram_taps(scale).astype(np.float32)
    return 2.0 * (_gram(x, taps) - np.float32(scale * scale) * x)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _block_energy(
    decoded: np.ndarray,
    image: np.ndarray,
    cross: np.ndarray,
    taps: np.ndarray,
    side: int,
    cols: int,
    n_blocks: int,
) -> np.ndarray:
    """Per block, Σ e·(cross + UᵀU e) with e = decoded − image (H×W×3 uint8 each)."""
    h, w, c = image.shape
    e = np.empty((h, w, c), dtype=np.float32)
    for y in range(h):
        for i in range(w):
            for k in range(c):
                e[y, i, k] = np.float32(decoded[y, i, k]) - np.float32(image[y, i, k])
    ge = _gram(e, taps)
    out = np.zeros(n_blocks, dtype=np.float64)
    for y in range(h):
        row = (y // side) * cols
        for i in range(w):
            acc = 0.0
            for k in range(c):
                acc += e[y, i, k] * (cross[y, i, k] + ge[y, i, k])
            out[row + i // side] += acc
    return out


def reference_sse(
    image: np.ndarray,
    dct: BlockDCT,
    scale: int,
    qualities: Sequence[int],
    *,
    threads: int = 2,
) -> np.ndarray:
    """(blocks, len(qualities)) squared error (RGB, at the output size) that coding the image at
    each uniform quality adds to its bicubic ×``scale`` upscaling, per block (raster order).
    ``image`` is the degraded H×W×3 uint8 image ``dct`` was taken of. Values may be negative
    (coding can remove error); only differences between qualities matter to an allocator."""
    rows, cols = dct.grid
    side = dct.layout.block
    taps = gram_taps(scale).astype(np.float32)
    cross = cross_weights(image, scale)

    def one(q: int) -> np.ndarray:
        decoded = codec.decode_uniform_for_restoration(dct, int(q))
        return _block_energy(decoded, image, cross, taps, side, cols, rows * cols)

    if threads <= 1:
        columns = [one(q) for q in qualities]
    else:
        with ThreadPoolExecutor(threads) as pool:
            columns = list(pool.map(one, qualities))
    return np.stack(columns, axis=1)


def reference_utility(curves: np.ndarray, area: np.ndarray) -> np.ndarray:
    """(N,) the reference's counterpart of a utility group's scalar: log10 of the error drop per
    output value from the lowest to the highest quality (``groups.utility`` of the reference
    curves ``curves`` (N, Q) over blocks of ``area`` output pixels)."""
    return utility(curves / (3.0 * np.asarray(area, dtype=np.float64)[:, None]))


def qpnet_side_inputs(curves: np.ndarray, area: np.ndarray) -> np.ndarray:
    """(N, 1) what a QP-NET with side inputs takes for super-resolution: each block's
    ``reference_utility``."""
    return reference_utility(curves, area)[:, None]

"""The restored error a block keeps at the top quality, predicted from the block's texture.

For super-resolution the encoder shapes each block's error curve by its bicubic reference
(``accelir.reference_error``), which says what each quality *adds*; the curve's level — the
restorer's own error at the highest quality — decides the predicted PSNR and so what a PSNR
target costs. A utility group's mean level predicts it poorly (groups bin the error *drop*, and
a mean over training blocks is biased towards their textures): on the validation photographs
the predicted PSNR came out about 2 dB low (docs/results.md). What the restorer cannot recover is
detail, and detail shows in the degraded block's high frequencies, so the level is regressed on
one texture scalar:

    t = log10(mean |Laplacian| of the block's grey level + 0.1)
    log10(MSE_top + 1e-3) ≈ a + b·t + c·t²

fitted by least squares on the training profiles; the block's expected MSE is
``10^(a + b t + c t²) · smear − 1e-3``, where ``smear`` (the mean of 10^residual over the
training blocks, Duan's smearing estimate) turns the fitted log mean into a mean of the MSE, the
quantity that sums over an image.

Pure functions on arrays; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

OFFSET = 1e-3  # MSE offset inside the log (a block restored perfectly has MSE 0)
TEXTURE_FLOOR = 0.1  # |Laplacian| floor inside the log (flat blocks)


def texture(pixels: np.ndarray) -> np.ndarray:
    """(N,) ``t`` of (N, S, S, 3) uint8 blocks: log10 of the mean absolute 4-neighbour Laplacian
    of the grey level (mean of R, G, B) over the block's interior, plus a floor."""
    if pixels.ndim != 4 or pixels.shape[3] != 3 or min(pixels.shape[1:3]) < 3:
        raise ValueError(f"expected (N, S, S, 3) blocks with S >= 3, got {pixels.shape}")
    mean_abs = _mean_abs_laplacian(np.ascontiguousarray(pixels, dtype=np.uint8))
    return np.log10(mean_abs + TEXTURE_FLOOR)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _mean_abs_laplacian(pixels: np.ndarray) -> np.ndarray:
    n, h, w = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    out = np.empty(n, dtype=np.float64)
    grey = np.empty((h, w), dtype=np.float64)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                grey[y, x] = (
                    np.float64(pixels[b, y, x, 0]) + pixels[b, y, x, 1] + pixels[b, y, x, 2]
                ) / 3.0
        total = 0.0
        for y in range(1, h - 1):
            for x in range(1, w - 1):
                lap = (
                    4.0 * grey[y, x]
                    - grey[y - 1, x]
                    - grey[y + 1, x]
                    - grey[y, x - 1]
                    - grey[y, x + 1]
                )
                total += abs(lap)
        out[b] = total / ((h - 2) * (w - 2))
    return out


@dataclass(frozen=True)
class LevelModel:
    coefficients: np.ndarray  # (3,) a, b, c
    smear: float

    def mse(self, pixels: np.ndarray, *, textures: np.ndarray | None = None) -> np.ndarray:
        """(N,) expected restored MSE per pixel and channel at the top quality (``textures``:
        ``texture(pixels)`` where the caller has it already)."""
        t = texture(pixels) if textures is None else textures
        a, b, c = self.coefficients
        return np.maximum(10.0 ** (a + b * t + c * t * t) * self.smear - OFFSET, 0.0)

    def sse(
        self, pixels: np.ndarray, area: np.ndarray, *, textures: np.ndarray | None = None
    ) -> np.ndarray:
        """(N,) expected restored squared error (RGB summed) over blocks of ``area`` output
        pixels."""
        return self.mse(pixels, textures=textures) * 3.0 * np.asarray(area, dtype=np.float64)

    def to_dict(self) -> dict:
        return {
            "method": "log10(MSE_top + 1e-3) = a + b t + c t^2, t = log10(mean |Laplacian of "
            "the grey block| + 0.1); least squares on the training blocks, smearing factor",
            "coefficients": [float(x) for x in self.coefficients],
            "smear": self.smear,
        }

    @classmethod
    def from_dict(cls, d: dict) -> LevelModel:
        coefficients = np.asarray(d["coefficients"], dtype=np.float64)
        smear = float(d["smear"])
        if coefficients.shape != (3,) or not np.all(np.isfinite(coefficients)) or not smear > 0:
            raise ValueError(f"not a level model: {d!r}")
        return cls(coefficients, smear)


def fit(pixels: np.ndarray, mse_top: np.ndarray) -> LevelModel:
    """Least squares of log10(MSE + offset) on (1, t, t²) over training blocks ``pixels``
    (N, S, S, 3) whose restored MSE at the top quality is ``mse_top`` (N,)."""
    if len(pixels) < 3:
        raise ValueError("fitting a level model needs at least 3 blocks")
    t = texture(pixels)
    design = np.stack([np.ones_like(t), t, t * t], axis=1)
    target = np.log10(np.maximum(mse_top, 0.0) + OFFSET)
    coefficients = np.linalg.lstsq(design, target, rcond=None)[0]
    smear = float(np.mean(10.0 ** (target - design @ coefficients)))
    return LevelModel(coefficients, smear)

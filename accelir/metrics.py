"""Quality and compute metrics: PSNR, SSIM (RGB and BT.601 luma), Bjøntegaard deltas, FLOPs.

Image metrics take two arrays of the same shape on the 0–255 scale (uint8 or float; H×W×3 RGB,
or H×W for the plain PSNR/SSIM) and return a Python ``float``. ``crop`` shaves that many pixels
from every border first, as super-resolution papers do. The luma variants use the BT.601
"studio swing" Y of SR papers (Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255), unrounded.

``bd_psnr`` and ``bd_rate`` implement Bjøntegaard's VCEG-M33 deltas; ``count_flops`` and
``flops_per_pixel`` count a PyTorch model's FLOPs with ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import structural_similarity
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "bd_psnr",
    "bd_rate",
    "count_flops",
    "flops_per_pixel",
    "psnr",
    "psnr_y",
    "rgb_to_y",
    "ssim",
    "ssim_y",
]

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # scikit-image's default; gives an 11×11 Gaussian window at σ = 1.5
SSIM_WINDOW = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
BT601_Y = (65.481, 128.553, 24.966)
BT601_Y_OFFSET = 16.0

# --------------------------------------------------------------------------------------------
# Image quality


def psnr(a: ArrayLike, b: ArrayLike, *, crop: int = 0) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) over all pixels and channels.

    Returns ``math.inf`` when the (cropped) inputs are identical.
    """
    x, y = _prepare_pair(a, b, crop)
    return _psnr(x, y)


def psnr_y(a: ArrayLike, b: ArrayLike, *, crop: int = 0) -> float:
    """PSNR in dB on the BT.601 luma (see :func:`rgb_to_y`) of two H×W×3 RGB images."""
    x, y = _prepare_pair(a, b, crop, rgb=True)
    return _psnr(rgb_to_y(x), rgb_to_y(y))


def ssim(a: ArrayLike, b: ArrayLike, *, crop: int = 0) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    scikit-image's ``structural_similarity`` with an 11×11 Gaussian window (σ = 1.5),
    ``data_range=255`` and population covariances; the (cropped) image must be at least 11×11.
    """
    x, y = _prepare_pair(a, b, crop)
    return _ssim(x, y)


def ssim_y(a: ArrayLike, b: ArrayLike, *, crop: int = 0) -> float:
    """SSIM (as :func:`ssim`) on the BT.601 luma of two H×W×3 RGB images."""
    x, y = _prepare_pair(a, b, crop, rgb=True)
    return _ssim(rgb_to_y(x), rgb_to_y(y))


def rgb_to_y(image: ArrayLike) -> NDArray[np.float64]:
    """BT.601 luma, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, of 0–255 RGB, in float64.

    The result lies in [16, 235] and is not rounded.
    """
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"expected RGB values in the last axis, got shape {rgb.shape}")
    weights = np.asarray(BT601_Y, dtype=np.float64) / DATA_RANGE
    luma: NDArray[np.float64] = BT601_Y_OFFSET + rgb @ weights
    return luma


def _prepare_pair(
    a: ArrayLike, b: ArrayLike, crop: int, *, rgb: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate two images, shave ``crop`` pixels from each border, convert to float64."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    if rgb and (x.ndim != 3 or x.shape[2] != 3):
        raise ValueError(f"expected H×W×3 RGB images, got shape {x.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(f"expected H×W or H×W×C images, got shape {x.shape}")
    for name, arr in (("a", x), ("b", y)):
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{name} must be an integer or float array, got {arr.dtype}")
    return _shave(x, crop).astype(np.float64), _shave(y, crop).astype(np.float64)


def _shave(image: np.ndarray, crop: int) -> np.ndarray:
    if isinstance(crop, bool) or not isinstance(crop, int | np.integer) or crop < 0:
        raise ValueError(f"crop must be a non-negative integer, got {crop!r}")
    height, width = image.shape[:2]
    if 2 * crop >= min(height, width):
        raise ValueError(f"crop={crop} leaves nothing of a {height}×{width} image")
    if crop == 0:
        return image
    return image[crop:-crop, crop:-crop]


def _psnr(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def _ssim(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    height, width = x.shape[:2]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} (after crop), "
            f"got {height}×{width}"
        )
    value = structural_similarity(
        x,
        y,
        channel_axis=-1 if x.ndim == 3 else None,
        data_range=DATA_RANGE,
        gaussian_weights=True,
        sigma=SSIM_SIGMA,
        use_sample_covariance=False,
    )
    return float(value)


# --------------------------------------------------------------------------------------------
# Bjøntegaard deltas (VCEG-M33)


def bd_psnr(rate1: ArrayLike, psnr1: ArrayLike, rate2: ArrayLike, psnr2: ArrayLike) -> float:
    """Bjøntegaard delta PSNR: mean dB gain of curve 2 over curve 1 at equal rate.

    Each curve's PSNR is fitted as a polynomial in log10(rate) and the difference of the fits is
    averaged over the overlapping log-rate interval. The degree is 3 (VCEG-M33's cubic) for
    curves of 4 or more points, 2 for 3 points and 1 for 2 points, chosen per curve.
    Raises ``ValueError`` for fewer than 2 points, non-positive or repeated rates, or curves
    whose rate ranges do not overlap.
    """
    log_r1, q1 = _curve(rate1, psnr1, "curve 1")
    log_r2, q2 = _curve(rate2, psnr2, "curve 2")
    return _mean_difference(log_r1, q1, log_r2, q2, axis="log10(rate)")


def bd_rate(rate1: ArrayLike, psnr1: ArrayLike, rate2: ArrayLike, psnr2: ArrayLike) -> float:
    """Bjøntegaard delta rate of curve 2 relative to curve 1, as a fraction.

    −0.10 means curve 2 needs 10 % fewer bits than curve 1 for the same PSNR. log10(rate) is
    fitted as a polynomial in PSNR (degrees as in :func:`bd_psnr`) and the difference of the
    fits is averaged over the overlapping PSNR interval; the result is ``10**mean − 1``.
    Raises ``ValueError`` for fewer than 2 points, repeated PSNRs, or curves whose PSNR ranges
    do not overlap.
    """
    log_r1, q1 = _curve(rate1, psnr1, "curve 1")
    log_r2, q2 = _curve(rate2, psnr2, "curve 2")
    mean_log_ratio = _mean_difference(q1, log_r1, q2, log_r2, axis="PSNR")
    return float(10.0**mean_log_ratio - 1.0)


def bd_reliable(
    rate1: ArrayLike, psnr1: ArrayLike, rate2: ArrayLike, psnr2: ArrayLike, min_overlap: float = 0.5
) -> bool:
    """Whether Bjøntegaard deltas between two curves mean anything: PSNR rises with rate along
    each curve, and the curves overlap on at least ``min_overlap`` of the shorter one's range in
    log-rate (BD-PSNR's axis) and in PSNR (BD-rate's axis). Otherwise the fits extrapolate or
    invert a curve that is not a rate–distortion trade-off (denoising at high JPEG qualities)."""
    curves = [_curve(rate1, psnr1, "curve 1"), _curve(rate2, psnr2, "curve 2")]
    for log_r, q in curves:
        order = np.argsort(log_r)
        if np.any(np.diff(q[order]) <= 0):
            return False
    for axis in (0, 1):
        (lo1, hi1), (lo2, hi2) = [(float(c[axis].min()), float(c[axis].max())) for c in curves]
        shorter = min(hi1 - lo1, hi2 - lo2)
        if shorter <= 0 or (min(hi1, hi2) - max(lo1, lo2)) < min_overlap * shorter:
            return False
    return True


def _curve(
    rate: ArrayLike, quality: ArrayLike, name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate one rate–PSNR curve and return (log10 rate, PSNR) as float64 vectors."""
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.ndim != 1 or q.ndim != 1 or r.shape != q.shape:
        raise ValueError(
            f"{name}: rates and PSNRs must be 1-D of equal length, got {r.shape}, {q.shape}"
        )
    if r.size < 2:
        raise ValueError(f"{name}: need at least 2 points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"{name}: rates and PSNRs must be finite")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be positive")
    return np.log10(r), q


def _mean_difference(
    x1: NDArray[np.float64],
    y1: NDArray[np.float64],
    x2: NDArray[np.float64],
    y2: NDArray[np.float64],
    *,
    axis: str,
) -> float:
    """Mean of fit(x2, y2) − fit(x1, y1) over the overlap of the two x ranges."""
    low = max(float(x1.min()), float(x2.min()))
    high = min(float(x1.max()), float(x2.max()))
    if not high > low:
        raise ValueError(f"the two curves do not overlap in {axis}")
    area1 = _integral(_fit(x1, y1, axis), low, high)
    area2 = _integral(_fit(x2, y2, axis), low, high)
    return (area2 - area1) / (high - low)


def _fit(x: NDArray[np.float64], y: NDArray[np.float64], axis: str) -> Polynomial:
    if np.unique(x).size != x.size:
        raise ValueError(f"repeated {axis} values cannot be fitted")
    degree = min(3, x.size - 1)
    return Polynomial.fit(x, y, degree)


def _integral(poly: Polynomial, low: float, high: float) -> float:
    antiderivative = poly.integ()
    return float(antiderivative(high) - antiderivative(low))


# --------------------------------------------------------------------------------------------
# Compute


Shape = Sequence[int]


def count_flops(
    model: torch.nn.Module, input_shape: Shape | Sequence[Shape], **forward_kwargs: Any
) -> int:
    """FLOPs of one forward pass of ``model`` on zero-filled inputs of the given shape(s).

    ``input_shape`` is one shape such as ``(1, 3, H, W)``, or a list of shapes for a model with
    several positional inputs. The inputs take the dtype and device of the model's first
    floating-point parameter or buffer (float32 on the CPU when it has none). The pass runs under
    ``torch.no_grad()`` with the model in whatever train/eval mode it is in (buffers such as
    BatchNorm running statistics are restored afterwards), inside
    ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per multiply–add of the
    matmul/convolution-like operators it knows; elementwise operations, activations,
    normalisation, pooling and interpolation are not counted. The count is exact for the given
    shapes and need not scale exactly with input size.
    """
    shapes = _normalise_shapes(input_shape)
    dtype, device = _model_dtype_device(model)
    inputs = [torch.zeros(shape, dtype=dtype, device=device) for shape in shapes]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), _buffers_restored(model), counter:
        model(*inputs, **forward_kwargs)
    return int(counter.get_total_flops())


def flops_per_pixel(model: torch.nn.Module, height: int, width: int, channels: int = 3) -> float:
    """FLOPs of ``model`` on one ``1×channels×height×width`` input divided by ``height × width``.

    Same counting rules as :func:`count_flops` (2 FLOPs per multiply–add; interpolation such as
    bilinear upsampling and elementwise operations are not counted by ``FlopCounterMode``). The
    figure is exact for this input size; for fully convolutional models it is nearly size
    independent, but border effects and size-dependent layers can change it for other sizes.
    """
    for name, value in (("height", height), ("width", width), ("channels", channels)):
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    return count_flops(model, (1, channels, height, width)) / (height * width)


def _normalise_shapes(input_shape: Shape | Sequence[Shape]) -> list[tuple[int, ...]]:
    """One shape or a list of shapes → a list of validated shapes (positive int dimensions)."""
    items: list[Any] = list(input_shape)
    if items and all(_is_dim(d) for d in items):
        shapes = [tuple(int(d) for d in items)]
    elif items and all(isinstance(s, Sequence) and s and all(_is_dim(d) for d in s) for s in items):
        shapes = [tuple(int(d) for d in s) for s in items]
    else:
        raise ValueError(
            f"input_shape must be a shape of positive ints or a list of such shapes, "
            f"got {input_shape!r}"
        )
    return shapes


def _is_dim(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and int(value) > 0


@contextlib.contextmanager
def _buffers_restored(model: torch.nn.Module) -> Iterator[None]:
    """Put the model's buffers back afterwards (a train-mode BatchNorm updates its statistics)."""
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _model_dtype_device(model: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")

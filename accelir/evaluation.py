"""Evaluation of AccelIR against plain JPEG: the numbers behind the paper's Tables 1–3 and
Figures 2–3, computed on any folder of photographs.

Baseline: the degraded image as one whole-image JPEG (Pillow/libjpeg-turbo, 4:2:0,
``optimize=True`` or the standard tables), restored by the family's full-width network.
AccelIR: our container at the baseline file's size (never larger), restored by every width.
Pure functions over images and results; caching and files are the command line's business.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from accelir import metrics, tasks

BASELINES = ("jpeg-opt", "jpeg-std")
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One restoration of one image (or the mean over images)."""

    width: int
    psnr: float
    psnr_y: float
    ssim: float
    bytes: float
    bpp: float
    flops: float
    seconds: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_rows(rows: Sequence[Row]) -> Row:
    """The mean over images (PSNR averaged in dB, as the paper's tables do)."""
    if not rows:
        raise ValueError("no rows to average")
    means = {
        f: float(np.mean([getattr(r, f) for r in rows]))
        for f in Row.__dataclass_fields__
        if f != "width"
    }
    return Row(width=rows[0].width, **means)


def plain_jpeg(image: np.ndarray, quality: int, baseline: str = "jpeg-opt") -> bytes:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}")
    buf = io.BytesIO()
    Image.fromarray(image).save(
        buf, "JPEG", quality=quality, subsampling=2, optimize=baseline == "jpeg-opt"
    )
    return buf.getvalue()


def jpeg_at_bpp(image: np.ndarray, bpp: float, baseline: str = "jpeg-opt") -> tuple[int, bytes]:
    """The highest JPEG quality whose file fits ``bpp`` bits per pixel (quality 1 if none does)."""
    budget = bpp * image.shape[0] * image.shape[1] / 8
    lo, hi = 1, 100
    best = (1, plain_jpeg(image, 1, baseline))
    while lo <= hi:
        mid = (lo + hi) // 2
        data = plain_jpeg(image, mid, baseline)
        if len(data) <= budget:
            best, lo = (mid, data), mid + 1
        else:
            hi = mid - 1
    return best


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def score(restored: np.ndarray, target: np.ndarray, task: str, *, width: int, nbytes: int, flops: float,
          seconds: float, degraded_pixels: int) -> Row:  # fmt: skip
    """Metrics of one restoration (SR shaves ``scale`` border pixels, as SR papers do)."""
    crop = tasks.metric_crop(task)
    return Row(
        width=width,
        psnr=metrics.psnr(restored, target, crop=crop),
        psnr_y=metrics.psnr_y(restored, target, crop=crop),
        ssim=metrics.ssim(restored, target, crop=crop),
        bytes=float(nbytes),
        bpp=8.0 * nbytes / degraded_pixels,
        flops=float(flops),
        seconds=seconds,
    )


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def saving(baseline: Row, accelir: Sequence[Row]) -> tuple[float, int | None]:
    """The fraction of the baseline's FLOPs saved by the narrowest AccelIR width whose PSNR is at
    least the baseline's (0 and None if no width reaches it) — how the paper's Table 1 reads."""
    reaching = [r for r in accelir if r.psnr >= baseline.psnr]
    if not reaching:
        return 0.0, None
    best = min(reaching, key=lambda r: r.flops)
    return 1.0 - best.flops / baseline.flops, best.width


def gain_db(baseline: Row, accelir: Sequence[Row]) -> float:
    """AccelIR's PSNR minus the baseline's with the same (full) width."""
    same = next((r for r in accelir if r.width == baseline.width), None)
    return math.nan if same is None else same.psnr - baseline.psnr


def bd_metrics(baseline: Sequence[Row], accelir: Sequence[Row]) -> tuple[float, float, bool]:
    """BD-PSNR (dB) and BD-rate (fraction) of AccelIR vs the baseline, same network, and
    whether they are meaningful (``metrics.bd_reliable``)."""
    if len(baseline) < 2:
        return math.nan, math.nan, False
    rate1, psnr1 = [r.bpp for r in baseline], [r.psnr for r in baseline]
    rate2, psnr2 = [r.bpp for r in accelir], [r.psnr for r in accelir]
    try:
        return (
            metrics.bd_psnr(rate1, psnr1, rate2, psnr2),
            metrics.bd_rate(rate1, psnr1, rate2, psnr2),
            metrics.bd_reliable(rate1, psnr1, rate2, psnr2),
        )
    except ValueError:
        return math.nan, math.nan, False

"""Validation of a restoration network on held-out photographs, and the naive baselines.

Two input conditions, both through our container: uniform JPEG quality 75 (``q75``), and a
random per-block map from the quality set (``mixed``, seeded per image). The naive baseline is
what a client gets without a network: for super-resolution the decoded image upscaled with
bicubic; for denoising and deblurring the decoded image itself. PSNR/SSIM shave ``scale``
pixels at the borders for super-resolution (as SR papers do), none otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch import nn

from accelir import codec, metrics, tasks
from accelir.codec.layout import Layout
from accelir.models.inference import restore
from accelir.training.pool import QUALITY_LEVELS

CONDITIONS = ("q75", "mixed")


@dataclass(frozen=True)
class ValSample:
    name: str
    target: np.ndarray
    inputs: dict[str, np.ndarray]  # condition → decoded network input


def make_val_set(images: list[tuple[str, np.ndarray]], task: str) -> list[ValSample]:
    """Degrade (seed 0: σ = 25, the default blur kernel) and round-trip every image."""
    samples = []
    for k, (name, image) in enumerate(images):
        target = tasks.target(image, task)
        degraded = tasks.degrade(image, task, seed=k)
        grid = Layout().grid(*degraded.shape[:2])
        maps = {
            "q75": np.full(grid, 75),
            "mixed": np.random.default_rng(1000 + k).choice(QUALITY_LEVELS, size=grid),
        }
        inputs = {
            c: codec.decode_for_restoration(codec.encode(degraded, m)) for c, m in maps.items()
        }
        samples.append(ValSample(name, target, inputs))
    return samples


def naive_restore(decoded: np.ndarray, task: str) -> np.ndarray:
    spec = tasks.parse_task(task)
    if spec.kind != "sr":
        return decoded
    h, w = decoded.shape[:2]
    up = Image.fromarray(decoded).resize((w * spec.scale, h * spec.scale), Image.Resampling.BICUBIC)
    return np.asarray(up)


def _scores(outputs: list[np.ndarray], samples: list[ValSample], crop: int) -> dict[str, float]:
    psnr = [metrics.psnr(o, s.target, crop=crop) for o, s in zip(outputs, samples, strict=True)]
    psnr_y = [metrics.psnr_y(o, s.target, crop=crop) for o, s in zip(outputs, samples, strict=True)]
    ssim = [metrics.ssim(o, s.target, crop=crop) for o, s in zip(outputs, samples, strict=True)]
    return {
        "psnr": float(np.mean(psnr)),
        "psnr_y": float(np.mean(psnr_y)),
        "ssim": float(np.mean(ssim)),
    }


def evaluate(
    model: nn.Module | None, samples: list[ValSample], task: str, tile: int | None = 256
) -> dict[str, dict[str, float]]:
    """Mean PSNR/PSNR-Y/SSIM per condition for ``model`` (``None``: the naive baseline)."""
    crop = tasks.metric_crop(task)
    result = {}
    for condition in CONDITIONS:
        if model is None:
            outputs = [naive_restore(s.inputs[condition], task) for s in samples]
        else:
            outputs = [restore(model, s.inputs[condition], task, tile=tile) for s in samples]
        result[condition] = _scores(outputs, samples, crop)
    return result

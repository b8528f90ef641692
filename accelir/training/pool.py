"""Training pairs as the restorer meets them in service: degraded, block-coded, decoded.

For every training photograph the pool holds a few *variants*: the task's degradation (with a
random noise level or blur kernel where the task has a family), encoded with our container
under a random per-block quality map, then decoded. Patches are cut from a variant and the
matching window of the clean target, with random flips and transposition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from accelir import codec, tasks
from accelir.codec.layout import Layout

QUALITY_LEVELS = np.array([10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95])
# Sampling weight of each quality ∝ q²: every level occurs, but a short schedule is spent where
# the allocator works at the paper's operating points (q 50–95); with uniform draws, inputs at
# q 10–30 dominate the L1 loss and a small network learns to blur everything.
QUALITY_WEIGHTS = QUALITY_LEVELS.astype(np.float64) ** 2 / np.sum(
    QUALITY_LEVELS.astype(np.float64) ** 2
)
TRAIN_SIGMA_RANGE = (0.0, 50.0)
BLUR_FAMILIES = ("deblur", "deblur:gaussian", "deblur:motion")


def random_quality_map(grid: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Half of the maps are one random quality for the whole image, half are drawn per block."""
    if rng.random() < 0.5:
        return np.full(grid, rng.choice(QUALITY_LEVELS, p=QUALITY_WEIGHTS))
    return rng.choice(QUALITY_LEVELS, size=grid, p=QUALITY_WEIGHTS)


@dataclass(frozen=True)
class Degraded:
    """One variant: the decoded network input, and the noise level it was made with."""

    input: np.ndarray
    sigma: float | None


def degrade_for_training(clean: np.ndarray, task: str, rng: np.random.Generator) -> Degraded:
    """The task's degradation with random parameters (σ ∈ [0, 50] for denoising, a random blur
    family and kernel for deblurring), then a random-quality round trip through the container."""
    spec = tasks.parse_task(task)
    seed = int(rng.integers(2**31))
    sigma = None
    if spec.kind == "sr":
        degraded = tasks.degrade(clean, spec.name, seed)
    elif spec.kind == "denoise":
        sigma = float(rng.uniform(*TRAIN_SIGMA_RANGE))
        degraded = clean if sigma < 0.5 else tasks.degrade(clean, f"denoise:{sigma:.3f}", seed)
    else:
        degraded = tasks.degrade(clean, str(rng.choice(BLUR_FAMILIES)), seed)
    qmap = random_quality_map(Layout().grid(*degraded.shape[:2]), rng)
    return Degraded(codec.decode_for_restoration(codec.encode(degraded, qmap)), sigma)


class PatchPool:
    """Variants of every training image, and batches of aligned (input, target) patches.

    ``refresh()`` replaces one random variant by a freshly degraded and coded one, so a long
    run keeps seeing new quality maps, noise and kernels with bounded memory.
    """

    def __init__(self, images: list[np.ndarray], task: str, variants: int, seed: int = 0) -> None:
        if not images:
            raise ValueError("no training images")
        self.task = tasks.parse_task(task)
        self.rng = np.random.default_rng(seed)
        self.targets = [tasks.target(im, self.task.name) for im in images]
        self.variants = [
            [degrade_for_training(t, self.task.name, self.rng) for _ in range(variants)]
            for t in self.targets
        ]

    def refresh(self) -> None:
        i = int(self.rng.integers(len(self.targets)))
        j = int(self.rng.integers(len(self.variants[i])))
        self.variants[i][j] = degrade_for_training(self.targets[i], self.task.name, self.rng)

    def batch(self, size: int, patch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs N×3×p×p, targets N×3×sp×sp, sigmas N) as float tensors in [0, 1]."""
        s = self.task.scale
        xs, ys, sigmas = [], [], []
        for _ in range(size):
            i = int(self.rng.integers(len(self.targets)))
            variant = self.variants[i][int(self.rng.integers(len(self.variants[i])))]
            lr, hr = variant.input, self.targets[i]
            h, w = lr.shape[:2]
            p = min(patch, h, w)
            y, x = int(self.rng.integers(h - p + 1)), int(self.rng.integers(w - p + 1))
            a = lr[y : y + p, x : x + p]
            b = hr[y * s : (y + p) * s, x * s : (x + p) * s]
            a, b = _augment(a, b, self.rng)
            xs.append(a)
            ys.append(b)
            sigmas.append((variant.sigma or 0.0) / 255.0)
        to = lambda arrs: torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float().div_(255.0)  # noqa: E731
        return to(xs), to(ys), torch.tensor(sigmas, dtype=torch.float32)


def _augment(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if rng.random() < 0.5:
        a, b = a[:, ::-1], b[:, ::-1]
    if rng.random() < 0.5:
        a, b = a[::-1], b[::-1]
    if rng.random() < 0.5:
        a, b = a.transpose(1, 0, 2), b.transpose(1, 0, 2)
    return np.ascontiguousarray(a), np.ascontiguousarray(b)

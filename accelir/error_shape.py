"""The shape of a block's restored-error curve: a learned correction of the bicubic reference
for one restorer.

For super-resolution the encoder prices each quality by what coding adds to bicubic upscaling's
error (``accelir.reference_error``), on the premise that the network's error grows about as
fast. It does not quite: on the held-out profiles of EDSR-32 ×4 the Lagrangian allocator with
the reference curves reaches 85–87 % of the oracle's gain, and the rest is in the per-block
*shape* of the network's curve (even each block's best single scale on its reference curve
leaves 88–90 %; docs/results.md). So, per restorer, a small ensemble of multilayer perceptrons
predicts, for every quality q below the top one, the log ratio of the network's error increase
to the reference's,

    log10((MSE_net(q) − MSE_net(95) + ε) / (ΔMSE_ref(q) + ε)),   ε = 1e-3,

from features the encoder already has or gets for a few milliseconds: the block's reference
increases (log), its coding distortion at every quality (log, ``codec.rates``), the texture
scalar of ``accelir.error_level``, and the degraded block's colour means and spreads and mean
horizontal and vertical gradients. The curve handed to the allocator is the reference increase
times the predicted ratio. Training: smooth-L1 on the log ratios of the training profiles,
AdamW; each member from its own seed; the members' outputs are averaged.

Tasks without a bicubic reference (denoising, deblurring) use the block's coding distortion
itself as the stand-in curve (``reference = coded``): the correction then predicts how the
restorer's error grows relative to what coding removes, replacing the utility group's
coded → restored law.

Whether a restorer gets one is decided by cross-validation on its *training* photographs
(``cross_validated_shares``: folds by image, the allocator's share of the oracle's gain on the
held-out fold's profiles, with and without the correction); the validation photographs are
only reported on.

Pure functions on arrays; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import nn

from accelir import allocation
from accelir.error_level import texture

EPS = 1e-3
QUALITIES_BELOW_TOP = 12
FEATURES = 2 * QUALITIES_BELOW_TOP + 1 + 6 + 2
BLOCK_VALUES = 3.0 * 32 * 32  # coding distortion is per degraded block (RGB values)
FOLDS, MIN_BLOCKS = 4, 32


def _increase(curves: np.ndarray, area: np.ndarray) -> np.ndarray:
    """(N, Q−1) what each quality below the top adds to ``curves`` (N, Q), per output value."""
    per_value = 3.0 * np.asarray(area, dtype=np.float64)[:, None]
    return np.maximum(curves[:, :-1] - curves[:, -1:], 0.0) / per_value


def features(
    reference: np.ndarray,
    coded: np.ndarray,
    pixels: np.ndarray,
    area: np.ndarray,
    *,
    textures: np.ndarray | None = None,
) -> np.ndarray:
    """(N, FEATURES) float32 inputs of the correction for N blocks: ``reference`` (N, Q) the
    bicubic reference curves, ``coded`` (N, Q) the coding distortion
    (``codec.rates.block_distortions``), ``pixels`` (N, S, S, 3) the degraded uint8 blocks,
    ``area`` (N,) their output pixels; ``textures``: ``error_level.texture(pixels)`` where the
    caller has it already."""
    if reference.shape[1] != QUALITIES_BELOW_TOP + 1 or coded.shape != reference.shape:
        raise ValueError(f"expected (N, {QUALITIES_BELOW_TOP + 1}) curves")
    if pixels.ndim != 4 or pixels.shape[3] != 3 or len(pixels) != len(reference):
        raise ValueError(f"expected ({len(reference)}, S, S, 3) blocks, got {pixels.shape}")
    stats = _block_statistics(np.ascontiguousarray(pixels, dtype=np.uint8))
    parts = [
        np.log10(_increase(reference, area) + EPS),
        np.log10(coded[:, :-1] / BLOCK_VALUES + EPS),
        (texture(pixels) if textures is None else textures)[:, None],
        stats[:, :6],
        np.log10(stats[:, 6:] + EPS),
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _block_statistics(pixels: np.ndarray) -> np.ndarray:
    """(N, 8) per block of (N, S, S, 3) uint8 pixels scaled to [0, 1]: the R, G, B means, their
    standard deviations, and the mean absolute vertical and horizontal differences of the grey
    level (mean of R, G, B)."""
    n, h, w = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    out = np.zeros((n, 8), dtype=np.float64)
    grey = np.empty((h, w), dtype=np.float64)
    count = h * w
    for b in range(n):
        for c in range(3):
            total = 0.0
            squares = 0.0
            for y in range(h):
                for x in range(w):
                    v = pixels[b, y, x, c] / 255.0
                    total += v
                    squares += v * v
            mean = total / count
            out[b, c] = mean
            out[b, 3 + c] = np.sqrt(max(squares / count - mean * mean, 0.0))
        for y in range(h):
            for x in range(w):
                grey[y, x] = (
                    np.float64(pixels[b, y, x, 0]) + pixels[b, y, x, 1] + pixels[b, y, x, 2]
                ) / (3.0 * 255.0)
        vertical = 0.0
        for y in range(h - 1):
            for x in range(w):
                vertical += abs(grey[y + 1, x] - grey[y, x])
        horizontal = 0.0
        for y in range(h):
            for x in range(w - 1):
                horizontal += abs(grey[y, x + 1] - grey[y, x])
        out[b, 6] = vertical / ((h - 1) * w)
        out[b, 7] = horizontal / (h * (w - 1))
    return out


class ShapeCorrection(nn.Module):
    """An ensemble of ``members`` two-hidden-layer perceptrons from standardised ``features`` to
    the log10 ratio of the restorer's error increase to the reference's at each quality below
    the top; ``forward`` averages the members."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    members: nn.ModuleList

    def __init__(self, members: int = 3, hidden: int = 16) -> None:
        super().__init__()
        self.hidden = hidden
        self.register_buffer("feature_mean", torch.zeros(FEATURES))
        self.register_buffer("feature_std", torch.ones(FEATURES))
        self.members = nn.ModuleList(
            nn.Sequential(
                nn.Linear(FEATURES, hidden),
                nn.GELU(),
                nn.Linear(hidden, hidden),
                nn.GELU(),
                nn.Linear(hidden, QUALITIES_BELOW_TOP),
            )
            for _ in range(members)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.feature_mean) / self.feature_std
        return torch.stack([m(z) for m in self.members]).mean(dim=0)


def corrected_sse(
    model: ShapeCorrection,
    reference: np.ndarray,
    coded: np.ndarray,
    pixels: np.ndarray,
    area: np.ndarray,
    *,
    textures: np.ndarray | None = None,
) -> np.ndarray:
    """(N, Q) predicted restored squared error over each block's area *above its top-quality
    level* (0 at the top quality): the reference increase times the predicted ratio
    (``textures`` as for ``features``)."""
    x = torch.from_numpy(features(reference, coded, pixels, area, textures=textures))
    with torch.no_grad():
        log_ratio = model(x).double().numpy()
    increase = _increase(reference, area)
    per_value = np.maximum(10.0 ** (np.log10(increase + EPS) + log_ratio) - EPS, 0.0)
    out = np.zeros_like(reference, dtype=np.float64)
    out[:, :-1] = per_value * 3.0 * np.asarray(area, dtype=np.float64)[:, None]
    return out


@dataclass(frozen=True)
class TrainingSet:
    """Profiled blocks with what the correction needs: (N, Q) ``reference``, ``coded`` and the
    restorer's measured ``sse``, (N, S, S, 3) ``pixels``, (N,) ``area`` and ``image`` index,
    (N, Q) ``rate`` (for scoring allocations)."""

    reference: np.ndarray
    coded: np.ndarray
    sse: np.ndarray
    pixels: np.ndarray
    area: np.ndarray
    image: np.ndarray
    rate: np.ndarray

    def subset(self, mask: np.ndarray) -> TrainingSet:
        return TrainingSet(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def fit(
    data: TrainingSet,
    *,
    members: int = 3,
    hidden: int = 16,
    epochs: int = 100,
    weight_decay: float = 1e-2,
    seed: int = 0,
    on_epoch: Callable[[int], None] | None = None,
) -> ShapeCorrection:
    """Fit a correction on the training blocks ``data`` (see the module docstring)."""
    if len(data.area) < MIN_BLOCKS:
        raise ValueError(f"fitting a shape correction needs at least {MIN_BLOCKS} blocks")
    x = torch.from_numpy(features(data.reference, data.coded, data.pixels, data.area))
    ratio = np.log10(_increase(data.sse, data.area) + EPS) - np.log10(
        _increase(data.reference, data.area) + EPS
    )
    y = torch.from_numpy(ratio.astype(np.float32))
    model = ShapeCorrection(members, hidden)
    with torch.no_grad():
        model.feature_mean.copy_(x.mean(dim=0))
        model.feature_std.copy_(x.std(dim=0) + 1e-6)
    z = (x - model.feature_mean) / model.feature_std
    for k, member in enumerate(model.members):
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        with torch.random.fork_rng():
            torch.manual_seed(seed * 1000 + k)
            for layer in member.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        optimiser = torch.optim.AdamW(member.parameters(), lr=3e-3, weight_decay=weight_decay)
        for epoch in range(epochs):
            order = torch.randperm(len(z), generator=generator)
            for start in range(0, len(z), 256):
                batch = order[start : start + 256]
                loss = nn.functional.smooth_l1_loss(member(z[batch]), y[batch], beta=0.1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            if on_epoch is not None:
                on_epoch(k * epochs + epoch + 1)
    return model.eval()


def oracle_shares(
    data: TrainingSet,
    curves: Mapping[str, np.ndarray],
    qualities: Sequence[int],
    all_qualities: Sequence[int],
) -> dict[str, dict[int, float]]:
    """{name: {q: the Lagrangian allocator's restored-PSNR gain over uniform quality q, given
    the per-block ``curves[name]``, as a share of the exact knapsack's on the true profiles}},
    gains averaged over the images of ``data`` first (as docs/results.md reports them). The
    knapsack runs once per image and quality, whatever the number of curves."""

    def gain(uniform: float, sse: np.ndarray, choice: np.ndarray) -> float:
        return float(10 * np.log10(uniform / allocation.total(sse, choice)))

    ours: dict[str, dict[int, list[float]]] = {name: {q: [] for q in qualities} for name in curves}
    best: dict[int, list[float]] = {q: [] for q in qualities}
    for i in np.unique(data.image):
        sel = data.image == i
        rate, sse = data.rate[sel], data.sse[sel]
        for q in qualities:
            k = list(all_qualities).index(q)
            budget, uniform = float(rate[:, k].sum()), float(sse[:, k].sum())
            best[q].append(gain(uniform, sse, allocation.allocate_knapsack(rate, sse, budget)))
            for name, c in curves.items():
                choice = allocation.allocate_lagrangian(rate, c[sel], budget)
                ours[name][q].append(gain(uniform, sse, choice))
    return {
        name: {q: float(np.mean(v[q]) / np.mean(best[q])) for q in qualities}
        for name, v in ours.items()
    }


def cross_validated_shares(
    data: TrainingSet,
    qualities: Sequence[int],
    all_qualities: Sequence[int],
    *,
    also: Mapping[str, np.ndarray] | None = None,
    folds: int = FOLDS,
    seed: int = 0,
    on_fold: Callable[[int], None] | None = None,
) -> dict[str, dict[int, float]]:
    """``oracle_shares`` over the images of ``data`` of ``"reference"`` (the stand-in curves),
    ``"corrected"`` (each image's blocks predicted by a correction fitted on the other folds'
    images; images dealt to ``folds`` folds in order) and any curves in ``also``."""
    images = np.unique(data.image)
    if len(images) < folds:
        raise ValueError(f"cross-validation over {folds} folds needs at least {folds} images")
    corrected = np.zeros_like(data.reference, dtype=np.float64)
    for f in range(folds):
        held = np.isin(data.image, images[f::folds])
        model = fit(data.subset(~held), seed=seed)
        part = data.subset(held)
        corrected[held] = corrected_sse(model, part.reference, part.coded, part.pixels, part.area)
        if on_fold is not None:
            on_fold(f + 1)
    curves = {
        "reference": data.reference - data.reference[:, -1:],
        "corrected": corrected,
        **(also or {}),
    }
    return oracle_shares(data, curves, qualities, all_qualities)

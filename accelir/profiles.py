"""Block profiles: what each block costs and what the restorer makes of it, at every quality.

For a restoration model and task, and a set of photographs: every 32×32 block of the degraded
image (what gets encoded) and every candidate quality get two numbers — the block's exact byte
cost in our container, and the squared error of the *restored* output over the block's area.
Whole images are encoded and restored at each quality, so the network sees real context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from accelir import codec, tasks
from accelir.codec.layout import Layout
from accelir.models.inference import restore

QUALITY_SET = (10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95)
BLOCK = 32


@dataclass(frozen=True)
class Profiles:
    """Per-block profiles of a set of images (N blocks, K qualities)."""

    qualities: np.ndarray  # (K,)
    rate: np.ndarray  # (N, K) bytes of the block's segment
    sse: np.ndarray  # (N, K) restored squared error over the block's area, RGB summed
    area: np.ndarray  # (N,) restored pixels covered by the block
    pixels: np.ndarray  # (N, 32, 32, 3) the degraded block (edges replicated)
    image: np.ndarray  # (N,) index into ``names``
    names: tuple[str, ...]

    @property
    def mse(self) -> np.ndarray:
        """(N, K) restored mean squared error per pixel and channel."""
        return self.sse / (3.0 * self.area[:, None])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp, qualities=self.qualities, rate=self.rate, sse=self.sse, area=self.area,
            pixels=self.pixels, image=self.image, names=np.array(self.names),
        )  # fmt: skip
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Profiles:
        with np.load(path) as f:
            return cls(f["qualities"], f["rate"], f["sse"], f["area"], f["pixels"], f["image"],
                       tuple(str(n) for n in f["names"]))  # fmt: skip

    @classmethod
    def concat(cls, parts: list[Profiles]) -> Profiles:
        names: list[str] = []
        images = []
        for p in parts:
            images.append(p.image + len(names))
            names.extend(p.names)
        cat = lambda field: np.concatenate([getattr(p, field) for p in parts])  # noqa: E731
        return cls(parts[0].qualities, cat("rate"), cat("sse"), cat("area"), cat("pixels"), np.concatenate(images),
                   tuple(names))  # fmt: skip


def block_pixels(image: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """(blocks, block, block, 3): the image cut into blocks in raster order, edges replicated."""
    rows, cols = Layout(block).grid(*image.shape[:2])
    padded = np.pad(image, ((0, rows * block - image.shape[0]), (0, cols * block - image.shape[1]), (0, 0)),
                    mode="edge")  # fmt: skip
    return (
        padded.reshape(rows, block, cols, block, 3)
        .transpose(0, 2, 1, 3, 4)
        .reshape(-1, block, block, 3)
    )


def coded_sse(pixels: np.ndarray, qualities: Iterable[int] = QUALITY_SET) -> np.ndarray:
    """(N, K) coding distortion (``codec.rates.block_distortions``) of N 32×32 blocks: what the
    encoder knows about each block at each quality before any restoration."""
    from accelir.codec.rates import block_distortions
    from accelir.codec.transform import block_dct

    n, cols = len(pixels), 64
    rows = max(1, -(-n // cols))
    tiles = np.zeros((rows * cols, BLOCK, BLOCK, 3), dtype=np.uint8)
    tiles[:n] = pixels
    mosaic = tiles.reshape(rows, cols, BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4)
    image = np.ascontiguousarray(mosaic.reshape(rows * BLOCK, cols * BLOCK, 3))
    return block_distortions(block_dct(image, Layout(BLOCK)), tuple(qualities))[:n]


def block_sums(values: np.ndarray, rows: int, cols: int, side: int) -> np.ndarray:
    """Sum an (H, W) map over a grid of side×side cells (the grid may overhang the map)."""
    padded = np.zeros((rows * side, cols * side), dtype=np.float64)
    padded[: values.shape[0], : values.shape[1]] = values
    return padded.reshape(rows, side, cols, side).sum(axis=(1, 3)).reshape(-1)


def block_areas(height: int, width: int, rows: int, cols: int, side: int) -> np.ndarray:
    """(rows·cols,) pixels of a height×width map inside each side×side grid cell (raster)."""
    heights = np.clip(height - side * np.arange(rows), 0, side)
    widths = np.clip(width - side * np.arange(cols), 0, side)
    return np.outer(heights, widths).reshape(-1).astype(np.float64)


def restored_block_sse(
    restored: np.ndarray, target: np.ndarray, rows: int, cols: int, side: int
) -> np.ndarray:
    """Squared error (RGB summed) of a restoration over each block's area in target space."""
    err = np.sum((restored.astype(np.float64) - target.astype(np.float64)) ** 2, axis=2)
    return block_sums(err, rows, cols, side)


def image_profile(
    model: nn.Module,
    original: np.ndarray,
    task: str,
    qualities: Iterable[int] = QUALITY_SET,
    tile: int | None = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rate, sse, area, pixels) of one image's blocks (see :class:`Profiles`)."""
    degraded = tasks.degrade(original, task)
    target = tasks.target(original, task)
    scale = tasks.scale_of(task)
    rows, cols = Layout(BLOCK).grid(*degraded.shape[:2])
    side = BLOCK * scale
    qualities = list(qualities)
    rate = np.empty((rows * cols, len(qualities)))
    sse = np.empty((rows * cols, len(qualities)))
    for k, q in enumerate(qualities):
        data = codec.encode(degraded, np.full((rows, cols), q))
        rate[:, k] = codec.info(data).lengths.reshape(-1)
        restored = restore(model, codec.decode_for_restoration(data), task, tile=tile)
        sse[:, k] = restored_block_sse(restored, target, rows, cols, side)
    area = block_areas(target.shape[0], target.shape[1], rows, cols, side)
    return rate, sse, area, block_pixels(degraded)


def compute_profiles(
    model: nn.Module,
    images: Iterable[tuple[str, np.ndarray]],
    task: str,
    *,
    tile: int | None = 256,
    on_image: Callable[[str], None] | None = None,
) -> Profiles:
    """Profiles of every block of every image."""
    parts = []
    for name, original in images:
        rate, sse, area, pixels = image_profile(model, original, task, tile=tile)
        local = np.zeros(len(rate), dtype=np.int64)
        parts.append(Profiles(np.array(QUALITY_SET), rate, sse, area, pixels, local, (name,)))
        if on_image:
            on_image(name)
    if not parts:
        raise ValueError("no images to profile")
    return Profiles.concat(parts)

"""Running a restoration network on a uint8 image, whole or in tiles.

Tiling is exact, not blended: each tile is read with a margin at least as wide as the network's
receptive field and only its centre is kept, so a tiled result equals the untiled one up to
floating-point rounding. A network states its margin and the multiple its tile origins must
respect (``tile_margin``, ``tile_multiple`` attributes; defaults below).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from accelir.tasks import parse_task

DEFAULT_TILE_MARGIN = 32
DEFAULT_TILE_MULTIPLE = 8


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in [0, 1]."""
    array = image if image.flags.writeable and image.flags.c_contiguous else np.array(image)
    t = torch.from_numpy(array).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """1×3×H×W float in [0, 1] → H×W×3 uint8 (rounded, clipped)."""
    return to_images(tensor[:1])[0]


def to_images(tensor: torch.Tensor) -> list[np.ndarray]:
    """N×3×H×W float in [0, 1] → N H×W×3 uint8 images (rounded, clipped)."""
    t = tensor.detach().float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return list(t.permute(0, 2, 3, 1).cpu().numpy())


def _forward(model: nn.Module, x: torch.Tensor, sigma: float | None) -> torch.Tensor:
    if sigma is not None and getattr(model, "takes_noise_level", False):
        return model(x, sigma)
    return model(x)


def _check(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 uint8, got {image.dtype} {image.shape}")


def _noise_level(task: str, sigma: float | None) -> float | None:
    spec = parse_task(task)
    if sigma is None and spec.sigma is not None:
        sigma = spec.sigma
    return None if sigma is None else sigma / 255.0


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def restore_batch(
    model: nn.Module,
    images: list[np.ndarray],
    task: str,
    tile: int | None = None,
    *,
    max_batch: int = 8,
    sigma: float | None = None,
) -> list[np.ndarray]:
    """Restore several images, stacking those of the same size into one forward pass (up to
    ``max_batch`` at a time) — what a GPU wants. Images larger than ``tile`` go through the tiled
    single-image path. Results equal ``restore`` on each image up to floating-point rounding."""
    for image in images:
        _check(image)
    level, device = _noise_level(task, sigma), _device(model)
    out: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        if tile is not None and (h > tile or w > tile):
            out[i] = restore(model, image, task, tile, sigma=sigma)
        else:
            by_shape.setdefault(image.shape, []).append(i)
    with torch.inference_mode():
        for indices in by_shape.values():
            for start in range(0, len(indices), max(1, max_batch)):
                chunk = indices[start : start + max(1, max_batch)]
                x = torch.cat([to_tensor(images[i], device) for i in chunk])
                for i, result in zip(chunk, to_images(_forward(model, x, level)), strict=True):
                    out[i] = result
    return [image for image in out if image is not None]


def restore(
    model: nn.Module,
    image: np.ndarray,
    task: str,
    tile: int | None = None,
    *,
    sigma: float | None = None,
) -> np.ndarray:
    """Restore an H×W×3 uint8 image with ``model`` for ``task``; uint8 out, any size.

    ``tile`` (input pixels) bounds memory: the image is processed in tiles of about that size
    (at least twice the model's margin), each read with the model's margin of context; an image
    that fits in one tile and its margins is processed whole. ``sigma`` (0–255 scale) feeds
    networks that take a noise level; by default it is the task's σ for denoising.
    """
    _check(image)
    scale = parse_task(task).scale
    level, device = _noise_level(task, sigma), _device(model)
    h, w = image.shape[:2]
    margin = int(getattr(model, "tile_margin", DEFAULT_TILE_MARGIN))
    multiple = int(getattr(model, "tile_multiple", DEFAULT_TILE_MULTIPLE))
    margin = -(-margin // multiple) * multiple
    # A tile narrower than twice the context it reads would spend most of its work on the margin
    # (MIMO-UNet reads 320 px around a tile), so tiles are at least that wide; and an image no
    # larger than one tile with its margins costs no more memory whole than tiled.
    step = 0 if tile is None else max(multiple, (max(tile, 2 * margin) // multiple) * multiple)
    with torch.inference_mode():
        if tile is None or (h <= step + 2 * margin and w <= step + 2 * margin):
            return to_image(_forward(model, to_tensor(image, device), level))
        out = np.empty((h * scale, w * scale, 3), dtype=np.uint8)
        for y in range(0, h, step):
            y_end = min(h, y + step)
            for x in range(0, w, step):
                x_end = min(w, x + step)
                y0, x0 = max(0, y - margin), max(0, x - margin)
                y1, x1 = min(h, y_end + margin), min(w, x_end + margin)
                patch = to_tensor(image[y0:y1, x0:x1], device)
                result = to_image(_forward(model, patch, level))
                oy, ox = (y - y0) * scale, (x - x0) * scale
                out[y * scale : y_end * scale, x * scale : x_end * scale] = result[
                    oy : oy + (y_end - y) * scale, ox : ox + (x_end - x) * scale
                ]
        return out

"""The AccelIR encoder and restorer: what the command line and the service workers call.

``Encoder.encode`` degrades the original for the task (unless told it already is), chooses a
JPEG quality per block for one target — bytes, bits per pixel, the size of a plain JPEG at a
given quality, or a predicted restored PSNR — and writes the block container.
``Restorer.restore`` decodes a container and runs the restoration network on it.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from accelir import codec, tasks
from accelir.codec.layout import Layout

QUALITY_SET = (10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95)
ALLOCATORS = ("lagrangian", "greedy", "oracle", "uniform")


@dataclass(frozen=True)
class EncodeResult:
    container: bytes
    quality_map: np.ndarray
    nbytes: int
    bpp: float
    predicted_psnr: float | None
    timings: dict[str, float] = field(default_factory=dict)
    degraded: np.ndarray | None = None


@dataclass(frozen=True)
class RestoreResult:
    image: np.ndarray
    flops: int
    timings: dict[str, float] = field(default_factory=dict)


def pillow_jpeg_size(image: np.ndarray, quality: int) -> int:
    """Bytes of a whole-image Pillow JPEG (optimize=True, 4:2:0) — the "plain JPEG" budget."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, optimize=True, subsampling=2)
    return buf.tell()


def _one_target(nbytes: int | None, bpp: float | None, jpeg_quality: int | None, psnr: float | None) -> None:
    given = [name for name, v in (("nbytes", nbytes), ("bpp", bpp), ("jpeg_quality", jpeg_quality), ("psnr", psnr))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one target of nbytes, bpp, jpeg_quality, psnr (got {given or 'none'})")


class Encoder:
    """Task-aware block encoder (for now: the best uniform quality within the budget)."""

    def __init__(self, task: str = "sr4", model: str = "edsr", width: int = 32) -> None:
        self.task = tasks.parse_task(task).name
        self.model = model
        self.width = width

    def encode(
        self,
        image: np.ndarray,
        *,
        nbytes: int | None = None,
        bpp: float | None = None,
        jpeg_quality: int | None = None,
        psnr: float | None = None,
        allocator: str = "lagrangian",
        degraded: bool = False,
    ) -> EncodeResult:
        _one_target(nbytes, bpp, jpeg_quality, psnr)
        if allocator not in ALLOCATORS:
            raise ValueError(f"allocator must be one of {ALLOCATORS}")
        if psnr is not None:
            raise NotImplementedError("PSNR targets need the AccelIR profiles (not available yet)")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        low = image if degraded else tasks.degrade(image, self.task)
        timings["degradation"] = time.perf_counter() - t0
        h, w = low.shape[:2]
        if jpeg_quality is not None:
            budget = pillow_jpeg_size(low, int(jpeg_quality))
        elif bpp is not None:
            budget = int(bpp * h * w / 8)
        else:
            budget = int(nbytes)  # type: ignore[arg-type]
        grid = Layout().grid(h, w)
        t0 = time.perf_counter()
        best = None
        for q in sorted(QUALITY_SET, reverse=True):
            data = codec.encode(low, np.full(grid, q))
            if len(data) <= budget:
                best = (q, data)
                break
        if best is None:
            raise ValueError(f"a budget of {budget} bytes is below the smallest encoding")
        timings["entropy_coding"] = time.perf_counter() - t0
        q, data = best
        return EncodeResult(data, np.full(grid, q), len(data), 8 * len(data) / (h * w), None, timings, low)


class Restorer:
    """Decodes a container and restores it with a network of the zoo."""

    def __init__(self, task: str = "sr4", model: str = "edsr", width: int = 32, tile: int | None = 512) -> None:
        from accelir import models

        self.task = tasks.parse_task(task).name
        self.model_name, self.width, self.tile = model, width, tile
        self.model = models.load(model, width, self.task)
        self._flops_per_pixel = next(
            (c.flops_per_pixel for c in models.catalog() if (c.name, c.task, c.width) == (model, self.task, width)),
            0.0,
        )

    def restore(self, container: bytes) -> RestoreResult:
        from accelir.models import restore as run

        t0 = time.perf_counter()
        decoded = codec.decode(container)
        t1 = time.perf_counter()
        image = run(self.model, decoded, self.task, tile=self.tile)
        t2 = time.perf_counter()
        flops = round(self._flops_per_pixel * decoded.shape[0] * decoded.shape[1])
        return RestoreResult(image, flops, {"decode": t1 - t0, "restoration": t2 - t1})

"""The AccelIR encoder and restorer: what the command line and the service workers call.

``Encoder.encode`` degrades the original for the task (unless told it already is), predicts
each block's utility group with QP-NET (for super-resolution given each block's reference
utility as a side input, where the shipped QP-NET takes one), computes every block's exact
byte cost at each candidate quality and its predicted restored error (for super-resolution:
its error level at the top quality, ``accelir.error_level``, shaped by the block's own
reference error curve, ``accelir.reference_error``, reshaped by the restorer's learned
correction, ``accelir.error_shape``, where one ships; for the other tasks: its group's law
applied to its coding distortion, or where a correction ships its group's level plus the
corrected coding distortion), allocates qualities for one target — bytes, bits per pixel, the size of a plain
JPEG at a given quality, or a predicted restored PSNR — and writes the block container.
The container never exceeds a byte budget: if the shared Huffman tables of the final quality
mix make it larger than the estimate, the budget is tightened and the allocation rerun.
``Restorer.restore`` decodes a container and runs the restoration network on it.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from PIL import Image
from torch import nn

from accelir import allocation, codec, error_shape, reference_error, tasks
from accelir.codec.layout import Layout
from accelir.codec.rates import block_distortions, block_rates
from accelir.codec.transform import BlockDCT, block_dct
from accelir.error_level import texture
from accelir.profiles import BLOCK, QUALITY_SET, block_areas, block_pixels, image_profile
from accelir.utility_model import UtilityModel

ALLOCATORS = ("lagrangian", "greedy", "oracle")
#: Changes whenever the same inputs may give different containers (evaluation caches key on it).
#: 2: super-resolution blocks' error curves from ``reference_error`` (was: the coded-error law).
#: 3: error curves reshaped by the restorer's ``error_shape`` correction where one ships.
#: 4: container version 2 (edge blocks code only their visible MCUs: new rates and bytes).
#: 5: container version 3 (segments unstuffed, tables as code lengths): rates are exact bytes.
#: 6: container version 4 (first DC code words in the header's first-DC map): rates leave them
#:    out; the header allowance grows accordingly.
#: 7: container version 5 (first DCs predicted from the unit beside, index and map range-coded:
#:    smaller headers for the same quality map).
ENCODER_VERSION = 7
_MAX_REFITS = 8
#: ``verify=True``: restorations at most, and how far above the target a result may land
#: before the search stops early (dB).
VERIFY_RESTORATIONS, VERIFY_TOLERANCE = 5, 0.05
#: A first allowance for the header (tables; quality map, first-DC map and index per block),
#: kept below what containers measure (version 4: 530–790 bytes for 144–160 blocks at
#: q50–q85; version 5 about a tenth less):
#: an allowance too large would leave bytes unspent, one too small costs a refit.
_HEADER_GUESS_FIXED, _HEADER_GUESS_PER_BLOCK = 90, 2.5


@dataclass(frozen=True)
class EncodeResult:
    container: bytes
    quality_map: np.ndarray
    nbytes: int
    bpp: float
    predicted_psnr: float | None
    timings: dict[str, float] = field(default_factory=dict)
    degraded: np.ndarray | None = None
    budget: int | None = None
    #: With ``encode(psnr=..., verify=True)``: the PSNR the encoder's own network measured on
    #: the returned container against the original, over the whole image (as ``predicted_psnr``).
    measured_psnr: float | None = None


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


def psnr_from_sse(sse: float, values: float) -> float:
    """PSNR (peak 255) of a total squared error over ``values`` samples."""
    return math.inf if sse <= 0 else 10 * math.log10(255.0**2 * values / sse)


def sse_for_psnr(psnr: float, values: float) -> float:
    """The total squared error over ``values`` samples at which the PSNR is ``psnr`` (the
    inverse of ``psnr_from_sse``)."""
    return values * 255.0**2 / 10 ** (psnr / 10)


def _one_target(
    nbytes: int | None, bpp: float | None, jpeg_quality: int | None, psnr: float | None
) -> str:
    given = [n for n, v in (("nbytes", nbytes), ("bpp", bpp), ("jpeg_quality", jpeg_quality), ("psnr", psnr))
             if v is not None]  # fmt: skip
    if len(given) != 1:
        raise ValueError(
            f"give exactly one target of nbytes, bpp, jpeg_quality, psnr (got {given or 'none'})"
        )
    return given[0]


class Encoder:
    """Task-aware block encoder for one restorer (task, model, width)."""

    def __init__(self, task: str = "sr4", model: str = "edsr", width: int = 32) -> None:
        self.task = tasks.parse_task(task).name
        self.model = model
        self.width = width
        self.scale = tasks.scale_of(self.task)

    @cached_property
    def utility(self) -> UtilityModel:
        from accelir import utility_model

        return utility_model.load(self.model, self.task, self.width)

    @cached_property
    def restorer_network(self) -> nn.Module:
        from accelir import models

        return models.load(self.model, self.width, self.task)

    def _true_profiles(self, image: np.ndarray) -> np.ndarray:
        """The oracle's per-block restored errors at every quality (13 restorations; cached for
        the last few images, since evaluations encode one image at several budgets)."""
        key = hashlib.sha1(np.ascontiguousarray(image).data).hexdigest()
        cache = self.__dict__.setdefault("_oracle_cache", {})
        if key not in cache:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = image_profile(self.restorer_network, image, self.task)[1]
        return cache[key]

    def _budget(self, target: str, value: float, low: np.ndarray) -> int:
        h, w = low.shape[:2]
        if target == "jpeg_quality":
            if not 1 <= int(value) <= 100:
                raise ValueError("jpeg_quality must lie in 1..100")
            return pillow_jpeg_size(low, int(value))
        if target == "bpp":
            if value <= 0:
                raise ValueError("bpp must be positive")
            return int(value * h * w / 8)
        if int(value) < 1:
            raise ValueError("nbytes must be positive")
        return int(value)

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
        verify: bool = False,
    ) -> EncodeResult:
        """``verify`` (PSNR targets, with the original): restore trial encodings with the
        encoder's network and return the fewest bytes whose *measured* PSNR reaches the target
        (``_verified``); without it the target is met as predicted."""
        target = _one_target(nbytes, bpp, jpeg_quality, psnr)
        if verify and (target != "psnr" or degraded):
            raise ValueError("verify needs a psnr target and the original image (degraded=False)")
        if allocator not in ALLOCATORS:
            raise ValueError(f"allocator must be one of {ALLOCATORS}")
        if allocator == "oracle" and degraded:
            raise ValueError("the oracle allocator needs the original image (degraded=False)")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be H×W×3 uint8, got {image.dtype} {image.shape}")
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + now - clock
            clock = now

        low = image if degraded else tasks.degrade(image, self.task)
        lap("degradation")
        h, w = low.shape[:2]
        layout = Layout(BLOCK)
        grid = layout.grid(h, w)
        area = block_areas(h * self.scale, w * self.scale, *grid, BLOCK * self.scale)

        if allocator == "oracle":
            true_sse = self._true_profiles(image)
            lap("oracle_profiles")
        dct = block_dct(low, layout)
        rate = block_rates(dct, QUALITY_SET)
        qp = None if allocator == "oracle" else self.utility.qpnet
        ref = None
        if qp is not None and self.scale > 1 and (allocator == "lagrangian" or qp.side_inputs):
            ref = reference_error.reference_sse(low, dct, self.scale, QUALITY_SET)
        lap("allocation")
        if qp is not None:
            groups = self.utility.groups
            from accelir.qpnet import predict_groups

            side = None
            if qp.side_inputs:
                if ref is None:
                    raise ValueError("a QP-NET with side inputs serves super-resolution only")
                side = reference_error.qpnet_side_inputs(ref, area)
            pixels = block_pixels(low)
            labels = predict_groups(qp, pixels, side)
            lap("qpnet")
        if allocator == "oracle":
            sse = true_sse
        elif allocator == "greedy":
            sse = groups.mse[labels] * 3.0 * area[:, None]
        elif ref is not None:
            # The restored error at the top quality (from the block's texture where the model
            # ships one, else its group's), plus what each quality adds to the block's bicubic
            # reference (the network's error grows about as fast).
            level, shape = self.utility.level, self.utility.shape
            textures = texture(pixels) if level or shape else None  # computed once for both
            top = (
                level.sse(pixels, area, textures=textures)
                if level
                else groups.mse[labels][:, -1] * 3.0 * area
            )
            if shape is not None:  # the restorer's own curve shape, where it ships one
                coded = block_distortions(dct, QUALITY_SET)
                sse = top[:, None] + error_shape.corrected_sse(
                    shape, ref, coded, pixels, area, textures=textures
                )
            else:
                sse = top[:, None] + (ref - ref[:, -1:])
        else:
            coded = block_distortions(dct, QUALITY_SET)
            sse = groups.predict_sse(labels, coded, area)
            if self.utility.shape is not None:  # no reference: the coding distortion reshaped
                shaped = error_shape.corrected_sse(self.utility.shape, coded, coded, pixels, area)
                sse = sse[:, -1:] + shaped
        if allocator == "greedy":
            # The paper's group-level search, given this image's exact mean block sizes per group
            # (fairer than the training averages the reference code uses).
            group_rate = np.stack([rate[labels == g].mean(axis=0) if np.any(labels == g) else groups.rate[g]
                                   for g in range(groups.count)])  # fmt: skip
            group_sse = groups.mse * 3.0 * area.mean()
        lap("allocation")

        values = 3.0 * float(area.sum())
        if target == "psnr":
            max_sse = sse_for_psnr(float(psnr), values)  # type: ignore[arg-type]
            choice = allocation.allocate_for_distortion(rate, sse, max_sse)
            lap("allocation")
            qmap = np.asarray(QUALITY_SET)[choice].reshape(grid)
            data = codec.encode_dct(dct, qmap)
            lap("entropy_coding")
            budget = None
            if verify:
                goal = float(psnr)  # type: ignore[arg-type]
                choice, data = self._verified(goal, image, rate, sse, values, dct, choice, data)
                qmap = np.asarray(QUALITY_SET)[choice].reshape(grid)
                lap("verification")
        else:
            value = {"nbytes": nbytes, "bpp": bpp, "jpeg_quality": jpeg_quality}[target]
            budget = self._budget(target, float(value), low)  # type: ignore[arg-type]
            segments = budget - (_HEADER_GUESS_FIXED + _HEADER_GUESS_PER_BLOCK * rate.shape[0])
            data, qmap = b"", np.zeros(grid, dtype=np.int64)
            for _ in range(_MAX_REFITS):
                if allocator == "greedy":
                    choice = allocation.allocate_greedy_groups(
                        labels, group_rate, group_sse, segments
                    )
                elif allocator == "oracle":
                    choice = allocation.allocate_knapsack(rate, sse, segments)
                else:
                    choice = allocation.allocate_lagrangian(rate, sse, segments)
                lap("allocation")
                qmap = np.asarray(QUALITY_SET)[choice].reshape(grid)
                data = codec.encode_dct(dct, qmap)
                lap("entropy_coding")
                over = len(data) - budget
                if over <= 0:
                    break
                # Shrink from what this choice was estimated to spend, not from the allowance:
                # a choice well inside the allowance (every block already at its least-error
                # quality, as in denoising) would otherwise come back unchanged.
                spent = allocation.total(rate, choice)
                segments = min(segments, spent) - (over + max(8, 0.002 * budget))
            if len(data) > budget:
                choice = rate.argmin(axis=1)
                qmap = np.asarray(QUALITY_SET)[choice].reshape(grid)
                data = codec.encode_dct(dct, qmap)
                lap("entropy_coding")
            if len(data) > budget:
                raise ValueError(
                    f"a budget of {budget} bytes is below the smallest encoding ({len(data)} bytes)"
                )
        predicted = psnr_from_sse(allocation.total(sse, choice), values)
        measured = self._measured_psnr(data, image) if verify else None
        return EncodeResult(
            data,
            qmap,
            len(data),
            8 * len(data) / (h * w),
            predicted,
            timings,
            low,
            budget,
            measured,
        )

    def _measured_psnr(self, data: bytes, image: np.ndarray) -> float:
        """PSNR of the encoder's network restoring ``data``, against the original ``image``
        (cached per container: the search and the result ask for the same one)."""
        from accelir import metrics
        from accelir.models.inference import restore

        cache = self.__dict__.setdefault("_measured_cache", {})
        key = hashlib.sha1(data).hexdigest()
        if key not in cache:
            if len(cache) >= 16:
                cache.pop(next(iter(cache)))
            restored = restore(
                self.restorer_network, codec.decode_for_restoration(data), self.task, tile=512
            )
            target = tasks.target(image, self.task)
            cache[key] = metrics.psnr(restored, target)
        return float(cache[key])

    def _verified(
        self, goal: float, image: np.ndarray, rate: np.ndarray, sse: np.ndarray, values: float,
        dct: BlockDCT, choice: np.ndarray, data: bytes,
    ) -> tuple[np.ndarray, bytes]:  # fmt: skip
        """The fewest bytes whose measured PSNR reaches ``goal``. The allocation for a predicted
        PSNR ``p`` is restored and measured; ``p`` moves by the miss, then by the secant through
        the last two trials, aiming a little above the goal, for at most
        ``VERIFY_RESTORATIONS`` restorations (stopping once a trial lands within
        ``VERIFY_TOLERANCE`` above it). The cheapest trial that reached the goal wins; if none
        did, the best measured one (``measured_psnr`` then says it fell short)."""
        grid = dct.grid
        aim = goal + VERIFY_TOLERANCE / 2
        trials: list[
            tuple[float, float, np.ndarray, bytes]
        ] = []  # (predicted target, measured, ...)
        asked = goal
        for _ in range(VERIFY_RESTORATIONS):
            if trials:
                max_sse = sse_for_psnr(asked, values)
                choice = allocation.allocate_for_distortion(rate, sse, max_sse)
                data = codec.encode_dct(dct, np.asarray(QUALITY_SET)[choice].reshape(grid))
            measured = self._measured_psnr(data, image)
            trials.append((asked, measured, choice, data))
            if goal <= measured <= goal + VERIFY_TOLERANCE:
                break
            step = aim - measured
            if len(trials) >= 2:
                (p0, m0, *_), (p1, m1, *_) = trials[-2], trials[-1]
                if m1 != m0 and (p1 - p0) / (m1 - m0) > 0:
                    step *= (p1 - p0) / (m1 - m0)
            nxt = float(np.clip(asked + step, goal - 20.0, goal + 20.0))
            if any(abs(nxt - t[0]) < 1e-3 for t in trials):
                break  # the allocation would not change
            asked = nxt
        reached = [t for t in trials if t[1] >= goal]
        best = min(reached, key=lambda t: len(t[3])) if reached else max(trials, key=lambda t: t[1])
        return best[2], best[3]


class Restorer:
    """Decodes a container and restores it with a network of the zoo."""

    def __init__(
        self, task: str = "sr4", model: str = "edsr", width: int = 32, tile: int | None = 512
    ) -> None:
        from accelir import models

        self.task = tasks.parse_task(task).name
        self.model_name, self.width, self.tile = model, width, tile
        self.model = models.load(model, width, self.task)
        card = next(
            (c for c in models.catalog() if (c.name, c.task, c.width) == (model, self.task, width)),
            None,
        )
        self._flops_per_pixel = card.flops_per_pixel if card else 0.0

    def restore(self, container: bytes) -> RestoreResult:
        """Decode and restore one container; ``timings`` has ``decode`` and ``restoration``."""
        return self.restore_batch([container])[0]

    def restore_batch(self, containers: list[bytes], max_batch: int = 8) -> list[RestoreResult]:
        """Restore several containers, stacking decoded images of the same size into one
        forward pass (``accelir.models.restore_batch``; images larger than ``tile`` are restored
        alone, tiled). Each result's ``restoration`` time is its share of the batch's wall time; ``decode`` is its own. Raises ``ContainerError`` if
        any container is invalid (callers that need per-item errors restore one at a time)."""
        from accelir.models import restore_batch as run

        decoded, decode_s = [], []
        for container in containers:
            t0 = time.perf_counter()
            decoded.append(codec.decode_for_restoration(container))
            decode_s.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        images = run(self.model, decoded, self.task, tile=self.tile, max_batch=max_batch)
        share = (time.perf_counter() - t1) / max(1, len(containers))
        return [
            RestoreResult(
                image,
                round(self._flops_per_pixel * d.shape[0] * d.shape[1]),
                {"decode": s, "restoration": share},
            )
            for image, d, s in zip(images, decoded, decode_s, strict=True)
        ]

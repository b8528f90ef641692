"""The degradations that the image-restoration networks undo, deterministic given a seed.

A task is named by a short string:

* ``sr2``, ``sr3``, ``sr4`` — bicubic, antialiased downscaling by 2, 3 or 4. The image is first
  cropped to a multiple of the scale ("modcrop", as BasicSR does) and then reduced with Pillow's
  ``BICUBIC`` filter, which widens its support when reducing and therefore antialiases.
* ``denoise`` — additive white Gaussian noise, σ = 25 on the 0–255 scale; ``denoise:15`` names
  another σ (0 < σ ≤ 100). The noise comes from ``np.random.default_rng(seed)``.
* ``deblur`` — a fixed isotropic Gaussian blur, σ = 1.6 on a 13×13 support;
  ``deblur:gaussian`` — an anisotropic Gaussian drawn from the seed (σ along each axis in
  [0.8, 2.4], random rotation, 21×21 support); ``deblur:motion`` — a linear motion blur drawn from
  the seed (length in [5, 15] px, random angle, anti-aliased, 17×17 support).

Blurring is a convolution with half-sample symmetric padding (FFT, ``scipy.signal``). Every
degraded image is rounded and clipped back to uint8. ``target`` gives the ground truth a restorer
should produce for a task, ``parse_task`` the validated :class:`TaskSpec`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import signal

__all__ = [
    "TASKS",
    "TaskSpec",
    "blur_kernel",
    "degrade",
    "parse_task",
    "scale_of",
    "target",
]

TaskKind = Literal["sr", "denoise", "deblur"]

TASKS: tuple[str, ...] = ("sr2", "sr3", "sr4", "denoise", "deblur")
"""The canonical task names."""

SR_SCALES: tuple[int, ...] = (2, 3, 4)
DEFAULT_NOISE_SIGMA = 25.0
MAX_NOISE_SIGMA = 100.0
KERNEL_FAMILIES: tuple[str, ...] = ("default", "gaussian", "motion")

DEFAULT_BLUR_SIGMA = 1.6
DEFAULT_KERNEL_SIZE = 13
GAUSSIAN_SIGMA_RANGE = (0.8, 2.4)
GAUSSIAN_KERNEL_SIZE = 21  # radius 10 > 4 σ for the widest draw
MOTION_LENGTH_RANGE = (5.0, 15.0)
MOTION_KERNEL_SIZE = 17  # a 15 px segment plus its one-pixel anti-aliasing fringe
MOTION_SAMPLES_PER_PX = 16
_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class TaskSpec:
    """A parsed task.

    ``scale`` is 1 unless ``kind == "sr"``; ``sigma`` is the noise σ (0–255 scale) for ``denoise``
    and ``None`` otherwise; ``kernel`` is the blur family (``"default"``, ``"gaussian"`` or
    ``"motion"``) for ``deblur`` and ``None`` otherwise; ``name`` is the canonical task string.
    """

    kind: TaskKind
    scale: int
    sigma: float | None
    kernel: str | None
    name: str


def parse_task(task: str) -> TaskSpec:
    """Parse a task string such as ``"sr4"``, ``"denoise:15"`` or ``"deblur:motion"``."""
    if not isinstance(task, str):
        raise ValueError(f"task must be a string, got {type(task).__name__}")
    text = task.strip().lower()
    if re.fullmatch(r"sr[0-9]+", text):
        return _parse_sr(task, text[2:])
    head, sep, arg = text.partition(":")
    if sep and not arg:
        raise ValueError(f"task {task!r}: empty argument after ':'")
    if head == "denoise":
        return _parse_denoise(task, arg or None)
    if head == "deblur":
        return _parse_deblur(task, arg or None)
    raise ValueError(
        f"unknown task {task!r}: expected sr2, sr3, sr4, denoise[:sigma] or "
        f"deblur[:{'|'.join(KERNEL_FAMILIES)}]"
    )


def _parse_sr(task: str, digits: str) -> TaskSpec:
    if digits not in {str(s) for s in SR_SCALES}:
        raise ValueError(
            f"task {task!r}: unsupported super-resolution scale {digits!r}; "
            f"expected one of {', '.join(str(s) for s in SR_SCALES)}"
        )
    scale = int(digits)
    return TaskSpec(kind="sr", scale=scale, sigma=None, kernel=None, name=f"sr{scale}")


def _parse_denoise(task: str, arg: str | None) -> TaskSpec:
    if arg is None:
        sigma = DEFAULT_NOISE_SIGMA
    else:
        if not _NUMBER.fullmatch(arg):
            raise ValueError(f"task {task!r}: noise sigma {arg!r} is not a number")
        sigma = float(arg)
    if not (math.isfinite(sigma) and 0.0 < sigma <= MAX_NOISE_SIGMA):
        raise ValueError(
            f"task {task!r}: noise sigma must satisfy 0 < sigma <= {MAX_NOISE_SIGMA:g}, "
            f"got {sigma:g}"
        )
    name = "denoise" if sigma == DEFAULT_NOISE_SIGMA else f"denoise:{_format_number(sigma)}"
    return TaskSpec(kind="denoise", scale=1, sigma=sigma, kernel=None, name=name)


def _format_number(value: float) -> str:
    """The shortest text that parses back to ``value`` ("15" rather than "15.0")."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _parse_deblur(task: str, arg: str | None) -> TaskSpec:
    family = arg or "default"
    if family not in KERNEL_FAMILIES:
        raise ValueError(
            f"task {task!r}: unknown blur kernel family {family!r}; "
            f"expected one of {', '.join(KERNEL_FAMILIES)}"
        )
    name = "deblur" if family == "default" else f"deblur:{family}"
    return TaskSpec(kind="deblur", scale=1, sigma=None, kernel=family, name=name)


def scale_of(task: str) -> int:
    """The spatial scale factor of a task: 2, 3 or 4 for super-resolution, 1 otherwise."""
    return parse_task(task).scale


def metric_crop(task: str) -> int:
    """Border pixels the quality metrics shave: the scale for super-resolution (as SR papers
    do), none for the other tasks."""
    spec = parse_task(task)
    return spec.scale if spec.kind == "sr" else 0


# --------------------------------------------------------------------------------------------
# Kernels


def blur_kernel(task: str, seed: int = 0) -> NDArray[np.float64]:
    """The (odd-sized, square, sum-1) blur kernel that ``degrade(…, task, seed)`` uses.

    ``seed`` only matters for the random families (``deblur:gaussian``, ``deblur:motion``).
    """
    spec = parse_task(task)
    if spec.kind != "deblur":
        raise ValueError(f"task {task!r} has no blur kernel (only deblur tasks do)")
    if spec.kernel == "default":
        return gaussian_kernel(DEFAULT_KERNEL_SIZE, DEFAULT_BLUR_SIGMA, DEFAULT_BLUR_SIGMA, 0.0)
    rng = np.random.default_rng(seed)
    if spec.kernel == "gaussian":
        low, high = GAUSSIAN_SIGMA_RANGE
        sigma_x, sigma_y = (float(s) for s in rng.uniform(low, high, size=2))
        theta = float(rng.uniform(0.0, math.pi))
        return gaussian_kernel(GAUSSIAN_KERNEL_SIZE, sigma_x, sigma_y, theta)
    length = float(rng.uniform(*MOTION_LENGTH_RANGE))
    theta = float(rng.uniform(0.0, math.pi))
    return motion_kernel(MOTION_KERNEL_SIZE, length, theta)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> NDArray[np.float64]:
    """A sampled Gaussian with axis σs ``sigma_x``, ``sigma_y`` rotated by ``theta`` radians."""
    _check_kernel_size(size)
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"Gaussian sigmas must be positive, got {sigma_x}, {sigma_y}")
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = np.array([[cos, -sin], [sin, cos]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    inverse = np.linalg.inv(covariance)
    x, y = _kernel_grid(size)
    quad = inverse[0, 0] * x * x + 2.0 * inverse[0, 1] * x * y + inverse[1, 1] * y * y
    kernel = np.exp(-0.5 * quad)
    return kernel / kernel.sum()


def motion_kernel(size: int, length: float, theta: float) -> NDArray[np.float64]:
    """A centred line segment of ``length`` px at angle ``theta``, anti-aliased, sum 1.

    The segment is sampled densely and each sample is splatted bilinearly onto the pixel grid,
    which gives the anti-aliased rasterisation. ``theta`` is measured from the x axis (columns)
    towards the y axis (rows).
    """
    _check_kernel_size(size)
    radius = size // 2
    if not 0 < length < 2 * radius:
        raise ValueError(f"motion length {length} does not fit a {size}x{size} kernel")
    count = max(2, math.ceil(length * MOTION_SAMPLES_PER_PX) + 1)
    t = np.linspace(-length / 2.0, length / 2.0, count)
    xs = radius + t * math.cos(theta)
    ys = radius + t * math.sin(theta)
    x0, y0 = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    fx, fy = xs - x0, ys - y0
    kernel = np.zeros((size, size), dtype=np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), wy * wx)
    return kernel / kernel.sum()


def _check_kernel_size(size: int) -> None:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size}")


def _kernel_grid(size: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Column (x) and row (y) offsets from the kernel centre."""
    offsets = np.arange(size, dtype=np.float64) - size // 2
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    return x, y


# --------------------------------------------------------------------------------------------
# Degradations


def degrade(image: np.ndarray, task: str, seed: int = 0) -> NDArray[np.uint8]:
    """Apply the degradation of ``task`` to an H×W×3 uint8 RGB image; returns uint8.

    Super-resolution returns an image of (H // s, W // s); the other tasks keep the size. The
    result depends only on ``image``, ``task`` and ``seed``.
    """
    spec = parse_task(task)
    _check_image(image, spec)
    if spec.kind == "sr":
        return _downscale(modcrop(image, spec.scale), spec.scale)
    if spec.kind == "denoise":
        assert spec.sigma is not None
        return _add_noise(image, spec.sigma, seed)
    return _blur(image, blur_kernel(spec.name, seed))


def target(image: np.ndarray, task: str) -> NDArray[np.uint8]:
    """The ground truth a restorer should produce: the modcropped image for SR, else the image.

    Always returns a new contiguous array, never a view of ``image``.
    """
    spec = parse_task(task)
    _check_image(image, spec)
    return np.ascontiguousarray(modcrop(image, spec.scale)).copy()


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of ``image`` so that height and width are multiples of ``scale``."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def _check_image(image: object, spec: TaskSpec) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {image.shape}")
    height, width = image.shape[:2]
    if height < spec.scale or width < spec.scale:
        raise ValueError(
            f"task {spec.name!r} needs an image of at least {spec.scale}×{spec.scale}, "
            f"got {height}×{width}"
        )


def _downscale(image: np.ndarray, scale: int) -> NDArray[np.uint8]:
    height, width = image.shape[:2]
    pil = Image.fromarray(np.ascontiguousarray(image))
    small = pil.resize((width // scale, height // scale), Image.Resampling.BICUBIC)
    return np.asarray(small, dtype=np.uint8).copy()


def _add_noise(image: np.ndarray, sigma: float, seed: int) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float64) + rng.standard_normal(image.shape) * sigma
    return _to_uint8(noisy)


def _blur(image: np.ndarray, kernel: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Convolution with half-sample symmetric padding (``ndimage``'s "reflect"), via FFT."""
    r = kernel.shape[0] // 2
    padded = np.pad(image.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="symmetric")
    blurred = signal.fftconvolve(padded, kernel[:, :, None], mode="valid")
    return _to_uint8(blurred)


def _to_uint8(values: NDArray[np.float64]) -> NDArray[np.uint8]:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)

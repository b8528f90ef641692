"""Tests for accelir.tasks: degradation shapes, determinism, noise, antialiasing and kernels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from accelir.tasks import (
    TASKS,
    TaskSpec,
    blur_kernel,
    degrade,
    metric_crop,
    parse_task,
    scale_of,
    target,
)

ALL_TASKS = (*TASKS, "denoise:15", "deblur:gaussian", "deblur:motion")
RANDOM_TASKS = ("denoise", "denoise:15", "deblur:gaussian", "deblur:motion")


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def flat_image(height: int, width: int, value: int) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def kernel_covariance(kernel: np.ndarray) -> np.ndarray:
    """Second central moments of a sum-1 kernel (x = columns, y = rows)."""
    offsets = np.indices(kernel.shape) - kernel.shape[0] // 2
    y, x = offsets[0].astype(float), offsets[1].astype(float)
    mx, my = (kernel * x).sum(), (kernel * y).sum()
    cxx = (kernel * (x - mx) ** 2).sum()
    cyy = (kernel * (y - my) ** 2).sum()
    cxy = (kernel * (x - mx) * (y - my)).sum()
    return np.array([[cxx, cxy], [cxy, cyy]])


# --- parse_task ---------------------------------------------------------------------------


def test_tasks_tuple_is_canonical() -> None:
    assert TASKS == ("sr2", "sr3", "sr4", "denoise", "deblur")
    assert all(parse_task(t).name == t for t in TASKS)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("sr2", TaskSpec("sr", 2, None, None, "sr2")),
        ("sr3", TaskSpec("sr", 3, None, None, "sr3")),
        ("sr4", TaskSpec("sr", 4, None, None, "sr4")),
        ("denoise", TaskSpec("denoise", 1, 25.0, None, "denoise")),
        ("denoise:15", TaskSpec("denoise", 1, 15.0, None, "denoise:15")),
        ("denoise:15.0", TaskSpec("denoise", 1, 15.0, None, "denoise:15")),
        ("denoise:25", TaskSpec("denoise", 1, 25.0, None, "denoise")),
        ("denoise:7.5", TaskSpec("denoise", 1, 7.5, None, "denoise:7.5")),
        ("denoise:100", TaskSpec("denoise", 1, 100.0, None, "denoise:100")),
        ("deblur", TaskSpec("deblur", 1, None, "default", "deblur")),
        ("deblur:default", TaskSpec("deblur", 1, None, "default", "deblur")),
        ("deblur:gaussian", TaskSpec("deblur", 1, None, "gaussian", "deblur:gaussian")),
        ("deblur:motion", TaskSpec("deblur", 1, None, "motion", "deblur:motion")),
        (" SR4 ", TaskSpec("sr", 4, None, None, "sr4")),
    ],
)
def test_parse_task(task: str, expected: TaskSpec) -> None:
    assert parse_task(task) == expected


def test_task_spec_is_frozen() -> None:
    spec = parse_task("sr2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.scale = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("sr5", "scale"),
        ("sr1", "scale"),
        ("sr", "unknown task"),
        ("sr٣", "unknown task"),
        ("denoise:0", "sigma"),
        ("denoise:-5", "0 < sigma"),
        ("denoise:100.5", "sigma"),
        ("denoise:abc", "not a number"),
        ("denoise:nan", "not a number"),
        ("denoise:inf", "not a number"),
        ("denoise:", "empty"),
        ("deblur:box", "kernel family"),
        ("deblur:", "empty"),
        ("inpaint", "unknown task"),
        ("", "unknown task"),
    ],
)
def test_parse_task_errors(task: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_task(task)


def test_parse_task_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_task(4)  # type: ignore[arg-type]


@given(st.floats(min_value=1e-6, max_value=100.0, allow_nan=False))
def test_denoise_names_round_trip(sigma: float) -> None:
    spec = parse_task(f"denoise:{sigma!r}")
    assert spec.sigma == sigma
    assert parse_task(spec.name) == spec


@pytest.mark.parametrize("task", ALL_TASKS)
def test_canonical_names_round_trip(task: str) -> None:
    spec = parse_task(task)
    assert parse_task(spec.name) == spec


def test_scale_of() -> None:
    assert [scale_of(t) for t in TASKS] == [2, 3, 4, 1, 1]


def test_metrics_shave_the_scale_only_for_super_resolution() -> None:
    assert [metric_crop(t) for t in TASKS] == [2, 3, 4, 0, 0]
    assert metric_crop("denoise:15") == metric_crop("deblur:motion") == 0
    assert scale_of("deblur:motion") == 1


# --- shapes, dtype and validation ---------------------------------------------------------


@pytest.mark.parametrize("task", ALL_TASKS)
@pytest.mark.parametrize(("height", "width"), [(37, 53), (16, 16), (13, 7)])
def test_degrade_shape_and_dtype(task: str, height: int, width: int) -> None:
    scale = scale_of(task)
    out = degrade(random_image(height, width), task, seed=3)
    assert out.dtype == np.uint8
    assert out.shape == (height // scale, width // scale, 3)


@pytest.mark.parametrize("task", ["denoise", "deblur", "deblur:gaussian", "deblur:motion"])
def test_degrade_tiny_image(task: str) -> None:
    out = degrade(random_image(1, 1), task)
    assert out.shape == (1, 1, 3)


@pytest.mark.parametrize(("task", "size"), [("sr2", 2), ("sr3", 3), ("sr4", 4)])
def test_sr_smallest_image(task: str, size: int) -> None:
    assert degrade(random_image(size, size + 1), task).shape == (1, 1, 3)
    with pytest.raises(ValueError, match="at least"):
        degrade(random_image(size - 1, 10), task)
    with pytest.raises(ValueError, match="at least"):
        target(random_image(10, size - 1), task)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((8, 8, 3, 1), dtype=np.uint8),
        [[[0, 0, 0]]],
    ],
)
def test_degrade_rejects_bad_images(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        degrade(image, "denoise")


def test_degrade_leaves_input_untouched() -> None:
    image = random_image(20, 24)
    before = image.copy()
    for task in ALL_TASKS:
        degrade(image, task)
    np.testing.assert_array_equal(image, before)


# --- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("task", ALL_TASKS)
def test_degrade_is_deterministic(task: str) -> None:
    image = random_image(24, 30)
    np.testing.assert_array_equal(degrade(image, task, seed=7), degrade(image, task, seed=7))


@pytest.mark.parametrize("task", RANDOM_TASKS)
def test_seeds_differ(task: str) -> None:
    image = random_image(24, 30)
    assert not np.array_equal(degrade(image, task, seed=0), degrade(image, task, seed=1))


@pytest.mark.parametrize("task", ["sr2", "sr3", "sr4", "deblur"])
def test_deterministic_tasks_ignore_seed(task: str) -> None:
    image = random_image(24, 30)
    np.testing.assert_array_equal(degrade(image, task, seed=0), degrade(image, task, seed=99))


# --- super-resolution ---------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_is_pillow_bicubic_of_modcrop(scale: int) -> None:
    image = random_image(37, 53)
    height, width = 37 - 37 % scale, 53 - 53 % scale
    expected = Image.fromarray(image[:height, :width]).resize(
        (width // scale, height // scale), Image.Resampling.BICUBIC
    )
    np.testing.assert_array_equal(degrade(image, f"sr{scale}"), np.asarray(expected))


def test_sr_antialiases_checkerboard() -> None:
    board = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(board[:, :, None], 3, axis=2)
    small = degrade(image, "sr4").astype(float)
    assert abs(small.mean() - 127.5) < 2.0
    assert small.std() < 2.0
    nearest = np.asarray(Image.fromarray(image).resize((16, 16), Image.Resampling.NEAREST))
    assert abs(nearest.astype(float).mean() - 127.5) > 100.0


@pytest.mark.parametrize("task", ["sr2", "sr3", "sr4"])
def test_sr_keeps_flat_image_flat(task: str) -> None:
    out = degrade(flat_image(31, 29, 77), task)
    assert np.all(out == 77)


# --- denoising ----------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "sigma"), [("denoise", 25.0), ("denoise:15", 15.0)])
def test_noise_std_matches_sigma(task: str, sigma: float) -> None:
    noisy = degrade(flat_image(256, 256, 128), task, seed=5).astype(float) - 128.0
    assert abs(noisy.std() - sigma) < 0.3
    assert abs(noisy.mean()) < 0.3


def test_noise_is_rounded_and_clipped() -> None:
    out = degrade(flat_image(64, 64, 250), "denoise:50", seed=2)
    assert out.max() == 255  # clipped rather than wrapped around
    assert (out < 200).any()


# --- deblurring ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["deblur", "deblur:gaussian", "deblur:motion"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kernels_are_normalised_centred_and_symmetric(task: str, seed: int) -> None:
    kernel = blur_kernel(task, seed)
    assert kernel.dtype == np.float64
    assert kernel.ndim == 2 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    assert kernel.min() >= 0.0
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)
    assert np.unravel_index(kernel.argmax(), kernel.shape) != (0, 0)


def test_default_kernel_is_isotropic_gaussian() -> None:
    kernel = blur_kernel("deblur")
    assert kernel.shape == (13, 13)
    offsets = np.arange(13) - 6
    profile = np.exp(-(offsets**2) / (2 * 1.6**2))
    expected = np.outer(profile, profile)
    np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-12)
    np.testing.assert_array_equal(kernel, blur_kernel("deblur", seed=42))


@pytest.mark.parametrize("seed", range(8))
def test_random_gaussian_kernel_family(seed: int) -> None:
    kernel = blur_kernel("deblur:gaussian", seed)
    assert kernel.min() > 0.0  # a Gaussian is positive everywhere
    variances = np.linalg.eigvalsh(kernel_covariance(kernel))
    assert variances.min() > 0.8**2 - 0.02
    assert variances.max() < 2.4**2 + 0.02
    # log of a Gaussian is an exact quadratic in (x, y)
    y, x = (np.indices(kernel.shape) - kernel.shape[0] // 2).reshape(2, -1).astype(float)
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    log_k = np.log(kernel).reshape(-1)
    coef, *_ = np.linalg.lstsq(design, log_k, rcond=None)
    np.testing.assert_allclose(design @ coef, log_k, atol=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_random_motion_kernel_family(seed: int) -> None:
    kernel = blur_kernel("deblur:motion", seed)
    variances = np.linalg.eigvalsh(kernel_covariance(kernel))
    # a segment of length L has variance L²/12 along it and (almost) none across it
    assert variances.min() < 0.3
    assert 5.0**2 / 12 - 0.1 < variances.max() < 15.0**2 / 12 + 0.5
    assert np.count_nonzero(kernel) < kernel.size / 3


def test_random_kernels_depend_on_seed() -> None:
    for task in ("deblur:gaussian", "deblur:motion"):
        np.testing.assert_array_equal(blur_kernel(task, 4), blur_kernel(task, 4))
        assert not np.array_equal(blur_kernel(task, 4), blur_kernel(task, 5))


def test_blur_kernel_rejects_other_tasks() -> None:
    with pytest.raises(ValueError, match="no blur kernel"):
        blur_kernel("sr2")


@pytest.mark.parametrize("task", ["deblur", "deblur:gaussian", "deblur:motion"])
def test_blur_is_reflect_convolution_with_kernel(task: str) -> None:
    image = random_image(20, 27)
    kernel = blur_kernel(task, seed=6)
    expected = ndimage.convolve(image.astype(float), kernel[:, :, None], mode="reflect")
    expected = np.clip(np.rint(expected), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(degrade(image, task, seed=6), expected)


@pytest.mark.parametrize("task", ["deblur", "deblur:gaussian", "deblur:motion"])
@pytest.mark.parametrize("value", [0, 78, 255])
def test_blurred_flat_image_stays_flat(task: str, value: int) -> None:
    out = degrade(flat_image(19, 23, value), task, seed=11)
    assert np.all(out == value)


def test_blur_smooths_edges() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    out = degrade(image, "deblur").astype(int)
    assert 0 < out[0, 15, 0] < 255 and 0 < out[0, 16, 0] < 255
    assert np.abs(np.diff(out, axis=1)).max() < 255


# --- target -------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ALL_TASKS)
def test_target(task: str) -> None:
    image = random_image(37, 53)
    scale = scale_of(task)
    truth = target(image, task)
    height, width = 37 - 37 % scale, 53 - 53 % scale
    np.testing.assert_array_equal(truth, image[:height, :width])
    assert not np.shares_memory(truth, image)
    assert truth.flags.c_contiguous
    degraded = degrade(image, task)
    assert (degraded.shape[0] * scale, degraded.shape[1] * scale) == truth.shape[:2]

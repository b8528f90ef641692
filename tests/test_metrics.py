"""Tests for accelir.metrics: PSNR/SSIM (RGB and luma), Bjøntegaard deltas and FLOP counts."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from accelir.metrics import (
    bd_psnr,
    bd_rate,
    count_flops,
    flops_per_pixel,
    psnr,
    psnr_y,
    rgb_to_y,
    ssim,
    ssim_y,
)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


# --- PSNR ---------------------------------------------------------------------------------


def test_psnr_constant_error_of_one() -> None:
    a = np.full((8, 9, 3), 100, dtype=np.uint8)
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert psnr(a, a + 1) == pytest.approx(48.1308, abs=1e-4)


def test_psnr_identical_is_inf() -> None:
    a = random_image(10, 12)
    assert psnr(a, a.copy()) == math.inf
    assert psnr_y(a, a) == math.inf


def test_psnr_uint8_does_not_wrap() -> None:
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    b = np.full((4, 4, 3), 255, dtype=np.uint8)
    assert psnr(a, b) == pytest.approx(0.0, abs=1e-12)


def test_psnr_float_inputs_match_uint8() -> None:
    a, b = random_image(16, 16, 1), random_image(16, 16, 2)
    assert psnr(a.astype(np.float32), b.astype(np.float64)) == pytest.approx(psnr(a, b))


def test_psnr_known_mse() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # MSE = 144 / 12 = 12
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 12))


def test_psnr_grayscale() -> None:
    a = np.full((5, 5), 10, dtype=np.uint8)
    assert psnr(a, a + 2) == pytest.approx(10 * math.log10(255**2 / 4))


def test_psnr_crop_ignores_border() -> None:
    a = random_image(20, 24)
    b = a.copy()
    b[:2] = 0
    b[:, -2:] = 255
    assert psnr(a, b) < 30
    assert psnr(a, b, crop=2) == math.inf
    b[5, 5, 1] ^= 1
    expected = psnr(a[2:-2, 2:-2], b[2:-2, 2:-2])
    assert psnr(a, b, crop=2) == pytest.approx(expected)


@pytest.mark.parametrize("crop", [-1, 5, 10, 1.5, True])
def test_psnr_bad_crop(crop: object) -> None:
    a = random_image(10, 12)
    with pytest.raises(ValueError, match="crop"):
        psnr(a, a, crop=crop)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", [psnr, psnr_y, ssim, ssim_y])
def test_shape_mismatch(metric: Callable[..., float]) -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        metric(random_image(16, 16), random_image(16, 17))


@pytest.mark.parametrize("metric", [psnr_y, ssim_y])
def test_luma_metrics_need_rgb(metric: Callable[..., float]) -> None:
    gray = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="RGB"):
        metric(gray, gray)


def test_rgb_to_y_by_hand() -> None:
    pixel = np.array([[[200, 100, 50]]], dtype=np.uint8)
    expected = 16 + (65.481 * 200 + 128.553 * 100 + 24.966 * 50) / 255
    assert rgb_to_y(pixel)[0, 0] == pytest.approx(expected, abs=1e-12)
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255))[0, 0] == pytest.approx(235.0)


def test_psnr_y_by_hand() -> None:
    a, b = random_image(12, 14, 3), random_image(12, 14, 4)

    def luma(img: np.ndarray) -> np.ndarray:
        r, g, bl = (img[..., i].astype(np.float64) for i in range(3))
        return 16 + (65.481 * r + 128.553 * g + 24.966 * bl) / 255

    mse = np.mean((luma(a) - luma(b)) ** 2)
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
    mse_crop = np.mean((luma(a)[3:-3, 3:-3] - luma(b)[3:-3, 3:-3]) ** 2)
    assert psnr_y(a, b, crop=3) == pytest.approx(10 * math.log10(255**2 / mse_crop), rel=1e-12)


def test_psnr_y_ignores_chroma_only_change() -> None:
    a = np.full((4, 4, 3), 128, dtype=np.uint8)
    b = a.astype(np.float64)
    # a change along a direction orthogonal to the luma weights leaves Y unchanged
    b[..., 0] += 24.966
    b[..., 2] -= 65.481
    assert psnr(a, b) < 30
    assert psnr_y(a, b) > 100


# --- SSIM ---------------------------------------------------------------------------------


def test_ssim_identical_is_one() -> None:
    a = random_image(32, 40)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim_y(a, a) == pytest.approx(1.0)


def test_ssim_decreases_with_noise() -> None:
    a = random_image(48, 48)
    light, heavy = noisy(a, 5), noisy(a, 30)
    assert 0 < ssim(a, heavy) < ssim(a, light) < 1
    assert 0 < ssim_y(a, heavy) < ssim_y(a, light) < 1


def test_ssim_matches_skimage_wang_setting() -> None:
    a = random_image(40, 36)
    b = noisy(a, 10)
    expected = structural_similarity(
        a,
        b,
        channel_axis=-1,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(a, b) == pytest.approx(expected, rel=1e-12)
    expected_y = structural_similarity(
        rgb_to_y(a),
        rgb_to_y(b),
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim_y(a, b) == pytest.approx(expected_y, rel=1e-12)


def test_ssim_crop() -> None:
    a = random_image(40, 40)
    b = a.copy()
    b[:4] = 0
    assert ssim(a, b) < 1
    assert ssim(a, b, crop=4) == pytest.approx(1.0)


def test_ssim_too_small() -> None:
    a = random_image(10, 30)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a, a)
    with pytest.raises(ValueError, match="at least 11"):
        ssim_y(random_image(30, 30), random_image(30, 30), crop=10)


# --- Bjøntegaard --------------------------------------------------------------------------

RATES = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
PSNRS = np.array([28.1, 31.0, 33.7, 36.2, 38.4])


def reference_bd(
    rate1: np.ndarray, psnr1: np.ndarray, rate2: np.ndarray, psnr2: np.ndarray
) -> tuple[float, float]:
    """The classic np.polyfit implementation of VCEG-M33 (cubic, 4+ points)."""
    lr1, lr2 = np.log10(rate1), np.log10(rate2)

    def mean_diff(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> float:
        lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
        i1, i2 = np.polyint(np.polyfit(x1, y1, 3)), np.polyint(np.polyfit(x2, y2, 3))
        area1 = np.polyval(i1, hi) - np.polyval(i1, lo)
        area2 = np.polyval(i2, hi) - np.polyval(i2, lo)
        return float((area2 - area1) / (hi - lo))

    return mean_diff(lr1, psnr1, lr2, psnr2), 10 ** mean_diff(psnr1, lr1, psnr2, lr2) - 1


def test_bd_psnr_of_shifted_curve() -> None:
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS + 0.5) == pytest.approx(0.5, abs=1e-9)
    assert bd_psnr(RATES, PSNRS + 0.5, RATES, PSNRS) == pytest.approx(-0.5, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_of_scaled_rates() -> None:
    assert bd_rate(RATES, PSNRS, RATES * 0.9, PSNRS) == pytest.approx(-0.10, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES * 1.2, PSNRS) == pytest.approx(0.20, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_bd_accepts_lists_and_any_order() -> None:
    order = [3, 0, 4, 1, 2]
    shuffled = bd_rate(list(RATES[order]), list(PSNRS[order]), list(RATES * 0.9), list(PSNRS))
    assert shuffled == pytest.approx(-0.10, abs=1e-9)


def test_bd_matches_classic_implementation() -> None:
    rate1 = np.array([9487.76, 4593.60, 2486.44, 1358.24])
    psnr1 = np.array([40.037, 38.615, 36.845, 34.851])
    rate2 = np.array([9787.80, 4469.00, 2451.52, 1356.24])
    psnr2 = np.array([40.121, 38.651, 36.970, 34.987])
    ref_psnr, ref_rate = reference_bd(rate1, psnr1, rate2, psnr2)
    assert bd_psnr(rate1, psnr1, rate2, psnr2) == pytest.approx(ref_psnr, rel=1e-7, abs=1e-10)
    assert bd_rate(rate1, psnr1, rate2, psnr2) == pytest.approx(ref_rate, rel=1e-7, abs=1e-10)
    assert bd_psnr(rate1, psnr1, rate2, psnr2) > 0  # curve 2 is better …
    assert bd_rate(rate1, psnr1, rate2, psnr2) < 0  # … so it needs fewer bits


@pytest.mark.parametrize("points", [2, 3, 4])
def test_bd_lower_degree_fallback(points: int) -> None:
    rates, quality = RATES[:points], PSNRS[:points]
    assert bd_psnr(rates, quality, rates, quality + 0.5) == pytest.approx(0.5, abs=1e-9)
    assert bd_rate(rates, quality, rates * 0.9, quality) == pytest.approx(-0.10, abs=1e-9)


def test_bd_linear_fit_with_two_points() -> None:
    # two points per curve: straight lines, so the delta is the mean gap between the lines
    r1, q1 = [1.0, 10.0], [30.0, 40.0]
    r2, q2 = [1.0, 10.0], [31.0, 43.0]
    assert bd_psnr(r1, q1, r2, q2) == pytest.approx(2.0)


@pytest.mark.parametrize("call", [bd_psnr, bd_rate])
def test_bd_errors(call: Callable[..., float]) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        call([1.0], [30.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="equal length"):
        call([1.0, 2.0], [30.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="positive"):
        call([0.0, 2.0], [30.0, 31.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="finite"):
        call([1.0, np.nan], [30.0, 31.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="overlap"):
        call(RATES * 100, PSNRS + 20, RATES, PSNRS)
    with pytest.raises(ValueError, match="repeated"):
        call([1.0, 1.0, 2.0], [30.0, 30.0, 32.0], RATES, PSNRS)


# --- FLOPs --------------------------------------------------------------------------------


def test_count_flops_conv() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (1, 3, 10, 12)) == 2 * 3 * 8 * 9 * 10 * 12


def test_count_flops_shape_forms() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    expected = 2 * 3 * 8 * 9 * 10 * 12
    assert count_flops(conv, [1, 3, 10, 12]) == expected
    assert count_flops(conv, torch.Size([1, 3, 10, 12])) == expected
    assert count_flops(conv, [(1, 3, 10, 12)]) == expected
    assert count_flops(conv, (2, 3, 10, 12)) == 2 * expected


class _TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(5, 7, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
        return self.linear(x).sum() * scale + torch.matmul(y, y.transpose(-1, -2)).sum()


def test_count_flops_several_inputs_and_kwargs() -> None:
    model = _TwoInputs()
    flops = count_flops(model, [(4, 5), (4, 7)], scale=2.0)
    assert flops == 2 * 4 * 5 * 7 + 2 * 4 * 7 * 4


def test_count_flops_keeps_mode_and_grad_state() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    model.train()
    stats = {name: b.clone() for name, b in model.named_buffers()}
    count_flops(model, (2, 3, 4, 4))
    assert model.training
    for name, buffer in model.named_buffers():  # BatchNorm statistics are restored
        assert torch.equal(buffer, stats[name])
    assert torch.is_grad_enabled()
    model.eval()
    count_flops(model, (1, 3, 4, 4))
    assert not model.training


def test_count_flops_parameterless_model() -> None:
    assert count_flops(torch.nn.ReLU(), (1, 3, 4, 4)) == 0


@pytest.mark.parametrize("shape", [(), [], (1, 0, 3), (1, -3), ("a", "b"), [(1, 3), ()]])
def test_count_flops_bad_shapes(shape: object) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(torch.nn.ReLU(), shape)  # type: ignore[arg-type]


def test_flops_per_pixel() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert flops_per_pixel(conv, 10, 12) == pytest.approx(2 * 3 * 8 * 9)
    conv1 = torch.nn.Conv2d(1, 2, 3, padding=1)
    assert flops_per_pixel(conv1, 6, 5, channels=1) == pytest.approx(2 * 1 * 2 * 9)
    with pytest.raises(ValueError, match="height"):
        flops_per_pixel(conv, 0, 12)


def test_flops_per_pixel_upsampler_counts_only_convs() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 12, 3, padding=1),
        torch.nn.PixelShuffle(2),
        torch.nn.Upsample(scale_factor=2, mode="bilinear"),
    )
    assert flops_per_pixel(model, 8, 8) == pytest.approx(2 * 3 * 12 * 9)


def test_bd_reliability_flags_non_monotonic_and_disjoint_curves() -> None:
    from accelir.metrics import bd_reliable

    rate = [0.9, 1.2, 1.8]
    assert bd_reliable(rate, [32.6, 33.3, 34.1], [0.89, 1.18, 1.74], [32.7, 33.4, 34.1])
    # denoising: the plain JPEG's PSNR falls from q70 to q85
    assert not bd_reliable([1.26, 2.04, 3.38], [31.69, 31.96, 31.94], rate, [31.6, 31.8, 31.85])
    # the curves share too little of their ranges
    assert not bd_reliable(rate, [30.0, 31.0, 32.0], [1.7, 2.5, 3.5], [31.8, 32.5, 33.0])

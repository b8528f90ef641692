"""The error-level model: texture scalar, fit, prediction, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from accelir import error_level


def _blocks(amplitudes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Grey 32×32 blocks: mid-grey plus noise of each amplitude (more amplitude, more texture)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(amplitudes), 32, 32, 1))
    grey = 128.0 + amplitudes[:, None, None, None] * noise
    return np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8), 3, axis=3)


def test_texture_grows_with_detail_and_is_floored_for_flat_blocks() -> None:
    t = error_level.texture(_blocks(np.array([0.0, 2.0, 8.0, 32.0])))
    assert t[0] == pytest.approx(np.log10(error_level.TEXTURE_FLOOR))
    assert np.all(np.diff(t) > 0)


def test_texture_is_the_mean_absolute_laplacian_of_the_grey_interior() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    grey = pixels.astype(np.float64).mean(axis=3)
    lap = (4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1]
           - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:])  # fmt: skip
    expected = np.log10(np.abs(lap).mean(axis=(1, 2)) + error_level.TEXTURE_FLOOR)
    np.testing.assert_allclose(error_level.texture(pixels), expected, rtol=1e-12)
    with pytest.raises(ValueError):
        error_level.texture(pixels[:, :2, :2])


def test_fit_recovers_a_texture_law_and_predicts_a_mean() -> None:
    amplitudes = np.linspace(0.5, 40.0, 400)
    pixels = _blocks(amplitudes)
    t = error_level.texture(pixels)
    rng = np.random.default_rng(1)
    truth = 10 ** (0.3 + 1.2 * t - 0.1 * t * t)
    mse = truth * 10 ** rng.normal(0.0, 0.1, len(t))  # lognormal scatter around the law
    model = error_level.fit(pixels, mse)
    a, b, c = model.coefficients  # t and t² are collinear over this range: compare the law
    np.testing.assert_allclose(a + b * t + c * t * t, np.log10(truth), atol=0.05)
    # The smearing factor makes the prediction a mean, so image totals come out right.
    assert model.smear > 1.0
    assert model.mse(pixels).sum() == pytest.approx(mse.sum(), rel=0.03)
    area = np.full(len(t), 128.0 * 128.0)
    np.testing.assert_allclose(model.sse(pixels, area), model.mse(pixels) * 3 * area)
    again = error_level.LevelModel.from_dict(model.to_dict())
    np.testing.assert_array_equal(again.mse(pixels), model.mse(pixels))


@pytest.mark.parametrize(
    "bad", [{"coefficients": [1.0, 2.0], "smear": 1.0}, {"coefficients": [1.0, 2.0, np.nan], "smear": 1.0},
            {"coefficients": [1.0, 2.0, 3.0], "smear": 0.0}],
)  # fmt: skip
def test_a_malformed_level_model_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="level model"):
        error_level.LevelModel.from_dict(bad)


def test_fit_needs_blocks() -> None:
    with pytest.raises(ValueError, match="at least"):
        error_level.fit(_blocks(np.array([1.0, 2.0])), np.array([1.0, 2.0]))

"""Per-block error curves: the coding distortion the encoder knows exactly, and each utility
group's law turning it into predicted restored error."""

from __future__ import annotations

import numpy as np

from accelir import codec
from accelir.codec.layout import Layout
from accelir.codec.rates import block_distortions
from accelir.codec.transform import block_dct
from accelir.groups import UtilityGroups, fit_propagation
from accelir.profiles import QUALITY_SET, Profiles, coded_sse


def _texture(side: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = 128 + 60 * np.sin(x / 3.0) * np.cos(y / 5.0) + rng.normal(0, 12, (side, side))
    return np.clip(base, 0, 255).astype(np.uint8)


def test_coding_distortion_matches_the_decoded_error() -> None:
    """On a grey image (no chroma), the DCT-domain error per block is the luma error of the
    decoded container, up to the final rounding to 8 bits (≈ 1/12 per sample)."""
    grey = _texture()
    image = np.repeat(grey[:, :, None], 3, axis=2)
    dct = block_dct(image, Layout(32))
    predicted = block_distortions(dct, QUALITY_SET)
    assert np.all(np.diff(predicted, axis=1) <= 1e-6 * predicted[:, :1] + 1e-3)  # finer is better
    for k, q in enumerate(QUALITY_SET):
        decoded = codec.decode(codec.encode(image, np.full((2, 2), q)))
        err = (decoded[:, :, 0].astype(float) - grey) ** 2
        per_block = err.reshape(2, 32, 2, 32).sum(axis=(1, 3)).reshape(-1)
        np.testing.assert_allclose(predicted[:, k], per_block, rtol=0.15, atol=1024 / 12 + 30)


def test_coded_sse_of_profile_blocks_equals_the_encoder_view() -> None:
    """Blocks cut out of an image and re-tiled give the distortions the encoder computes."""
    image = np.stack([_texture(seed=s) for s in range(3)], axis=2)
    from accelir.profiles import block_pixels

    direct = block_distortions(block_dct(image, Layout(32)), QUALITY_SET)
    np.testing.assert_allclose(coded_sse(block_pixels(image)), direct, rtol=1e-5)


def _groups(k: int = 2) -> UtilityGroups:
    q = np.array(QUALITY_SET, dtype=float)
    mse = np.stack([np.linspace(20, 5, q.size) * (g + 1) for g in range(k)])
    return UtilityGroups(np.zeros(k - 1), mse, np.ones((k, q.size)), q)


def test_without_a_law_the_group_means_are_the_prediction() -> None:
    groups = _groups()
    area = np.array([1024.0, 512.0])
    out = groups.predict_sse(np.array([0, 1]), np.zeros((2, len(QUALITY_SET))), area)
    np.testing.assert_allclose(out, groups.mse[[0, 1]] * 3 * area[:, None])


def test_fitted_law_is_recovered_and_predicts_per_block_curves() -> None:
    rng = np.random.default_rng(0)
    n, k = 400, 2
    labels = rng.integers(0, k, n)
    coded = np.sort(rng.uniform(0, 5e4, (n, len(QUALITY_SET))), axis=1)[:, ::-1]
    truth = np.array([[1.0, 1.1], [2.5, 0.9]])
    a, b = truth[labels, :1], truth[labels, 1:]
    extra = coded - coded[:, -1:]
    sse = 100.0 + np.exp(a + b * np.log1p(extra)) - np.exp(a)
    profiles = Profiles(np.array(QUALITY_SET), np.ones_like(sse), sse, np.full(n, 1024.0),
                        np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n, int), ("x",))  # fmt: skip
    fitted = fit_propagation(_groups(k), profiles, coded, labels)
    np.testing.assert_allclose(fitted.propagation, truth, atol=0.05)
    restored = UtilityGroups.from_dict(fitted.to_dict())
    assert restored.propagation is not None
    out = restored.predict_sse(labels, coded, np.full(n, 1024.0))
    np.testing.assert_allclose(out[:, -1], restored.mse[labels, -1] * 3 * 1024.0)
    assert np.all(np.diff(out, axis=1) <= 1e-9)  # more bytes never predict more error
    # the block with more coding error gets the larger predicted drop in its group
    g0 = np.flatnonzero(labels == 0)
    drop = out[g0, 0] - out[g0, -1]
    assert np.corrcoef(drop, extra[g0, 0])[0, 1] > 0.9


def test_block_areas_count_the_pixels_of_each_cell() -> None:
    from accelir.profiles import block_areas, block_sums

    for h, w in ((100, 70), (128, 128), (1, 1), (33, 95)):
        rows, cols = -(-h // 32), -(-w // 32)
        expected = block_sums(np.ones((h, w)), rows, cols, 32)
        np.testing.assert_array_equal(block_areas(h, w, rows, cols, 32), expected)


def test_a_group_whose_error_is_lowest_at_middle_qualities_keeps_its_mean_curve() -> None:
    """Denoising: quantisation removes noise too, so restored error dips at middle qualities.
    No increasing law fits that; the group falls back to its mean curve, and no prediction is
    negative. A monotonic group keeps its law; both survive the JSON round trip."""
    rng = np.random.default_rng(1)
    n, q = 400, len(QUALITY_SET)
    labels = np.repeat([0, 1], n // 2)
    coded = np.sort(rng.uniform(0, 5e4, (n, q)), axis=1)[:, ::-1]
    dip = 3072.0 * (30 + 0.02 * (np.arange(q) - 5.0) ** 2)  # lowest at the 6th quality
    sse = np.where(
        labels[:, None] == 0,
        dip[None, :] * rng.uniform(0.9, 1.1, (n, 1)),
        3072.0 * 5 + np.exp(1.0 + 1.1 * np.log1p(coded - coded[:, -1:])) - np.exp(1.0),
    )
    area = np.full(n, 1024.0)
    profiles = Profiles(np.array(QUALITY_SET), np.ones_like(sse), sse, area,
                        np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n, int), ("x",))  # fmt: skip
    mse = np.stack([sse[labels == g].mean(axis=0) / 3072.0 for g in (0, 1)])
    groups = UtilityGroups(np.zeros(1), mse, np.ones((2, q)), np.array(QUALITY_SET, float))
    fitted = UtilityGroups.from_dict(fit_propagation(groups, profiles, coded, labels).to_dict())
    assert fitted.propagation is not None
    assert np.isnan(fitted.propagation[0]).all()
    np.testing.assert_allclose(fitted.propagation[1], [1.0, 1.1], atol=0.05)
    out = fitted.predict_sse(labels, coded, area)
    np.testing.assert_allclose(out[labels == 0], np.broadcast_to(mse[0] * 3072.0, (n // 2, q)))
    assert np.all(out >= 0)

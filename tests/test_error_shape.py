"""The error-shape correction: features, the identity at zero output, learning a known
per-block ratio, cross-validated scoring, shipping next to QP-NET, and the encoder using it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from accelir import error_shape as S
from accelir import utility_model
from accelir.profiles import QUALITY_SET


def _synthetic(n_images: int = 8, per_image: int = 40, seed: int = 0) -> S.TrainingSet:
    """Blocks whose restorer error rises 4× as fast as the reference in textured blocks and
    ¼ as fast in flat ones (texture from the pixels' spread), with convex rate–error curves."""
    rng = np.random.default_rng(seed)
    n, q = n_images * per_image, len(QUALITY_SET)
    spread = rng.uniform(1, 60, n)
    pixels = np.clip(128 + rng.normal(size=(n, 32, 32, 3)) * spread[:, None, None, None], 0, 255)
    pixels = pixels.astype(np.uint8)
    area = np.full(n, 128.0 * 128.0)
    steps = np.linspace(1, 0, q) ** 2  # falls with quality to 0 at the top
    base = rng.uniform(1, 20, n)[:, None] * steps * 3 * area[:, None]
    reference = base + rng.uniform(0, 5, n)[:, None] * 3 * area[:, None]
    ratio = np.where(spread > 30, 4.0, 0.25)[:, None]
    sse = base * ratio + 50.0 * 3 * area[:, None]
    coded = base / area[:, None] * 1024
    rate = (20 + 400 * (1 - steps))[None, :] * rng.uniform(0.5, 2, n)[:, None]
    image = np.repeat(np.arange(n_images), per_image)
    return S.TrainingSet(reference, coded, sse, pixels, area, image, rate)


def test_features_are_finite_and_sized() -> None:
    data = _synthetic(1, 10)
    x = S.features(data.reference, data.coded, data.pixels, data.area)
    assert x.shape == (10, S.FEATURES) and x.dtype == np.float32 and np.isfinite(x).all()
    with pytest.raises(ValueError):
        S.features(data.reference[:, :5], data.coded[:, :5], data.pixels, data.area)


def test_a_zero_correction_gives_the_reference_increase() -> None:
    data = _synthetic(1, 10)
    model = S.ShapeCorrection()
    for member in model.members:
        torch.nn.init.zeros_(member[-1].weight)
        torch.nn.init.zeros_(member[-1].bias)
    out = S.corrected_sse(model, data.reference, data.coded, data.pixels, data.area)
    expected = data.reference - data.reference[:, -1:]
    assert np.all(out[:, -1] == 0)
    # The reference increase through (x + ε) − ε: equal up to float rounding.
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_fit_learns_a_per_block_ratio_and_the_allocator_gains() -> None:
    train, held = _synthetic(seed=1), _synthetic(seed=2)
    model = S.fit(train, epochs=60)
    out = S.corrected_sse(model, held.reference, held.coded, held.pixels, held.area)
    truth = held.sse - held.sse[:, -1:]
    mid = slice(2, 10)  # qualities where the increase is well above ε
    ratio = out[:, mid].sum(axis=1) / truth[:, mid].sum(axis=1)
    assert np.median(np.abs(np.log2(ratio))) < 0.5  # within √2 of the truth for most blocks
    reference = held.reference - held.reference[:, -1:]
    shares = S.oracle_shares(held, {"plain": reference, "corrected": out}, (50, 70), QUALITY_SET)
    plain, corrected = shares["plain"], shares["corrected"]
    assert all(corrected[q] > plain[q] + 0.05 for q in (50, 70)), (plain, corrected)
    assert all(corrected[q] <= 1.0 + 1e-9 for q in (50, 70))


def test_cross_validation_scores_both_and_needs_enough_images() -> None:
    data = _synthetic(n_images=4, per_image=30, seed=3)
    folds_seen = []
    truth = data.sse - data.sse[:, -1:]
    shares = S.cross_validated_shares(
        data, (70,), QUALITY_SET, also={"truth": truth}, on_fold=folds_seen.append
    )
    assert folds_seen == [1, 2, 3, 4]
    assert shares["corrected"][70] > shares["reference"][70]
    # Curves scored alongside: the true curves reach the oracle (the Lagrangian's hull aside).
    assert shares["truth"][70] > 0.99
    with pytest.raises(ValueError, match="at least 4 images"):
        S.cross_validated_shares(_synthetic(n_images=3), (70,), QUALITY_SET)
    with pytest.raises(ValueError, match="at least"):
        S.fit(_synthetic(1, 10))


def test_the_correction_ships_with_qpnet_and_changes_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accelir.groups import UtilityGroups
    from accelir.qpnet import QPNet

    groups = UtilityGroups(
        thresholds=np.array([0.0]),
        mse=np.ones((2, len(QUALITY_SET))),
        rate=np.ones((2, len(QUALITY_SET))),
        qualities=np.asarray(QUALITY_SET),
    )
    args = ("edsr", "sr4", 32, QPNet(2), groups, {"top1": 0.0}, tmp_path)
    utility_model.save(*args)
    plain = utility_model.digest("edsr", "sr4", 32, tmp_path)
    assert utility_model.load("edsr", "sr4", 32, tmp_path).shape is None
    model = S.fit(_synthetic(4, 10), epochs=1, members=2, hidden=8)
    utility_model.save(*args, shape=model)
    loaded = utility_model.load("edsr", "sr4", 32, tmp_path).shape
    assert loaded is not None and len(loaded.members) == 2
    data = _synthetic(1, 10, seed=9)
    np.testing.assert_array_equal(
        S.corrected_sse(loaded, data.reference, data.coded, data.pixels, data.area),
        S.corrected_sse(model, data.reference, data.coded, data.pixels, data.area),
    )
    assert utility_model.digest("edsr", "sr4", 32, tmp_path) != plain
    utility_model.save(*args)  # without one: a shipped correction is removed
    assert utility_model.load("edsr", "sr4", 32, tmp_path).shape is None
    assert utility_model.digest("edsr", "sr4", 32, tmp_path) == plain


def test_block_statistics_match_their_numpy_definitions() -> None:
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    p = pixels.astype(np.float64) / 255.0
    grey = p.mean(axis=3)
    expected = np.concatenate(
        [
            p.mean(axis=(1, 2)),
            p.std(axis=(1, 2)),
            np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))[:, None],
            np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))[:, None],
        ],
        axis=1,
    )
    np.testing.assert_allclose(S._block_statistics(pixels), expected, rtol=1e-9, atol=1e-12)


def test_the_gate_compares_with_what_the_encoder_uses_without_a_correction() -> None:
    """``train qpnet``'s gate: against the stand-in curves by default (super-resolution), and
    against ``without`` curves where given (the group law of tasks without a reference) — a
    correction that cannot beat the true curves does not ship."""
    from accelir.cli.profile import _with_shape
    from accelir.profiles import Profiles

    def profiles(data: S.TrainingSet) -> Profiles:
        names = tuple(f"i{k}" for k in range(int(data.image.max()) + 1))
        return Profiles(np.asarray(QUALITY_SET), data.rate, data.sse, data.area, data.pixels,
                        data.image, names)  # fmt: skip

    train, val = _synthetic(seed=5), _synthetic(n_images=4, seed=6)
    inputs = {s: (d.reference, d.coded) for s, d in (("train", train), ("val", val))}
    report, model = _with_shape({}, profiles(train), profiles(val), inputs, None, 4)
    assert model is not None and report["shape"]["shipped"]
    assert report["shape"]["crossval_without"] == report["shape"]["crossval_reference"]
    truth = {s: d.sse - d.sse[:, -1:] for s, d in (("train", train), ("val", val))}
    report, model = _with_shape({}, profiles(train), profiles(val), inputs, None, 1, truth)
    assert model is None and not report["shape"]["shipped"]
    assert report["shape"]["crossval_without"]["70"] > 0.99  # the truth is the oracle's curve

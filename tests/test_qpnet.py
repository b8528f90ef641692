"""QP-NET: ordinal soft targets and loss; side inputs (training, standardisation, save/load)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from accelir import qpnet


def test_ordinal_targets_peak_at_the_label_and_fall_off_with_distance() -> None:
    labels = torch.tensor([0, 4, 9])
    targets = qpnet.ordinal_targets(labels, 10, sigma=1.0)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(3))
    assert targets.argmax(dim=1).tolist() == [0, 4, 9]
    middle = targets[1]
    assert middle[3] == middle[5] and middle[3] > middle[2] > middle[1]  # symmetric, decreasing
    assert middle[3] / middle[4] == torch.exp(torch.tensor(-0.5))


def test_ordinal_cross_entropy_prefers_near_misses() -> None:
    loss = qpnet.ordinal_cross_entropy(10, sigma=1.0)
    labels = torch.tensor([5])
    near = torch.full((1, 10), -5.0).index_fill_(1, torch.tensor([4]), 5.0)
    far = torch.full((1, 10), -5.0).index_fill_(1, torch.tensor([0]), 5.0)
    assert loss(near, labels) < loss(far, labels)
    # Plain cross-entropy does not tell a near miss from a far one.
    plain = qpnet.ordinal_cross_entropy(10, sigma=0.0)
    torch.testing.assert_close(plain(near, labels), plain(far, labels))


def _blocks_and_side(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise blocks whose group is the decile of a side scalar the pixels know nothing about."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    side = rng.normal(3.0, 2.0, (n, 1))
    labels = np.clip(np.floor((side[:, 0] - 3.0) / 2.0 * 2.5 + 5), 0, 9).astype(np.int64)
    return pixels, side, labels


def test_side_inputs_are_required_and_standardised() -> None:
    net = qpnet.QPNet(10, channels=8, side_inputs=1)
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match="side inputs"):
        net(x)
    with pytest.raises(ValueError, match="side inputs"):
        net(x, torch.zeros(2, 2))
    net.side_mean.fill_(3.0)
    net.side_std.fill_(2.0)
    torch.testing.assert_close(
        net(x, torch.full((2, 1), 5.0)) - net(x, torch.full((2, 1), 3.0)),
        net.side.weight[:, 0].expand(2, 10),
    )


def test_training_with_side_inputs_starts_from_their_calibration() -> None:
    pixels, side, labels = _blocks_and_side(600, 0)
    val_pixels, val_side, val_labels = _blocks_and_side(200, 1)
    net, history = qpnet.train_classifier(
        pixels, labels, val_pixels, val_labels, 10, epochs=2, side=side, val_side=val_side
    )
    assert net.side_inputs == 1
    assert history.epoch[0] == 0 and len(history.epoch) == 3
    # The side scalar decides the group: the calibration alone gets it right, and the CNN's
    # head starts at zero so training does not undo it.
    assert history.adjacent[0] >= 0.97 and history.top1[0] >= 0.8
    top1, adjacent = qpnet.accuracy(qpnet.predict_groups(net, val_pixels, val_side), val_labels)
    assert adjacent >= 0.95 and top1 >= 0.7
    # Without the side scalar the same pixels carry no information.
    plain, _ = qpnet.train_classifier(pixels, labels, val_pixels, val_labels, 10, epochs=2)
    assert qpnet.accuracy(qpnet.predict_groups(plain, val_pixels), val_labels)[1] < 0.6
    with pytest.raises(ValueError, match="both"):
        qpnet.train_classifier(pixels, labels, val_pixels, val_labels, 10, epochs=1, side=side)


def test_a_qpnet_with_side_inputs_survives_save_and_load(tmp_path: Path) -> None:
    from accelir import utility_model
    from accelir.groups import UtilityGroups
    from accelir.profiles import QUALITY_SET

    pixels, side, labels = _blocks_and_side(100, 2)
    net, _ = qpnet.train_classifier(
        pixels, labels, pixels, labels, 10, epochs=1, side=side, val_side=side
    )
    q = np.asarray(QUALITY_SET, dtype=float)
    groups = UtilityGroups(np.arange(9.0), np.ones((10, len(q))), np.ones((10, len(q))), q)
    utility_model.save("edsr", "sr4", 32, net, groups, {"top1": 0.0}, tmp_path)
    loaded = utility_model.load("edsr", "sr4", 32, tmp_path).qpnet
    assert loaded.side_inputs == 1
    np.testing.assert_allclose(
        qpnet.predict(loaded, pixels, side), qpnet.predict(net, pixels, side), rtol=1e-5, atol=1e-5
    )

"""QP-NET's ordinal soft targets and loss."""

from __future__ import annotations

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

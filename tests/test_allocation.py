"""Quality allocation: budgets are respected, the knapsack is exact, the Lagrangian is close."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accelir import allocation as A


def _instance(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Convex-ish rate/distortion tables like real blocks: rate grows, distortion falls."""
    rng = np.random.default_rng(seed)
    rate = np.cumsum(rng.integers(5, 60, size=(n, k)), axis=1).astype(float)
    drop = (
        rng.uniform(0.2, 1.0, size=(n, 1))
        * np.exp(-np.linspace(0, 3, k))[None, :]
        * rng.uniform(50, 500, (n, 1))
    )
    distortion = drop + rng.uniform(0, 3, size=(n, k))
    return rate, distortion


def _brute_force(rate: np.ndarray, distortion: np.ndarray, budget: float) -> float:
    best = np.inf
    for combo in itertools.product(range(rate.shape[1]), repeat=rate.shape[0]):
        c = np.array(combo)
        if A.total(rate, c) <= budget:
            best = min(best, A.total(distortion, c))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_knapsack_is_exact(seed: int) -> None:
    rate, distortion = _instance(5, 4, seed)
    budget = float(rate[:, 1].sum() + 20)
    choice = A.allocate_knapsack(rate, distortion, budget)
    assert A.total(rate, choice) <= budget
    assert A.total(distortion, choice) == pytest.approx(_brute_force(rate, distortion, budget))


@pytest.mark.parametrize("seed", range(5))
def test_lagrangian_fits_and_is_near_optimal(seed: int) -> None:
    rate, distortion = _instance(300, 13, seed)
    for fraction in (0.2, 0.5, 0.8):
        budget = float(rate[:, 0].sum() + fraction * (rate[:, -1].sum() - rate[:, 0].sum()))
        ours = A.allocate_lagrangian(rate, distortion, budget)
        exact = A.allocate_knapsack(rate, distortion, budget)
        assert A.total(rate, ours) <= budget
        assert A.total(distortion, ours) <= 1.01 * A.total(distortion, exact)


def test_lagrangian_edges() -> None:
    rate, distortion = _instance(20, 5, 1)
    assert np.array_equal(A.allocate_lagrangian(rate, distortion, 0.0), rate.argmin(axis=1))
    assert np.array_equal(A.allocate_lagrangian(rate, distortion, 1e12), distortion.argmin(axis=1))
    with pytest.raises(ValueError, match="blocks, candidates"):
        A.allocate_lagrangian(rate[:, :3], distortion, 10.0)


def test_more_budget_never_hurts() -> None:
    rate, distortion = _instance(100, 13, 7)
    low, high = rate[:, 0].sum(), rate[:, -1].sum()
    values = [
        A.total(distortion, A.allocate_lagrangian(rate, distortion, b))
        for b in np.linspace(low, high, 8)
    ]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(values))


def test_distortion_target_uses_fewest_bytes() -> None:
    rate, distortion = _instance(5, 4, 3)
    target = float(np.median(distortion, axis=1).sum())
    choice = A.allocate_for_distortion(rate, distortion, target)
    assert A.total(distortion, choice) <= target
    fewest = min(
        A.total(rate, np.array(c))
        for c in itertools.product(range(4), repeat=5)
        if A.total(distortion, np.array(c)) <= target
    )
    assert A.total(rate, choice) <= 1.15 * fewest


def test_greedy_groups_share_levels_and_respect_the_estimate() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, size=200)
    g_rate = np.cumsum(rng.integers(10, 40, size=(4, 13)), axis=1).astype(float)
    g_dist = 1000 * np.exp(-np.linspace(0, 3, 13))[None, :] * np.array([[1], [2], [4], [8]])
    counts = np.bincount(groups, minlength=4)
    budget = float(np.sum(counts * g_rate[:, 6]))
    choice = A.allocate_greedy_groups(groups, g_rate, g_dist, budget)
    for g in range(4):
        assert len(set(choice[groups == g].tolist())) == 1
    level = np.array([choice[groups == g][0] for g in range(4)])
    assert float(np.sum(counts * g_rate[np.arange(4), level])) <= budget
    # the group with the largest error gains gets the highest quality
    assert level[3] >= level[0]

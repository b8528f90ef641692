"""Choosing one JPEG quality per block: minimise the restored squared error under a byte budget.

Every allocator takes per-block candidate tables — ``rate`` (N, K) bytes and ``distortion``
(N, K) squared error of the *restored* block for each candidate quality — and returns the index
of the chosen candidate per block. Pure functions on arrays; no I/O.

- ``allocate_lagrangian``: per-block choice minimising D + λR, with λ found by bisection so the
  total rate fits the budget, then the remaining bytes spent on the most efficient upgrades
  (ours; with actual per-block byte costs and the predicted error curves).
- ``allocate_for_distortion``: the dual — the fewest bytes whose total distortion stays under a
  target (for "reach this PSNR").
- ``allocate_greedy_groups``: the paper's allocator — all blocks of a utility group share one
  quality; groups are raised one step at a time by marginal slope plus λ × look-ahead slope,
  using the groups' average sizes.
- ``allocate_knapsack``: the exact multiple-choice knapsack by dynamic programming over bytes,
  for evaluation (the oracle, with true per-block profiles).
"""

from __future__ import annotations

import numba
import numpy as np

LOOKAHEAD_WEIGHT = 0.15
_BISECTION_STEPS = 60


def _check(rate: np.ndarray, distortion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    d = np.asarray(distortion, dtype=np.float64)
    if r.ndim != 2 or r.shape != d.shape or r.shape[1] < 1:
        raise ValueError(
            f"rate and distortion must both be (blocks, candidates), got {r.shape} and {d.shape}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(d))):
        raise ValueError("rate and distortion must be finite")
    return r, d


def _choose(r: np.ndarray, d: np.ndarray, lam: float) -> np.ndarray:
    """argmin D + λR per block; ties go to the smaller rate."""
    cost = d + lam * r
    best = cost.min(axis=1, keepdims=True)
    tied = cost <= best + 1e-9 * np.maximum(1.0, np.abs(best))
    return np.where(tied, r, np.inf).argmin(axis=1)


def _lambda_bracket(r: np.ndarray, d: np.ndarray) -> float:
    """A λ large enough that every block takes its cheapest candidate."""
    dr = np.maximum(np.ptp(r, axis=1), 1e-9)
    return float(np.max(np.ptp(d, axis=1) / dr) * 4 + 1.0)


def total(values: np.ndarray, choice: np.ndarray) -> float:
    return float(values[np.arange(values.shape[0]), choice].sum())


def allocate_lagrangian(rate: np.ndarray, distortion: np.ndarray, budget: float) -> np.ndarray:
    """Minimise Σ distortion subject to Σ rate ≤ budget (per-block Lagrangian on the convex
    hull, then greedy use of the slack). If even the cheapest choice exceeds the budget, every
    block gets its cheapest candidate."""
    r, d = _check(rate, distortion)
    rows = np.arange(r.shape[0])
    cheapest = r.argmin(axis=1)
    if r[rows, cheapest].sum() > budget:
        return cheapest
    lo, hi = 0.0, _lambda_bracket(r, d)
    choice = _choose(r, d, lo)
    if r[rows, choice].sum() <= budget:
        return choice
    # Bisection on log λ (λ spans orders of magnitude); the slack pass below finishes the job.
    lo = hi * 1e-12
    for _ in range(_BISECTION_STEPS):
        if hi <= lo * (1 + 1e-6):
            break
        mid = float(np.sqrt(lo * hi))
        if r[rows, _choose(r, d, mid)].sum() <= budget:
            hi = mid
        else:
            lo = mid
    choice = _choose(r, d, hi)
    return _spend_slack(r, d, choice, budget)


def _spend_slack(r: np.ndarray, d: np.ndarray, choice: np.ndarray, budget: float) -> np.ndarray:
    """Take the most efficient single upgrades (largest distortion drop per byte) that still fit."""
    rows = np.arange(r.shape[0])
    slack = budget - r[rows, choice].sum()
    dr = r - r[rows, choice][:, None]
    dd = d[rows, choice][:, None] - d
    gain = np.where((dr > 0) & (dd > 0), dd / np.maximum(dr, 1e-12), -np.inf)
    best = gain.argmax(axis=1)
    order = np.argsort(-gain[rows, best], kind="stable")
    choice = choice.copy()
    for b in order:
        g = gain[b, best[b]]
        if not np.isfinite(g):
            break
        extra = dr[b, best[b]]
        if extra <= slack:
            choice[b] = best[b]
            slack -= extra
    return choice


def allocate_for_distortion(
    rate: np.ndarray, distortion: np.ndarray, max_distortion: float
) -> np.ndarray:
    """The fewest bytes whose total distortion is at most ``max_distortion`` (Lagrangian dual);
    if it is unreachable, the least distortion there is."""
    r, d = _check(rate, distortion)
    rows = np.arange(r.shape[0])
    lo, hi = 0.0, _lambda_bracket(r, d)
    if d[rows, _choose(r, d, hi)].sum() <= max_distortion:
        return _choose(r, d, hi)
    best = _choose(r, d, lo)
    if d[rows, best].sum() > max_distortion:
        return best
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if d[rows, _choose(r, d, mid)].sum() <= max_distortion:
            lo = mid
        else:
            hi = mid
    return _choose(r, d, lo)


def allocate_greedy_groups(
    groups: np.ndarray,
    group_rate: np.ndarray,
    group_distortion: np.ndarray,
    budget: float,
    lookahead: float = LOOKAHEAD_WEIGHT,
) -> np.ndarray:
    """The paper's allocator: one candidate per utility group, all groups starting at the first
    candidate; repeatedly raise the group with the most negative priority
    ``slope + λ · arrival slope`` by one step while the estimated total (block counts × group
    average sizes) stays within the budget. Returns the candidate index per block."""
    g_r, g_d = _check(group_rate, group_distortion)
    groups = np.asarray(groups, dtype=np.intp)
    n_groups, k = g_r.shape
    count = np.bincount(groups, minlength=n_groups).astype(np.float64)
    level = np.zeros(n_groups, dtype=np.intp)
    estimate = float(np.sum(count * g_r[:, 0]))
    while True:
        best, best_priority = -1, 0.0
        for g in range(n_groups):
            i = level[g]
            if count[g] == 0 or i >= k - 1:
                continue
            slope = (g_d[g, i + 1] - g_d[g, i]) / max(g_r[g, i + 1] - g_r[g, i], 1e-9)
            arrival = (g_d[g, k - 1] - g_d[g, i]) / max(g_r[g, k - 1] - g_r[g, i], 1e-9)
            priority = slope + lookahead * arrival
            if priority < best_priority:
                best, best_priority = g, priority
        if best < 0:
            break
        step = count[best] * (g_r[best, level[best] + 1] - g_r[best, level[best]])
        if estimate + step > budget:
            break
        estimate += step
        level[best] += 1
    return level[groups]


@numba.njit(cache=True, nogil=True)
def _knapsack(rate: np.ndarray, distortion: np.ndarray, capacity: int) -> np.ndarray:
    n, k = rate.shape
    inf = np.inf
    dp = np.full(capacity + 1, inf)
    dp[0] = 0.0
    choice = np.zeros((n, capacity + 1), dtype=np.uint8)
    for i in range(n):
        new = np.full(capacity + 1, inf)
        for b in range(capacity + 1):
            for j in range(k):
                w = rate[i, j]
                if w <= b and dp[b - w] < inf:
                    v = dp[b - w] + distortion[i, j]
                    if v < new[b]:
                        new[b] = v
                        choice[i, b] = j
        dp = new
    best_b = 0
    for b in range(capacity + 1):
        if dp[b] < dp[best_b]:
            best_b = b
    out = np.zeros(n, dtype=np.int64)
    b = best_b
    for i in range(n - 1, -1, -1):
        j = choice[i, b]
        out[i] = j
        b -= rate[i, j]
    return out


def allocate_knapsack(
    rate: np.ndarray, distortion: np.ndarray, budget: float, max_cells: int = 200_000_000
) -> np.ndarray:
    """The exact multiple-choice knapsack by dynamic programming over bytes. Rates are counted
    in units of ``ceil(N × budget / max_cells)`` bytes (1 byte for up to 200 M cells), rounding
    each rate up, so the answer always fits the budget; with a 1-byte unit it is exact."""
    r, d = _check(rate, distortion)
    n = r.shape[0]
    if r.min(axis=1).sum() > budget:
        return r.argmin(axis=1)
    unit = max(1, int(np.ceil(n * budget / max_cells)))
    r_units = np.ceil(r / unit).astype(np.int64)
    capacity = int(budget // unit)
    return _knapsack(r_units, d, capacity)

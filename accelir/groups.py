"""IR utility groups: blocks binned by how much the restored quality responds to bytes.

Method (the paper leaves it open): a block's *utility* is the drop in restored mean squared
error between the lowest and the highest candidate quality, log-scaled,
``u = log10(MSE(q10) − MSE(q95) + ε)``. Training blocks are split into K equal-count bins of u
(quantile thresholds), so the groups are ordered — group 0 gains least from bytes, group K−1
most — which makes "adjacent" (±1 group) accuracy meaningful. Each group keeps the mean
restored MSE curve over the qualities (what the allocator predicts for a block of the group)
and the mean byte curve (what the paper's group-level allocator uses).

Why a scalar of the error drop rather than the reference code's slope ΔL2/Δbytes: our
allocator knows every block's byte costs exactly, so what it needs from a group is the error
curve; binning by the error drop keeps blocks with similar curves together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from accelir.profiles import Profiles

EPSILON = 1e-3
DEFAULT_GROUPS = 10


def utility(mse: np.ndarray) -> np.ndarray:
    """(N,) log10 of the restored-MSE drop from the first to the last quality of (N, K) curves."""
    return np.log10(np.maximum(mse[:, 0] - mse[:, -1], 0.0) + EPSILON)


@dataclass(frozen=True)
class UtilityGroups:
    thresholds: np.ndarray  # (K-1,) utility cut points
    mse: np.ndarray  # (K, Q) mean restored MSE per group and quality
    rate: np.ndarray  # (K, Q) mean bytes per block per group and quality
    qualities: np.ndarray  # (Q,)

    @property
    def count(self) -> int:
        return int(self.mse.shape[0])

    def assign(self, u: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.thresholds, u, side="right")

    def to_dict(self) -> dict:
        return {
            "method": "equal-count bins of log10(MSE(q_min) - MSE(q_max) + 1e-3), restored MSE per pixel",
            "thresholds": self.thresholds.tolist(),
            "mse": self.mse.tolist(),
            "rate": self.rate.tolist(),
            "qualities": self.qualities.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> UtilityGroups:
        return cls(
            np.array(d["thresholds"]),
            np.array(d["mse"]),
            np.array(d["rate"]),
            np.array(d["qualities"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def fit_groups(profiles: Profiles, k: int = DEFAULT_GROUPS) -> UtilityGroups:
    """Quantile thresholds on the training blocks' utility, and each group's mean curves."""
    mse = profiles.mse
    u = utility(mse)
    thresholds = np.quantile(u, np.arange(1, k) / k)
    labels = np.searchsorted(thresholds, u, side="right")
    return UtilityGroups(thresholds, _group_means(mse, labels, k), _group_means(profiles.rate, labels, k),
                         profiles.qualities)  # fmt: skip


def _group_means(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean curve per group; a group left empty by tied utilities borrows its nearest
    non-empty neighbour's curve."""
    present = [g for g in range(k) if np.any(labels == g)]
    if not present:
        raise ValueError("no blocks to group")
    means = {g: values[labels == g].mean(axis=0) for g in present}
    return np.stack([means[min(present, key=lambda p: (abs(p - g), p))] for g in range(k)])


def labels(profiles: Profiles, groups: UtilityGroups) -> np.ndarray:
    return groups.assign(utility(profiles.mse))

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

Error curves per block (``predict_sse``): a group's mean curve ignores everything the encoder
knows exactly about the block itself — in particular its *coding* distortion at each quality
(``codec.rates.block_distortions``, free from the DCT). So each group also keeps a propagation
law fitted on the training blocks: how coding error above the top quality turns into restored
error, ``log(1 + ΔL2_restored) ≈ a_g + b_g · log(1 + ΔL2_coded)``, both relative to the
highest quality. A block's predicted restored-error curve is that law applied to its own
coding-error curve: the group says how much the network passes on, the block says how much
error each quality puts in. (On held-out blocks this doubles the allocation gain of the
group-mean curves; docs/results.md.) A group keeps its law only where the law fits its
training blocks better than the group's mean curve and restored error grows with coding error
(b_g > 0); otherwise (NaN parameters) its blocks get the mean curve. Denoising is such a case:
JPEG's quantisation removes noise along with detail, so restored error is lowest at middle
qualities for most blocks, which no increasing law can express.

Since encoder version 2 the laws serve denoising and deblurring only: for super-resolution the
encoder shapes each block's curve by its bicubic reference error (``accelir.reference_error``),
which predicts the restored error far better (docs/results.md), and takes only the error level
at the top quality from the block's group.
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
    propagation: np.ndarray | None = None  # (K, 2): a_g, b_g of the law; NaN: the mean curve

    def predict_sse(self, labels: np.ndarray, coded: np.ndarray, area: np.ndarray) -> np.ndarray:
        """(N, Q) predicted restored squared error (RGB summed over each block's ``area``) for
        blocks of groups ``labels`` with coding distortions ``coded`` (N, Q). Without a fitted
        propagation law, the group mean curves."""
        floor = self.mse[labels] * 3.0 * area[:, None]
        if self.propagation is None:
            return floor
        return np.where(
            np.isnan(self.propagation[labels, 0:1]),
            floor,
            _law(floor[:, -1:], self.propagation[labels], coded),
        )

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
            **(
                {
                    "propagation_method": "per group: log(1 + dSSE_restored) = a + b log(1 + dSSE_coded), "
                    "both relative to the highest quality; least squares on the training blocks "
                    "grouped by QP-NET's predictions",
                    "propagation": [  # null: the group uses its mean curve
                        None if np.isnan(a) else [float(a), float(b)] for a, b in self.propagation
                    ],
                }
                if self.propagation is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, d: dict) -> UtilityGroups:
        return cls(
            np.array(d["thresholds"]),
            np.array(d["mse"]),
            np.array(d["rate"]),
            np.array(d["qualities"]),
            np.array(
                [p if p is not None else [np.nan, np.nan] for p in d["propagation"]],
                dtype=np.float64,
            )
            if "propagation" in d
            else None,
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


def _law(top: np.ndarray, params: np.ndarray, coded: np.ndarray) -> np.ndarray:
    """Restored SSE curves from coding-error curves ``coded`` (N, Q): the error at the top
    quality ``top`` (N, 1) plus what the law (``params`` (N, 2): a, b) says coding adds."""
    a, b = params[:, 0:1], params[:, 1:2]
    extra = np.maximum(coded - coded[:, -1:], 0.0)
    return top + np.exp(a + b * np.log1p(extra)) - np.exp(a)


def fit_propagation(
    groups: UtilityGroups, profiles: Profiles, coded: np.ndarray, labels: np.ndarray
) -> UtilityGroups:
    """``groups`` with each group's coded → restored error law fitted by least squares on the
    training blocks (grouped by ``labels``, QP-NET's predictions: what the encoder will see).
    A group whose law is not increasing, or predicts its blocks' restored curves worse than
    the group's mean curve, gets NaN parameters (the mean curve)."""
    restored = np.maximum(profiles.sse - profiles.sse[:, -1:], 0.0)[:, :-1]
    extra = np.maximum(coded - coded[:, -1:], 0.0)[:, :-1]
    x_all, y_all = np.log1p(extra), np.log1p(restored)
    overall = _line(x_all.ravel(), y_all.ravel())
    params = np.stack([_line(x_all[labels == g].ravel(), y_all[labels == g].ravel())
                       if np.count_nonzero(labels == g) >= 8 else overall
                       for g in range(groups.count)])  # fmt: skip
    for g in range(groups.count):
        members = labels == g
        if params[g, 1] <= 0:
            params[g] = np.nan
        elif np.any(members):
            floor = groups.mse[g][None, :] * 3.0 * profiles.area[members, None]
            law = _law(floor[:, -1:], np.broadcast_to(params[g], (int(members.sum()), 2)),
                       coded[members])  # fmt: skip
            actual = profiles.sse[members]
            if np.mean((law - actual) ** 2) >= np.mean((floor - actual) ** 2):
                params[g] = np.nan
    return UtilityGroups(groups.thresholds, groups.mse, groups.rate, groups.qualities, params)


def _line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.stack([np.ones_like(x), x], axis=1)
    return np.linalg.lstsq(design, y, rcond=None)[0]


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

"""QP-NET: the light CNN that predicts a block's IR utility group from its degraded pixels.

Architecture (the paper's): a 4×4 convolution with stride 4 (3 → C), ReLU, two 1×1
convolutions C → C with ReLU, a 1×1 convolution C → C, global average pooling and a linear head
to the K groups. About 3.4 k multiply–adds per input pixel at C = 128.

``train_classifier`` fits it with cross-entropy, against the one-hot group or (``label_sigma``
> 0) against ordinal soft targets — a Gaussian over the ordered groups centred on the true one,
so that a neighbouring group costs less than a distant one, as it does for the allocator and
for the adjacent-accuracy score; ``train_profile_regressor`` fits the same backbone to regress
a block's whole log-MSE curve (the "direct prediction" the paper's supplementary compares
against). Top-1 and adjacent (±1 group) accuracy are the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

CHANNELS = 128


class QPNet(nn.Module):
    """Args:
    outputs: Size of the head (K groups, or Q qualities for direct profile regression).
    channels: Width of the convolutions (128 in the paper).
    """

    def __init__(self, outputs: int, channels: int = CHANNELS) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 4, stride=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )
        self.head = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """(N, 32, 32, 3) uint8 → (N, 3, 32, 32) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div_(255.0)


def ordinal_targets(labels: torch.Tensor, k: int, sigma: float) -> torch.Tensor:
    """(N, k) soft targets: a Gaussian of width ``sigma`` groups around each label, normalised."""
    groups = torch.arange(k, dtype=torch.float32)
    weights = torch.exp(-0.5 * ((groups[None, :] - labels[:, None].float()) / sigma) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def ordinal_cross_entropy(
    k: int, sigma: float
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy against ``ordinal_targets`` (plain cross-entropy when ``sigma`` is 0)."""
    if sigma <= 0:
        return nn.functional.cross_entropy

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = ordinal_targets(labels, k, sigma)
        return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    return loss


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(top-1, adjacent): exact group, and within ±1 group."""
    diff = np.abs(predicted.astype(np.int64) - truth.astype(np.int64))
    return float(np.mean(diff == 0)), float(np.mean(diff <= 1))


@dataclass
class History:
    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    adjacent: list[float] = field(default_factory=list)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if torch.rand((), generator=generator) < 0.5:
        x = x.flip(3)
    if torch.rand((), generator=generator) < 0.5:
        x = x.flip(2)
    return x


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    evaluate: Callable[[nn.Module], tuple[float, float]],
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[int, float, float, float], None] | None,
) -> History:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    history = History()
    n = x.shape[0]
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            loss = loss_fn(model(_augment(x[idx], generator)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        top1, adjacent = evaluate(model)
        history.epoch.append(epoch)
        history.loss.append(total / n)
        history.top1.append(top1)
        history.adjacent.append(adjacent)
        if on_epoch:
            on_epoch(epoch, total / n, top1, adjacent)
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
    """Raw outputs (N, outputs) for (N, 32, 32, 3) uint8 blocks."""
    model.eval()
    outs = [model(to_input(pixels[i : i + batch])) for i in range(0, len(pixels), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0))


def predict_groups(model: nn.Module, pixels: np.ndarray) -> np.ndarray:
    return predict(model, pixels).argmax(axis=1)


def train_classifier(
    pixels: np.ndarray,
    labels: np.ndarray,
    val_pixels: np.ndarray,
    val_labels: np.ndarray,
    k: int,
    *,
    epochs: int = 60,
    batch: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    label_sigma: float = 0.0,
    on_epoch: Callable[[int, float, float, float], None] | None = None,
) -> tuple[QPNet, History]:
    """QP-NET trained with cross-entropy on (pixels, group) pairs (ordinal soft targets of
    width ``label_sigma`` groups where it is positive); scored on held-out blocks."""
    torch.manual_seed(seed)  # the initial weights too: the same seed gives the same network
    model = QPNet(k)
    x, y = to_input(pixels), torch.from_numpy(labels.astype(np.int64))

    def evaluate(m: nn.Module) -> tuple[float, float]:
        return accuracy(predict_groups(m, val_pixels), val_labels)

    loss = ordinal_cross_entropy(k, label_sigma)
    history = _fit(model, x, loss, y, evaluate, epochs, batch, lr, seed, on_epoch)
    return model, history


def train_profile_regressor(
    pixels: np.ndarray,
    log_mse: np.ndarray,
    val_pixels: np.ndarray,
    val_labels: np.ndarray,
    to_group: Callable[[np.ndarray], np.ndarray],
    *,
    epochs: int = 60,
    batch: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float, float, float], None] | None = None,
) -> tuple[QPNet, History]:
    """The same network regressing each block's log10 restored-MSE curve directly; its
    prediction is mapped to a group (``to_group`` of the predicted curve) for scoring."""
    torch.manual_seed(seed)
    model = QPNet(log_mse.shape[1])
    x, y = to_input(pixels), torch.from_numpy(log_mse.astype(np.float32))

    def evaluate(m: nn.Module) -> tuple[float, float]:
        return accuracy(to_group(predict(m, val_pixels)), val_labels)

    history = _fit(model, x, nn.functional.l1_loss, y, evaluate, epochs, batch, lr, seed, on_epoch)
    return model, history

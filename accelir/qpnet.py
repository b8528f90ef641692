"""QP-NET: the light CNN that predicts a block's IR utility group from its degraded pixels.

Architecture (the paper's): a 4×4 convolution with stride 4 (3 → C), ReLU, two 1×1
convolutions C → C with ReLU, a 1×1 convolution C → C, global average pooling and a linear head
to the K groups. About 3.4 k multiply–adds per input pixel at C = 128.

Side inputs (``side_inputs`` > 0): scalars the encoder computes exactly about each block, added
to the logits through their own linear map after standardisation. For super-resolution the
side input is the block's *reference utility* (``reference_error.reference_utility``: the
groups' own scalar computed from the bicubic reference error curves the encoder already has),
which on its own gives the group at 99.9 % adjacent accuracy on held-out EDSR ×4 blocks against
86 % for the CNN on pixels (docs/results.md). ``train_classifier`` first fits the side map alone
(a 1-D ordinal calibration, by L-BFGS), starts the CNN's head at zero, and then trains both, so
the pixels refine the calibration instead of competing with it.

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
    side_inputs: Number of per-block scalars added to the logits by a linear map (0: none, the
        paper's network); standardised by the buffers ``side_mean`` and ``side_std``.
    """

    side_mean: torch.Tensor
    side_std: torch.Tensor

    def __init__(self, outputs: int, channels: int = CHANNELS, side_inputs: int = 0) -> None:
        super().__init__()
        self.side_inputs = side_inputs
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
        if side_inputs:
            self.side = nn.Linear(side_inputs, outputs)
            self.register_buffer("side_mean", torch.zeros(side_inputs))
            self.register_buffer("side_std", torch.ones(side_inputs))

    def forward(self, x: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.head(self.features(x).mean(dim=(2, 3)))
        if not self.side_inputs:
            return logits
        if side is None or side.shape != (x.shape[0], self.side_inputs):
            raise ValueError(f"this QP-NET needs ({x.shape[0]}, {self.side_inputs}) side inputs")
        return logits + self.side((side - self.side_mean) / self.side_std)


def to_input(pixels: np.ndarray) -> torch.Tensor:
    """(N, 32, 32, 3) uint8 → (N, 3, 32, 32) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div_(255.0)


def _side_tensor(side: np.ndarray | None) -> torch.Tensor | None:
    return None if side is None else torch.from_numpy(np.asarray(side, dtype=np.float32))


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
    side: torch.Tensor | None = None,
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
            x_batch = _augment(x[idx], generator)
            out = model(x_batch) if side is None else model(x_batch, side[idx])
            loss = loss_fn(out, y[idx])
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
def predict(
    model: nn.Module, pixels: np.ndarray, side: np.ndarray | None = None, batch: int = 256
) -> np.ndarray:
    """Raw outputs (N, outputs) for (N, 32, 32, 3) uint8 blocks (and their (N, S) side inputs
    where the network takes them)."""
    model.eval()
    s = _side_tensor(side)
    outs = [
        model(to_input(pixels[i : i + batch]))
        if s is None
        else model(to_input(pixels[i : i + batch]), s[i : i + batch])
        for i in range(0, len(pixels), batch)
    ]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0))


def predict_groups(
    model: nn.Module, pixels: np.ndarray, side: np.ndarray | None = None
) -> np.ndarray:
    return predict(model, pixels, side).argmax(axis=1)


def _fit_side(
    model: QPNet,
    side: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Standardise the side inputs on the training blocks, fit the side map alone (the CNN's
    head at zero: the logits are the side map's), and leave the CNN's head at zero."""
    model.side_mean.copy_(side.mean(dim=0))
    model.side_std.copy_(side.std(dim=0).clamp_min(1e-6))
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)
    standard = (side - model.side_mean) / model.side_std
    opt = torch.optim.LBFGS(model.side.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(model.side(standard), y)
        loss.backward()
        return loss

    opt.step(closure)


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
    side: np.ndarray | None = None,
    val_side: np.ndarray | None = None,
    on_epoch: Callable[[int, float, float, float], None] | None = None,
) -> tuple[QPNet, History]:
    """QP-NET trained with cross-entropy on (pixels, group) pairs (ordinal soft targets of
    width ``label_sigma`` groups where it is positive); scored on held-out blocks. With
    ``side`` (N, S) (and ``val_side`` for the held-out blocks) the network takes those side
    inputs: their map is fitted alone first (its held-out scores are the history's epoch 0),
    then the whole network from there."""
    if (side is None) != (val_side is None):
        raise ValueError("give side inputs for both the training and the held-out blocks")
    torch.manual_seed(seed)  # the initial weights too: the same seed gives the same network
    s = _side_tensor(side)
    model = QPNet(k, side_inputs=0 if s is None else s.shape[1])
    x, y = to_input(pixels), torch.from_numpy(labels.astype(np.int64))
    loss = ordinal_cross_entropy(k, label_sigma)
    if s is not None:
        _fit_side(model, s, y, loss)

    def evaluate(m: nn.Module) -> tuple[float, float]:
        return accuracy(predict_groups(m, val_pixels, val_side), val_labels)

    calibrated = evaluate(model) if s is not None else None
    history = _fit(model, x, loss, y, evaluate, epochs, batch, lr, seed, on_epoch, s)
    if calibrated is not None:  # epoch 0: the side map alone, where training starts
        history.epoch.insert(0, 0)
        history.loss.insert(0, float("nan"))
        history.top1.insert(0, calibrated[0])
        history.adjacent.insert(0, calibrated[1])
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

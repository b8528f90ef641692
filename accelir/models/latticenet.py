"""LatticeNet: lightweight image super-resolution with Lattice Blocks.

Xiaotong Luo, Yuan Xie, Yulun Zhang, Yanyun Qu, Cuihua Li and Yun Fu, "LatticeNet: Towards
Lightweight Image Super-resolution with Lattice Block", ECCV 2020. (Not the point-cloud
segmentation network of the same name.)

The network:

* mean shift — subtract the DIV2K RGB mean (a buffer);
* shallow feature extraction — two 3×3 convolutions ``3 → width → width``;
* four :class:`LatticeBlock`\\ s in sequence;
* the backward feature fusion module, :class:`BackwardFusion` (BFM) — the blocks' outputs are
  merged from the deepest to the shallowest: at each step a 1×1 convolution + ReLU halves the
  running fused feature, another halves the next shallower block's output, and the two halves
  are concatenated back to ``width`` channels;
* a global residual: the BFM output plus the shallow feature;
* the upsampler — a 3×3 convolution ``width → width``, a 3×3 convolution ``width → 3·s²`` and
  ``PixelShuffle(s)`` — then the mean is added back.

A Lattice Block is two *butterfly structures* in sequence. Each butterfly takes two inputs
``(p, q)``, passes one through a residual block ``R`` and cross-combines with learned per-channel
coefficients, given by :class:`CombinationCoefficient`::

    first butterfly (p = q = x):   r = R₁(x)
                                   P₁ = x + A₁(r) · r          Q₁ = r + B₁(x) · x
    second butterfly:              r = R₂(P₁)
                                   P₂ = r + A₂(Q₁) · Q₁        Q₂ = Q₁ + B₂(r) · r
    output:                        Conv1x1([P₂, Q₂])

Here a "residual block" is the paper's stack of three 3×3 convolutions, each followed by
LeakyReLU(0.05), whose middle channel count is ``width − width/4`` (48 of 64). A combination
coefficient is computed like channel attention from two channel statistics — the global average
and the global standard deviation — each sent through its own 1×1 conv → ReLU → 1×1 conv →
sigmoid branch (reduction 16); the two sigmoid outputs are averaged.

At ``width = 64`` and ×4 this has 776,944 parameters, the 777K of the paper's Table.

Blocks come first, the model last: :class:`CombinationCoefficient`, :class:`ResidualBlock`,
:class:`LatticeBlock`, :class:`BackwardFusion`, :class:`LatticeNet` and the registry builder
:func:`build_latticenet`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from accelir.models.common import DIV2K_RGB_MEAN
from accelir.models.registry import register

__all__ = [
    "BackwardFusion",
    "CombinationCoefficient",
    "LatticeBlock",
    "LatticeNet",
    "ResidualBlock",
    "build_latticenet",
]

"""Mean of the DIV2K training images per RGB channel, on the [0, 1] scale."""

LEAKY_SLOPE = 0.05
"""Negative slope of the LeakyReLUs inside the residual blocks."""


class CombinationCoefficient(nn.Module):
    """Per-channel combination coefficients in (0, 1), computed from channel statistics.

    ``(σ(f_mean(avg(x))) + σ(f_std(std(x)))) / 2`` where ``avg``/``std`` are the global
    average and (population) standard deviation over H×W and each ``f`` is 1×1 conv → ReLU →
    1×1 conv with ``channels // reduction`` hidden channels. Returns N×C×1×1.

    Args:
        channels: Channels of the input (and of the coefficients).
        reduction: Channel reduction of the hidden layer. Default: 16.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mean_branch = self._branch(channels, hidden)
        self.std_branch = self._branch(channels, hidden)

    @staticmethod
    def _branch(channels: int, hidden: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # Population std: defined (zero) for a 1×1 map, and autograd masks its zero points.
        std = x.std(dim=(2, 3), keepdim=True, correction=0)
        coefficient: Tensor = (self.mean_branch(mean) + self.std_branch(std)) / 2
        return coefficient


class ResidualBlock(nn.Sequential):
    """The Lattice Block's "residual block": three 3×3 convolutions, each with LeakyReLU.

    ``channels → hidden → hidden → channels``. It has no identity connection of its own: the
    butterfly around it supplies the skip paths.

    Args:
        channels: Input and output channels.
        hidden: Channels of the two inner feature maps (``channels − channels/4`` in the paper).
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__(
            nn.Conv2d(channels, hidden, kernel_size=3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )


class LatticeBlock(nn.Module):
    """Lattice Block: two butterfly structures and a 1×1 fusion (see the module docstring).

    Args:
        channels: Input and output channels.
        hidden: Inner channels of the two residual blocks.
        reduction: Channel reduction inside the combination-coefficient branches. Default: 16.
    """

    def __init__(self, channels: int, hidden: int, reduction: int = 16):
        super().__init__()
        self.residual1 = ResidualBlock(channels, hidden)
        self.coef_p1 = CombinationCoefficient(channels, reduction)  # A₁, weighs R₁(x) into P₁
        self.coef_q1 = CombinationCoefficient(channels, reduction)  # B₁, weighs x into Q₁
        self.residual2 = ResidualBlock(channels, hidden)
        self.coef_p2 = CombinationCoefficient(channels, reduction)  # A₂, weighs Q₁ into P₂
        self.coef_q2 = CombinationCoefficient(channels, reduction)  # B₂, weighs R₂(P₁) into Q₂
        self.fuse = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        r1 = self.residual1(x)
        p1 = x + self.coef_p1(r1) * r1
        q1 = r1 + self.coef_q1(x) * x
        r2 = self.residual2(p1)
        p2 = r2 + self.coef_p2(q1) * q1
        q2 = q1 + self.coef_q2(r2) * r2
        out: Tensor = self.fuse(torch.cat([p2, q2], dim=1))
        return out


class BackwardFusion(nn.Module):
    """Backward feature fusion module (BFM): fuse block outputs from deep to shallow.

    Given block outputs ``f₁ … f_n`` (shallow to deep): ``g = f_n``, then for ``i = n−1 … 1``:
    ``g = [ReLU(T_i(g)), ReLU(L_i(f_i))]`` with 1×1 convolutions ``T_i: channels → ⌊channels/2⌋``
    and ``L_i: channels → ⌈channels/2⌉``. Returns the final ``g`` (``channels`` channels).

    Args:
        channels: Channels of every block output and of the result.
        num_inputs: Number of block outputs fused (4 in the paper).
    """

    def __init__(self, channels: int, num_inputs: int):
        super().__init__()
        if num_inputs < 2:
            raise ValueError(f"backward fusion needs at least two inputs, got {num_inputs}")
        top, low = channels // 2, channels - channels // 2
        self.top = nn.ModuleList(self._reduce(channels, top) for _ in range(num_inputs - 1))
        self.low = nn.ModuleList(self._reduce(channels, low) for _ in range(num_inputs - 1))

    @staticmethod
    def _reduce(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.ReLU())

    def forward(self, features: list[Tensor]) -> Tensor:
        if len(features) != len(self.top) + 1:
            raise ValueError(f"expected {len(self.top) + 1} features, got {len(features)}")
        fused = features[-1]
        shallower = reversed(features[:-1])
        for top, low, feature in zip(self.top, self.low, shallower, strict=True):
            fused = torch.cat([top(fused), low(feature)], dim=1)
        return fused


class LatticeNet(nn.Module):
    """LatticeNet for RGB images in [0, 1].

    Args:
        scale: Upsampling factor (2, 3 or 4).
        width: Feature channels of the body (64 in the paper).
        num_blocks: Lattice Blocks (4 in the paper). Default: 4.
        hidden: Inner channels of the residual blocks. Default: ``width − width // 4``
            (48 for 64, as in the paper).
        reduction: Channel reduction of the combination-coefficient branches. Default: 16.
        rgb_mean: Per-channel mean subtracted at the input and added back at the output.
            Default: the DIV2K mean.
    """

    # Context a tile needs for exact tiled inference (local reach; the combination coefficients pool the whole tile, so tiles differ slightly).
    tile_margin = 64
    tile_multiple = 1

    rgb_mean: Tensor

    def __init__(
        self,
        scale: int,
        width: int = 64,
        num_blocks: int = 4,
        hidden: int | None = None,
        reduction: int = 16,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ):
        super().__init__()
        hidden = width - width // 4 if hidden is None else hidden
        self.scale = scale
        # A constant: a buffer (it follows .to()) kept out of the state dict.
        self.register_buffer("rgb_mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.shallow = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=3, padding=1),
            nn.Conv2d(width, width, kernel_size=3, padding=1),
        )
        self.blocks = nn.ModuleList(
            LatticeBlock(width, hidden, reduction) for _ in range(num_blocks)
        )
        self.fusion = BackwardFusion(width, num_blocks)
        self.upsample = nn.Sequential(
            nn.Conv2d(width, width, kernel_size=3, padding=1),
            nn.Conv2d(width, 3 * scale * scale, kernel_size=3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: Tensor) -> Tensor:
        """N×3×H×W low-resolution RGB → N×3×(scale·H)×(scale·W), for any H, W ≥ 1."""
        mean = self.rgb_mean.to(x.dtype)
        shallow = self.shallow(x - mean)
        features: list[Tensor] = []
        out = shallow
        for block in self.blocks:
            out = block(out)
            features.append(out)
        out = self.fusion(features) + shallow
        result: Tensor = self.upsample(out)
        return result + mean


@register(
    "latticenet",
    "sr",
    (64, 48, 42),
    "Luo et al., LatticeNet: Towards Lightweight Image Super-resolution with Lattice Block, "
    "ECCV 2020",
)
def build_latticenet(width: int, scale: int) -> LatticeNet:
    """LatticeNet with four Lattice Blocks of ``width`` channels at the given ``scale``."""
    return LatticeNet(scale=scale, width=width)

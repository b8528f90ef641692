"""CARN: the Cascading Residual Network for fast, lightweight super-resolution.

Namhyuk Ahn, Byungkon Kang and Kyung-Ah Sohn, "Fast, Accurate, and Lightweight
Super-Resolution with Cascading Residual Network", ECCV 2018 (arXiv:1803.08664).

This is the full CARN, not the group-convolution CARN-M. Its structure:

* mean shift — subtract the DIV2K RGB mean (a buffer);
* entry — a 3×3 convolution ``3 → width``;
* three :class:`CascadingBlock`\\ s connected by *global cascading*: after block ``i`` the input
  and the outputs of blocks 1…i are concatenated and fused by a 1×1 convolution + ReLU, and that
  fused feature feeds block ``i + 1`` (or the upsampler after the third);
* inside each cascading block, the same pattern one level down (*local cascading*): three
  :class:`ResidualBlock`\\ s, each followed by a 1×1 convolution + ReLU over the concatenation of
  the block's input and every residual block's output so far;
* upsampler — 3×3 convolution to ``r²·width`` channels, ReLU, ``PixelShuffle(r)``: one step for
  ×2 and ×3, two ×2 steps for ×4;
* exit — a 3×3 convolution ``width → 3``, then the mean is added back.

The paper trains one multi-scale network with an upsampler per scale (1,592K parameters in
all); a network built here has the upsampler of its own scale only.

Blocks come first, the model last: :class:`ResidualBlock`, :class:`CascadingBlock`,
:class:`Upsampler`, :class:`CARN` and the registry builder :func:`build_carn`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from accelir.models.common import DIV2K_RGB_MEAN
from accelir.models.registry import register

__all__ = ["CARN", "CascadingBlock", "ResidualBlock", "Upsampler", "build_carn"]

"""Mean of the DIV2K training images per RGB channel, on the [0, 1] scale."""

CASCADE_DEPTH = 3
"""Residual blocks per cascading block, and cascading blocks per network, in the paper."""


def _fuse1x1(in_channels: int, out_channels: int) -> nn.Sequential:
    """A cascading 1×1 convolution followed by ReLU (the paper's "1×1 Conv" nodes)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """CARN residual block: ``ReLU(x + conv(ReLU(conv(x))))`` with 3×3 convolutions.

    Unlike EDSR's block, the sum goes through a ReLU (the original ResNet arrangement).

    Args:
        channels: Input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(x + self.body(x))
        return out


class CascadingBlock(nn.Module):
    """Local cascading: residual blocks whose outputs accumulate in a growing concatenation.

    With ``c₀ = x``: for each stage ``i``, ``bᵢ = RBᵢ(oᵢ₋₁)``, ``cᵢ = [cᵢ₋₁, bᵢ]`` and
    ``oᵢ = ReLU(Conv1x1ᵢ(cᵢ))``, where ``o₀ = x``; the block returns the last ``oᵢ``. The
    i-th 1×1 convolution therefore reads ``(i + 1)·channels`` channels.

    Args:
        channels: Input and output channels.
        depth: Number of residual blocks (3 in the paper).
    """

    def __init__(self, channels: int, depth: int = CASCADE_DEPTH):
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(channels) for _ in range(depth))
        self.fusions = nn.ModuleList(_fuse1x1((i + 2) * channels, channels) for i in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        cascade, out = x, x
        for block, fuse in zip(self.blocks, self.fusions, strict=True):
            cascade = torch.cat([cascade, block(out)], dim=1)
            out = fuse(cascade)
        return out


class Upsampler(nn.Sequential):
    """CARN's sub-pixel upsampler: ``[3×3 conv → r²·channels, ReLU, PixelShuffle(r)]`` steps.

    One step with r = ``scale`` for ×2 and ×3, ``log2(scale)`` steps with r = 2 for ×4 (and
    other powers of two).

    Args:
        channels: Feature channels in and out.
        scale: Total upsampling factor.
    """

    def __init__(self, channels: int, scale: int):
        if scale == 3:
            factors = [3]
        elif scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * (scale.bit_length() - 1)
        else:
            raise ValueError(f"upsampling scale must be 3 or a power of two, got {scale}")
        layers: list[nn.Module] = []
        for r in factors:
            layers += [
                nn.Conv2d(channels, r * r * channels, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(r),
            ]
        super().__init__(*layers)


class CARN(nn.Module):
    """CARN for RGB images in [0, 1].

    Args:
        scale: Upsampling factor (2, 3 or 4).
        width: Feature channels everywhere in the body (64 in the paper).
        depth: Cascading blocks in the network, and residual blocks per cascading block
            (3 in the paper). Default: 3.
        rgb_mean: Per-channel mean subtracted at the input and added back at the output.
            Default: the DIV2K mean.
    """

    # Context a tile needs for exact tiled inference (about 22 stacked 3×3 convolutions).
    tile_margin = 32
    tile_multiple = 1

    rgb_mean: Tensor

    def __init__(
        self,
        scale: int,
        width: int = 64,
        depth: int = CASCADE_DEPTH,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ):
        super().__init__()
        self.scale = scale
        # A constant: a buffer (it follows .to()) kept out of the state dict.
        self.register_buffer("rgb_mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.entry = nn.Conv2d(3, width, kernel_size=3, padding=1)
        self.blocks = nn.ModuleList(CascadingBlock(width, depth) for _ in range(depth))
        self.fusions = nn.ModuleList(_fuse1x1((i + 2) * width, width) for i in range(depth))
        self.upsample = Upsampler(width, scale)
        self.exit = nn.Conv2d(width, 3, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """N×3×H×W low-resolution RGB → N×3×(scale·H)×(scale·W), for any H, W ≥ 1."""
        mean = self.rgb_mean.to(x.dtype)
        out = self.entry(x - mean)
        cascade = out
        for block, fuse in zip(self.blocks, self.fusions, strict=True):  # global cascading
            cascade = torch.cat([cascade, block(out)], dim=1)
            out = fuse(cascade)
        out = self.exit(self.upsample(out))
        return out + mean


@register(
    "carn",
    "sr",
    (64, 48, 40),
    "Ahn, Kang & Sohn, Fast, Accurate, and Lightweight Super-Resolution with Cascading "
    "Residual Network, ECCV 2018",
)
def build_carn(width: int, scale: int) -> CARN:
    """The full CARN (three cascading blocks of three residual blocks), ``width`` channels."""
    return CARN(scale=scale, width=width)

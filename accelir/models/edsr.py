"""EDSR baseline: the Enhanced Deep Super-Resolution network, small configuration.

Bee Lim, Sanghyun Son, Heewon Kim, Seungjun Nah and Kyoung Mu Lee, "Enhanced Deep Residual
Networks for Single Image Super-Resolution", CVPR Workshops (NTIRE) 2017 (arXiv:1707.02921).

EDSR is a plain residual network without batch normalisation:

* mean shift — subtract the DIV2K RGB mean (kept as a buffer, not as a frozen convolution);
* head — a 3×3 convolution ``3 → width``;
* body — residual blocks ``x + res_scale · conv(ReLU(conv(x)))`` followed by one more 3×3
  convolution, all wrapped in a global skip connection from the head's output;
* tail — a sub-pixel upsampler (3×3 convolution to ``r²·width`` channels + ``PixelShuffle(r)``,
  once for ×2 and ×3, twice with r = 2 for ×4) and a 3×3 convolution ``width → 3``;
* add the mean back.

The paper's baseline has 16 blocks of 64 channels; the registered network here uses 8 blocks
(``res_scale = 1``), ``width`` channels. Blocks come first in this file, the model last:
:class:`ResBlock`, :class:`Upsampler`, :class:`EDSR` and the registry builder :func:`build_edsr`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from accelir.models.common import DIV2K_RGB_MEAN
from accelir.models.registry import register

__all__ = ["EDSR", "ResBlock", "Upsampler", "build_edsr"]

"""Mean of the DIV2K training images per RGB channel, on the [0, 1] scale."""


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3×3 convolution with bias and "same" zero padding."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """EDSR residual block: ``x + res_scale · conv(ReLU(conv(x)))``, no batch normalisation.

    Args:
        channels: Input and output channels.
        res_scale: Factor on the residual branch (0.1 in the paper's large EDSR). Default: 1.
    """

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            _conv3x3(channels, channels), nn.ReLU(inplace=True), _conv3x3(channels, channels)
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        residual: Tensor = self.body(x)
        if self.res_scale != 1.0:
            residual = residual * self.res_scale
        return x + residual


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling by ``scale`` ∈ {2, 3, 4} (or any power of two).

    Each step is a 3×3 convolution ``channels → r²·channels`` and ``PixelShuffle(r)``: one step
    with r = 3 for ×3, ``log2(scale)`` steps with r = 2 otherwise. No activation.

    Args:
        channels: Feature channels in and out.
        scale: Total upsampling factor.
    """

    def __init__(self, channels: int, scale: int):
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [_conv3x3(channels, 9 * channels), nn.PixelShuffle(3)]
        elif scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(scale.bit_length() - 1):
                layers += [_conv3x3(channels, 4 * channels), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"upsampling scale must be 3 or a power of two, got {scale}")
        super().__init__(*layers)


class EDSR(nn.Module):
    """EDSR for RGB images in [0, 1].

    Args:
        scale: Upsampling factor (2, 3 or 4).
        width: Feature channels of the head, body and upsampler (64 in the paper's baseline).
        num_blocks: Residual blocks in the body (16 in the paper's baseline). Default: 8.
        res_scale: Residual scaling inside each block. Default: 1.
        rgb_mean: Per-channel mean subtracted at the input and added back at the output.
            Default: the DIV2K mean.
    """

    # Context a tile needs for exact tiled inference (about 20 stacked 3×3 convolutions at the input resolution).
    tile_margin = 32
    tile_multiple = 1

    rgb_mean: Tensor

    def __init__(
        self,
        scale: int,
        width: int = 64,
        num_blocks: int = 8,
        res_scale: float = 1.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ):
        super().__init__()
        self.scale = scale
        # A constant: a buffer (it follows .to()) kept out of the state dict.
        self.register_buffer("rgb_mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.head = _conv3x3(3, width)
        self.body = nn.Sequential(
            *(ResBlock(width, res_scale) for _ in range(num_blocks)), _conv3x3(width, width)
        )
        self.tail = nn.Sequential(Upsampler(width, scale), _conv3x3(width, 3))

    def forward(self, x: Tensor) -> Tensor:
        """N×3×H×W low-resolution RGB → N×3×(scale·H)×(scale·W), for any H, W ≥ 1."""
        mean = self.rgb_mean.to(x.dtype)
        x = self.head(x - mean)
        x = x + self.body(x)
        out: Tensor = self.tail(x)
        return out + mean


@register(
    "edsr",
    "sr",
    (64, 40, 32),
    "Lim et al., Enhanced Deep Residual Networks for Single Image Super-Resolution, CVPRW 2017",
)
def build_edsr(width: int, scale: int) -> EDSR:
    """EDSR baseline with 8 residual blocks of ``width`` channels at the given ``scale``."""
    return EDSR(scale=scale, width=width, num_blocks=8)

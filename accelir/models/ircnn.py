"""The IRCNN denoiser: a shallow dilated CNN used as a denoiser prior.

Paper: K. Zhang, W. Zuo, S. Gu, L. Zhang, "Learning Deep CNN Denoiser Prior for Image
Restoration", IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2017.

This module holds the colour denoiser: seven 3×3 convolutions with dilations 1, 2, 3, 4, 3, 2, 1
(receptive field 33×33), ReLU after the first six, batch normalisation on layers 2–6, and residual
learning (the network predicts the noise; the output is the input minus that prediction). Every
layer pads by its dilation, so any H, W ≥ 1 works without padding or cropping.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from accelir.models.common import kaiming_init
from accelir.models.registry import register

__all__ = ["IRCNN", "DilatedConvBNReLU", "build_ircnn"]

PAPER = (
    "K. Zhang, W. Zuo, S. Gu, L. Zhang, Learning Deep CNN Denoiser Prior for Image "
    "Restoration, CVPR 2017"
)

DILATIONS = (1, 2, 3, 4, 3, 2, 1)


class DilatedConvBNReLU(nn.Sequential):
    """Dilated 3×3 convolution (no bias: batch norm supplies the shift), batch norm, ReLU.

    Args:
        in_channels: Input channel count.
        out_channels: Output channel count.
        dilation: Dilation of the kernel; the padding equals it, so H and W are kept.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class IRCNN(nn.Module):
    """IRCNN denoiser: predicts the noise of ``x`` and returns ``x`` minus it.

    Args:
        in_channels: Channels of the image (3 for the colour denoiser, 1 for grey).
        width: Feature channels of every hidden layer (64 in the paper).
        dilations: Dilation of each 3×3 layer, first to last (at least 3 layers); the first layer
            is conv+ReLU, the middle ones conv+BN+ReLU, the last a plain conv.
    """

    # Context a tile needs for exact tiled inference (dilations 1+2+3+4+3+2+1 = 16).
    tile_margin = 24
    tile_multiple = 1

    def __init__(
        self, in_channels: int = 3, width: int = 64, dilations: Sequence[int] = DILATIONS
    ) -> None:
        super().__init__()
        if len(dilations) < 3:
            raise ValueError(f"IRCNN needs at least 3 layers, got dilations {tuple(dilations)}")
        first, *middle, last = dilations
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=first, dilation=first),
            nn.ReLU(inplace=True),
        )
        self.body = nn.Sequential(*(DilatedConvBNReLU(width, width, d) for d in middle))
        self.tail = nn.Conv2d(width, in_channels, 3, padding=last, dilation=last)
        kaiming_init(self)  # He initialisation, as in the paper

    def forward(self, x: Tensor) -> Tensor:
        noise = self.tail(self.body(self.head(x)))
        return x - noise


@register("ircnn", "denoise", (64, 52), PAPER)
def build_ircnn(width: int, scale: int) -> nn.Module:
    """The 7-layer colour IRCNN denoiser with ``width`` channels; ``scale`` is ignored (1)."""
    return IRCNN(in_channels=3, width=width, dilations=DILATIONS)

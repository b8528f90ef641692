"""DnCNN: the residual-learning denoising CNN.

Paper: K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising", IEEE Transactions on Image Processing 26(7), 2017.

This module holds the colour blind denoiser: a plain stack of 3×3 convolutions (conv+ReLU, then
``num_layers − 2`` × conv+BN+ReLU, then conv) that predicts the noise; the output is the input
minus that prediction (residual learning). The network is fully convolutional with "same"
padding, so any H, W ≥ 1 works without padding or cropping.
"""

from __future__ import annotations

from torch import Tensor, nn

from accelir.models.common import kaiming_init
from accelir.models.registry import register

__all__ = ["ConvBNReLU", "DnCNN", "build_dncnn"]

PAPER = (
    "K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, Beyond a Gaussian Denoiser: Residual "
    "Learning of Deep CNN for Image Denoising, IEEE TIP 2017"
)


class ConvBNReLU(nn.Sequential):
    """3×3 convolution (no bias: batch norm supplies the shift), batch norm, ReLU.

    Args:
        in_channels: Input channel count.
        out_channels: Output channel count.
        dilation: Dilation of the 3×3 kernel; the padding equals it, so H and W are kept.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DnCNN(nn.Module):
    """DnCNN: predicts the noise of ``x`` and returns ``x`` minus it.

    Args:
        in_channels: Channels of the image (3 for the colour denoiser, 1 for grey).
        width: Feature channels of every hidden layer (64 in the paper).
        num_layers: Total convolution layers, first and last included (17 in the paper for a
            known noise level, 20 for the paper's blind colour model CDnCNN-B).
    """

    # Context a tile needs for exact tiled inference (17 stacked 3×3 convolutions).
    tile_margin = 24
    tile_multiple = 1

    def __init__(self, in_channels: int = 3, width: int = 64, num_layers: int = 17) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"DnCNN needs at least 2 layers, got {num_layers}")
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*(ConvBNReLU(width, width) for _ in range(num_layers - 2)))
        self.tail = nn.Conv2d(width, in_channels, 3, padding=1)
        kaiming_init(self)  # He initialisation, as in the paper

    def forward(self, x: Tensor) -> Tensor:
        noise = self.tail(self.body(self.head(x)))
        return x - noise


@register("dncnn", "denoise", (64, 56), PAPER)
def build_dncnn(width: int, scale: int) -> nn.Module:
    """The 17-layer colour blind DnCNN with ``width`` channels; ``scale`` is ignored (always 1)."""
    return DnCNN(in_channels=3, width=width, num_layers=17)

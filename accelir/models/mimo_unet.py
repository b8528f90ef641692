"""MIMO-UNet: a multi-input multi-output U-Net for single-image deblurring.

Paper: S.-J. Cho, S.-W. Ji, J.-P. Hong, S.-W. Jung, S.-J. Ko, "Rethinking Coarse-to-Fine
Approach in Single Image Deblurring", IEEE/CVF International Conference on Computer Vision
(ICCV), 2021.

This module holds the building blocks and the network, bottom-up:

- ``BasicConv``: convolution (or transposed convolution) with an optional ReLU;
- ``ResBlock``: conv+ReLU, conv, plus the identity; ``ResGroup``: ``num_res`` of them, used as
  the encoder blocks EB1–EB3 and the decoder blocks DB1–DB3;
- ``SCM``: the shallow convolutional module that embeds the ½ and ¼ downscaled inputs;
- ``FAM``: the feature attention module that merges an SCM output into the encoder features;
- ``AFF``: the asymmetric feature fusion of the three encoder outputs for one decoder scale;
- ``MIMOUNet``: the network. It takes the image at full, ½ and ¼ resolution (downscaled by
  bilinear interpolation) and produces restored images at ¼, ½ and full resolution, each the
  decoder's 3-channel output plus the correspondingly downscaled input.

The network halves the resolution twice, so inputs are padded by replication to a multiple of 4
and the outputs are cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelir.models.registry import register

__all__ = ["AFF", "FAM", "SCM", "BasicConv", "MIMOUNet", "ResBlock", "ResGroup", "build_mimo_unet"]

PAPER = (
    "S.-J. Cho, S.-W. Ji, J.-P. Hong, S.-W. Jung, S.-J. Ko, Rethinking Coarse-to-Fine Approach "
    "in Single Image Deblurring, ICCV 2021"
)


def _resize(x: Tensor, factor: float) -> Tensor:
    """Bilinear resampling by ``factor`` (0.5 on an even size is exact 2×2 averaging)."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class BasicConv(nn.Sequential):
    """A convolution with bias, optionally followed by ReLU; "same" padding.

    Args:
        in_channels: Input channel count.
        out_channels: Output channel count.
        kernel_size: Kernel size.
        stride: Stride; 2 halves (or, transposed, doubles) the resolution.
        relu: Whether a ReLU follows the convolution.
        transpose: Use a transposed convolution (upsampling; the paper uses 4×4, stride 2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        relu: bool = True,
        transpose: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        if transpose:
            padding = kernel_size // 2 - 1
            layers.append(
                nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding)
            )
        else:
            padding = kernel_size // 2
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual block: 3×3 conv + ReLU, 3×3 conv, plus the input.

    Args:
        channels: Input and output channel count.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(channels, channels, 3, relu=True),
            BasicConv(channels, channels, 3, relu=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + x


class ResGroup(nn.Sequential):
    """``num_res`` residual blocks: an encoder block (EB) or a decoder block (DB) of the paper.

    Args:
        channels: Input and output channel count.
        num_res: Number of residual blocks (8 in the paper).
    """

    def __init__(self, channels: int, num_res: int) -> None:
        super().__init__(*(ResBlock(channels) for _ in range(num_res)))


class SCM(nn.Module):
    """Shallow convolutional module: embeds a downscaled RGB input into ``out_channels`` features.

    Four convolutions (3×3, 1×1, 3×3, 1×1) extract ``out_channels − 3`` features, which are
    concatenated with the input itself and mixed by a final 1×1 convolution.

    Args:
        out_channels: Output channel count (at least 4): the encoder width at that scale.
        in_channels: Channels of the image.
    """

    def __init__(self, out_channels: int, in_channels: int = 3) -> None:
        super().__init__()
        if out_channels < in_channels + 1 or out_channels < 4:
            raise ValueError(f"SCM needs at least 4 output channels, got {out_channels}")
        quarter, half = out_channels // 4, out_channels // 2
        self.main = nn.Sequential(
            BasicConv(in_channels, quarter, 3, relu=True),
            BasicConv(quarter, half, 1, relu=True),
            BasicConv(half, half, 3, relu=True),
            BasicConv(half, out_channels - in_channels, 1, relu=False),
        )
        self.fuse = BasicConv(out_channels, out_channels, 1, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(torch.cat((x, self.main(x)), dim=1))


class FAM(nn.Module):
    """Feature attention module: ``encoder + conv(encoder ⊙ scm)``.

    The SCM features act as attention on the (strided-conv) encoder features; the product is
    refined by a 3×3 convolution and added back to the encoder features.

    Args:
        channels: Channel count of both inputs and the output.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.merge = BasicConv(channels, channels, 3, relu=False)

    def forward(self, encoder: Tensor, scm: Tensor) -> Tensor:
        return encoder + self.merge(encoder * scm)


class AFF(nn.Module):
    """Asymmetric feature fusion: concatenates the three encoder outputs (already resampled to
    one scale) and maps them to that scale's decoder width with a 1×1 conv + ReLU and a 3×3 conv.

    Args:
        in_channels: Sum of the three encoder widths (7 × base channels).
        out_channels: Width of the decoder scale the fused features feed.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            BasicConv(in_channels, out_channels, 1, relu=True),
            BasicConv(out_channels, out_channels, 3, relu=False),
        )

    def forward(self, e1: Tensor, e2: Tensor, e3: Tensor) -> Tensor:
        return self.fuse(torch.cat((e1, e2, e3), dim=1))


class MIMOUNet(nn.Module):
    """MIMO-UNet: deblurs ``x``; ``forward_multi`` also returns the ¼ and ½ scale outputs.

    Encoder widths are ``c``, ``2c``, ``4c`` at scales 1, ½, ¼ (``c = base_channels``).

    Args:
        base_channels: Feature channels at full resolution (32 in the paper).
        num_res: Residual blocks per encoder and decoder block (8 in the paper; 20 for
            MIMO-UNet+).
        in_channels: Channels of the image.
    """

    # Context a tile needs for exact tiled inference (8 residual blocks per scale at ¼ resolution dominate the reach; tiles stay on the 4×4 grid).
    tile_margin = 320
    tile_multiple = 4

    multiple = 4  # two stride-2 stages

    def __init__(self, base_channels: int = 32, num_res: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        c = base_channels
        if c < 2:
            raise ValueError(f"MIMO-UNet needs at least 2 base channels, got {c}")
        # Encoder: feature extraction / downsampling convs, SCMs and FAMs, encoder blocks.
        self.embed1 = BasicConv(in_channels, c, 3, relu=True)
        self.down2 = BasicConv(c, 2 * c, 3, stride=2, relu=True)
        self.down3 = BasicConv(2 * c, 4 * c, 3, stride=2, relu=True)
        self.scm2 = SCM(2 * c, in_channels)
        self.scm3 = SCM(4 * c, in_channels)
        self.fam2 = FAM(2 * c)
        self.fam3 = FAM(4 * c)
        self.eb1 = ResGroup(c, num_res)
        self.eb2 = ResGroup(2 * c, num_res)
        self.eb3 = ResGroup(4 * c, num_res)
        # Skip connections: asymmetric fusion of all encoder outputs for scales 1 and ½.
        self.aff1 = AFF(7 * c, c)
        self.aff2 = AFF(7 * c, 2 * c)
        # Decoder: decoder blocks, upsampling, merging with the AFF outputs, image outputs.
        self.db3 = ResGroup(4 * c, num_res)
        self.db2 = ResGroup(2 * c, num_res)
        self.db1 = ResGroup(c, num_res)
        self.up3 = BasicConv(4 * c, 2 * c, 4, stride=2, relu=True, transpose=True)
        self.up2 = BasicConv(2 * c, c, 4, stride=2, relu=True, transpose=True)
        self.merge2 = BasicConv(4 * c, 2 * c, 1, relu=True)
        self.merge1 = BasicConv(2 * c, c, 1, relu=True)
        self.out3 = BasicConv(4 * c, in_channels, 3, relu=False)
        self.out2 = BasicConv(2 * c, in_channels, 3, relu=False)
        self.out1 = BasicConv(c, in_channels, 3, relu=False)

    def forward_multi(self, x: Tensor) -> list[Tensor]:
        """The restored images at ¼, ½ and full resolution, in that order.

        The full-resolution output is N×C×H×W; the others are N×C×⌈H/2⌉×⌈W/2⌉ and
        N×C×⌈H/4⌉×⌈W/4⌉ (exactly H/2 and H/4 when H and W are multiples of 4).
        """
        _, _, h, w = x.shape
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x2 = _resize(x, 0.5)
        x4 = _resize(x2, 0.5)

        # Encoder.
        e1 = self.eb1(self.embed1(x))
        e2 = self.eb2(self.fam2(self.down2(e1), self.scm2(x2)))
        e3 = self.eb3(self.fam3(self.down3(e2), self.scm3(x4)))

        # Asymmetric feature fusion of the encoder outputs at scales 1 and ½.
        e3_at2 = _resize(e3, 2.0)
        skip1 = self.aff1(e1, _resize(e2, 2.0), _resize(e3_at2, 2.0))
        skip2 = self.aff2(_resize(e1, 0.5), e2, e3_at2)

        # Decoder, coarse to fine; each output adds the input at that scale.
        d3 = self.db3(e3)
        out4 = self.out3(d3) + x4
        d2 = self.db2(self.merge2(torch.cat((self.up3(d3), skip2), dim=1)))
        out2 = self.out2(d2) + x2
        d1 = self.db1(self.merge1(torch.cat((self.up2(d2), skip1), dim=1)))
        out1 = self.out1(d1) + x

        return [
            out4[..., : -(-h // 4), : -(-w // 4)],
            out2[..., : -(-h // 2), : -(-w // 2)],
            out1[..., :h, :w],
        ]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_multi(x)[-1]


@register("mimo_unet", "deblur", (32, 28, 26), PAPER)
def build_mimo_unet(width: int, scale: int) -> nn.Module:
    """MIMO-UNet with ``width`` base channels and 8 residual blocks per stage; ``scale`` is
    ignored (always 1)."""
    return MIMOUNet(base_channels=width, num_res=8, in_channels=3)

"""FSRCNN: the Fast Super-Resolution Convolutional Neural Network.

Chao Dong, Chen Change Loy and Xiaoou Tang, "Accelerating the Super-Resolution Convolutional
Neural Network", ECCV 2016 (arXiv:1608.00367).

FSRCNN works on the low-resolution image throughout and upsamples only at the very end with a
learned deconvolution (transposed convolution). Its five parts are, with the paper's notation
``FSRCNN(d, s, m)``:

1. feature extraction — a 5×5 convolution to ``d`` channels;
2. shrinking — a 1×1 convolution ``d → s``;
3. mapping — ``m`` 3×3 convolutions ``s → s``;
4. expanding — a 1×1 convolution ``s → d``;
5. deconvolution — a 9×9 transposed convolution ``d → 3`` with stride ``scale``.

Every convolution but the last is followed by a per-channel PReLU. The paper's full network is
``FSRCNN(56, 12, 4)`` and its small one ``FSRCNN-s(32, 5, 1)``; here ``d`` is the registry's
``width`` while ``s = 12`` and ``m = 4`` stay fixed. The paper trains on the luma (Y) channel
only; this implementation maps RGB to RGB (3 input and 3 output channels), which changes only the
first and last layers. There is no mean shift: the input is used as given, in [0, 1].

This module holds :class:`FSRCNN` and its registry builder :func:`build_fsrcnn`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from accelir.models.common import pass_through
from accelir.models.registry import register

__all__ = ["FSRCNN", "build_fsrcnn"]

DECONV_KERNEL = 9


def _deconv_padding(kernel_size: int, scale: int) -> tuple[int, int]:
    """``(padding, output_padding)`` of a stride-``scale`` transposed convolution giving ``s·H``.

    The output size of a transposed convolution is ``(H − 1)·s − 2p + k + op``; it equals ``s·H``
    when ``2p − op = k − s``. Of the solutions this picks the one that puts the kernel centre
    nearest the centre of the ``s × s`` output block of each input pixel, i.e. an offset of
    ``k // 2 − p = (s − 1) // 2`` output pixels, which needs ``0 ≤ op < s``.
    """
    padding = kernel_size // 2 - (scale - 1) // 2
    output_padding = 2 * padding - (kernel_size - scale)
    if padding < 0 or not 0 <= output_padding < scale:
        raise ValueError(f"no exact ×{scale} padding for a {kernel_size}×{kernel_size} deconv")
    return padding, output_padding


def _bilinear_taps(kernel_size: int, scale: int, padding: int) -> Tensor:
    """1-D weights of a stride-``scale`` transposed convolution that upsamples bilinearly
    (half-pixel centres, as ``F.interpolate(..., mode="bilinear", align_corners=False)``).

    Output pixel ``j`` gets ``w[j − scale·i + padding]`` of input pixel ``i``, whose centre lies
    ``(j + ½)/scale − ½ − i`` input pixels away; the bilinear weight is the hat ``max(0, 1 − |x|)``.
    """
    k = torch.arange(kernel_size, dtype=torch.float32)
    x = (k - padding + 0.5) / scale - 0.5
    return (1 - x.abs()).clamp(min=0)


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m) for RGB images.

    Args:
        scale: Upsampling factor (the deconvolution's stride), e.g. 2, 3 or 4.
        d: Channels of the feature-extraction and expanding layers (the paper's ``d``;
            56 for the full network).
        s: Channels of the shrunken mapping space (the paper's ``s``). Default: 12.
        m: Number of 3×3 mapping layers (the paper's ``m``). Default: 4.
        num_channels: Image channels in and out. Default: 3 (RGB; the paper uses 1, luma).
    """

    # Context a tile needs for exact tiled inference (receptive field of 5×5 + 4 × 3×3 + 9×9 deconvolution).
    tile_margin = 16
    tile_multiple = 1
    # The paper trains the deconvolution with a tenth of the convolutions' learning rate
    # (10⁻⁴ vs 10⁻³); the training loop reads this.
    lr_scales: ClassVar[dict[str, float]] = {"deconvolution": 0.1}

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4, num_channels: int = 3):
        super().__init__()
        if scale < 1 or d < 1 or s < 1 or m < 0 or num_channels < 1:
            raise ValueError(f"invalid FSRCNN configuration: {scale=}, {d=}, {s=}, {m=}")
        self.scale = scale

        self.feature_extraction = nn.Sequential(
            nn.Conv2d(num_channels, d, kernel_size=5, padding=2), nn.PReLU(d)
        )
        self.shrinking = nn.Sequential(nn.Conv2d(d, s, kernel_size=1), nn.PReLU(s))
        mapping: list[nn.Module] = []
        for _ in range(m):
            mapping += [nn.Conv2d(s, s, kernel_size=3, padding=1), nn.PReLU(s)]
        self.mapping = nn.Sequential(*mapping)
        self.expanding = nn.Sequential(nn.Conv2d(s, d, kernel_size=1), nn.PReLU(d))
        padding, output_padding = _deconv_padding(DECONV_KERNEL, scale)
        self.deconvolution = nn.ConvTranspose2d(
            d,
            num_channels,
            kernel_size=DECONV_KERNEL,
            stride=scale,
            padding=padding,
            output_padding=output_padding,
        )
        self._init_weights(padding)

    def _init_weights(self, deconv_padding: int) -> None:
        """He et al.'s Gaussian for the convolutions (fan-out mode), zero biases — as the paper —
        then an *interpolating start*: the first ``num_channels`` channels of every layer carry
        the input unchanged (identity taps; the input is ≥ 0, so the PReLUs pass it) and the
        deconvolution upsamples them bilinearly, its other weights zero.

        The paper starts the deconvolution from N(0, 0.001²), i.e. from a black image, and
        trains for millions of SGD steps; with a CPU's few thousand steps that start ended
        0.3–2.4 dB *below* bicubic upscaling here. Starting from bilinear upscaling keeps the
        architecture and lets training spend its steps on what interpolation misses.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        c = self.deconvolution.out_channels
        with torch.no_grad():
            for conv in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
                pass_through(conv, c)
            deconv = self.deconvolution
            deconv.weight.zero_()
            taps = _bilinear_taps(DECONV_KERNEL, self.scale, deconv_padding)
            for i in range(c):
                deconv.weight[i, i] = torch.outer(taps, taps)
            if deconv.bias is not None:
                deconv.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """N×C×H×W low-resolution image → N×C×(scale·H)×(scale·W), for any H, W ≥ 1."""
        x = self.feature_extraction(x)
        x = self.shrinking(x)
        x = self.mapping(x)
        x = self.expanding(x)
        out: Tensor = self.deconvolution(x)
        return out


@register(
    "fsrcnn",
    "sr",
    (56, 36),
    "Dong, Loy & Tang, Accelerating the Super-Resolution Convolutional Neural Network, ECCV 2016",
)
def build_fsrcnn(width: int, scale: int) -> FSRCNN:
    """FSRCNN(d = ``width``, s = 12, m = 4) for RGB at the given ``scale``."""
    return FSRCNN(scale=scale, d=width)

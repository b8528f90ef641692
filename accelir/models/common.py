"""Small pieces several networks of the zoo share (BasicSR's ``arch_util`` idea)."""

from __future__ import annotations

import torch
from torch import nn

#: Mean RGB of DIV2K's training images, subtracted at the input of the SR networks (as in their
#: papers' code) and added back at the output.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def kaiming_init(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every convolution, zero biases (DnCNN's scheme)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def pass_through(conv: nn.Conv2d, channels: int) -> None:
    """Make the first ``channels`` outputs of ``conv`` copy its first ``channels`` inputs
    (centre tap 1, every other weight of those outputs and their biases 0)."""
    kh, kw = conv.kernel_size
    conv.weight[:channels].zero_()
    for c in range(channels):
        conv.weight[c, c, kh // 2, kw // 2] = 1.0
    if conv.bias is not None:
        conv.bias[:channels].zero_()


def bilinear_shuffle_taps(scale: int) -> torch.Tensor:
    """``scale²`` 3×3 kernels that, followed by ``PixelShuffle(scale)``, upsample bilinearly
    (half-pixel centres, as ``F.interpolate(..., mode="bilinear", align_corners=False)``).

    Sub-pixel ``a`` of a low-resolution pixel sits ``(a + ½)/scale − ½`` pixels from its centre
    (less than half a pixel), so its bilinear weights lie on the 3×3 neighbourhood.
    """
    offsets = (torch.arange(scale, dtype=torch.float32) + 0.5) / scale - 0.5
    taps = (1 - (torch.arange(-1, 2, dtype=torch.float32)[None, :] - offsets[:, None]).abs()).clamp(
        min=0
    )  # (scale, 3): sub-pixel × neighbour
    return torch.einsum("ai,bj->abij", taps, taps).reshape(scale * scale, 3, 3)


@torch.no_grad()
def start_as_bilinear(conv: nn.Conv2d, scale: int, channels: int = 3) -> None:
    """Set a 3×3 convolution that feeds ``PixelShuffle(scale)`` to upsample its first
    ``channels`` input channels bilinearly, every other weight and the bias zero."""
    if conv.kernel_size != (3, 3) or conv.out_channels != channels * scale * scale:
        raise ValueError(f"{conv} does not feed a ×{scale} pixel shuffle of {channels} channels")
    conv.weight.zero_()
    taps = bilinear_shuffle_taps(scale).to(conv.weight)
    for c in range(channels):
        conv.weight[c * scale * scale : (c + 1) * scale * scale, c] = taps
    if conv.bias is not None:
        conv.bias.zero_()

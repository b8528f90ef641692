"""FFDNet: a fast and flexible denoiser conditioned on a noise-level map.

Paper: K. Zhang, W. Zuo, L. Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based
Image Denoising", IEEE Transactions on Image Processing 27(9), 2018.

This module holds the colour FFDNet: the image is reversibly downsampled by 2 (pixel unshuffle,
3 → 12 channels at half resolution), concatenated with a 3-channel noise-level map (σ/255, one
channel per colour channel), passed through a plain CNN (conv+ReLU, ``num_layers − 2`` ×
conv+BN+ReLU, conv → 12 channels) and pixel-shuffled back. FFDNet predicts the clean image
directly (no residual learning). Odd heights and widths are padded by replication to even ones
and the output is cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelir.models.registry import register

__all__ = ["ConvBNReLU", "FFDNet", "build_ffdnet"]

PAPER = (
    "K. Zhang, W. Zuo, L. Zhang, FFDNet: Toward a Fast and Flexible Solution for CNN-Based "
    "Image Denoising, IEEE TIP 2018"
)

DEFAULT_SIGMA = 25 / 255


class ConvBNReLU(nn.Sequential):
    """3×3 convolution (no bias: batch norm supplies the shift), batch norm, ReLU.

    Args:
        in_channels: Input channel count.
        out_channels: Output channel count.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class FFDNet(nn.Module):
    """FFDNet: denoises ``x`` given its noise level ``sigma`` (σ/255, on the [0, 1] scale).

    Args:
        in_channels: Channels of the image (3 for the colour model, 1 for grey); the noise-level
            map has as many channels.
        width: Feature channels of every hidden layer (the paper uses 96 for colour, 64 for grey).
        num_layers: Total convolution layers, first and last included (the paper uses 12 for
            colour, 15 for grey).
        default_sigma: The noise level used when ``forward`` gets ``sigma=None``, on the [0, 1]
            scale (25/255 by default).
    """

    # Context a tile needs for exact tiled inference (12 convolutions at half resolution; tiles stay on the 2×2 grid).
    tile_margin = 32
    tile_multiple = 2
    takes_noise_level = True

    scale = 2  # the pixel-unshuffle factor

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 96,
        num_layers: int = 12,
        default_sigma: float = DEFAULT_SIGMA,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"FFDNet needs at least 2 layers, got {num_layers}")
        self.in_channels = in_channels
        packed = in_channels * self.scale**2
        self.unshuffle = nn.PixelUnshuffle(self.scale)
        self.head = nn.Sequential(
            nn.Conv2d(packed + in_channels, width, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*(ConvBNReLU(width, width) for _ in range(num_layers - 2)))
        self.tail = nn.Conv2d(width, packed, 3, padding=1)
        self.shuffle = nn.PixelShuffle(self.scale)
        self.default_sigma: Tensor
        self.register_buffer("default_sigma", torch.tensor(float(default_sigma)), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """He (Kaiming) initialisation of the convolutions."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def noise_map(self, sigma: float | Tensor | None, x: Tensor) -> Tensor:
        """The N×C×1×1 noise levels for batch ``x`` (broadcast over the image later).

        ``sigma`` is ``None`` (the default level), a float, a one-element tensor (every image),
        an N-tensor (one level per image) or an N×C tensor (one level per image and channel).
        """
        n = x.shape[0]
        if sigma is None:
            sigma = self.default_sigma
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.numel() == 1:
            return sigma.reshape(1, 1, 1, 1).expand(n, self.in_channels, 1, 1)
        if sigma.shape == (n,):
            return sigma.reshape(n, 1, 1, 1).expand(n, self.in_channels, 1, 1)
        if sigma.shape == (n, self.in_channels):
            return sigma.reshape(n, self.in_channels, 1, 1)
        raise ValueError(
            f"sigma must be a float, a one-element tensor, an N-tensor or an N×{self.in_channels} "
            f"tensor for a batch of N={n}, got shape {tuple(sigma.shape)}"
        )

    def forward(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        _, _, h, w = x.shape
        pad_h, pad_w = h % self.scale, w % self.scale
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        packed = self.unshuffle(x)
        levels = self.noise_map(sigma, x).expand(-1, -1, *packed.shape[-2:])
        features = self.body(self.head(torch.cat((packed, levels), dim=1)))
        out = self.shuffle(self.tail(features))
        return out[..., :h, :w]


@register("ffdnet", "denoise", (64, 52), PAPER, takes_noise_level=True)
def build_ffdnet(width: int, scale: int) -> nn.Module:
    """The 12-layer colour FFDNet with ``width`` channels; ``scale`` is ignored (always 1)."""
    return FFDNet(in_channels=3, width=width, num_layers=12)

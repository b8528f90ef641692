"""SwinIR, lightweight super-resolution configuration.

Jingyun Liang, Jiezhang Cao, Guolei Sun, Kai Zhang, Luc Van Gool and Radu Timofte, "SwinIR:
Image Restoration Using Swin Transformer", ICCV Workshops 2021 (arXiv:2108.10257).

The network, for the lightweight SR setting (SwinIR-light / SwinIR-S):

* mean shift (``img_range`` 1) and a shallow 3×3 convolution ``3 → embed``;
* deep features: patch embedding (patch size 1: flatten to tokens + LayerNorm), four residual
  Swin Transformer blocks (:class:`RSTB`, each six :class:`SwinTransformerBlock`\\ s with six
  heads, window 8, MLP ratio 2, alternately regular and shifted windows, followed by a 3×3
  convolution, "1conv", inside the residual), a final LayerNorm and patch un-embedding;
* a 3×3 convolution after the body, plus the shallow feature (long skip);
* the "pixelshuffledirect" upsampler: one 3×3 convolution to ``3·s²`` channels and
  ``PixelShuffle(s)``; then the mean is added back.

Attention is window self-attention with a learned relative position bias (a table of
``(2·8 − 1)²`` entries per head indexed by a fixed buffer). Shifted windows roll the feature map
by half a window; the attention mask that keeps tokens from attending across the wrap-around is
computed in :meth:`SwinIR.forward` for the actual (padded) input size and shared by all blocks.
The input is reflect-padded to a multiple of the window size and the output cropped back.

No dependency on ``timm``: :class:`DropPath` and :class:`Mlp` are written out here. Stochastic
depth (rate rising linearly to 0.1) acts in training only; evaluation is deterministic.

At ``embed = 60`` and ×4 the network has 929,628 parameters; the paper's 897K equals this
count without the 24 relative-position-bias tables (24 × 1,350 = 32,400 parameters).

Blocks come first, the model last: window helpers, :class:`DropPath`, :class:`Mlp`,
:class:`WindowAttention`, :class:`SwinTransformerBlock`, :class:`PatchEmbed`,
:class:`PatchUnEmbed`, :class:`RSTB`, :class:`SwinIR` and the registry builder
:func:`build_swinir`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelir.models.common import DIV2K_RGB_MEAN, pass_through, start_as_bilinear
from accelir.models.registry import register

__all__ = [
    "RSTB",
    "DropPath",
    "Mlp",
    "PatchEmbed",
    "PatchUnEmbed",
    "SwinIR",
    "SwinTransformerBlock",
    "WindowAttention",
    "build_swinir",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
]

"""Mean of the DIV2K training images per RGB channel, on the [0, 1] scale."""

MASK_VALUE = -100.0
"""Added to the attention logits of token pairs that a shifted window must keep apart."""


# --------------------------------------------------------------------------------------------
# Window helpers


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """N×H×W×C → (N·nW)×(ws²)×C: non-overlapping ws×ws windows, row-major, as token lists."""
    n, h, w, c = x.shape
    x = x.view(n, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: (N·nW)×(ws²)×C → N×H×W×C."""
    num_windows = (height // window_size) * (width // window_size)
    n = windows.shape[0] // num_windows
    x = windows.view(n, height // window_size, width // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, height, width, -1)


def shifted_window_mask(
    height: int,
    width: int,
    window_size: int,
    shift_size: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Attention mask of shifted-window attention on an H×W map (multiples of the window).

    After rolling the map by ``−shift_size``, the windows along the bottom and right borders
    hold pixels from opposite sides of the image. Pixels are labelled by the region of the
    unrolled map they came from; a pair of tokens in different regions gets ``MASK_VALUE``,
    a pair in the same region 0. Returns nW×(ws²)×(ws²).
    """
    labels = torch.zeros(1, height, width, 1, device=device)
    bands = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    region = 0
    for rows in bands:
        for cols in bands:
            labels[:, rows, cols, :] = region
            region += 1
    windows = window_partition(labels, window_size).squeeze(-1)  # nW × ws²
    different = windows.unsqueeze(1) != windows.unsqueeze(2)
    mask = torch.zeros(different.shape, device=device, dtype=dtype)
    return mask.masked_fill(different, MASK_VALUE)


def relative_position_index(window_size: int) -> Tensor:
    """(ws²)×(ws²) index into the (2·ws − 1)² bias table for every pair of window positions."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # 2 × ws²
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # ws² × ws² × 2
    relative = relative + (window_size - 1)  # shift to start from 0
    return relative[:, :, 0] * (2 * window_size - 1) + relative[:, :, 1]


# --------------------------------------------------------------------------------------------
# Transformer blocks


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample with probability ``drop_prob``.

    Kept samples are scaled by ``1 / (1 − drop_prob)``. The identity in evaluation mode.

    Args:
        drop_prob: Probability of dropping the branch for a sample. Default: 0.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must lie in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Sequential):
    """Transformer feed-forward network: Linear → GELU → Linear.

    Args:
        dim: Input and output features.
        hidden_dim: Hidden features.
    """

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim))


class WindowAttention(nn.Module):
    """Multi-head self-attention within a window, with a relative position bias.

    Args:
        dim: Token features.
        window_size: Side of the square window (its ws² tokens attend to each other).
        num_heads: Attention heads; must divide ``dim``.
        qkv_bias: Whether the query/key/value projection has a bias. Default: True.
    """

    relative_position_index: Tensor

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"{num_heads} heads do not divide {dim} features")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        # Derived from window_size: a buffer kept out of the state dict.
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(N·nW)×T×C windows (T = ws²) → same shape; ``mask`` is nW×T×T or None."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each batch × heads × T × head_dim
        attn = (q * self.scale) @ k.transpose(-2, -1)

        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(tokens, tokens, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(batch // num_windows, num_windows, self.num_heads, tokens, tokens)
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, tokens, tokens)
        attn = attn.softmax(dim=-1)

        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, channels)
        result: Tensor = self.proj(out)
        return result


class SwinTransformerBlock(nn.Module):
    """Swin Transformer block: (shifted-)window attention and an MLP, each pre-norm residual.

    Args:
        dim: Token features.
        num_heads: Attention heads.
        window_size: Side of the attention window.
        shift_size: Cyclic shift before partitioning (0 for regular windows, ws/2 for
            shifted ones).
        mlp_ratio: MLP hidden features as a multiple of ``dim``.
        drop_path: Stochastic-depth rate of both residual branches.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        drop_path: float,
    ):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must lie in [0, {window_size}), got {shift_size}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor | None) -> Tensor:
        """N×(H·W)×C tokens of an H×W map → same shape; ``mask`` is used by shifted blocks."""
        height, width = size
        n, _, c = x.shape
        ws, shift = self.window_size, self.shift_size

        y = self.norm1(x).view(n, height, width, c)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        y = self.attn(window_partition(y, ws), mask if shift else None)
        y = window_reverse(y, ws, height, width)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(n, height * width, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Patch size 1 embedding: N×C×H×W → N×(H·W)×C tokens, optionally LayerNorm-ed.

    Args:
        dim: Channels (token features).
        norm: Whether to apply a LayerNorm to the tokens.
    """

    def __init__(self, dim: int, norm: bool):
        super().__init__()
        self.norm: nn.Module = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        tokens: Tensor = self.norm(x.flatten(2).transpose(1, 2))
        return tokens


class PatchUnEmbed(nn.Module):
    """Patch size 1 un-embedding: N×(H·W)×C tokens → N×C×H×W."""

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        n, _, c = x.shape
        return x.transpose(1, 2).reshape(n, c, size[0], size[1])


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks → 3×3 conv ("1conv"), plus the input.

    Blocks alternate regular (even index) and shifted (odd index) windows.

    Args:
        dim: Token features.
        depth: Number of Swin Transformer blocks.
        num_heads: Attention heads of every block.
        window_size: Side of the attention window.
        mlp_ratio: MLP hidden features as a multiple of ``dim``.
        drop_path: Stochastic-depth rate of each block (one entry per block).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_path: Sequence[float],
    ):
        super().__init__()
        if len(drop_path) != depth:
            raise ValueError(f"need {depth} drop-path rates, got {len(drop_path)}")
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                num_heads,
                window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )
        self.unembed = PatchUnEmbed()
        self.conv = nn.Conv2d(dim, dim, kernel_size=3, padding=1)
        self.embed = PatchEmbed(dim, norm=False)

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor) -> Tensor:
        out = x
        for block in self.blocks:
            out = block(out, size, mask)
        out = self.embed(self.conv(self.unembed(out, size)))
        return x + out


class SwinIR(nn.Module):
    """SwinIR for super-resolution with the "1conv" residual and "pixelshuffledirect" upsampler.

    Args:
        scale: Upsampling factor (2, 3 or 4).
        embed_dim: Token features (the registry's ``width``; 60 for SwinIR-light).
        depths: Swin blocks in each RSTB. Default: (6, 6, 6, 6).
        num_heads: Attention heads in each RSTB; each must divide ``embed_dim``.
            Default: (6, 6, 6, 6).
        window_size: Side of the attention window. Default: 8.
        mlp_ratio: MLP hidden features as a multiple of ``embed_dim``. Default: 2.
        drop_path_rate: Largest stochastic-depth rate (rates rise linearly over all blocks,
            training only). Default: 0.1.
        img_range: Factor on the mean-shifted input (1 for images in [0, 1]). Default: 1.
        rgb_mean: Per-channel mean subtracted at the input and added back at the output.
            Default: the DIV2K mean.
    """

    # Context a tile needs for exact tiled inference (24 Swin layers of 8×8 windows (±7 px each) plus convolutions; tiles stay on the window grid).
    tile_margin = 176
    tile_multiple = 8

    rgb_mean: Tensor

    def __init__(
        self,
        scale: int,
        embed_dim: int = 60,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        drop_path_rate: float = 0.1,
        img_range: float = 1.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} differ in length")
        for heads in num_heads:
            if embed_dim % heads != 0:
                raise ValueError(f"{heads} heads do not divide embed_dim {embed_dim}")
        if window_size < 2:
            raise ValueError(f"window_size must be at least 2, got {window_size}")
        self.scale = scale
        self.window_size = window_size
        self.img_range = img_range
        # A constant: a buffer (it follows .to()) kept out of the state dict.
        self.register_buffer("rgb_mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(3, embed_dim, kernel_size=3, padding=1)

        self.patch_embed = PatchEmbed(embed_dim, norm=True)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            RSTB(
                embed_dim,
                depth,
                heads,
                window_size,
                mlp_ratio,
                drop_path=rates[start : start + depth],
            )
            for depth, heads, start in zip(depths, num_heads, starts, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.patch_unembed = PatchUnEmbed()
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, kernel_size=3, padding=1)

        self.upsample = nn.Sequential(
            nn.Conv2d(embed_dim, 3 * scale * scale, kernel_size=3, padding=1),
            nn.PixelShuffle(scale),
        )
        self.apply(self._init_weights)
        self._start_from_bilinear()

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """Swin initialisation: truncated N(0, 0.02²) linear weights, zero biases, unit norms."""
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def _start_from_bilinear(self) -> None:
        """Start as bilinear upscaling: the shallow convolution passes the (mean-shifted) RGB
        through its first three channels, the body adds nothing to them yet, and the upsampler
        interpolates them bilinearly and ignores the other channels.

        The paper starts from PyTorch's default initialisation and trains 500 000 iterations; a
        lent GPU slot gives a few thousand, and from that start 467 steps ended 0.70 dB *below*
        bicubic here. The architecture is unchanged: training spends its steps on what
        interpolation misses (as FSRCNN here; EDSR-style nets learn the base image faster).
        """
        pass_through(self.conv_first, 3)
        after = self.conv_after_body
        assert after.bias is not None
        after.weight[:3].zero_()
        after.bias[:3].zero_()
        upsampler = self.upsample[0]
        assert isinstance(upsampler, nn.Conv2d)
        start_as_bilinear(upsampler, self.scale)

    def _pad(self, x: Tensor) -> Tensor:
        """Pad bottom/right to a multiple of the window: reflect, or replicate where the image
        is too small to reflect (a side of at most the padding)."""
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.window_size, (-width) % self.window_size
        if pad_h == 0 and pad_w == 0:
            return x
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

    def forward_features(self, x: Tensor) -> Tensor:
        """Deep feature extraction: N×C×H×W (multiples of the window) → N×C×H×W."""
        size = (x.shape[2], x.shape[3])
        mask = shifted_window_mask(
            *size,
            self.window_size,
            self.window_size // 2,
            device=x.device,
            dtype=x.dtype,
        )
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, size, mask)
        return self.patch_unembed(self.norm(tokens), size)

    def forward(self, x: Tensor) -> Tensor:
        """N×3×H×W low-resolution RGB → N×3×(scale·H)×(scale·W), for any H, W ≥ 1."""
        height, width = x.shape[-2:]
        mean = self.rgb_mean.to(x.dtype)
        x = (self._pad(x) - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        out = self.upsample(x) / self.img_range + mean
        return out[:, :, : height * self.scale, : width * self.scale]


@register(
    "swinir",
    "sr",
    (60, 36),
    "Liang et al., SwinIR: Image Restoration Using Swin Transformer, ICCVW 2021",
)
def build_swinir(width: int, scale: int) -> SwinIR:
    """Lightweight SwinIR (4 RSTBs of 6 blocks, 6 heads, window 8) with ``width`` features."""
    return SwinIR(scale=scale, embed_dim=width)

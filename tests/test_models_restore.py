"""The denoising and deblurring networks: DnCNN, FFDNet, IRCNN, MIMO-UNet.

Each is built through the registry at every registered width and checked against the registry
contract (any H, W; N×3×H×W out), its paper's structure (residual learning, parameter counts),
FLOPs ordering along the widths, and trainability. Inputs are tiny so the file runs in seconds.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accelir.metrics import count_flops
from accelir.models import dncnn, ffdnet, ircnn, mimo_unet, registry

NAMES = ("dncnn", "ffdnet", "ircnn", "mimo_unet")
CASES = [(name, width) for name in NAMES for width in registry.get(name).widths]

# Parameter counts at the full (first) width, from the papers' architectures (colour models):
# DnCNN-S 0.56 M (17 layers × 64 channels), FFDNet 0.39 M at 64 channels (the paper's colour
# model has 96 channels, 0.85 M), IRCNN 0.19 M, MIMO-UNet 6.8 M (Table 1 of the paper).
PARAM_RANGES = {
    "dncnn": (0.54e6, 0.58e6),
    "ffdnet": (0.37e6, 0.40e6),
    "ircnn": (0.18e6, 0.20e6),
    "mimo_unet": (6.7e6, 6.9e6),
}


def build(name: str, width: int) -> nn.Module:
    torch.manual_seed(0)
    return registry.get(name).build(width)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_entries() -> None:
    assert registry.get("dncnn").kind == "denoise"
    assert registry.get("ffdnet").kind == "denoise"
    assert registry.get("ircnn").kind == "denoise"
    assert registry.get("mimo_unet").kind == "deblur"
    assert registry.get("ffdnet").takes_noise_level
    assert not any(registry.get(n).takes_noise_level for n in ("dncnn", "ircnn", "mimo_unet"))
    for name in NAMES:
        assert registry.get(name).paper


@pytest.mark.parametrize(("name", "width"), CASES)
def test_forward_keeps_shape_and_is_finite(name: str, width: int) -> None:
    model = build(name, width).eval()
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 6)])
def test_tiny_inputs(name: str, size: tuple[int, int]) -> None:
    model = build(name, registry.get(name).widths[-1]).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("width", registry.get("ffdnet").widths)
def test_ffdnet_noise_level(width: int) -> None:
    model = build("ffdnet", width).eval()
    x = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        default = model(x)
        low = model(x, torch.tensor([5 / 255, 5 / 255]))
        high = model(x, torch.tensor([50 / 255, 50 / 255]))
        assert low.shape == high.shape == x.shape
        assert torch.isfinite(low).all() and torch.isfinite(high).all()
        assert not torch.allclose(low, high)
        # None means 25/255; a float, a one-element tensor and an N-tensor agree.
        torch.testing.assert_close(default, model(x, 25 / 255))
        torch.testing.assert_close(default, model(x, torch.tensor(25 / 255)))
        torch.testing.assert_close(low, model(x, 5 / 255))
        # Per-image levels: each image is denoised with its own level.
        mixed = model(x, torch.tensor([5 / 255, 50 / 255]))
        torch.testing.assert_close(mixed[0], low[0])
        torch.testing.assert_close(mixed[1], high[1])
        # Per-image, per-channel levels (N×3) are accepted too.
        per_channel = model(x, torch.full((2, 3), 5 / 255))
        torch.testing.assert_close(per_channel, low)
    with pytest.raises(ValueError, match="sigma"):
        model(x, torch.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_flops_decrease_along_widths(name: str) -> None:
    widths = registry.get(name).widths
    flops = [count_flops(build(name, w), (1, 3, 32, 32)) for w in widths]
    assert all(f > 0 for f in flops)
    assert all(a > b for a, b in itertools.pairwise(flops)), dict(zip(widths, flops, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_match_papers(name: str) -> None:
    spec = registry.get(name)
    low, high = PARAM_RANGES[name]
    assert low <= n_params(build(name, spec.full_width)) <= high
    counts = [n_params(build(name, w)) for w in spec.widths]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("name", NAMES)
def test_one_optimisation_step_changes_the_output(name: str) -> None:
    model = build(name, registry.get(name).widths[-1])
    generator = torch.Generator().manual_seed(3)
    clean = torch.rand(2, 3, 16, 16, generator=generator)
    noisy = clean + 0.1 * torch.randn(2, 3, 16, 16, generator=generator)
    model.eval()
    with torch.no_grad():
        before = model(noisy)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    if isinstance(model, mimo_unet.MIMOUNet):  # the paper's multi-scale content loss
        outputs = model.forward_multi(noisy)
        targets = [F.avg_pool2d(clean, 4), F.avg_pool2d(clean, 2), clean]
        loss = sum(F.l1_loss(o, t) for o, t in zip(outputs, targets, strict=True))
    else:
        loss = F.l1_loss(model(noisy), clean)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters without gradient: {unused}"
    optimiser.step()
    model.eval()
    with torch.no_grad():
        after = model(noisy)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize(
    ("model", "tail"),
    [
        (dncnn.DnCNN(width=8, num_layers=5), "tail"),
        (ircnn.IRCNN(width=8), "tail"),
        (mimo_unet.MIMOUNet(base_channels=4, num_res=1), "out1"),
    ],
    ids=["dncnn", "ircnn", "mimo_unet"],
)
def test_residual_learning(model: nn.Module, tail: str) -> None:
    """With the last convolution zeroed, a residual network returns its input exactly."""
    last = getattr(model, tail)
    for p in last.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), x)


def test_ffdnet_predicts_the_image_directly() -> None:
    """FFDNet has no residual connection: a zeroed last convolution gives a zero image."""
    model = ffdnet.FFDNet(width=8, num_layers=4).eval()
    for p in model.tail.parameters():
        nn.init.zeros_(p)
    with torch.no_grad():
        assert torch.count_nonzero(model(torch.rand(1, 3, 9, 11))) == 0


@pytest.mark.parametrize("width", registry.get("mimo_unet").widths)
def test_mimo_unet_forward_multi_shapes(width: int) -> None:
    model = build("mimo_unet", width).eval()
    assert isinstance(model, mimo_unet.MIMOUNet)
    with torch.no_grad():
        x = torch.rand(1, 3, 37, 53)
        outputs = model.forward_multi(x)
        assert [tuple(o.shape) for o in outputs] == [(1, 3, 10, 14), (1, 3, 19, 27), (1, 3, 37, 53)]
        torch.testing.assert_close(outputs[-1], model(x))
        assert all(torch.isfinite(o).all() for o in outputs)
        x = torch.rand(1, 3, 32, 32)
        shapes = [tuple(o.shape) for o in model.forward_multi(x)]
        assert shapes == [(1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 32, 32)]


def test_mimo_unet_outputs_add_bilinearly_downscaled_inputs() -> None:
    """Each scale's output is conv output + the input at that scale (bilinear ½ = 2×2 mean)."""
    model = mimo_unet.MIMOUNet(base_channels=4, num_res=1).eval()
    for head in (model.out1, model.out2, model.out3):
        for p in head.parameters():
            nn.init.zeros_(p)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        quarter, half, full = model.forward_multi(x)
    torch.testing.assert_close(quarter, F.avg_pool2d(x, 4))
    torch.testing.assert_close(half, F.avg_pool2d(x, 2))
    torch.testing.assert_close(full, x)


def test_constructor_rejects_degenerate_sizes() -> None:
    with pytest.raises(ValueError):
        dncnn.DnCNN(num_layers=1)
    with pytest.raises(ValueError):
        ffdnet.FFDNet(num_layers=1)
    with pytest.raises(ValueError):
        ircnn.IRCNN(dilations=(1, 1))
    with pytest.raises(ValueError):
        mimo_unet.MIMOUNet(base_channels=1)

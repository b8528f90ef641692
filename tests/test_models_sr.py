"""The super-resolution networks: FSRCNN, CARN, EDSR (baseline), LatticeNet, SwinIR-light.

Each is built through the registry at every registered width and checked against the registry
contract (any H, W; N×3×sH×sW out), its paper's parameter count, FLOPs ordering along the
widths, trainability, and a few structural details (mean shift, shifted-window masking, the
EDSR FLOP formula). Inputs are tiny so the file runs in seconds.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accelir.metrics import count_flops
from accelir.models import carn, common, edsr, fsrcnn, latticenet, registry, swinir

NAMES = ("fsrcnn", "carn", "edsr", "latticenet", "swinir")
CASES = [(name, width) for name in NAMES for width in registry.get(name).widths]

# Parameter counts at the full (first) width and ×4, RGB in and out:
# FSRCNN(56, 12, 4) 24.7 K (the paper's 12.46 K counts the weights of a luma-only network);
# CARN 1.11 M (single-scale ×4: the paper's 1,592 K includes the ×2 and ×3 upsamplers);
# EDSR baseline with 8 blocks 0.93 M (the paper's 16-block baseline has 1.5 M);
# LatticeNet 777 K (as in the paper); SwinIR-light 930 K (the paper's 897 K leaves out the
# relative position bias tables, 32.4 K).
PARAM_RANGES = {
    "fsrcnn": (24_000, 25_500),
    "carn": (1.10e6, 1.12e6),
    "edsr": (0.92e6, 0.93e6),
    "latticenet": (0.770e6, 0.780e6),
    "swinir": (0.925e6, 0.935e6),
}


def build(name: str, width: int, scale: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return registry.get(name).build(width, scale)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_entries() -> None:
    for name in NAMES:
        spec = registry.get(name)
        assert spec.kind == "sr"
        assert spec.paper
        assert not spec.takes_noise_level
    assert registry.get("fsrcnn").widths == (56, 36)
    assert registry.get("carn").widths == (64, 48, 40)
    assert registry.get("edsr").widths == (64, 40, 32)
    assert registry.get("latticenet").widths == (64, 48, 42)
    assert registry.get("swinir").widths == (60, 36)


@pytest.mark.parametrize(("name", "width"), CASES)
def test_forward_x4_shape_and_finite(name: str, width: int) -> None:
    model = build(name, width).eval()
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 37 * 4, 53 * 4)
    assert y.dtype == x.dtype
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [2, 3])
def test_forward_x2_x3(name: str, scale: int) -> None:
    model = build(name, registry.get(name).widths[-1], scale).eval()
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 37 * scale, 53 * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_all_widths_all_scales(scale: int) -> None:
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    for width in registry.get("edsr").widths:
        with torch.no_grad():
            y = build("edsr", width, scale).eval()(x)
        assert y.shape == (1, 3, 37 * scale, 53 * scale)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 9)])
def test_tiny_inputs(name: str, size: tuple[int, int]) -> None:
    model = build(name, registry.get(name).widths[-1], 2).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, 2 * size[0], 2 * size[1])
    assert torch.isfinite(y).all()


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


def test_parameter_counts_reproduce_the_papers_tables() -> None:
    # FSRCNN(56, 12, 4) on luma: 12,464 weights (biases and PReLU slopes not counted).
    y_only = fsrcnn.FSRCNN(scale=3, d=56, s=12, m=4, num_channels=1)
    weights = sum(
        m.weight.numel() for m in y_only.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    )
    assert weights == 12_464
    # CARN: the multi-scale network (one upsampler per scale) has 1,592 K parameters.
    multi = n_params(carn.CARN(scale=4)) + n_params(carn.Upsampler(64, 2))
    multi += n_params(carn.Upsampler(64, 3))
    assert round(multi / 1000) == 1592
    # EDSR baseline, 16 blocks: 1.5 M.
    assert round(n_params(edsr.EDSR(scale=4, num_blocks=16)) / 1e5) == 15
    # LatticeNet: 756 K, 765 K, 777 K at ×2, ×3, ×4.
    counts = [round(n_params(latticenet.LatticeNet(scale=s)) / 1000) for s in (2, 3, 4)]
    assert counts == [756, 765, 777]
    # SwinIR-light: 878 K, 886 K, 897 K without the relative position bias tables.
    counts = []
    for s in (2, 3, 4):
        model = swinir.SwinIR(scale=s)
        tables = sum(p.numel() for n, p in model.named_parameters() if "bias_table" in n)
        counts.append(round((n_params(model) - tables) / 1000))
    assert counts == [878, 886, 897]


@pytest.mark.parametrize("width", registry.get("edsr").widths)
def test_edsr_flops_formula(width: int) -> None:
    """Per LR pixel at ×4: 17 body convs + ×2 upsampler at 1× and 4× area (666 w²), head 3×3
    from 3 channels (54 w) and the tail 3×3 to 3 channels at 16× area (864 w)."""
    flops = count_flops(build("edsr", width), (1, 3, 16, 16))
    assert flops == (666 * width**2 + 918 * width) * 16 * 16


@pytest.mark.parametrize("name", NAMES)
def test_one_optimisation_step_changes_the_output(name: str) -> None:
    model = build(name, registry.get(name).widths[-1], 2)
    generator = torch.Generator().manual_seed(3)
    high = torch.rand(2, 3, 16, 16, generator=generator)
    low = F.avg_pool2d(high, 2)
    model.eval()
    with torch.no_grad():
        before = model(low)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.l1_loss(model(low), high)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters without gradient: {unused}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    optimiser.step()
    model.eval()
    with torch.no_grad():
        after = model(low)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize(
    ("model", "tail"),
    [
        (carn.CARN(scale=2, width=8), "exit"),
        (edsr.EDSR(scale=2, width=8, num_blocks=1), "tail"),
        (latticenet.LatticeNet(scale=2, width=8), "upsample"),
        (swinir.SwinIR(scale=2, embed_dim=6, depths=(2,), num_heads=(2,)), "upsample"),
    ],
    ids=["carn", "edsr", "latticenet", "swinir"],
)
def test_mean_is_added_back(model: nn.Module, tail: str) -> None:
    """With the last layers zeroed, a mean-shifted network returns the DIV2K mean everywhere."""
    for p in getattr(model, tail).parameters():
        nn.init.zeros_(p)
    with torch.no_grad():
        y = model.eval()(torch.rand(1, 3, 5, 7))
    expected = torch.tensor(edsr.DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 10, 14)
    torch.testing.assert_close(y, expected)


def test_constants_are_buffers_outside_the_state_dict() -> None:
    for name in ("carn", "edsr", "latticenet", "swinir"):
        model = build(name, registry.get(name).widths[-1])
        assert "rgb_mean" in dict(model.named_buffers())
        assert not any(k.endswith("rgb_mean") for k in model.state_dict())


def test_fsrcnn_deconvolution_gives_exact_sizes() -> None:
    for scale in (2, 3, 4):
        model = fsrcnn.FSRCNN(scale=scale, d=8, s=4, m=1).eval()
        for h, w in ((1, 1), (4, 7)):
            with torch.no_grad():
                assert model(torch.rand(1, 3, h, w)).shape == (1, 3, scale * h, scale * w)


@pytest.mark.parametrize(("name", "border"), [("fsrcnn", 2), ("swinir", 1)])
def test_untrained_network_starts_as_bilinear_upscaling(name: str, border: int) -> None:
    """The interpolating start: an untrained FSRCNN or SwinIR upsamples bilinearly away from the
    border (``border`` low-resolution pixels, where their convolutions pad with zeros)."""
    torch.manual_seed(0)
    for scale in (2, 3, 4):
        x = torch.rand(1, 3, 16, 24)
        with torch.no_grad():
            y = build(name, registry.get(name).widths[0], scale).eval()(x)
        ref = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bilinear")
        b = border * scale
        torch.testing.assert_close(y[..., b:-b, b:-b], ref[..., b:-b, b:-b], atol=1e-5, rtol=0)
        assert not torch.allclose(y[..., :b, :], ref[..., :b, :], atol=1e-3)  # the padded edge


def test_bilinear_shuffle_taps_sum_to_one() -> None:
    for scale in (2, 3, 4):
        taps = common.bilinear_shuffle_taps(scale)
        assert taps.shape == (scale * scale, 3, 3)
        torch.testing.assert_close(taps.sum(dim=(1, 2)), torch.ones(scale * scale))
    with pytest.raises(ValueError, match="pixel shuffle"):
        common.start_as_bilinear(nn.Conv2d(4, 12, 3), 3)


def test_latticenet_combination_coefficients() -> None:
    cc = latticenet.CombinationCoefficient(16, reduction=16)
    x = torch.randn(2, 16, 5, 6)
    c = cc(x)
    assert c.shape == (2, 16, 1, 1)
    assert ((c > 0) & (c < 1)).all()
    fusion = latticenet.BackwardFusion(7, 4)  # odd width: halves of 3 and 4 channels
    assert fusion([torch.rand(1, 7, 3, 3) for _ in range(4)]).shape == (1, 7, 3, 3)


def test_swinir_window_partition_round_trip() -> None:
    x = torch.rand(2, 16, 24, 5)
    windows = swinir.window_partition(x, 8)
    assert windows.shape == (2 * 2 * 3, 64, 5)
    torch.testing.assert_close(swinir.window_reverse(windows, 8, 16, 24), x)


def test_swinir_shifted_window_mask() -> None:
    mask = swinir.shifted_window_mask(16, 16, 8, 4)
    assert mask.shape == (4, 64, 64)
    assert torch.count_nonzero(mask[0]) == 0  # the top-left window never wraps around
    assert set(mask.unique().tolist()) == {0.0, swinir.MASK_VALUE}
    # The bottom-right window holds four regions of 16 pixels: 4 · 16 · 16 allowed pairs.
    assert torch.count_nonzero(mask[3] == 0) == 4 * 16 * 16


def test_swinir_shifted_block_keeps_wrapped_regions_apart() -> None:
    """In a shifted block, pixel (0, 0) shares its rolled window only with the top-left 4×4
    corner of the map; the mask must stop it from influencing any other pixel."""
    torch.manual_seed(0)
    block = swinir.SwinTransformerBlock(8, 2, 8, 4, mlp_ratio=2.0, drop_path=0.0).eval()
    mask = swinir.shifted_window_mask(16, 16, 8, 4)
    x = torch.randn(1, 256, 8)
    x2 = x.clone()
    x2[0, 0] = torch.randn(8)  # not a constant shift, which LayerNorm would remove
    with torch.no_grad():
        diff = (block(x2, (16, 16), mask) - block(x, (16, 16), mask)).abs().sum(-1)
    changed = (diff.view(16, 16) > 1e-6).nonzero().tolist()
    assert changed == [[r, c] for r in range(4) for c in range(4)]


def test_swinir_pads_and_crops() -> None:
    """An input that is not a multiple of the window equals its reflect-padded version, cropped."""
    model = swinir.SwinIR(scale=2, embed_dim=6, depths=(2,), num_heads=(2,)).eval()
    x = torch.rand(1, 3, 13, 10)
    padded = F.pad(x, (0, 6, 0, 3), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(padded)[:, :, :26, :20])
        torch.testing.assert_close(model(x), model(x))  # eval is deterministic


def test_constructor_rejects_bad_configurations() -> None:
    with pytest.raises(ValueError):
        swinir.SwinIR(scale=4, embed_dim=40)  # 6 heads do not divide 40
    with pytest.raises(ValueError):
        edsr.Upsampler(8, 5)
    with pytest.raises(ValueError):
        carn.Upsampler(8, 6)
    with pytest.raises(ValueError):
        latticenet.BackwardFusion(8, 1)

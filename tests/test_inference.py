"""Exact tiled inference: a tiled restoration equals the untiled one up to rounding."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import accelir.models as M
from accelir.models.inference import restore


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(23, 31, 3)).astype(np.float32)
    smooth = (
        torch.nn.functional.interpolate(
            torch.from_numpy(base).permute(2, 0, 1)[None],
            size=(150, 170),
            mode="bicubic",
            align_corners=False,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "width", "task"),
    [
        ("fsrcnn", 36, "sr4"),
        ("edsr", 32, "sr4"),
        ("edsr", 32, "sr3"),
        ("carn", 40, "sr2"),
        ("dncnn", 56, "denoise"),
        ("ffdnet", 52, "denoise"),
        ("ircnn", 52, "denoise"),
    ],
)
def test_tiled_equals_untiled(image: np.ndarray, name: str, width: int, task: str) -> None:
    torch.manual_seed(0)
    scale = int(task[-1]) if task.startswith("sr") else 4
    model = M.build(name, width, scale).eval()
    whole = restore(model, image, task)
    tiled = restore(model, image, task, tile=40)
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_tiles_of_windowed_attention_stay_exact() -> None:
    """SwinIR tiles sit on its window grid with a margin covering its receptive field."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(24, 760, 3), dtype=np.uint8)  # wider than tile + margins
    model = M.build("swinir", 36, 2).eval()
    whole = restore(model, image, "sr2")
    tiled = restore(model, image, "sr2", tile=24)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


@pytest.mark.parametrize(
    ("name", "width", "task"), [("edsr", 32, "sr4"), ("ffdnet", 52, "denoise")]
)
def test_batched_equals_one_at_a_time(image: np.ndarray, name: str, width: int, task: str) -> None:
    """Same-size images share one forward pass; other sizes and over-tile images still come
    back in input order and equal single-image restoration up to rounding."""
    torch.manual_seed(0)
    model = M.build(name, width, 4).eval()
    images = [image[:48, :64], image[48:96, :64], image[:37, :53], image[96:144, 64:128], image]
    batched = M.restore_batch(model, images, task, tile=100, max_batch=2)
    assert len(batched) == len(images)
    for one, many in zip(images, batched, strict=True):
        single = restore(model, one, task, tile=100)
        assert many.shape == single.shape
        assert np.abs(many.astype(int) - single).max() <= 1


def test_untrained_outputs_have_the_right_size(image: np.ndarray) -> None:
    model = M.build("mimo_unet", 26).eval()
    assert restore(model, image[:37, :53], "deblur").shape == (37, 53, 3)


def test_rejects_bad_images() -> None:
    model = M.build("fsrcnn", 36, 2)
    with pytest.raises(ValueError, match="uint8"):
        restore(model, np.zeros((8, 8, 3), np.float32), "sr2")


@pytest.mark.slow
def test_full_hd_tiled_matches_untiled_within_memory() -> None:
    """1920×1080 input, ×2: tiled equals untiled, and the tiled run peaks under 4 GB (measured
    in a fresh process with getrusage)."""
    script = textwrap.dedent(
        """
        import resource, sys, numpy as np, torch
        import accelir.models as M
        from accelir.models.inference import restore
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(1080, 1920, 3), dtype=np.uint8)
        model = M.build("fsrcnn", 56, 2).eval()
        tiled = restore(model, image, "sr2", tile=256)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if sys.argv[1] == "compare":
            whole = restore(model, image, "sr2")
            print(int(np.abs(tiled.astype(int) - whole).max()))
        else:
            print(peak)
        """
    )
    peak = int(
        subprocess.run(
            [sys.executable, "-c", script, "peak"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert peak < 4 * 2**30
    diff = int(
        subprocess.run(
            [sys.executable, "-c", script, "compare"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert diff <= 1

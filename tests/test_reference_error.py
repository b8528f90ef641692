"""Reference error curves (``accelir.reference_error``): the Gram taps are bicubic upscaling's,
and the curves computed at the degraded image's resolution, without the original, equal the
error that bicubic upscaling of each decoded image adds against the original, block by block."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from accelir import codec, tasks
from accelir.codec.layout import Layout
from accelir.codec.transform import block_dct
from accelir.profiles import QUALITY_SET
from accelir.reference_error import gram_taps, reference_sse, upscale_taps


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_gram_taps_are_the_gram_of_bicubic_upscaling(scale: int) -> None:
    n = 40
    up = np.zeros((scale * n, n))  # 1-D upscaling as a matrix, edges clamped
    for i in range(n):
        for p in range(scale):
            for t in range(-2, 3):
                up[scale * i + p, min(max(i + t, 0), n - 1)] += upscale_taps(scale)[p, t + 2]
    gram = up.T @ up
    taps = gram_taps(scale)
    assert np.allclose(taps, taps[::-1])
    assert taps.sum() == pytest.approx(scale)
    for i in range(8, n - 8):  # away from the edges
        assert np.allclose(gram[i, i - 4 : i + 5], taps, atol=1e-12)


def _float_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    h, w = image.shape[:2]
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), "F")
                .resize((w * scale, h * scale), Image.Resampling.BICUBIC) for c in range(3)]  # fmt: skip
    return np.stack([np.asarray(c, dtype=np.float64) for c in channels], axis=-1)


@pytest.mark.parametrize("scale", [2, 4])
def test_curves_equal_bicubic_error_against_the_original(photo: np.ndarray, scale: int) -> None:
    original = np.ascontiguousarray(photo[:384, :512])
    task = f"sr{scale}"
    low, target = tasks.degrade(original, task), tasks.target(original, task).astype(np.float64)
    dct = block_dct(low, Layout(32))
    rows, cols = dct.grid
    side = 32 * scale
    curves = reference_sse(low, dct, scale, QUALITY_SET)
    assert curves.shape == (rows * cols, len(QUALITY_SET))

    def block_sse(image: np.ndarray) -> np.ndarray:
        err = np.zeros((rows * side, cols * side))
        up = _float_bicubic(image, scale)[: target.shape[0], : target.shape[1]]
        err[: target.shape[0], : target.shape[1]] = ((up - target) ** 2).sum(axis=2)
        return err.reshape(rows, side, cols, side).sum(axis=(1, 3)).reshape(-1)

    uncoded = block_sse(low)
    for k, q in enumerate(QUALITY_SET):
        decoded = codec.decode_for_restoration(codec.encode(low, np.full((rows, cols), q)))
        direct = block_sse(decoded) - uncoded
        assert np.corrcoef(direct, curves[:, k])[0, 1] > 0.999, q
        assert curves[:, k].sum() == pytest.approx(direct.sum(), rel=0.03), q
    # More bytes, less error: the curves fall with quality overall.
    assert curves[:, 0].sum() > curves[:, len(QUALITY_SET) // 2].sum() > curves[:, -1].sum()


def test_threads_do_not_change_the_curves(small_photo: np.ndarray) -> None:
    low = tasks.degrade(np.ascontiguousarray(small_photo), "sr2")
    dct = block_dct(low, Layout(32))
    one = reference_sse(low, dct, 2, QUALITY_SET, threads=1)
    assert np.array_equal(one, reference_sse(low, dct, 2, QUALITY_SET, threads=2))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (33, 65)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_any_image_size(shape: tuple[int, int], scale: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    dct = block_dct(image, Layout(32))
    curves = reference_sse(image, dct, scale, QUALITY_SET)
    assert curves.shape == (int(np.prod(dct.grid)), len(QUALITY_SET))
    assert np.all(np.isfinite(curves))

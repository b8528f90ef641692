"""The two decode engines (the C extension and simplejpeg): same pixels, threads, errors.

The C extension is built by ``pip install`` wherever a compiler and libjpeg's headers exist
(they do on the project's machines and in CI); a missing build is a failure here, not a silent
fallback, unless ``ACCELIR_ALLOW_NO_C_DECODER=1`` says the machine cannot build it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from accelir import codec
from accelir.codec.container import ContainerError
from accelir.codec.layout import Layout

Q_SET = (10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95)


def test_the_c_engine_is_built_and_is_the_default() -> None:
    if os.environ.get("ACCELIR_ALLOW_NO_C_DECODER") == "1" and "libjpeg" not in codec.ENGINES:
        pytest.skip("ACCELIR_ALLOW_NO_C_DECODER=1: this machine has no libjpeg headers")
    assert codec.ENGINES == ("libjpeg", "simplejpeg")


@pytest.mark.parametrize("block", [16, 32, 64])
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_engines_decode_the_same_pixels(photo: np.ndarray, block: int, subsampling: str) -> None:
    image = np.ascontiguousarray(photo[:157, :233])
    grid = Layout(block, subsampling).grid(157, 233)
    q = np.random.default_rng(block).integers(1, 101, size=grid)
    data = codec.encode(image, q, block=block, subsampling=subsampling)
    results = [codec.decode(data, engine=e) for e in codec.ENGINES]
    for other in results[1:]:
        assert np.array_equal(other, results[0])
    assert results[0].shape == image.shape and results[0].flags.c_contiguous


@pytest.mark.parametrize("engine", ["libjpeg", "simplejpeg"])
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threads_do_not_change_pixels(photo: np.ndarray, engine: str, threads: int) -> None:
    if engine not in codec.ENGINES:
        pytest.skip(f"{engine} engine not built here")
    q = np.random.default_rng(threads).choice(Q_SET, size=Layout().grid(*photo.shape[:2]))
    data = codec.encode(photo, q)
    assert np.array_equal(
        codec.decode(data, engine=engine, threads=threads), codec.decode(data, engine=engine)
    )


def test_whole_block_grid_is_returned_without_a_crop(photo: np.ndarray) -> None:
    image = np.ascontiguousarray(photo[:64, :96])
    data = codec.encode(image, np.full((2, 3), 80))
    for engine in codec.ENGINES:
        out = codec.decode(data, engine=engine)
        assert out.shape == (64, 96, 3) and out.flags.c_contiguous


def test_corrupt_block_is_named_with_image_coordinates(photo: np.ndarray) -> None:
    """A broken segment in the second strip of a threaded decode names its own row."""
    data = codec.encode(photo[:192, :96], np.full((6, 3), 75))
    meta = codec.info(data)
    start, end = meta.block_range(4, 1)
    broken = bytearray(data)
    broken[start:end] = b"\xff" * (end - start)  # markers everywhere: no valid scan data
    for engine in codec.ENGINES:
        for threads in (1, 2):
            with pytest.raises(ContainerError, match=r"block \(4, 1\)"):
                codec.decode(bytes(broken), engine=engine, threads=threads)


def test_unknown_engine_is_rejected(small_photo: np.ndarray) -> None:
    data = codec.encode(small_photo, np.full(Layout().grid(*small_photo.shape[:2]), 50))
    with pytest.raises(ValueError, match="engine"):
        codec.decode(data, engine="nvjpeg")


def test_valid_containers_decode_as_strips_and_corrupt_ones_fall_back(photo: np.ndarray) -> None:
    """The C engine decodes the blocks of each quality as one restart-interval strip; only a
    strip that fails is redone block by block (which names the culprit)."""
    if "libjpeg" not in codec.ENGINES:
        pytest.skip("C engine not built here")
    from accelir.codec import _blockdecode  # type: ignore[attr-defined]

    q = np.random.default_rng(5).choice(Q_SET, size=Layout().grid(*photo.shape[:2]))
    data = codec.encode(photo, q)
    before = _blockdecode.fallbacks()
    codec.decode(data, engine="libjpeg")
    assert _blockdecode.fallbacks() == before
    meta = codec.info(data)
    start, end = meta.block_range(3, 7)
    broken = bytearray(data)
    broken[start + 1 : end] = bytes(end - start - 1)  # zeros: valid bits, wrong length
    with pytest.raises(ContainerError, match=r"block \(3, 7\)"):
        codec.decode(bytes(broken), engine="libjpeg")
    assert _blockdecode.fallbacks() > before

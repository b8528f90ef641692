"""The two decode engines (the C extension and simplejpeg): same pixels, threads, errors; and
the C engine's seamless mode (chroma upsampled across block edges).

The C extension is built by ``pip install`` wherever a compiler and libjpeg's headers exist
(they do on the project's machines and in CI); a missing build is a failure here, not a silent
fallback, unless ``ACCELIR_ALLOW_NO_C_DECODER=1`` says the machine cannot build it.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from accelir import codec
from accelir.codec import _parsed
from accelir.codec.container import ContainerError
from accelir.codec.jfif import EOI, SOI, dht, dqt, sof0, sos, stuff
from accelir.codec.layout import Layout
from accelir.codec.scan import rebuild
from accelir.codec.tables import quant_tables

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


def _with_broken_block(data: bytes, row: int, col: int) -> bytes:
    """``data`` with block (row, col)'s segment replaced by 0xFF bytes: markers everywhere, no
    valid scan data."""
    start, end = codec.info(data).block_range(row, col)
    return data[:start] + b"\xff" * (end - start) + data[end:]


def test_corrupt_block_is_named_with_image_coordinates(photo: np.ndarray) -> None:
    """A broken segment in the second strip of a threaded decode names its own row."""
    broken = _with_broken_block(codec.encode(photo[:192, :96], np.full((6, 3), 75)), 4, 1)
    for engine in codec.ENGINES:
        for threads in (1, 2):
            with pytest.raises(ContainerError, match=r"block \(4, 1\)"):
                codec.decode(broken, engine=engine, threads=threads)


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
    cut = start + 3 * (end - start) // 4  # past the first MCU row, which the parse decodes
    broken[cut:end] = bytes(end - cut)  # zeros: valid bits, wrong length
    with pytest.raises(ContainerError, match=r"block \(3, 7\)"):
        codec.decode(bytes(broken), engine="libjpeg")
    assert _blockdecode.fallbacks() > before


def _whole_image_jpeg(data: bytes) -> bytes:
    """The container (block 16, 4:2:0, one quality) as one whole-image baseline JPEG: a 16×16
    block is one MCU, so the segments joined by restart markers are the image's scan."""
    parsed = _parsed(data, None)
    meta = parsed.info
    assert meta.block == 16 and len(set(meta.quality_map.reshape(-1).tolist())) == 1
    sof = sof0(meta.height, meta.width, meta.layout)
    restart_every_mcu = bytes([0xFF, 0xDD, 0, 4, 0, 1])
    scans, offsets, lengths = rebuild(parsed)  # each block's standalone scan, unstuffed
    scan = []
    for i, (start, length) in enumerate(zip(offsets, lengths, strict=True)):
        if i:
            scan.append(bytes([0xFF, 0xD0 + (i - 1) % 8]))
        scan.append(stuff(scans[start : start + length]))
    tables = dqt(quant_tables(int(meta.quality_map[0, 0]))) + sof + dht(parsed.tables)
    return b"".join([SOI, tables, restart_every_mcu, sos(), *scan, EOI])


@pytest.mark.parametrize("shape", [(203, 301), (77, 131), (17, 33), (15, 15), (9, 3), (3, 40)])
@pytest.mark.parametrize("quality", [30, 95])
def test_seamless_decode_is_the_whole_image_jpeg_decode(
    photo: np.ndarray, shape: tuple[int, int], quality: int
) -> None:
    """Seamless chroma upsampling is libjpeg's over the whole image, edges and odd sizes
    included: bit-exact against Pillow decoding the same coefficients as one JPEG."""
    if not codec.SEAMLESS:
        pytest.skip("seamless decoding needs the C engine")
    image = np.ascontiguousarray(photo[: shape[0], : shape[1]])
    data = codec.encode(image, np.full(Layout(16).grid(*shape), quality), block=16)
    whole = np.asarray(Image.open(io.BytesIO(_whole_image_jpeg(data))).convert("RGB"))
    assert np.array_equal(codec.decode(data, seamless=True), whole)
    assert not np.array_equal(codec.decode(data), whole) or min(shape) <= 16


def test_seamless_changes_only_block_edge_pixels(photo: np.ndarray) -> None:
    if not codec.SEAMLESS:
        pytest.skip("seamless decoding needs the C engine")
    q = np.random.default_rng(9).choice(Q_SET, size=Layout().grid(*photo.shape[:2]))
    data = codec.encode(photo, q)
    seamless, standalone = codec.decode(data, seamless=True), codec.decode(data)
    edge = np.zeros(photo.shape[:2], dtype=bool)
    edge[::32], edge[31::32], edge[:, ::32], edge[:, 31::32] = True, True, True, True
    edge[-1], edge[:, -1] = True, True  # the image's own edge, inside a padded block
    assert np.array_equal(seamless[~edge], standalone[~edge])
    assert not np.array_equal(seamless[edge], standalone[edge])
    assert np.array_equal(codec.decode(data, seamless=True, threads=3), seamless)
    # 4:4:4 has no chroma upsampling, so nothing crosses a block edge
    data = codec.encode(photo, q, subsampling="4:4:4")
    assert np.array_equal(codec.decode(data, seamless=True), codec.decode(data))


def test_seamless_needs_the_c_engine_and_rejects_corrupt_data(photo: np.ndarray) -> None:
    data = codec.encode(photo[:192, :96], np.full((6, 3), 75))
    with pytest.raises(ValueError, match="C engine"):
        codec.decode(data, engine="simplejpeg", seamless=True)
    if not codec.SEAMLESS:
        return
    broken = _with_broken_block(data, 4, 1)
    for threads in (1, 2):
        with pytest.raises(ContainerError, match=r"block \(4, 1\)"):
            codec.decode(broken, seamless=True, threads=threads)


def test_bytes_left_in_libjpegs_bit_buffer_do_not_fail_a_seamless_decode(photo: np.ndarray) -> None:
    """A mutated segment that libjpeg reads to its end without complaint when the block is its
    own JPEG must not fail when it is decoded as a one-block strip (regression: a restart
    interval on a one-block strip made libjpeg count the bytes left in its bit buffer as
    extraneous data, so the seamless decode rejected a container the standalone one accepts)."""
    image = np.ascontiguousarray(photo[:58, :121])
    data = bytearray(codec.encode(image, np.array([[95, 30]]), block=64, subsampling="4:4:4"))
    # found by mutation (container version 4; the same segment byte in version 5, whose header
    # is 5 bytes longer here): the first block's standalone JPEG decodes, the
    # same JPEG with a restart interval of one block does not ("5 extraneous bytes before
    # marker 0xd9")
    data[1929] = 59
    standalone = codec.decode(bytes(data))  # accepted by every engine (engines agree above)
    for engine in codec.ENGINES:
        assert np.array_equal(codec.decode(bytes(data), engine=engine), standalone)
    if codec.SEAMLESS:
        assert codec.decode(bytes(data), seamless=True).shape == standalone.shape


@pytest.mark.parametrize(("shape", "subsampling"), [((203, 301), "4:2:0"), ((37, 70), "4:4:4")])
def test_uniform_decode_without_a_container_is_the_containers_decode(
    photo: np.ndarray, shape: tuple[int, int], subsampling: str
) -> None:
    """The reference error's shortcut (Annex K tables, no container) decodes to exactly the
    pixels of the container the encoder would write at that uniform quality."""
    from accelir.codec.transform import block_dct

    image = np.ascontiguousarray(photo[: shape[0], : shape[1]])
    dct = block_dct(image, Layout(32, subsampling))
    for q in (10, 75, 95):
        container = codec.encode_dct(dct, np.full(dct.grid, q))
        expected = codec.decode_for_restoration(container)
        assert np.array_equal(codec.decode_uniform_for_restoration(dct, q), expected)

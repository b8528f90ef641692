"""Untrusted containers: every malformed input ends in ``ContainerError``, never a crash, a hang
or a huge allocation. Property-based (hypothesis) mutations of real containers plus hand-made
hostile headers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelir import codec
from accelir.codec import container
from accelir.codec.container import ContainerError, Limits
from accelir.codec.layout import Layout


@pytest.fixture(scope="module")
def valid(small_photo: np.ndarray) -> bytes:
    q = np.random.default_rng(3).choice(
        [20, 50, 80, 95], size=Layout().grid(*small_photo.shape[:2])
    )
    return codec.encode(np.ascontiguousarray(small_photo[:70, :90]), q[:3, :3])


def _exercise(data: bytes) -> None:
    """Run every reader on ``data``: each either succeeds coherently or raises ContainerError."""
    try:
        meta = codec.info(data)
    except ContainerError:
        return
    decoded = {}
    for engine in codec.ENGINES:  # every engine rejects or decodes, and they agree
        try:
            decoded[engine] = codec.decode(data, engine=engine)
            assert decoded[engine].shape == (meta.height, meta.width, 3)
        except ContainerError:
            decoded[engine] = None
    images = list(decoded.values())
    for other in images[1:]:
        assert (other is None) == (images[0] is None), decoded.keys()
        if other is not None:
            assert np.array_equal(other, images[0])
    if codec.SEAMLESS:  # the seamless decode accepts exactly what the standalone one accepts
        try:
            codec.decode(data, seamless=True)
            assert images[0] is not None
        except ContainerError:
            assert images[0] is None
    try:
        jpeg = codec.block_jpeg(data, meta.rows - 1, meta.cols - 1)
        assert jpeg.startswith(b"\xff\xd8")
    except ContainerError:
        pass


def test_every_truncation_is_rejected(valid: bytes) -> None:
    for n in range(len(valid)):
        with pytest.raises(ContainerError):
            codec.info(valid[:n])


def test_trailing_garbage_is_rejected(valid: bytes) -> None:
    with pytest.raises(ContainerError, match="promises"):
        codec.info(valid + b"\x00")


@settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    with pytest.raises(ContainerError):
        codec.decode(data)


@settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_containers(valid: bytes, data: st.DataObject) -> None:
    buf = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    _exercise(bytes(buf))


@settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_spliced_containers(valid: bytes, data: st.DataObject) -> None:
    """Insert or delete bytes in the header and the block index."""
    cut = data.draw(st.integers(4, min(len(valid), 120)))
    if data.draw(st.booleans()):
        mutated = valid[:cut] + data.draw(st.binary(min_size=1, max_size=8)) + valid[cut:]
    else:
        mutated = valid[:cut] + valid[cut + data.draw(st.integers(1, 8)) :]
    _exercise(mutated)


def _header(width: int, height: int, block_log2: int = 5, flags: int = 0x02) -> bytes:
    return (
        container.MAGIC
        + bytes([container.VERSION, flags, block_log2])
        + container._uvarint(width)
        + container._uvarint(height)
    )


def test_oversized_images_are_rejected_before_allocation() -> None:
    with pytest.raises(ContainerError, match="pixel limit"):
        codec.info(_header(60000, 60000) + bytes([0, 50]))
    with pytest.raises(ContainerError, match="limit"):
        codec.info(_header(1 << 20, 4) + bytes([0, 50]))
    with pytest.raises(ContainerError, match="pixel limit"):
        codec.info(_header(100, 100) + bytes([0, 50]), limits=Limits(max_pixels=5000))
    with pytest.raises(ContainerError, match="byte limit"):
        codec.info(b"AIRC" + bytes(64), limits=Limits(max_bytes=32))


def test_deflate_bomb_in_quality_map_is_rejected() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = bomb.compress(bytes(50_000_000)) + bomb.flush()
    data = _header(64, 64) + bytes([1]) + container._uvarint(len(packed)) + packed
    with pytest.raises(ContainerError, match="quality map"):
        codec.info(data)


def test_header_fields_are_checked() -> None:
    cases = {
        b"JPEG" + bytes(10): "magic",
        container.MAGIC + bytes([9, 0, 5]): "version",
        container.MAGIC + bytes([1, 0x80, 5]): "flags",
        container.MAGIC + bytes([1, 0, 7]): "block size",
        _header(0, 10): "at least",
        _header(10, 10) + bytes([7]): "quality map mode",
        _header(10, 10) + bytes([0, 0]): r"1\.\.100",
        _header(10, 10) + bytes([0, 101]): r"1\.\.100",
    }
    for data, message in cases.items():
        with pytest.raises(ContainerError, match=message):
            codec.info(data)


def test_invalid_huffman_tables_are_rejected(valid: bytes) -> None:
    meta = codec.info(valid)
    bad_bits = bytes([2] + [0] * 15)  # two 1-bit codes and more symbols: over-subscribed
    table = bad_bits + bytes([0, 1])
    over = bytes([3] + [0] * 15) + bytes([0, 1, 2])
    for tables in (table * 3 + over, over * 4):
        packed = container._deflate(tables)
        data = (
            _header(meta.width, meta.height, flags=0)
            + bytes([0, 50])
            + container._uvarint(len(packed))
            + packed
        )
        with pytest.raises(ContainerError, match="Huffman"):
            codec.info(data)


def test_non_bytes_are_rejected() -> None:
    with pytest.raises(ContainerError):
        codec.info("AIRC")  # type: ignore[arg-type]


def test_a_relabelled_version_is_a_clean_error(small_photo: np.ndarray) -> None:
    """Version 1 codes edge blocks whole, version 2 their visible part: a version-2 container
    whose version byte says 1 asks for MCUs its edge segments do not hold, and every decoder
    names the same block."""
    data = bytearray(codec.encode(np.ascontiguousarray(small_photo[:70, :90]), np.full((3, 3), 60)))
    assert data[4] == container.VERSION == 2
    data[4] = 1
    decoders = [lambda d, e=e: codec.decode(d, engine=e) for e in codec.ENGINES]
    if codec.SEAMLESS:
        decoders.append(lambda d: codec.decode(d, seamless=True))
    for decode in decoders:
        with pytest.raises(ContainerError, match=r"block \(2, 0\)"):
            decode(bytes(data))
    data[4] = 3
    with pytest.raises(ContainerError, match="unsupported container version 3"):
        codec.info(bytes(data))

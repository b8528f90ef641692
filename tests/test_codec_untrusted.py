"""Untrusted containers: every malformed input ends in ``ContainerError``, never a crash, a hang
or a huge allocation. Property-based (hypothesis) mutations of real containers plus hand-made
hostile headers."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelir import codec
from accelir.codec import container
from accelir.codec.bitio import uvarint
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


def _header(
    width: int,
    height: int,
    block_log2: int = 5,
    flags: int = 0x02,
    version: int = container.VERSION,
) -> bytes:
    return container.MAGIC + bytes([version, flags, block_log2]) + uvarint(width) + uvarint(height)


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
    data = _header(64, 64) + bytes([1]) + uvarint(len(packed)) + packed
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


def _with_tables(meta: codec.ContainerInfo, version: int, raw: bytes) -> bytes:
    packed = container._deflate(raw)
    header = _header(meta.width, meta.height, flags=0, version=version)
    return header + bytes([0, 50]) + uvarint(len(packed)) + packed


def test_invalid_huffman_tables_are_rejected(valid: bytes) -> None:
    meta = codec.info(valid)
    # versions 1 and 2: DHT bodies
    over = bytes([3] + [0] * 15) + bytes([0, 1, 2])  # three 1-bit codes: over-subscribed
    table = bytes([2] + [0] * 15) + bytes([0, 1])
    for raw in (table * 3 + over, over * 4):
        with pytest.raises(ContainerError, match="Huffman"):
            codec.info(_with_tables(meta, 2, raw))
    # version 3: code lengths of 12 + 162 + 12 + 162 symbols
    good = np.full(348, 9, dtype=np.uint8)
    good[:12] = 4
    good[174:186] = 4
    over_subscribed, too_long, empty = good.copy(), good.copy(), good.copy()
    over_subscribed[12:20] = 1
    too_long[200] = 17
    empty[174:186] = 0
    cases = {
        over_subscribed.tobytes(): "Huffman table 1: .*over-subscribes",
        too_long.tobytes(): r"0\.\.16",
        empty.tobytes(): "Huffman table 2 has no symbols",
        good.tobytes()[:-1]: "expected 348 bytes",
        good.tobytes() + b"\x00": "expected 348 bytes",
    }
    for raw, message in cases.items():
        with pytest.raises(ContainerError, match=message):
            codec.info(_with_tables(meta, 3, raw))
    # the good tables themselves pass (the block index is what is missing)
    with pytest.raises(ContainerError, match="block index"):
        codec.info(_with_tables(meta, 3, good.tobytes()))


def test_non_bytes_are_rejected() -> None:
    with pytest.raises(ContainerError):
        codec.info("AIRC")  # type: ignore[arg-type]


def test_a_relabelled_version_is_a_clean_error() -> None:
    """Version 1 codes edge blocks whole, version 2 their visible part: a version-2 container
    (101 columns: the last column of blocks codes 5) whose version byte says 1 asks for MCUs
    its edge segments do not hold, and every decoder names a block of that column (which one
    first depends on the decoder's order: the C engine goes quality by quality)."""
    data = bytearray((Path(__file__).parent / "fixtures" / "v2_b32_420.air").read_bytes())
    assert data[4] == 2 and container.VERSION == 5
    data[4] = 1
    decoders = [lambda d, e=e: codec.decode(d, engine=e) for e in codec.ENGINES]
    if codec.SEAMLESS:
        decoders.append(lambda d: codec.decode(d, seamless=True))
    for decode in decoders:
        with pytest.raises(ContainerError, match=r"block \(\d, 3\)"):
            decode(bytes(data))
    data[4] = 6
    with pytest.raises(ContainerError, match="unsupported container version 6"):
        codec.info(bytes(data))


def _with_first_dc_map(valid: bytes, section: bytes) -> bytes:
    """``valid`` re-serialised with another first-DC map section (everything else kept)."""
    parsed = codec._parsed(valid, None)
    meta = parsed.info
    payload = valid[meta.header_bytes :]
    return container.write(
        meta.layout, meta.width, meta.height, meta.quality_map, parsed.tables, meta.lengths,
        payload, None, version=4, first_dc_section=section,
    )  # fmt: skip


def test_malformed_first_dc_maps_are_rejected(valid: bytes) -> None:
    """Version 4's first-DC map: values outside the baseline range, a size category the DC
    tables cannot code, set padding bits, truncation and trailing bytes all end in
    ``ContainerError``; the map re-encoded as it was reads back to the same container."""
    from accelir.codec import dcmap
    from accelir.codec.bitio import rice_encode, zigzag

    meta = codec.info(valid)
    assert meta.first_dc is not None and meta.scan_lengths is not None
    levels = meta.first_dc.astype(np.int64)
    parsed = codec._parsed(valid, None)
    dc_lengths = np.stack([parsed.tables[0].lengths, parsed.tables[2].lengths]).astype(np.int64)
    omitted = np.zeros(meta.quality_map.shape, dtype=np.int64)
    for k in range(3):
        cats = np.array([int(abs(v)).bit_length() for v in levels[..., k].reshape(-1)])
        omitted += (dc_lengths[min(k, 1)][cats] + cats).reshape(omitted.shape)
    longer = (meta.scan_lengths - meta.lengths - omitted // 8).astype(bool)
    section = dcmap.encode(levels, meta.quality_map, omitted, longer)
    as_version_4 = _with_first_dc_map(valid, section)
    assert codec.info(as_version_4).version == 4
    assert np.array_equal(codec.decode(as_version_4), codec.decode(valid))

    residual_streams = len(section) - len(np.packbits(longer[omitted % 8 != 0]).tobytes())
    flags = section[residual_streams:]
    huge = np.zeros((3, *meta.quality_map.shape), dtype=np.int64)
    huge[0, 0, 0] = 5000  # the first block's Y: 5000 from a prediction of 0
    too_large = b"".join(rice_encode(zigzag(huge[k])) for k in range(3)) + flags
    uncodable = levels.copy()
    uncodable[0, 0, 1] = 2047  # size 11: the image's chroma DC table has no such code
    cases = {
        too_large: "outside the baseline range",
        section[:-1] if flags else section[:5]: "first-DC map",
        section + b"\x00": "trailing bytes",
    }
    if dc_lengths[1][11] == 0:
        cases[dcmap.encode(uncodable, meta.quality_map, omitted, longer)] = "without a code"
    if flags and (-int(np.count_nonzero(omitted % 8)) % 8):
        cases[section[:-1] + bytes([section[-1] | 1])] = "padding bits must be zero"
    assert len(cases) >= 4
    for crafted, message in cases.items():
        with pytest.raises(ContainerError, match=message):
            codec.info(_with_first_dc_map(valid, crafted))


def test_bit_flips_in_the_map_and_index_are_clean_errors(valid: bytes) -> None:
    """Single bit flips in the last 39 header bytes (the block index and the end of the
    first-DC map, with its "one byte longer" bits): every engine fails cleanly or decodes,
    and they agree."""
    meta = codec.info(valid)
    start = meta.header_bytes - 1
    for flip in range(8):
        for offset in range(1, 40):
            data = bytearray(valid)
            data[start - offset] ^= 1 << flip
            outcomes = []
            for engine in codec.ENGINES:
                try:
                    outcomes.append(codec.decode(bytes(data), engine=engine))
                except ContainerError:
                    outcomes.append(None)
            if all(o is not None for o in outcomes):
                assert all(np.array_equal(outcomes[0], o) for o in outcomes)
            else:
                assert all(o is None for o in outcomes)

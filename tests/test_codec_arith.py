"""Container version 5's range coder, its block index and first-DC map (``accelir.codec.arith``,
``blockindex``, ``dcmap``), and the first-MCU parse that predicts across blocks (``scan``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelir import codec
from accelir.codec import arith, blockindex, container, dcmap, scan
from accelir.codec.bitio import ContainerError
from accelir.codec.layout import Layout


def _roundtrip(grids: list[np.ndarray], bits: np.ndarray, p1: np.ndarray) -> bytes:
    encoder = arith.Encoder()
    for g in grids:
        encoder.grid(g, blockindex.EDGES)
    encoder.bits(bits, p1)
    stream = encoder.finish()
    decoder = arith.Decoder(stream, "test")
    for g in grids:
        assert np.array_equal(decoder.grid(*g.shape, blockindex.EDGES), g)
    assert np.array_equal(decoder.bits(p1), bits)
    decoder.finish()  # the decoder ends exactly on the stream's last byte
    return stream


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from([0, 1, 3, 40, 5000, 1 << 24]),
    st.integers(0, 2**32 - 1),
)
def test_grids_and_bits_round_trip(rows: int, cols: int, scale: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    grids = [np.round(rng.laplace(0, scale, (rows, cols))).astype(np.int64) for _ in range(2)]
    bits = rng.integers(0, 2, 17)
    p1 = rng.integers(1, 4096, 17)
    _roundtrip(grids, bits, p1)


def test_extremes_round_trip() -> None:
    """Zeros only, and one huge value among zeros (its context's law widens for it)."""
    big = np.zeros((4, 5), dtype=np.int64)
    big[2, 3] = -(1 << 32)
    _roundtrip(
        [np.zeros((3, 3), dtype=np.int64), big], np.zeros(0, np.int64), np.zeros(0, np.int64)
    )
    big[2, 3] = 1 << 40  # beyond what a reader accepts: the writer refuses it
    with pytest.raises(ValueError, match="too large"):
        arith.Encoder().grid(big, blockindex.EDGES)


def test_the_code_is_short_for_its_law() -> None:
    """Laplacian values cost about their entropy under the fitted law (the writer chooses each
    context's law), and zeros cost a fraction of a bit each."""
    rng = np.random.default_rng(0)
    values = np.round(rng.laplace(0, 20, (40, 50))).astype(np.int64)
    _, counts = np.unique(values, return_counts=True)
    entropy_bits = -(counts * np.log2(counts / counts.sum())).sum()
    stream = _roundtrip([values], np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert 8 * len(stream) < 1.03 * entropy_bits + 100
    zeros = _roundtrip([np.zeros((40, 50), np.int64)], np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert len(zeros) < 40


def test_law_table_is_valid() -> None:
    """Probabilities are 12-bit, in 1..4095, and the laws grow wider with their number."""
    table = arith.law_table()
    assert table.shape[0] == arith.N_LAWS
    nonzero, k = table[:, 0], table[:, 1]
    assert np.all(np.diff(nonzero) >= 0) and np.all(np.diff(k) >= 0)
    for row in table:
        probabilities = np.concatenate([row[[0, 2]], row[3 : 3 + row[1]]])
        assert probabilities.min() >= 1 and probabilities.max() <= 4095


def test_malformed_streams_are_container_errors() -> None:
    grid = np.arange(-6, 6).reshape(3, 4)
    stream = _roundtrip([grid], np.zeros(0, np.int64), np.zeros(0, np.int64))
    cases = {
        b"\x01" + stream[1:]: "malformed",
        stream[:3]: "malformed",
        stream[:-2]: "too short",
        stream + b"\x00": "trailing",
    }
    for data, message in cases.items():
        with pytest.raises(ContainerError, match=message):
            decoder = arith.Decoder(data, "test")
            decoder.grid(3, 4, blockindex.EDGES)
            decoder.finish()


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=5, max_size=60))
def test_random_streams_end_in_values_or_container_errors(data: bytes) -> None:
    """Any bytes decode to bounded values or raise ``ContainerError``; never hang or crash."""
    try:
        decoder = arith.Decoder(b"\x00" + data[1:], "test")
        grid = decoder.grid(5, 7, dcmap.EDGES)
    except ContainerError:
        return
    assert np.abs(grid).max() < 1 << 40


def test_median_prediction_inverts() -> None:
    """Residuals invert exactly; on a smooth grid (neighbouring blocks alike) they are small."""
    rows, cols = np.mgrid[:7, :11]
    noise = np.random.default_rng(1).integers(-3, 4, (7, 11))
    lengths = 100 + 9 * rows + 5 * cols + noise
    residuals = blockindex.median_residuals(lengths)
    assert np.array_equal(blockindex.median_values(residuals), lengths)
    assert np.abs(residuals[1:, 1:]).mean() < np.abs(lengths - lengths.mean()).mean() / 3


@pytest.mark.parametrize(("block", "subsampling"), [(32, "4:2:0"), (16, "4:2:0"), (64, "4:4:4")])
def test_first_mcus_read_what_the_writer_knew(
    photo: np.ndarray, block: int, subsampling: str
) -> None:
    """The parse finds, from the stored segments alone, the DCs that end each block's first
    MCU row (relative to its first DCs) as the writer computed them from the coefficients."""
    from accelir.codec import transform

    layout = Layout(block, subsampling)
    image = np.ascontiguousarray(photo[:150, :205])
    q = np.random.default_rng(2).choice([10, 50, 90, 100], layout.grid(*image.shape[:2]))
    data = codec.encode(image, q, block, subsampling)
    parsed = container.parse(data)
    meta = parsed.info
    assert parsed.huff is not None
    _, right = scan.first_mcus(
        data, meta.offsets, meta.lengths, layout, meta.cols, parsed.huff, True
    )
    coefs = transform.quantise(transform.block_dct(image, layout), q)
    levels = coefs[:, layout.first_units(), 0].astype(np.int64)
    expected = coefs[:, layout.row_end_units(), 0] - levels
    expected.reshape(*q.shape, 3)[:, -1] = 0  # the last column: nothing follows it
    assert np.array_equal(right, expected)
    assert np.array_equal(meta.first_dc.reshape(-1, 3), levels)


def test_version_5_is_smaller_than_version_4(photo: np.ndarray) -> None:
    """The same segments with version 5's section (predicted from the unit beside, range-coded)
    instead of version 4's map and index: fewer header bytes, the same pixels."""
    image = np.ascontiguousarray(photo[:400, :640])
    q = np.full(Layout().grid(400, 640), 50)
    data = codec.encode(image, q)
    parsed = container.parse(data)
    meta = parsed.info
    omitted = meta.scan_lengths * 0
    dc_lengths = np.stack([parsed.tables[0].lengths, parsed.tables[2].lengths]).astype(np.int64)
    for k in range(3):
        cats = np.array([int(abs(v)).bit_length() for v in meta.first_dc[..., k].reshape(-1)])
        omitted += (dc_lengths[min(k, 1)][cats] + cats).reshape(omitted.shape)
    longer = (meta.scan_lengths - meta.lengths - omitted // 8).astype(bool)
    first_dc = dcmap.FirstDC(meta.first_dc.astype(np.int64), meta.first_dc * 0, omitted, longer)
    old = container.write(
        meta.layout, meta.width, meta.height, meta.quality_map, parsed.tables, meta.lengths,
        data[meta.header_bytes :], first_dc, version=4,
    )  # fmt: skip
    assert codec.info(old).version == 4 and meta.version == 5
    assert meta.header_bytes < 0.95 * codec.info(old).header_bytes
    assert np.array_equal(codec.decode(old), codec.decode(data))


def test_write_refuses_other_versions(valid_v5: bytes) -> None:
    parsed = container.parse(valid_v5)
    meta = parsed.info
    with pytest.raises(ValueError, match="version 5"):
        container.write(
            meta.layout, meta.width, meta.height, meta.quality_map, parsed.tables, meta.lengths,
            b"", None, version=3,
        )  # fmt: skip


@pytest.fixture()
def valid_v5(small_photo: np.ndarray) -> bytes:
    q = np.random.default_rng(3).choice([20, 50, 80, 95], size=(3, 3))
    return codec.encode(np.ascontiguousarray(small_photo[:70, :90]), q)


def test_malformed_block_sections_are_rejected(valid_v5: bytes) -> None:
    """The version-5 section truncated, extended, or with its first byte set, and a segment
    whose first MCU row does not decode: ``ContainerError`` from every reader."""
    from accelir.codec.bitio import Reader

    meta = codec.info(valid_v5)
    end = meta.header_bytes
    reader = Reader(valid_v5)  # walk the header's fields up to the section
    reader.take(7, "magic, version, flags, block")
    reader.uvarint("width", 1 << 16), reader.uvarint("height", 1 << 16)
    assert reader.u8("quality map mode") == 1  # deflated (mixed qualities)
    reader.take(reader.uvarint("map", end), "map")
    reader.take(reader.uvarint("tables", end), "tables")
    start = reader.pos
    assert reader.uvarint("section", end) == end - start - 1
    section = valid_v5[start + 1 : end]
    head, payload = valid_v5[:start], valid_v5[end:]

    def with_section(new: bytes) -> bytes:
        return head + bytes([len(new)]) + new + payload

    assert with_section(section) == valid_v5
    for crafted in (section[:-1], section + b"\x00", b"\x07" + section[1:]):
        with pytest.raises(ContainerError):
            codec.info(with_section(crafted))
    corrupt = bytearray(valid_v5)
    corrupt[end : end + 4] = b"\xff\xff\xff\xff"  # block (0, 0): code words that do not exist
    for reader in (codec.info, codec.decode, lambda d: codec.block_jpeg(d, 0, 0)):
        with pytest.raises(ContainerError, match=r"block \(0, 0\)"):
            reader(bytes(corrupt))

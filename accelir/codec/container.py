"""The AccelIR block container (``.air``): byte layout, writing, and validated parsing.

Layout (all integers unsigned; ``uvarint`` is LEB128; see docs/format.md):

    magic "AIRC" | version u8 | flags u8 | log2(block) u8 | width uvarint | height uvarint
    quality map  | Huffman tables (unless flags say Annex K)
    version 4: first-DC map | block index; version 5: block section (index and map) | segments

Parsing never trusts the input: every size is checked against ``Limits`` before anything is
allocated, compressed fields are inflated with a hard output cap, and the block index must add
up to exactly the bytes that follow it. Any violation raises ``ContainerError``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelir.codec import arith, blockindex, dcmap, scan
from accelir.codec.bitio import ContainerError, Reader, uvarint
from accelir.codec.huffman import HuffmanTable
from accelir.codec.layout import Layout
from accelir.codec.tables import STD_TABLES

MAGIC = b"AIRC"
#: Written by ``write``. Version 1 coded edge blocks whole (padded area included); version 2
#: codes only the MCUs that cover an edge block's visible part; version 3 stores segments
#: without JPEG byte stuffing; version 4 leaves each block's first DC code words out of its
#: segment and keeps their values in the first-DC map; version 5 predicts those values from the
#: unit beside them and range-codes the map and the block index together. All five are read.
VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
_FLAG_444 = 0x01
_FLAG_STANDARD_TABLES = 0x02
_KNOWN_FLAGS = _FLAG_444 | _FLAG_STANDARD_TABLES
_QMAP_UNIFORM, _QMAP_DEFLATE = 0, 1
_MAX_TABLE_BYTES = 4 * (16 + 256)
# Symbols a baseline 8-bit decoder accepts in each table slot.
_DC_SYMBOLS = frozenset(range(12))
_AC_SYMBOLS = frozenset([0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)])
#: Version 3 stores each table as the code lengths of these symbols, in this order: DC sizes
#: 0..11; AC end-of-block, run-of-16, then size by size (1..10), runs 0..15 (lengths of one
#: size grow with the run: neighbours, which DEFLATE codes well).
_DC_ORDER = np.arange(12)
_AC_ORDER = np.array([0x00, 0xF0] + [(r << 4) | s for s in range(1, 11) for r in range(16)])
_SLOT_ORDERS = (_DC_ORDER, _AC_ORDER, _DC_ORDER, _AC_ORDER)
_TABLE_LENGTHS_BYTES = sum(o.size for o in _SLOT_ORDERS)  # 348


@dataclass(frozen=True)
class Limits:
    """Bounds applied to untrusted containers before any allocation."""

    max_pixels: int = 1 << 27  # 134 megapixels: 8K photographs fit with room to spare
    max_side: int = 1 << 16
    max_bytes: int = 1 << 30


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ContainerInfo:
    """The manifest of a container: geometry, per-block qualities and byte ranges."""

    version: int
    width: int
    height: int
    block: int
    subsampling: str
    huffman: str  # "optimized" (tables stored) or "standard" (Annex K)
    quality_map: np.ndarray  # (rows, cols) uint8
    offsets: np.ndarray  # (rows, cols) int64: first byte of each block's segment
    lengths: np.ndarray  # (rows, cols) int64: bytes of each block's segment
    header_bytes: int  # bytes before the first segment
    total_bytes: int
    #: version 4 on: (rows, cols, 3) the DC of each block's first Y, Cb and Cr unit, which its
    #: segment leaves out; and (rows, cols) the byte length of each block's rebuilt scan
    #: (before stuffing). None for earlier versions, whose segments are scans.
    first_dc: np.ndarray | None = None
    scan_lengths: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.quality_map.shape[0])

    @property
    def cols(self) -> int:
        return int(self.quality_map.shape[1])

    @property
    def layout(self) -> Layout:
        return Layout(self.block, self.subsampling)

    def coded_edges(self) -> tuple[int, int]:
        """(height of the bottom row of blocks, width of the right column) as their segments code
        them and their standalone JPEGs declare: the visible size from version 2 on, the whole
        block in version 1."""
        if self.version < 2:
            return self.block, self.block
        return self.layout.edge_extents(self.height, self.width)

    @property
    def stuffed(self) -> bool:
        """Whether segments are stored byte-stuffed, as JPEG scan data (versions 1 and 2), or
        unstuffed (version 3 on: ``jfif.stuff`` makes them scan data)."""
        return self.version < 3

    @property
    def omits_first_dc(self) -> bool:
        """Whether segments leave out their first DC code words (version 4 on)."""
        return self.version >= 4

    def block_shape(self, row: int, col: int) -> tuple[int, int]:
        """(height, width) of block (row, col)'s standalone JPEG."""
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise IndexError(f"block ({row}, {col}) outside the {self.rows}×{self.cols} grid")
        last_h, last_w = self.coded_edges()
        return (
            last_h if row == self.rows - 1 else self.block,
            last_w if col == self.cols - 1 else self.block,
        )

    def block_range(self, row: int, col: int) -> tuple[int, int]:
        """[start, end) of a block's segment inside the container, for HTTP range requests."""
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise IndexError(f"block ({row}, {col}) outside the {self.rows}×{self.cols} grid")
        start = int(self.offsets[row, col])
        return start, start + int(self.lengths[row, col])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready manifest (version 4 on adds the first-DC values and scan lengths)."""
        extra: dict[str, Any] = {}
        if self.first_dc is not None and self.scan_lengths is not None:
            extra = {
                "first_dc": self.first_dc.tolist(),
                "scan_lengths": self.scan_lengths.tolist(),
            }
        return {
            "version": self.version,
            "width": self.width,
            "height": self.height,
            "block": self.block,
            "subsampling": self.subsampling,
            "huffman": self.huffman,
            "rows": self.rows,
            "cols": self.cols,
            "bytes": self.total_bytes,
            "header_bytes": self.header_bytes,
            "quality_map": self.quality_map.tolist(),
            "byte_ranges": np.stack([self.offsets, self.offsets + self.lengths], axis=-1).tolist(),
            **extra,
        }


@dataclass(frozen=True)
class Parsed:
    info: ContainerInfo
    tables: tuple[HuffmanTable, ...]
    data: bytes
    #: version 4 on: (blocks, 3) int64, the bits of each stored segment where its first Y, Cb
    #: and Cr DC code words belong (``scan.first_mcus``), and the tables' flat decoding and
    #: coding arrays (``scan.huffman_arrays``) that found them and rebuild the scans
    insert_at: np.ndarray | None = None
    huff: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# Writing


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush()


def _table_lengths(tables: Sequence[HuffmanTable]) -> bytes:
    """The four tables as the code lengths of their slots' symbols (``_SLOT_ORDERS``)."""
    for t in tables:
        if not t.canonical:
            raise ValueError("the container stores canonical tables (HuffmanTable.from_lengths)")
    return b"".join(
        t.lengths[order].astype(np.uint8).tobytes()
        for t, order in zip(tables, _SLOT_ORDERS, strict=True)
    )


def _tables_from_lengths(raw: bytes) -> tuple[HuffmanTable, ...]:
    lengths = np.frombuffer(raw, dtype=np.uint8)
    if lengths.max() > 16:
        raise ContainerError("Huffman tables: code lengths must lie in 0..16")
    tables, start = [], 0
    for slot, order in enumerate(_SLOT_ORDERS):
        full = np.zeros(256, dtype=np.int64)
        full[order] = lengths[start : start + order.size]
        start += order.size
        if not full.any():
            raise ContainerError(f"Huffman table {slot} has no symbols")
        try:
            tables.append(HuffmanTable.from_lengths(full))
        except ValueError as exc:
            raise ContainerError(f"Huffman table {slot}: {exc}") from None
    return tuple(tables)


def write(
    layout: Layout,
    width: int,
    height: int,
    quality_map: np.ndarray,
    tables: Sequence[HuffmanTable] | None,
    lengths: np.ndarray,
    payload: bytes,
    first_dc: dcmap.FirstDC | None,
    *,
    version: int = VERSION,
    first_dc_section: bytes | None = None,
) -> bytes:
    """Serialise a container of ``version`` 5, or 4 (kept for tests of the reader, with
    ``first_dc_section`` standing in for the map ``dcmap.encode`` writes). ``tables=None``
    means the Annex K tables (not stored)."""
    if version not in (4, 5):
        raise ValueError("containers are written as version 5 (or 4, for tests)")
    flags = (_FLAG_444 if layout.subsampling == "4:4:4" else 0) | (
        _FLAG_STANDARD_TABLES if tables is None else 0
    )
    parts = [MAGIC, bytes([version, flags, layout.block.bit_length() - 1])]
    parts += [uvarint(width), uvarint(height)]
    q = quality_map.astype(np.uint8)
    if np.all(q == q.flat[0]):
        parts.append(bytes([_QMAP_UNIFORM, int(q.flat[0])]))
    else:
        packed = _deflate(q.tobytes())
        parts += [bytes([_QMAP_DEFLATE]), uvarint(len(packed)), packed]
    if tables is not None:
        packed_tables = _deflate(_table_lengths(tables))
        parts += [uvarint(len(packed_tables)), packed_tables]
    if first_dc is None and (version != 4 or first_dc_section is None):
        raise ValueError("first_dc is needed unless a version-4 map section is given")
    if version == 4:
        section = first_dc_section
        if section is None:
            assert first_dc is not None
            section = dcmap.encode(first_dc.levels, q, first_dc.omitted, first_dc.longer)
        index = blockindex.rice_lengths(lengths)
        parts += [uvarint(len(section)), section, uvarint(len(index)), index]
    else:
        assert first_dc is not None
        section = _block_section(lengths, q, first_dc)
        parts += [uvarint(len(section)), section]
    parts.append(payload)
    return b"".join(parts)


def _block_section(lengths: np.ndarray, quality_map: np.ndarray, first_dc: dcmap.FirstDC) -> bytes:
    """Version 5: the block index, then the first-DC map, in one range-coded stream."""
    encoder = arith.Encoder()
    blockindex.put(encoder, lengths)
    dcmap.put(encoder, first_dc, quality_map)
    return encoder.finish()


# ---------------------------------------------------------------------------------------------
# Parsing


def _inflate_bounded(data: bytes, maximum: int, what: str) -> bytes:
    """Inflate raw deflate data of at most ``maximum`` bytes."""
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, maximum + 1)
    except zlib.error as exc:
        raise ContainerError(f"{what}: corrupt compressed data ({exc})") from None
    if len(out) > maximum or not d.eof or d.unconsumed_tail or d.unused_data:
        raise ContainerError(f"{what}: malformed compressed data")
    return out


def _inflate(data: bytes, size: int, what: str) -> bytes:
    """Inflate raw deflate data that must expand to exactly ``size`` bytes (a bomb stops at
    ``size + 1``)."""
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(data, size + 1)
    except zlib.error as exc:
        raise ContainerError(f"{what}: corrupt compressed data ({exc})") from None
    if len(out) != size or not d.eof or d.unconsumed_tail or d.unused_data:
        raise ContainerError(f"{what}: expected {size} bytes after decompression")
    return out


def _read_table(reader: Reader, slot: int) -> HuffmanTable:
    bits = tuple(reader.take(16, "Huffman table"))
    values = reader.take(sum(bits), "Huffman table")
    allowed = _AC_SYMBOLS if slot % 2 else _DC_SYMBOLS
    if not set(values) <= allowed:
        raise ContainerError("Huffman table holds symbols a baseline JPEG cannot use")
    try:
        return HuffmanTable(bits, values)
    except ValueError as exc:
        raise ContainerError(f"Huffman table: {exc}") from None


def segment_offsets(lengths: np.ndarray, header_bytes: int) -> np.ndarray:
    """Where each segment of ``lengths`` starts: laid end to end after the header."""
    start = np.concatenate([[0], np.cumsum(lengths.reshape(-1))[:-1]]).reshape(lengths.shape)
    return header_bytes + start


def manifest(
    layout: Layout,
    width: int,
    height: int,
    huffman: str,
    quality_map: np.ndarray,
    lengths: np.ndarray,
    header_bytes: int,
    version: int = VERSION,
    first_dc: np.ndarray | None = None,
    scan_lengths: np.ndarray | None = None,
) -> ContainerInfo:
    """The manifest of segments of ``lengths`` (rows, cols) laid end to end after
    ``header_bytes`` bytes of header (version 4: with the first-DC values and scan lengths)."""
    return ContainerInfo(
        version=version,
        width=width,
        height=height,
        block=layout.block,
        subsampling=layout.subsampling,
        huffman=huffman,
        quality_map=quality_map,
        offsets=segment_offsets(lengths, header_bytes),
        lengths=lengths,
        header_bytes=header_bytes,
        total_bytes=header_bytes + int(lengths.sum()),
        first_dc=first_dc,
        scan_lengths=scan_lengths,
    )


def standard_tables() -> tuple[HuffmanTable, ...]:
    return tuple(HuffmanTable(bits, values) for bits, values in STD_TABLES)


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Parsed:
    """Validate and index a container. Raises ``ContainerError`` on anything malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ContainerError(f"a container is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise ContainerError(
            f"container of {len(data)} bytes exceeds the {limits.max_bytes}-byte limit"
        )
    r = Reader(data)
    if r.take(4, "magic") != MAGIC:
        raise ContainerError("not an AccelIR container (bad magic)")
    version = r.u8("version")
    if version not in READABLE_VERSIONS:
        raise ContainerError(f"unsupported container version {version}")
    flags = r.u8("flags")
    if flags & ~_KNOWN_FLAGS:
        raise ContainerError(f"unknown flags 0x{flags:02x}")
    log2_block = r.u8("block size")
    if log2_block not in (4, 5, 6):
        raise ContainerError(f"block size 2**{log2_block} is not 16, 32 or 64")
    layout = Layout(1 << log2_block, "4:4:4" if flags & _FLAG_444 else "4:2:0")
    width = r.uvarint("width", limits.max_side)
    height = r.uvarint("height", limits.max_side)
    if width < 1 or height < 1:
        raise ContainerError("image size must be at least 1×1")
    if width * height > limits.max_pixels:
        raise ContainerError(f"{width}×{height} exceeds the {limits.max_pixels}-pixel limit")
    rows, cols = layout.grid(height, width)
    n_blocks = rows * cols

    mode = r.u8("quality map mode")
    if mode == _QMAP_UNIFORM:
        q = r.u8("quality")
        qmap = np.full((rows, cols), q, dtype=np.uint8)
    elif mode == _QMAP_DEFLATE:
        size = r.uvarint("quality map size", len(data))
        raw = _inflate(r.take(size, "quality map"), n_blocks, "quality map")
        qmap = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols).copy()
    else:
        raise ContainerError(f"unknown quality map mode {mode}")
    if qmap.min() < 1 or qmap.max() > 100:
        raise ContainerError("block qualities must lie in 1..100")

    if flags & _FLAG_STANDARD_TABLES:
        tables = standard_tables()
    else:
        size = r.uvarint("Huffman tables size", len(data))
        packed = r.take(size, "Huffman tables")
        if version >= 3:
            tables = _tables_from_lengths(_inflate(packed, _TABLE_LENGTHS_BYTES, "Huffman tables"))
        else:  # versions 1 and 2: the four DHT bodies
            raw_tables = _inflate_bounded(packed, _MAX_TABLE_BYTES, "Huffman tables")
            table_reader = Reader(raw_tables)
            tables = tuple(_read_table(table_reader, slot) for slot in range(4))
            if table_reader.pos != len(raw_tables):
                raise ContainerError("Huffman tables: trailing bytes")

    first_dc = omitted = longer = insert_at = huff = None
    dc_lengths = np.stack([tables[0].lengths, tables[2].lengths])
    max_seg = layout.max_segment_bytes()

    def checked(lengths: np.ndarray, header_bytes: int) -> np.ndarray:
        if lengths.min() < 1 or lengths.max() > max_seg:
            raise ContainerError(f"block index: segment lengths must lie in 1..{max_seg}")
        if int(lengths.sum()) != len(data) - header_bytes:
            raise ContainerError(
                f"block index promises {int(lengths.sum())} bytes of segments, "
                f"{len(data) - header_bytes} follow"
            )
        return lengths

    if version >= 5:
        size = r.uvarint("block section size", len(data))
        decoder = arith.Decoder(r.take(size, "block section"), "block section")
        header_bytes = r.pos
        lengths = checked(blockindex.get(decoder, rows, cols), header_bytes)
        offsets = segment_offsets(lengths, header_bytes)
        huff = scan.huffman_arrays(tables)
        insert_at, right = scan.first_mcus(data, offsets, lengths, layout, cols, huff, True)
        first_dc, omitted, longer = dcmap.get(
            decoder, qmap, right.reshape(rows, cols, 3), dc_lengths
        )
        decoder.finish()
    else:
        if version == 4:
            size = r.uvarint("first-DC map size", len(data))
            first_dc, omitted, longer = dcmap.decode(r.take(size, "first-DC map"), qmap, dc_lengths)
        index_size = r.uvarint("block index size", len(data))
        index = r.take(index_size, "block index")
        header_bytes = r.pos
        lengths = checked(blockindex.read_rice_lengths(index, rows, cols), header_bytes)
        if version == 4:
            offsets = segment_offsets(lengths, header_bytes)
            huff = scan.huffman_arrays(tables)
            insert_at, _ = scan.first_mcus(data, offsets, lengths, layout, cols, huff, False)
    huffman = "standard" if flags & _FLAG_STANDARD_TABLES else "optimized"
    scan_lengths = None
    if first_dc is not None and omitted is not None and longer is not None:
        scan_lengths = lengths + omitted // 8 + longer
        first_dc = first_dc.astype(np.int16)
    info = manifest(
        layout, width, height, huffman, qmap, lengths, header_bytes, version, first_dc, scan_lengths
    )
    return Parsed(info, tables, data, insert_at, huff)


__all__ = [
    "DEFAULT_LIMITS",
    "READABLE_VERSIONS",
    "VERSION",
    "ContainerError",
    "ContainerInfo",
    "Limits",
    "Parsed",
    "manifest",
    "parse",
    "standard_tables",
    "write",
]

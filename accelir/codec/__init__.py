"""The AccelIR block container: each block of an image is a baseline JPEG scan of its own quality.

Public API (stable; used by the pipeline, the service and outside checks):

- ``encode(image, qualities, block=32, subsampling="4:2:0") -> bytes``
- ``decode(data) -> np.ndarray``
- ``block_jpeg(data, row, col) -> bytes`` — one block as a standalone JPEG file
- ``info(data) -> ContainerInfo`` — geometry, quality map and per-block byte ranges
- ``ContainerError`` — raised for any invalid container

All blocks share one set of Huffman tables, optimised for the image's own symbol statistics
(``huffman="standard"`` uses the Annex K tables instead). The byte layout is in docs/format.md.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from accelir.codec import dcmap, entropy, transform
from accelir.codec.container import (
    DEFAULT_LIMITS,
    ContainerError,
    ContainerInfo,
    Limits,
    Parsed,
    manifest,
    parse,
    standard_tables,
    write,
)
from accelir.codec.decoder import ENGINES, SEAMLESS, decode_blocks
from accelir.codec.huffman import HuffmanTable, optimal_table
from accelir.codec.jfif import EOI, block_header, stuff
from accelir.codec.layout import Layout
from accelir.codec.scan import rebuild

__all__ = [
    "ENGINES",
    "SEAMLESS",
    "ContainerError",
    "ContainerInfo",
    "Limits",
    "block_jpeg",
    "decode",
    "decode_for_restoration",
    "decode_uniform_for_restoration",
    "encode",
    "encode_dct",
    "info",
]


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("image must be a uint8 numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be H×W×3 with H, W ≥ 1, got shape {image.shape}")
    if (
        max(image.shape[:2]) > DEFAULT_LIMITS.max_side
        or image.shape[0] * image.shape[1] > DEFAULT_LIMITS.max_pixels
    ):
        raise ValueError(f"image of {image.shape[1]}×{image.shape[0]} exceeds the container limits")
    return np.ascontiguousarray(image)


def _check_qualities(qualities: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    q = np.asarray(qualities)
    if q.shape != grid:
        raise ValueError(f"qualities must have shape {grid} (blocks), got {q.shape}")
    if not np.issubdtype(q.dtype, np.integer) and not np.all(np.mod(q, 1) == 0):
        raise ValueError("qualities must be integers")
    q = q.astype(np.int64)
    if q.min() < 1 or q.max() > 100:
        raise ValueError("qualities must lie in 1..100")
    return q


def encode(
    image: np.ndarray,
    qualities: np.ndarray,
    block: int = 32,
    subsampling: str = "4:2:0",
    *,
    huffman_tables: str = "optimized",
) -> bytes:
    """Encode an H×W×3 uint8 RGB image with one JPEG quality per block.

    ``qualities`` has shape (ceil(H / block), ceil(W / block)), values 1..100.
    ``huffman_tables`` is ``"optimized"`` (one set computed from this image, stored once) or
    ``"standard"`` (Annex K, not stored).
    """
    layout = Layout(block, subsampling)
    image = _check_image(image)
    h, w = image.shape[:2]
    q = _check_qualities(qualities, layout.grid(h, w))
    if huffman_tables not in ("optimized", "standard"):
        raise ValueError("huffman_tables must be 'optimized' or 'standard'")
    return encode_dct(transform.block_dct(image, layout), q, huffman_tables=huffman_tables)


def encode_dct(
    dct: transform.BlockDCT, qualities: np.ndarray, *, huffman_tables: str = "optimized"
) -> bytes:
    """``encode`` from a precomputed block DCT (encoders that try several quality maps
    transform once)."""
    if huffman_tables not in ("optimized", "standard"):
        raise ValueError("huffman_tables must be 'optimized' or 'standard'")
    layout, (h, w) = dct.layout, (dct.height, dct.width)
    q = _check_qualities(qualities, layout.grid(h, w))
    coefs = transform.quantise(dct, q)
    comps = layout.unit_components()
    counts = entropy.count_symbols(coefs, comps, dct.absent)
    tables = (
        tuple(optimal_table(c) for c in counts) if huffman_tables == "optimized" else _standard()
    )
    payload, lengths, data_bits = _entropy_code(dct, coefs, counts, tables, omit_first_dc=True)
    # version 4 on: the first DC code words left out, their values in the first-DC map
    first_units = layout.first_units()
    levels = coefs[:, first_units, 0].astype(np.int64)
    right = coefs[:, layout.row_end_units(), 0].astype(np.int64) - levels
    code_lengths = np.stack([t.lengths for t in tables])
    omitted = entropy.first_dc_bits(coefs, first_units, code_lengths)
    longer = -(-(data_bits + omitted) // 8) - lengths - omitted // 8
    first_dc = dcmap.FirstDC(
        levels.reshape(*q.shape, 3),
        right.reshape(*q.shape, 3),
        omitted.reshape(q.shape),
        longer.reshape(q.shape).astype(bool),
    )
    stored = None if huffman_tables == "standard" else tables
    return write(layout, w, h, q, stored, lengths.reshape(q.shape), payload, first_dc)


_standard = cache(standard_tables)


def _entropy_code(
    dct: transform.BlockDCT,
    coefs: np.ndarray,
    counts: np.ndarray,
    tables: tuple[HuffmanTable, ...],
    *,
    omit_first_dc: bool,
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Every block's segment of the quantised ``coefs`` (of ``dct``'s image, symbol ``counts``)
    with ``tables`` (without the first DC code words if ``omit_first_dc``): the concatenated
    segments, each one's byte length and its bits before padding (blocks,)."""
    code_lengths = np.stack([t.lengths for t in tables])
    codes = np.stack([t.codes for t in tables])
    bits = entropy.total_bits(counts, code_lengths)
    out = np.empty(bits // 8 + coefs.shape[0] + 1, dtype=np.uint8)  # + one padding byte a block
    lengths = np.empty(coefs.shape[0], dtype=np.int64)
    data_bits = np.empty(coefs.shape[0], dtype=np.int64)
    layout = dct.layout
    omit = np.zeros(layout.units_per_block, dtype=np.bool_)
    if omit_first_dc:
        omit[layout.first_units()] = True
    comps = layout.unit_components()
    n = entropy.write_segments(
        coefs, comps, dct.absent, code_lengths, codes, out, lengths, omit, data_bits
    )
    return out[:n].tobytes(), lengths, data_bits


def decode_uniform_for_restoration(dct: transform.BlockDCT, quality: int) -> np.ndarray:
    """``decode_for_restoration(encode_dct(dct, quality everywhere))``, without writing or
    parsing a container: decoded pixels depend on the quantised coefficients alone, so the
    segments are coded with the Annex K tables and handed to the decoder as they are. For
    encoders that decode every candidate quality (``reference_error``): it spares each pass
    the optimal tables, the container's serialisation and its parse, which hold the GIL."""
    layout, (h, w) = dct.layout, (dct.height, dct.width)
    qmap = np.full(layout.grid(h, w), int(quality), dtype=np.uint8)
    coefs = transform.quantise(dct, qmap)
    counts = entropy.count_symbols(coefs, layout.unit_components(), dct.absent)
    payload, lengths, _ = _entropy_code(dct, coefs, counts, _standard(), omit_first_dc=False)
    # whole scans, unstuffed: the segments of a version-3 container
    meta = manifest(layout, w, h, "standard", qmap, lengths.reshape(qmap.shape), 0, version=3)
    return decode_blocks(Parsed(meta, _standard(), payload), seamless=SEAMLESS)


@lru_cache(maxsize=16)
def _parse_cached(data: bytes) -> Parsed:
    return parse(data)


def _parsed(data: bytes, limits: Limits | None) -> Parsed:
    if limits is not None and limits != DEFAULT_LIMITS:
        return parse(data, limits)
    if not isinstance(data, bytes):
        return parse(data)
    return _parse_cached(data)


def info(data: bytes, *, limits: Limits | None = None) -> ContainerInfo:
    """The container's manifest (raises ``ContainerError`` if it is invalid)."""
    return _parsed(data, limits).info


def block_jpeg(data: bytes, row: int, col: int, *, limits: Limits | None = None) -> bytes:
    """Block (row, col) as a standalone baseline JPEG: block × block pixels, or the visible part
    of blocks on the right and bottom edges (containers of version 1 show those whole, with
    the replicated padding that ``decode`` crops)."""
    parsed = _parsed(data, limits)
    meta = parsed.info
    if not (isinstance(row, int | np.integer) and isinstance(col, int | np.integer)):
        raise TypeError("row and col must be integers")
    start, end = meta.block_range(int(row), int(col))
    q = int(meta.quality_map[row, col])
    shape = meta.block_shape(int(row), int(col))
    if meta.omits_first_dc:
        scan = stuff(rebuild(parsed, np.array([int(row) * meta.cols + int(col)]))[0])
    else:
        scan = parsed.data[start:end]
        if not meta.stuffed:
            scan = stuff(scan)
    return block_header(q, meta.layout, parsed.tables, shape) + scan + EOI


def decode_for_restoration(data: bytes, *, limits: Limits | None = None) -> np.ndarray:
    """What a restoration network gets: the seamless decode where the C engine is built (chroma
    upsampled across block edges: +0.1 dB on the decoded image, docs/benchmarks.md), else the
    standalone-block decode. Random access to single blocks (``block_jpeg``) is unaffected."""
    return decode(data, limits=limits, seamless=SEAMLESS)


def decode(
    data: bytes,
    *,
    limits: Limits | None = None,
    threads: int | None = None,
    engine: str | None = None,
    seamless: bool = False,
) -> np.ndarray:
    """Decode a container to its H×W×3 uint8 RGB image (raises ``ContainerError``).

    ``engine``: ``"libjpeg"`` (the C extension, default where it was built) or ``"simplejpeg"``
    (one libjpeg-turbo call per block); both give the pixels of each block's standalone JPEG.
    ``seamless=True`` (C engine only, see ``SEAMLESS``) instead upsamples chroma across block
    edges as a whole-image decoder would: a better input for restoration, identical to Pillow's
    decode of a whole-image JPEG with the same coefficients at uniform quality.
    """
    parsed = _parsed(data, limits)
    return decode_blocks(parsed, threads=threads, engine=engine, seamless=seamless)

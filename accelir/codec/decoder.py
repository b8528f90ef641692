"""Container → pixels, through libjpeg-turbo: each block's standalone-JPEG pixels, or (C engine,
``seamless``) the whole image's with chroma upsampled across block edges.

Giving each block the pixels of its own JPEG is what makes ``decode`` agree with any outside
decoder fed ``block_jpeg``: chroma upsampling never reads across a block edge. Two engines
decode the same files: the C extension ``accelir.codec._blockdecode`` (blocks of one quality
decoded as one restart-interval strip by libjpeg, chroma upsampling and colour conversion per
block; built by ``pip install`` where libjpeg's headers are found; its source says how) and,
where it is missing, simplejpeg, one call per block. Containers of version 4 store segments
without their first DC code words: the C engine rebuilds each block's scan while assembling its
strips, the simplejpeg engine takes them from ``scan.rebuild``. Blocks are independent and both
engines release the GIL, so ``threads=N`` spreads rows of blocks over a pool; the default is one
thread (docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import simplejpeg

from accelir.codec.container import ContainerError
from accelir.codec.jfif import EOI, SOI, block_header, dht, stuff
from accelir.codec.scan import rebuild
from accelir.codec.tables import natural_quant_tables

try:
    from accelir.codec import _blockdecode  # type: ignore[attr-defined]
except ImportError:  # no compiler or libjpeg headers at install time: simplejpeg only
    _blockdecode = None

ENGINES = ("libjpeg", "simplejpeg") if _blockdecode is not None else ("simplejpeg",)
#: Whether ``decode(..., seamless=True)`` is available (it needs the C engine).
SEAMLESS = _blockdecode is not None

if TYPE_CHECKING:
    from accelir.codec.container import Parsed


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="accelir-decode")


def _default_threads() -> int:
    return 1  # see the module docstring


def _spread(n: int, threads: int | None, run: Callable[[int, int], None]) -> None:
    """Run ``run(lo, hi)`` over ``range(n)`` split into one contiguous share per thread."""
    workers = threads or _default_threads()
    if workers == 1 or n < 2:
        run(0, n)
        return
    bounds = np.linspace(0, n, min(workers, n) + 1).astype(int)
    futures = [
        _pool(workers).submit(run, int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)
    ]
    for f in futures:
        f.result()


def decode_blocks(
    parsed: Parsed,
    threads: int | None = None,
    engine: str | None = None,
    seamless: bool = False,
) -> np.ndarray:
    """The image of a parsed container; ``engine`` is one of ``ENGINES`` (default: the first).

    ``seamless`` upsamples chroma across block edges, as a whole-image JPEG decoder would (the C
    engine only): the pixels differ from the standalone blocks' near block edges, and at uniform
    quality they are those of a whole-image JPEG with the same coefficients.
    """
    engine = engine or ENGINES[0]
    if engine not in ENGINES:
        raise ValueError(f"decoder engine {engine!r} is not available here (have {ENGINES})")
    if seamless and engine != "libjpeg":
        raise ValueError("seamless decoding needs the C engine ('libjpeg'), not built here")
    if engine == "libjpeg":
        return _decode_libjpeg(parsed, threads, seamless)
    return _decode_simplejpeg(parsed, threads)


@lru_cache(maxsize=64)
def _quant_stack(qualities: tuple[int, ...]) -> np.ndarray:
    """(n, 2, 64) uint16 natural-order tables of ``qualities`` (a container's distinct ones)."""
    out = np.stack([natural_quant_tables(q) for q in qualities]).astype(np.uint16)
    out.setflags(write=False)
    return out


def _scans(parsed: Parsed) -> tuple[bytes, np.ndarray, np.ndarray, bool]:
    """(data, offsets, lengths, stuffed) of every block's scan data in raster order, for the
    simplejpeg engine: the stored segments (versions 1–3; byte-stuffed up to version 2), or the
    standalone scans rebuilt from version 4's (unstuffed)."""
    meta = parsed.info
    if meta.omits_first_dc:
        data, offsets, lengths = rebuild(parsed)
        shape = (meta.rows, meta.cols)
        return data, offsets.reshape(shape), lengths.reshape(shape), False
    return parsed.data, meta.offsets, meta.lengths, meta.stuffed


def _decode_libjpeg(parsed: Parsed, threads: int | None, seamless: bool) -> np.ndarray:
    meta = parsed.info
    # the C engine rebuilds version 4's scans itself, while copying them into its strips
    mode, rebuild_args = (0 if meta.stuffed else 1), None
    if meta.omits_first_dc:
        assert meta.first_dc is not None and meta.scan_lengths is not None
        mode = 2
        assert parsed.insert_at is not None and parsed.huff is not None
        rebuild_args = (
            np.ascontiguousarray(meta.first_dc, dtype=np.int16).reshape(-1, 3),
            np.ascontiguousarray(meta.scan_lengths, dtype=np.int64).reshape(-1),
            parsed.huff,
            np.ascontiguousarray(parsed.insert_at, dtype=np.int64),
        )
    b = meta.block
    distinct = sorted(set(meta.quality_map.reshape(-1).tolist()))
    quant = _quant_stack(tuple(distinct))
    quant_of_block = np.searchsorted(distinct, meta.quality_map).astype(np.int32)
    tables = SOI + dht(parsed.tables) + EOI
    offsets = np.ascontiguousarray(meta.offsets, dtype=np.int64)
    lengths = np.ascontiguousarray(meta.lengths, dtype=np.int64)
    h = meta.layout.h_factor
    c = b // h
    last_h, last_w = meta.coded_edges()
    if seamless:
        planes = (
            np.empty((meta.rows * b, meta.cols * b), dtype=np.uint8),
            np.empty((meta.rows * c, meta.cols * c), dtype=np.uint8),
            np.empty((meta.rows * c, meta.cols * c), dtype=np.uint8),
        )
    else:
        out = np.empty((meta.rows * b, meta.cols * b, 3), dtype=np.uint8)

    def run(lo: int, hi: int) -> None:  # rows of blocks lo..hi
        if hi <= lo:
            return
        target = (
            (planes[0][lo * b : hi * b], planes[1][lo * c : hi * c], planes[2][lo * c : hi * c])
            if seamless
            else out[lo * b : hi * b]
        )
        try:
            _blockdecode.decode_blocks(
                parsed.data,
                tables,
                quant,
                quant_of_block[lo:hi],
                offsets[lo:hi],
                lengths[lo:hi],
                target,
                hi - lo,
                meta.cols,
                b,
                h,
                last_h if hi == meta.rows else b,  # only the image's last row is cut short
                last_w,
                mode,
                None if rebuild_args is None else _rows_of(rebuild_args, lo, hi, meta.cols),
            )
        except ValueError as exc:
            raise ContainerError(f"corrupt scan data: {_shift_row(str(exc), lo)}") from None

    _spread(meta.rows, threads, run)
    if seamless:
        image = np.empty((meta.height, meta.width, 3), dtype=np.uint8)

        def convert(lo: int, hi: int) -> None:  # output pixel rows lo..hi
            _blockdecode.planes_to_rgb(
                *planes, meta.cols * b, meta.cols * c, h, meta.width, meta.height, lo, hi, image
            )

        _spread(meta.height, threads, convert)
        return image
    if (meta.height, meta.width) == out.shape[:2]:
        return out
    return np.ascontiguousarray(out[: meta.height, : meta.width])


def _rows_of(
    rebuild: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], lo: int, hi: int, cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rebuild arguments of rows of blocks lo..hi: their first-DC values, scan lengths and
    code word positions (per block), and the Huffman arrays (shared)."""
    levels, scan_lengths, huff, insert_at = rebuild
    rows = slice(lo * cols, hi * cols)
    return levels[rows], scan_lengths[rows], huff, insert_at[rows]


def _shift_row(message: str, first_row: int) -> str:
    """Rewrite "block (r, c): ..." from a strip's coordinates to the image's."""
    if first_row and message.startswith("block ("):
        row, rest = message[len("block (") :].split(",", 1)
        return f"block ({int(row) + first_row},{rest}"
    return message


def _decode_simplejpeg(parsed: Parsed, threads: int | None) -> np.ndarray:
    meta = parsed.info
    b = meta.block
    n = meta.rows * meta.cols
    qualities = meta.quality_map.reshape(-1).tolist()
    by_quality = {q: block_header(q, meta.layout, parsed.tables) for q in set(qualities)}
    headers = [by_quality[q] for q in qualities]
    # blocks cut short by the image's bottom or right edge: their own shape and header
    edge: dict[int, tuple[int, int]] = {}
    for i in [*range(meta.cols - 1, n, meta.cols), *range(n - meta.cols, n)]:
        shape = meta.block_shape(*divmod(i, meta.cols))
        if shape != (b, b):
            edge[i] = shape
            headers[i] = block_header(qualities[i], meta.layout, parsed.tables, shape)
    data, offsets, lengths, stuffed = _scans(parsed)
    starts = offsets.reshape(-1).tolist()
    ends = (offsets + lengths).reshape(-1).tolist()
    scan = (lambda segment: segment) if stuffed else stuff
    out = np.empty((n, b, b, 3), dtype=np.uint8)

    def run(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            jpeg = b"".join((headers[i], scan(data[starts[i] : ends[i]]), EOI))
            shape = edge.get(i)
            try:
                if shape is None:
                    simplejpeg.decode_jpeg(jpeg, "RGB", buffer=out[i], strict=True)
                else:  # an edge block of its visible size: the top-left of its cell
                    out[i, : shape[0], : shape[1]] = simplejpeg.decode_jpeg(
                        jpeg, "RGB", strict=True
                    )
            except (ValueError, RuntimeError) as exc:
                row, col = divmod(i, meta.cols)
                raise ContainerError(f"block ({row}, {col}): corrupt scan data ({exc})") from None

    _spread(n, threads if n >= 64 else 1, run)
    image = out.reshape(meta.rows, meta.cols, b, b, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(
        image.reshape(meta.rows * b, meta.cols * b, 3)[: meta.height, : meta.width]
    )

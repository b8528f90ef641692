"""Container → pixels, through libjpeg-turbo (simplejpeg), one standalone block JPEG at a time.

Decoding each block as its own JPEG is what makes ``decode`` agree with any outside decoder fed
``block_jpeg``: chroma upsampling never reads across a block edge. Blocks are independent and
simplejpeg releases the GIL, so ``threads=N`` spreads them over a pool; the default is one
thread, which measured faster than two on this project's 2-core machines for images up to
1920×1080 (docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import simplejpeg

from accelir.codec.container import ContainerError
from accelir.codec.jfif import EOI, block_header

if TYPE_CHECKING:
    from accelir.codec.container import Parsed


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="accelir-decode")


def _default_threads() -> int:
    return 1  # see the module docstring


def decode_blocks(parsed: Parsed, threads: int | None = None) -> np.ndarray:
    meta = parsed.info
    b = meta.block
    n = meta.rows * meta.cols
    qualities = meta.quality_map.reshape(-1).tolist()
    by_quality = {q: block_header(q, meta.layout, parsed.tables) for q in set(qualities)}
    headers = [by_quality[q] for q in qualities]
    starts = meta.offsets.reshape(-1).tolist()
    ends = (meta.offsets + meta.lengths).reshape(-1).tolist()
    data = parsed.data
    out = np.empty((n, b, b, 3), dtype=np.uint8)

    def run(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            jpeg = b"".join((headers[i], data[starts[i] : ends[i]], EOI))
            try:
                simplejpeg.decode_jpeg(jpeg, "RGB", buffer=out[i], strict=True)
            except (ValueError, RuntimeError) as exc:
                row, col = divmod(i, meta.cols)
                raise ContainerError(f"block ({row}, {col}): corrupt scan data ({exc})") from None

    workers = threads or _default_threads()
    if workers == 1 or n < 64:
        run(0, n)
    else:
        bounds = np.linspace(0, n, workers + 1).astype(int)
        futures = [
            _pool(workers).submit(run, int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)
        ]
        for f in futures:
            f.result()
    image = out.reshape(meta.rows, meta.cols, b, b, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(
        image.reshape(meta.rows * b, meta.cols * b, 3)[: meta.height, : meta.width]
    )

"""Where the container's bytes go, next to a whole-image Pillow JPEG of the same pixels.

For each photograph (downscaled ×4 to 640×400, uniform quality): the container's length, split
into what independent blocks cost — DC prediction against one scan of the whole image in
Pillow's MCU order (each block's scan runs its own DC chain in its own MCU order; its first DCs
live in the header's first-DC map), padding each segment to a byte, the block index — against
what the container saves (no JFIF header, no quantisation tables: they follow from the quality;
Huffman tables stored as code lengths; no byte stuffing, which Pillow's scan carries). All from
one encode, in bytes. Layout 32 / 4:2:0 (Pillow's MCU order is rebuilt for it).

    python -m benchmarks.codec_overhead --data data/photos --quality 50
"""

from __future__ import annotations

import argparse
import io
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from accelir import codec
from accelir.codec import arith, blockindex, entropy, transform
from accelir.codec.bitio import Reader
from accelir.codec.huffman import optimal_table
from accelir.codec.layout import Layout
from accelir.data import find_images, load_image
from benchmarks.codec_vs_pillow import SIZES, low_resolution


def _optimal_bits(coefs: np.ndarray, comps: np.ndarray, absent: np.ndarray) -> int:
    """Bits of one scan of these units (one DC chain) with its own optimal tables."""
    counts = entropy.count_symbols(coefs[None], comps, absent[None])
    lengths = np.stack([optimal_table(c).lengths for c in counts])
    return int(entropy.segment_bits(coefs[None], comps, absent[None], lengths)[0])


def _raster_units(layout: Layout, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(block, unit) indices of every unit in a whole-image scan's MCU order (4:2:0)."""
    cols = layout.grid(height, width)[1]
    per_side, per_mcu = layout.mcus_per_side, layout.units_per_mcu
    blocks, units = [], []
    for r in range(-(-height // layout.mcu)):
        for c in range(-(-width // layout.mcu)):
            block = (r // per_side) * cols + c // per_side
            mcu = (r % per_side) * per_side + c % per_side
            blocks += [block] * per_mcu
            units += list(range(mcu * per_mcu, (mcu + 1) * per_mcu))
    return np.array(blocks), np.array(units)


def _section_bytes(data: bytes) -> int:
    """Bytes of version 5's block section (index and first-DC map), its length prefix
    included: the header's fields walked up to it."""
    meta = codec.info(data)
    r = Reader(data)
    r.take(7, "magic, version, flags, block")
    r.uvarint("width", 1 << 16), r.uvarint("height", 1 << 16)
    if r.u8("quality map mode") == 0:
        r.u8("quality")
    else:
        r.take(r.uvarint("quality map", len(data)), "quality map")
    if meta.huffman == "optimized":
        r.take(r.uvarint("tables", len(data)), "tables")
    return meta.header_bytes - r.pos


def decompose(image: np.ndarray, quality: int) -> dict[str, float]:
    layout = Layout()
    grid = layout.grid(*image.shape[:2])
    data = codec.encode(image, np.full(grid, quality))
    meta = codec.info(data)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, optimize=True, subsampling=2)
    pillow = buf.getvalue()
    sos = pillow.index(b"\xff\xda")
    pillow_header = sos + int.from_bytes(pillow[sos + 2 : sos + 4], "big") + 2

    dct = transform.block_dct(image, layout)
    coefs = transform.quantise(dct, np.full(grid, quality))
    comps = layout.unit_components()
    counts = entropy.count_symbols(coefs, comps, dct.absent)
    lengths = np.stack([optimal_table(c).lengths for c in counts])
    per_block = entropy.segment_bits(coefs, comps, dct.absent, lengths)
    stored = per_block - entropy.first_dc_bits(coefs, layout.first_units(), lengths)
    blocks, units = _raster_units(layout, *image.shape[:2])
    raster = _optimal_bits(coefs[blocks, units], comps[units], dct.absent[blocks, units])
    # the section holds index and map in one stream: the index's share is what it codes to alone
    index_only = arith.Encoder()
    blockindex.put(index_only, meta.lengths)
    index_bytes = len(index_only.finish())
    map_bytes = _section_bytes(data) - index_bytes
    return {
        "pillow_bytes": len(pillow),
        "container_bytes": len(data),
        "ratio": len(data) / len(pillow),
        "pillow_bpp": 8 * len(pillow) / image.shape[0] / image.shape[1],
        # what independent blocks cost in DC terms: their scans (first DC code words out), the
        # first-DC map, against one scan of the image in Pillow's MCU order (same coefficients)
        "dc_vs_raster": float(stored.sum() - raster) / 8 + map_bytes,
        "first_dc_map": float(map_bytes),
        "padding": float(np.sum(-stored % 8)) / 8,
        "index": float(index_bytes),
        "container_header": float(meta.header_bytes - map_bytes - index_bytes),
        "pillow_header": float(pillow_header),
        "pillow_stuffing": float(pillow[pillow_header:].count(b"\xff\x00")),
        "blocks": float(np.prod(grid)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--quality", type=int, default=50)
    args = parser.parse_args(argv)
    rows = []
    for path in find_images(args.data):
        lr = low_resolution(load_image(path), SIZES["640x400"])
        if lr is not None:
            rows.append((path.stem, decompose(lr, args.quality)))
    rows.sort(key=lambda r: r[1]["pillow_bpp"])
    print(f"640×400, quality {args.quality}, {len(rows)} photographs (sorted by Pillow bpp)\n")
    print(
        "| photo | Pillow bpp | ratio | DC vs raster | of which first-DC map | padding | index "
        "| our header | Pillow header | Pillow stuffing |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['pillow_bpp']:.2f} | {r['ratio']:.4f} | {r['dc_vs_raster']:.0f} | "
              f"{r['first_dc_map']:.0f} | {r['padding']:.0f} | {r['index']:.0f} | "
              f"{r['container_header']:.0f} | {r['pillow_header']:.0f} | {r['pillow_stuffing']:.0f} |")  # fmt: skip
    per_block = {
        k: statistics.median(r[k] / r["blocks"] for _, r in rows)
        for k in ("dc_vs_raster", "first_dc_map", "padding", "index")
    }
    print("\nmedian bytes per block: " + ", ".join(f"{k} {v:.2f}" for k, v in per_block.items()))


if __name__ == "__main__":
    main()

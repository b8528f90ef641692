"""Where the container's bytes go, next to a whole-image Pillow JPEG of the same pixels.

For each photograph (downscaled ×4 to 640×400, uniform quality): the container's length, split
into what independent blocks cost — DC prediction restarting in every block (what the first-DC
map and the rest of the segments spend on DC beyond one chained scan of the whole image),
padding each segment to a byte, the block index — against what the container saves (no JFIF
header, no quantisation tables: they follow from the quality; Huffman tables stored as code
lengths; no byte stuffing, which Pillow's scan carries). All from one encode, in bytes.

    python benchmarks/codec_overhead.py --data data/photos --quality 50
"""

from __future__ import annotations

import argparse
import io
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from accelir import codec
from accelir.codec import dcmap, entropy, transform
from accelir.codec.bitio import uvarint
from accelir.codec.huffman import optimal_table
from accelir.codec.layout import Layout
from accelir.data import find_images, load_image
from benchmarks.codec_vs_pillow import SIZES, low_resolution


def decompose(image: np.ndarray, quality: int) -> dict[str, float]:
    layout = Layout()
    grid = layout.grid(*image.shape[:2])
    data = codec.encode(image, np.full(grid, quality))
    meta = codec.info(data)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, optimize=True, subsampling=2)
    pillow = buf.getvalue()
    pillow_header = (
        pillow.index(b"\xff\xda")
        + int.from_bytes(pillow[pillow.index(b"\xff\xda") + 2 :][:2], "big")
        + 2
    )

    dct = transform.block_dct(image, layout)
    coefs = transform.quantise(dct, np.full(grid, quality))
    comps = layout.unit_components()
    counts = entropy.count_symbols(coefs, comps, dct.absent)
    lengths = np.stack([optimal_table(c).lengths for c in counts])
    per_block = entropy.segment_bits(coefs, comps, dct.absent, lengths)
    chained = entropy.segment_bits(
        coefs.reshape(1, -1, 64),
        np.tile(comps, coefs.shape[0]),
        dct.absent.reshape(1, -1),
        lengths,
    )
    omitted = entropy.first_dc_bits(coefs, layout.first_units(), lengths)
    stored = per_block - omitted  # version 4: the first DC code words are in the map
    longer = (meta.scan_lengths.reshape(-1) - meta.lengths.reshape(-1) - omitted // 8).astype(bool)
    first_dc_map = dcmap.encode(
        meta.first_dc.astype(np.int64),
        meta.quality_map,
        omitted.reshape(grid),
        longer.reshape(grid),
    )
    map_bytes = len(first_dc_map) + len(uvarint(len(first_dc_map)))
    header = _header_without_index(data) - map_bytes
    return {
        "pillow_bytes": len(pillow),
        "container_bytes": len(data),
        "ratio": len(data) / len(pillow),
        "pillow_bpp": 8 * len(pillow) / image.shape[0] / image.shape[1],
        # what independent blocks still cost in DC terms: their first DCs, in the map, against
        # chaining the DC prediction through every block (one scan of the whole image)
        "dc_restarts": (float(stored.sum() - chained[0]) / 8 + map_bytes),
        "first_dc_map": float(map_bytes),
        "padding": float(np.sum(-stored % 8)) / 8,
        "index": float(meta.header_bytes - _header_without_index(data)),
        "container_header": float(header),
        "pillow_header": float(pillow_header),
        "pillow_stuffing": float(pillow[pillow_header:].count(b"\xff\x00")),
        "blocks": float(np.prod(grid)),
    }


def _header_without_index(data: bytes) -> int:
    """Bytes before the block index (magic, geometry, quality map, tables, first-DC map)."""
    meta = codec.info(data)
    index = codec.container._encode_lengths(meta.lengths)
    return meta.header_bytes - len(index) - len(uvarint(len(index)))


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
        "| photo | Pillow bpp | ratio | DC restarts | of which first-DC map | padding | index "
        "| our header | Pillow header | Pillow stuffing |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['pillow_bpp']:.2f} | {r['ratio']:.4f} | {r['dc_restarts']:.0f} | "
              f"{r['first_dc_map']:.0f} | {r['padding']:.0f} | {r['index']:.0f} | "
              f"{r['container_header']:.0f} | {r['pillow_header']:.0f} | {r['pillow_stuffing']:.0f} |")  # fmt: skip
    per_block = {
        k: statistics.median(r[k] / r["blocks"] for _, r in rows)
        for k in ("dc_restarts", "first_dc_map", "padding", "index")
    }
    print("\nmedian bytes per block: " + ", ".join(f"{k} {v:.2f}" for k, v in per_block.items()))


if __name__ == "__main__":
    main()

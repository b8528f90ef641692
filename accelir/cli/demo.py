"""``accelir demo``: one photograph through degradation, the block container and back."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.console import Console

from accelir import codec, tasks
from accelir.codec.layout import Layout
from accelir.metrics import psnr
from accelir.viz import quality_heatmap_png

DEMO_QUALITIES = (30, 40, 50, 60, 65, 70, 75, 80, 85, 90)


def bundled_photo() -> tuple[str, np.ndarray]:
    with resources.as_file(resources.files("accelir") / "assets" / "path-960x600.jpg") as path:
        return path.name, np.asarray(Image.open(path).convert("RGB"))


def texture_ranked_map(image: np.ndarray, block: int) -> np.ndarray:
    """A stand-in quality map for the demo: blocks ranked by luma standard deviation, the
    smoothest getting the lowest quality. (The AccelIR encoder uses QP-NET instead.)"""
    rows, cols = Layout(block).grid(*image.shape[:2])
    luma = np.asarray(Image.fromarray(image).convert("L"), dtype=np.float32)
    padded = np.pad(
        luma, ((0, rows * block - luma.shape[0]), (0, cols * block - luma.shape[1])), mode="edge"
    )
    std = padded.reshape(rows, block, cols, block).std(axis=(1, 3))
    ranks = std.reshape(-1).argsort().argsort().reshape(rows, cols)
    levels = np.asarray(DEMO_QUALITIES)
    return levels[(ranks * len(levels)) // max(1, ranks.size)]


def demo(
    image: Annotated[
        Path | None, typer.Option(help="A photograph (default: the bundled one).")
    ] = None,
    task: Annotated[str, typer.Option(help="Degradation applied before encoding.")] = "sr4",
    out: Annotated[Path, typer.Option(help="Folder for the outputs.")] = Path("out/demo"),
) -> None:
    """Degrade a photo, encode it with a per-block quality map, decode it, report every byte."""
    console = Console()
    if image is None:
        name, original = bundled_photo()
    else:
        name, original = image.name, np.asarray(Image.open(image).convert("RGB"))
    degraded = tasks.degrade(original, task)
    h, w = degraded.shape[:2]
    console.print(f"[bold]AccelIR demo[/] — {name} ({original.shape[1]}×{original.shape[0]})")
    console.print(f"degradation {task} → {w}×{h}: the image the restorer will receive")

    block = 32
    qmap = texture_ranked_map(degraded, block)
    data = codec.encode(degraded, qmap, block=block)
    decoded = codec.decode(data)
    meta = codec.info(data)
    bpp = 8 * len(data) / (h * w)
    console.print(
        f"quality map: {meta.rows}×{meta.cols} blocks of {block} px, qualities "
        f"{qmap.min()}–{qmap.max()} (texture-ranked stand-in for QP-NET)"
    )
    console.print(
        f"container: {len(data)} bytes = {bpp:.3f} bpp (header and index {meta.header_bytes} bytes), "
        f"decoded PSNR vs the degraded image {psnr(decoded, degraded):.2f} dB"
    )
    for q in (int(np.median(qmap)), 75):
        buf = io.BytesIO()
        Image.fromarray(degraded).save(buf, "JPEG", quality=q, optimize=True, subsampling=2)
        whole = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        console.print(
            f"whole-image Pillow JPEG q{q} (optimize, 4:2:0): {buf.tell()} bytes = "
            f"{8 * buf.tell() / (h * w):.3f} bpp, PSNR {psnr(whole, degraded):.2f} dB"
        )
    first = codec.block_jpeg(data, 0, 0)
    console.print(
        f"block (0, 0) as a standalone JPEG: {len(first)} bytes (its segment: {meta.lengths[0, 0]})"
    )

    out.mkdir(parents=True, exist_ok=True)
    (out / "container.air").write_bytes(data)
    (out / "block-0-0.jpg").write_bytes(first)
    Image.fromarray(decoded).save(out / "decoded.png")
    (out / "quality-map.png").write_bytes(
        quality_heatmap_png(degraded, qmap, block, title=f"{name}: per-block JPEG quality")
    )
    console.print(f"wrote {out}/container.air, decoded.png, block-0-0.jpg, quality-map.png")

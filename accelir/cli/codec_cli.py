"""``accelir encode``, ``accelir restore`` and ``accelir inspect``: the container on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.console import Console

from accelir import codec
from accelir.data import load_image
from accelir.viz import quality_heatmap_png

console = Console()


def encode(
    image: Annotated[Path, typer.Argument(help="The original photograph.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Container to write (.air).")],
    task: Annotated[str, typer.Option(help="sr2, sr3, sr4, denoise or deblur.")] = "sr4",
    model: Annotated[str, typer.Option(help="The restorer the encoding is tuned for.")] = "edsr",
    width: Annotated[int, typer.Option(help="The restorer's width.")] = 32,
    bpp: Annotated[float | None, typer.Option(help="Bits per pixel of the degraded image.")] = None,
    nbytes: Annotated[int | None, typer.Option("--bytes", help="Byte budget.")] = None,
    jpeg_quality: Annotated[
        int | None, typer.Option(help="Match a plain JPEG of this quality.")
    ] = None,
    psnr: Annotated[
        float | None, typer.Option(help="Fewest bytes reaching this predicted PSNR.")
    ] = None,
    allocator: Annotated[str, typer.Option(help="lagrangian, greedy or oracle.")] = "lagrangian",
    degraded: Annotated[bool, typer.Option(help="The image is already degraded.")] = False,
    verify: Annotated[
        bool,
        typer.Option(help="With --psnr: restore trial encodings and reach the *measured* PSNR."),
    ] = False,
) -> None:
    """Degrade (for the task), allocate per-block qualities and write the container."""
    from accelir.pipeline import Encoder

    if bpp is None and nbytes is None and jpeg_quality is None and psnr is None:
        bpp = 1.2
    result = Encoder(task, model, width).encode(
        load_image(image), nbytes=nbytes, bpp=bpp, jpeg_quality=jpeg_quality, psnr=psnr, allocator=allocator,
        degraded=degraded, verify=verify,
    )  # fmt: skip
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(result.container)
    qm = result.quality_map
    console.print(
        f"{output}: {result.nbytes} bytes, {result.bpp:.3f} bpp"
        + (f" (budget {result.budget})" if result.budget else "")
        + f", qualities {qm.min()}–{qm.max()} (median {int(np.median(qm))}), predicted restored PSNR "
        f"{result.predicted_psnr:.2f} dB"
        + (f", measured {result.measured_psnr:.2f} dB" if result.measured_psnr is not None else "")
    )
    console.print(
        "timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    )


def restore(
    container: Annotated[Path, typer.Argument(help="A container written by `accelir encode`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Restored image (.png/.webp).")],
    task: Annotated[str, typer.Option(help="The task it was encoded for.")] = "sr4",
    model: Annotated[str, typer.Option(help="Restoration network.")] = "edsr",
    width: Annotated[int, typer.Option(help="Network width (reduced widths save compute).")] = 32,
    reference: Annotated[Path | None, typer.Option(help="The original, to print the PSNR.")] = None,
) -> None:
    """Decode the container and restore it with a network of the zoo."""
    from accelir import metrics, tasks
    from accelir.pipeline import Restorer

    result = Restorer(task, model, width).restore(container.read_bytes())
    output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.image).save(output)
    line = f"{output}: {result.image.shape[1]}×{result.image.shape[0]}, {result.flops / 1e9:.1f} GFLOPs"
    if reference is not None:
        target = tasks.target(load_image(reference), task)
        line += f", PSNR {metrics.psnr(result.image, target):.2f} dB"
    console.print(line)
    console.print(
        "timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
    )


def inspect(
    container: Annotated[Path, typer.Argument(help="A container (.air).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Heat-map PNG.")] = None,
) -> None:
    """Print the manifest and write the quality map as a heat map over the decoded image."""
    data = container.read_bytes()
    meta = codec.info(data)
    q = meta.quality_map
    console.print(
        f"{container}: format version {meta.version}, {meta.width}×{meta.height}, "
        f"{meta.rows}×{meta.cols} blocks of {meta.block} px, "
        f"{meta.subsampling}, {meta.huffman} Huffman tables, {meta.total_bytes} bytes "
        f"(header and index {meta.header_bytes}), qualities {q.min()}–{q.max()}"
    )
    values, counts = np.unique(q, return_counts=True)
    console.print(
        "quality histogram: " + ", ".join(f"q{v}×{c}" for v, c in zip(values, counts, strict=True))
    )
    output = output or container.with_suffix(".quality.png")
    output.write_bytes(quality_heatmap_png(codec.decode(data), q, meta.block, title=container.name))
    console.print(f"wrote {output}")

"""Is the container itself a handicap? Plain JPEG vs the container at the same uniform quality.

For each validation photograph (longest side capped), degraded for the task: the whole-image
Pillow JPEG (``optimize=True``, 4:2:0) and our container with every block at the same quality,
both restored by the same network (the container through ``codec.decode_for_restoration``, as
the evaluation does). What the allocation must first win back before it can gain anything.

    python benchmarks/uniform_parity.py --task deblur --model mimo_unet --width 32 --max-side 768
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from rich.progress import track

from accelir import codec, evaluation, models, tasks
from accelir.codec.layout import Layout
from accelir.data import find_images, load_image
from accelir.data.datasets import cap_size
from accelir.metrics import psnr


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--task", default="sr4")
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--quality", type=int, nargs="+", default=[50, 70, 85])
    parser.add_argument("--max-side", type=int, default=1024)
    args = parser.parse_args(argv)
    net = models.load(args.model, args.width, args.task)
    crop = tasks.metric_crop(args.task)
    rows: dict[int, list[tuple[float, float, float]]] = {q: [] for q in args.quality}
    for path in track(find_images(args.data, "val"), description="images"):
        target = tasks.target(cap_size(load_image(path), args.max_side), args.task)
        degraded = tasks.degrade(target, args.task)
        for q in args.quality:
            jpeg = evaluation.plain_jpeg(degraded, q)
            ours = codec.encode(degraded, np.full(Layout().grid(*degraded.shape[:2]), q))
            plain = models.restore(net, evaluation.decode_jpeg(jpeg), args.task, tile=512)
            block = models.restore(net, codec.decode_for_restoration(ours), args.task, tile=512)
            scores = (psnr(plain, target, crop=crop), psnr(block, target, crop=crop))
            rows[q].append((*scores, len(ours) / len(jpeg)))
    print(f"{args.model}-{args.width} {args.task}, {len(rows[args.quality[0]])} val photos")
    print("| quality | JPEG restored (dB) | container restored (dB) | difference | size ratio |")
    print("|---|---|---|---|---|")
    for q, r in rows.items():
        a, b = statistics.mean(x[0] for x in r), statistics.mean(x[1] for x in r)
        size = statistics.median(x[2] for x in r)
        print(f"| q{q} | {a:.3f} | {b:.3f} | {b - a:+.3f} | {size:.3f} |")


if __name__ == "__main__":
    main()

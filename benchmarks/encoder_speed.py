"""The AccelIR encoder's overhead against the restoration it serves, measured in one run.

For degraded inputs of 480×270, 960×540 and 1920×1080 (centre crops of one photograph degraded
for the ×4 task at one scale, so every size has the same content density): the
seconds of QP-NET, allocation (exact per-block rates included) and entropy coding of
``Encoder.encode(..., degraded=True)``, against ``Restorer.restore`` with EDSR-32 on the same
container — and the encoder's time per block across sizes (the paper's linear-time claim).

    python benchmarks/encoder_speed.py --image data/photos/val/sunset_by_Aitzol_Berasategi.jpg
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from accelir import tasks
from accelir.data import load_image
from accelir.pipeline import Encoder, Restorer

SIZES = ((480, 270), (960, 540), (1920, 1080))
STAGES = ("qpnet", "allocation", "entropy_coding")


def degraded_inputs(photo: np.ndarray) -> list[np.ndarray]:
    """Centre crops of one degraded (×4 down) photograph at one scale, one per size: the same
    content density at every size, so time per block compares like with like."""
    big_w, big_h = SIZES[-1]
    ratio = max(4 * big_w / photo.shape[1], 4 * big_h / photo.shape[0])
    hr_w, hr_h = round(photo.shape[1] * ratio), round(photo.shape[0] * ratio)
    hr = np.asarray(Image.fromarray(photo).resize((hr_w, hr_h), Image.Resampling.LANCZOS))
    low = tasks.degrade(hr, "sr4")
    crops = []
    for w, h in SIZES:
        y, x = (low.shape[0] - h) // 2, (low.shape[1] - w) // 2
        crops.append(np.ascontiguousarray(low[y : y + h, x : x + w]))
    return crops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--image", type=Path, default=Path("data/photos/val/sunset_by_Aitzol_Berasategi.jpg")
    )
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--bpp", type=float, default=1.2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/encoder_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    photo = load_image(args.image)
    encoder, restorer = Encoder("sr4", "edsr", 32), Restorer("sr4", "edsr", 32)
    rows = []
    for size, low in zip(SIZES, degraded_inputs(photo), strict=True):
        encoder.encode(low, bpp=args.bpp, degraded=True)  # warm up
        enc, res = [], []
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        for _ in range(args.reps):
            result = encoder.encode(low, bpp=args.bpp, degraded=True)
            enc.append(sum(result.timings[s] for s in STAGES))
            for s in STAGES:
                stages[s].append(result.timings[s])
            t0 = time.perf_counter()
            restorer.restore(result.container)
            res.append(time.perf_counter() - t0)
        blocks = int(np.prod(result.quality_map.shape))
        row = {
            "size": list(size),
            "blocks": blocks,
            "encoder_seconds": statistics.median(enc),
            "restorer_seconds": statistics.median(res),
            "stages": {s: statistics.median(v) for s, v in stages.items()},
        }
        row["ratio"] = row["encoder_seconds"] / row["restorer_seconds"]
        row["encoder_us_per_block"] = 1e6 * row["encoder_seconds"] / blocks
        rows.append(row)
        print(f"{size[0]}×{size[1]}: encoder {1000 * row['encoder_seconds']:.0f} ms "
              f"({row['encoder_us_per_block']:.0f} µs/block), EDSR-32 restore {row['restorer_seconds']:.2f} s, "
              f"ratio {100 * row['ratio']:.1f} %")  # fmt: skip
    per_block = [r["encoder_us_per_block"] for r in rows]
    spread = max(per_block) / min(per_block) - 1
    print(f"time per block varies by {100 * spread:.0f} % from {SIZES[0]} to {SIZES[-1]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "per_block_spread": spread}, indent=1))


if __name__ == "__main__":
    main()

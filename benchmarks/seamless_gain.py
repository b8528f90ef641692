"""What seamless decoding (chroma upsampled across block edges) buys, measured in one run.

For each validation photograph (longest side capped), degraded for ×4 super-resolution and
encoded at uniform q50, q75 and under a random per-block map: PSNR of the decoded image against
the degraded one, and of EDSR-32's restoration against the original, once from the standalone-
block decode (``codec.decode``) and once from the seamless one (``seamless=True``).

    python benchmarks/seamless_gain.py --data data/photos --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from rich.progress import track

from accelir import codec, models, tasks
from accelir.codec.layout import Layout
from accelir.data import find_images, load_image
from accelir.data.datasets import cap_size
from accelir.metrics import psnr

MAPS = ("q50", "q75", "mixed")


def quality_map(name: str, grid: tuple[int, int]) -> np.ndarray:
    if name == "mixed":
        return np.random.default_rng(0).choice([30, 50, 70, 90], size=grid)
    return np.full(grid, int(name[1:]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--max-side", type=int, default=1024)
    args = parser.parse_args(argv)
    if not codec.SEAMLESS:
        raise SystemExit("seamless decoding needs the C engine (accelir.codec._blockdecode)")
    net = models.load("edsr", 32, "sr4")
    rows = []
    for path in track(find_images(args.data, "val"), description="images"):
        hr = tasks.target(cap_size(load_image(path), args.max_side), "sr4")
        lr = tasks.degrade(hr, "sr4")
        for name in MAPS:
            data = codec.encode(lr, quality_map(name, Layout().grid(*lr.shape[:2])))
            row = {"image": path.stem, "map": name}
            for mode in ("standalone", "seamless"):
                decoded = codec.decode(data, seamless=mode == "seamless")
                row[f"{mode}_decoded_psnr"] = psnr(decoded, lr)
                row[f"{mode}_restored_psnr"] = psnr(
                    models.restore(net, decoded, "sr4"), hr, crop=tasks.metric_crop("sr4")
                )
            rows.append(row)
    lines = [
        "| map | decoded PSNR gain (dB) | EDSR-32 ×4 restored PSNR gain (dB) | images improved (restored) |",
        "|---|---|---|---|",
    ]
    for name in MAPS:
        sel = [r for r in rows if r["map"] == name]
        dec = [r["seamless_decoded_psnr"] - r["standalone_decoded_psnr"] for r in sel]
        res = [r["seamless_restored_psnr"] - r["standalone_restored_psnr"] for r in sel]
        lines.append(
            f"| {name} | {statistics.mean(dec):+.3f} | {statistics.mean(res):+.4f} | "
            f"{sum(d > 0 for d in res)}/{len(res)} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seamless_gain.json").write_text(json.dumps(rows, indent=1))
    text = "\n".join(lines)
    (args.out / "seamless_gain.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

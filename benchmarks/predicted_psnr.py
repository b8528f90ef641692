"""How well the encoder predicts the restored PSNR, and how well it reaches a PSNR target.

``EncodeResult.predicted_psnr`` is the encoder's own estimate of what the restorer will make
of its container (the allocator's summed per-block error curves); the PSNR target
(``encode(psnr=...)``) allocates the fewest bytes whose prediction reaches it. For each
validation photograph: encode at the sizes of plain JPEGs at ``--quality``, restore with the
same network, and compare the measured restored PSNR (RGB, against the modcropped original)
with the prediction; then ask for the PSNR measured at the middle quality's size and report
what is reached and at how many bytes — as predicted, and verified (``verify=True``: trial
encodings restored by the encoder's network until the measured PSNR reaches the target).

    python -m benchmarks.predicted_psnr --model edsr --task sr4 --width 32
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from accelir import metrics, tasks
from accelir.data import cap_size, find_images, load_image
from accelir.pipeline import Encoder, Restorer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--task", default="sr4")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--max-side", type=int, default=2048)
    parser.add_argument("--quality", type=int, nargs="+", default=[50, 70, 85])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = Encoder(args.task, args.model, args.width)
    restorer = Restorer(args.task, args.model, args.width)
    errors: dict[int, list[float]] = {q: [] for q in args.quality}
    reached: list[tuple[float, float, int, int]] = []
    verified: list[tuple[float, float, int, int, float]] = []
    middle = args.quality[len(args.quality) // 2]
    print("| photograph | " + " | ".join(f"q{q} predicted / measured" for q in args.quality)
          + f" | target (measured at q{middle}) | reached | bytes (vs q{middle}'s) | verified: reached | bytes | seconds |")  # fmt: skip
    print("|---" * (len(args.quality) + 7) + "|")
    for path in find_images(args.data, "val"):
        original = cap_size(load_image(path), args.max_side)
        target = tasks.target(original, args.task)
        cells, measured = [], {}
        for q in args.quality:
            encoded = encoder.encode(original, jpeg_quality=q)
            psnr = metrics.psnr(restorer.restore(encoded.container).image, target)
            assert encoded.predicted_psnr is not None
            errors[q].append(encoded.predicted_psnr - psnr)
            measured[q] = (psnr, encoded.nbytes)
            cells.append(f"{encoded.predicted_psnr:.2f} / {psnr:.2f}")
        goal, goal_bytes = measured[middle]
        encoded = encoder.encode(original, psnr=goal)
        got = metrics.psnr(restorer.restore(encoded.container).image, target)
        reached.append((goal, got, encoded.nbytes, goal_bytes))
        t0 = time.perf_counter()
        checked = encoder.encode(original, psnr=goal, verify=True)
        seconds = time.perf_counter() - t0
        assert checked.measured_psnr is not None
        verified.append((goal, checked.measured_psnr, checked.nbytes, goal_bytes, seconds))
        print(f"| {path.stem} | " + " | ".join(cells)
              + f" | {goal:.2f} | {got:.2f} | {encoded.nbytes} ({encoded.nbytes / goal_bytes:.3f}) | "
              f"{checked.measured_psnr:.2f} | {checked.nbytes} ({checked.nbytes / goal_bytes:.3f}) | "
              f"{seconds:.1f} |", flush=True)  # fmt: skip
    print("\n| budget | mean predicted − measured | mean absolute error |\n|---|---|---|")
    for q, e in errors.items():
        print(f"| q{q} | {statistics.mean(e):+.3f} dB | {statistics.mean(map(abs, e)):.3f} dB |")
    short = [got - goal for goal, got, _, _ in reached]
    ratio = [n / m for _, _, n, m in reached]
    print(f"\nPSNR target: reached − asked {statistics.mean(short):+.3f} dB on average "
          f"(mean absolute {statistics.mean(map(abs, short)):.3f} dB, {sum(s >= 0 for s in short)}"
          f"/{len(short)} reached); bytes {float(np.median(ratio)):.3f}× the plain-q{middle} size "
          f"that measured that PSNR (median)")  # fmt: skip
    short = [got - goal for goal, got, *_ in verified]
    ratio = [n / m for _, _, n, m, _ in verified]
    print(f"verified PSNR target: reached − asked {statistics.mean(short):+.3f} dB on average "
          f"(max {max(short):.3f} dB, {sum(s >= 0 for s in short)}/{len(short)} reached); bytes "
          f"{float(np.median(ratio)):.3f}× (median); {statistics.median(v[4] for v in verified):.1f} s "
          f"per encode (median)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Re-validate shipped restoration networks with today's decode, as their cards were measured.

A model card's validation scores were taken when the model was trained, with the decode of that
day (older cards: the standalone-block decode; newer ones say "decoded seamlessly"). This runs
the same validation — the validation split, inputs degraded and coded at q75 and with mixed maps,
``accelir.training.validate.evaluate`` — on the shipped weights with the decode restorers get
now, against the naive baseline of the same inputs.

    python -m benchmarks.validate_shipped --model fsrcnn --task sr4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from accelir import models
from accelir.cli.train import _load
from accelir.data import find_images
from accelir.models import registry
from accelir.training.validate import evaluate, make_val_set


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--max-side", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    val = make_val_set(_load(find_images(args.data, "val"), args.max_side), args.task)
    base = evaluate(None, val, args.task)
    print(f"{len(val)} validation photographs; naive: q75 {base['q75']['psnr']:.3f} dB, "
          f"mixed {base['mixed']['psnr']:.3f} dB")  # fmt: skip
    print("| width | q75 PSNR (gain) | mixed PSNR (gain) |\n|---|---|---|")
    for width in registry.get(args.model).widths:
        scores = evaluate(models.load(args.model, width, args.task), val, args.task)
        cells = [f"{scores[c]['psnr']:.3f} ({scores[c]['psnr'] - base[c]['psnr']:+.3f})"
                 for c in ("q75", "mixed")]  # fmt: skip
        print(f"| {width} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()

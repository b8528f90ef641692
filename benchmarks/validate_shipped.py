"""Re-validate shipped restoration networks with today's decode, as their cards were measured.

A model card's validation scores were taken when the model was trained, with the decode of that
day (older cards: the standalone-block decode; newer ones say "decoded seamlessly"). This runs
the same validation — the validation split, inputs degraded and coded at q75 and with mixed maps,
``accelir.training.validate.evaluate`` — on the shipped weights with the decode restorers get
now, against the naive baseline of the same inputs.

    python -m benchmarks.validate_shipped --model fsrcnn --task sr4
    python -m benchmarks.validate_shipped --model edsr --task sr4 --per-image 75 95

``--per-image Q …`` adds, per validation photograph and uniform quality Q, the PSNR of the naive
baseline and of every width (a mean over six photographs can hide a photograph the network
makes worse).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from accelir import codec, metrics, models, tasks
from accelir.cli.train import _load
from accelir.codec.layout import Layout
from accelir.data import find_images
from accelir.models import registry
from accelir.models.inference import restore
from accelir.training.validate import evaluate, make_val_set, naive_restore


def per_image(images: list[tuple[str, np.ndarray]], model: str, task: str, quality: int) -> None:
    """Per photograph: naive and every width's PSNR at uniform ``quality`` (seamless decode)."""
    widths = registry.get(model).widths
    nets = {w: models.load(model, w, task) for w in widths}
    crop = tasks.metric_crop(task)
    print(
        f"\n| photograph (q{quality}) | naive | "
        + " | ".join(f"{model}-{w}" for w in widths)
        + " |"
    )
    print("|---" * (len(widths) + 2) + "|")
    for k, (name, image) in enumerate(images):
        target = tasks.target(image, task)
        degraded = tasks.degrade(image, task, seed=k)
        grid = Layout().grid(*degraded.shape[:2])
        decoded = codec.decode_for_restoration(codec.encode(degraded, np.full(grid, quality)))
        naive = metrics.psnr(naive_restore(decoded, task), target, crop=crop)
        cells = [
            metrics.psnr(restore(n, decoded, task, tile=256), target, crop=crop)
            for n in nets.values()
        ]
        print(
            f"| {name} | {naive:.2f} | "
            + " | ".join(f"{c:.2f} ({c - naive:+.2f})" for c in cells)
            + " |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--max-side", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-image", type=int, nargs="*", default=[], metavar="Q")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = _load(find_images(args.data, "val"), args.max_side)
    val = make_val_set(images, args.task)
    base = evaluate(None, val, args.task)
    print(f"{len(val)} validation photographs; naive: q75 {base['q75']['psnr']:.3f} dB, "
          f"mixed {base['mixed']['psnr']:.3f} dB")  # fmt: skip
    print("| width | q75 PSNR (gain) | mixed PSNR (gain) |\n|---|---|---|")
    for width in registry.get(args.model).widths:
        scores = evaluate(models.load(args.model, width, args.task), val, args.task)
        cells = [f"{scores[c]['psnr']:.3f} ({scores[c]['psnr'] - base[c]['psnr']:+.3f})"
                 for c in ("q75", "mixed")]  # fmt: skip
        print(f"| {width} | {cells[0]} | {cells[1]} |")
    for quality in args.per_image:
        per_image(images, args.model, args.task, quality)


if __name__ == "__main__":
    main()

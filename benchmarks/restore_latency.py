"""Latency of every shipped restoration network on the current device, measured in one run.

For each model card (package weights, or the folders given with ``--weights-dir``; a later
folder overrides the same model id): the network's forward pass on one 960×540 input (what
its FLOPs column is counted for) in fp32 and, on CUDA, under bf16 autocast — median of
``--reps`` timed passes after warm-up, the device synchronised around each — and the achieved
TFLOP/s from the card's FLOP count. ``restore`` adds the uint8 conversions and transfers:
``restore_ms`` times the whole ``accelir.models.restore`` call in fp32.

    python benchmarks/restore_latency.py --out benchmarks/results/restore_latency_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from accelir.models import registry, zoo
from accelir.models.inference import _forward, _noise_level, restore, to_tensor
from accelir.tasks import parse_task


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], object], device: torch.device, reps: int) -> float:
    fn()  # warm-up: kernels chosen, memory pools grown
    fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cards(dirs: list[Path]) -> dict[str, tuple[zoo.ModelCard, Path]]:
    found: dict[str, tuple[zoo.ModelCard, Path]] = {}
    for directory in dirs:
        for card in zoo.catalog(directory):
            found[card.id] = (card, directory / f"{card.id}.safetensors")
    return dict(sorted(found.items()))


def measure(
    card: zoo.ModelCard, weights: Path, device: torch.device, size: tuple[int, int], reps: int
) -> dict[str, object]:
    spec = parse_task(card.task)
    net = registry.get(card.name).build(card.width, spec.scale)
    net = zoo.load_weights(net, weights).to(device).eval()
    w, h = size
    image = np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    x = to_tensor(image, device)
    level = _noise_level(card.task, None)

    def forward() -> object:
        with torch.inference_mode():
            return _forward(net, x, level)

    def forward_bf16() -> object:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            return forward()

    flops = card.flops_per_pixel * w * h
    row: dict[str, object] = {"model": card.id, "flops": flops}
    row["fp32_ms"] = _median_ms(forward, device, reps)
    row["fp32_tflops"] = flops / (row["fp32_ms"] * 1e-3) / 1e12  # type: ignore[operator]
    if device.type == "cuda":
        row["bf16_ms"] = _median_ms(forward_bf16, device, reps)
        row["bf16_tflops"] = flops / (row["bf16_ms"] * 1e-3) / 1e12  # type: ignore[operator]
    row["restore_ms"] = _median_ms(lambda: restore(net, image, card.task), device, reps)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return (
        f"CPU {platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"
    )


def markdown(result: dict[str, object]) -> str:
    rows: list[dict[str, float | str]] = result["rows"]  # type: ignore[assignment]
    cuda = any("bf16_ms" in r for r in rows)
    head = "| model | GFLOPs | fp32 ms | fp32 TFLOP/s |"
    head += " bf16 ms | bf16 TFLOP/s |" if cuda else ""
    head += " restore() ms |"
    lines = [
        f"Device: {result['device']}; input {result['size']}; median of {result['reps']} passes.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in rows:
        cells = [str(r["model"]), f"{float(r['flops']) / 1e9:.1f}"]
        cells += [f"{float(r['fp32_ms']):.2f}", f"{float(r['fp32_tflops']):.2f}"]
        if cuda:
            cells += [f"{float(r['bf16_ms']):.2f}", f"{float(r['bf16_tflops']):.2f}"]
        cells.append(f"{float(r['restore_ms']):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, object], path: Path) -> None:
    """Latency against FLOPs, one line per (family, task) from full to narrowest width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[dict[str, float | str]] = result["rows"]  # type: ignore[assignment]
    families: dict[str, list[dict[str, float | str]]] = {}
    for r in rows:
        families.setdefault(str(r["model"]).rsplit("_w", 1)[0], []).append(r)
    keys = ("fp32_ms", "bf16_ms") if any("bf16_ms" in r for r in rows) else ("fp32_ms",)
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for family, members in sorted(families.items()):
            members = sorted(members, key=lambda r: float(r["flops"]))
            gflops = [float(r["flops"]) / 1e9 for r in members]
            ax.plot(gflops, [float(r[key]) for r in members], "o-", label=family)
        ax.set(xscale="log", yscale="log", xlabel="GFLOPs per 960×540 input", ylabel=key)
        ax.set_title(f"{key.split('_')[0]} — {result['device']}", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights-dir", type=Path, action="append", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="960x540", help="input width×height")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=None, help="stop starting new models")
    parser.add_argument("--only", action="append", default=None, help="model ids to time")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/restore_latency.json"))
    parser.add_argument("--plot", type=Path, default=None, help="latency-vs-FLOPs PNG")
    parser.add_argument("--replot", type=Path, default=None, help="only plot this results JSON")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot or args.replot.with_suffix(".png"))
        return
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    w, h = (int(v) for v in args.size.lower().split("x"))
    dirs = args.weights_dir or [zoo.weights_dir()]
    result: dict[str, object] = {
        "device": device_name(device),
        "size": f"{w}x{h}",
        "reps": args.reps,
        "rows": [],
    }
    start = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for model, (card, weights) in cards(dirs).items():
        if args.only and model not in args.only:
            continue
        if args.seconds is not None and time.perf_counter() - start > args.seconds:
            print(f"time budget spent; {model} and later not timed")
            break
        row = measure(card, weights, device, (w, h), args.reps)
        result["rows"].append(row)  # type: ignore[attr-defined]
        print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()

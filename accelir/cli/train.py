"""``accelir train ir``: train one restoration network of the zoo and ship its weights and card."""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.console import Console

from accelir import metrics, tasks
from accelir.data import find_images, load_image
from accelir.models import registry, zoo
from accelir.models.zoo import ModelCard
from accelir.training.loop import TrainConfig, train
from accelir.training.pool import PatchPool, cap_size
from accelir.training.validate import ValSample, evaluate, make_val_set

app = typer.Typer(help="Train the networks AccelIR ships.", no_args_is_help=True)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}"
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def _dataset_label(root: Path, split: str, paths: list[Path], max_side: int | None) -> str:
    digest = hashlib.sha256("\n".join(p.name for p in paths).encode()).hexdigest()[:12]
    cap = f", longest side capped at {max_side} px" if max_side else ""
    return f"{root} {split} split: {len(paths)} photographs (names digest {digest}){cap}"


def _load(paths: list[Path], max_side: int | None) -> list[tuple[str, np.ndarray]]:
    return [(p.stem, cap_size(load_image(p), max_side)) for p in paths]


def _centre_crops(samples: list[ValSample], task: str, size: int) -> list[ValSample]:
    """Small centre crops of the validation inputs, for the progress bar's PSNR."""
    s = tasks.scale_of(task)
    out = []
    for v in samples:
        h, w = next(iter(v.inputs.values())).shape[:2]
        p = min(size, h, w)
        y, x = (h - p) // 2, (w - p) // 2
        inputs = {c: a[y : y + p, x : x + p] for c, a in v.inputs.items()}
        out.append(ValSample(v.name, v.target[y * s : (y + p) * s, x * s : (x + p) * s], inputs))
    return out


def warm_start(model: torch.nn.Module, path: Path) -> int:
    """Copy every tensor of a checkpoint or weights file whose name and shape match."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        source = load_file(str(path))
    else:
        source = torch.load(path, map_location="cpu", weights_only=False)["model"]
    target = model.state_dict()
    matched = {
        k: v.to(target[k].dtype)
        for k, v in source.items()
        if k in target and v.shape == target[k].shape
    }
    model.load_state_dict(matched, strict=False)
    return len(matched)


@app.command("ir")
def train_ir(
    model: Annotated[str, typer.Option(help="Network name from the registry, e.g. edsr.")],
    task: Annotated[str, typer.Option(help="sr2, sr3, sr4, denoise or deblur.")],
    width: Annotated[
        int | None, typer.Option(help="Body width (default: the paper's full width).")
    ] = None,
    data: Annotated[
        Path, typer.Option(help="Dataset root (accelir data fetch, DIV2K, any folder).")
    ] = Path("data/photos"),
    steps: Annotated[int, typer.Option(help="Optimisation steps (upper bound).")] = 20_000,
    max_minutes: Annotated[
        float | None, typer.Option(help="Time budget; the schedule fits it.")
    ] = None,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 16,
    patch: Annotated[int, typer.Option(help="Input patch side in pixels.")] = 48,
    lr: Annotated[float, typer.Option(help="Peak learning rate (Adam).")] = 2e-4,
    variants: Annotated[int, typer.Option(help="Degraded, coded copies per training image.")] = 3,
    max_side: Annotated[int | None, typer.Option(help="Cap on the photos' longest side.")] = 2048,
    val_images: Annotated[int, typer.Option(help="Validation photographs used (0: all).")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    init_from: Annotated[
        Path | None, typer.Option(help="Warm start from matching tensors.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder for checkpoints.")] = Path("runs"),
    export: Annotated[bool, typer.Option(help="Write weights and card into the package.")] = True,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where to export (default: package).")
    ] = None,
) -> None:
    """Train one network on degraded, block-coded photographs; evaluate; ship weights and card."""
    console = Console()
    if threads:
        torch.set_num_threads(threads)
    spec = registry.get(model)
    task = tasks.parse_task(task).name
    width = width or spec.full_width
    train_paths = find_images(data, "train")
    val_paths = find_images(data, "val")
    if val_images:
        val_paths = val_paths[:val_images]
    if not train_paths or not val_paths:
        raise typer.BadParameter(f"{data} needs train and val images (run `accelir data fetch`)")
    console.print(
        f"{len(train_paths)} training and {len(val_paths)} validation photographs from {data}"
    )

    t0 = time.perf_counter()
    pool = PatchPool([im for _, im in _load(train_paths, max_side)], task, variants, seed)
    val_full = make_val_set(_load(val_paths, max_side), task)
    console.print(
        f"degraded and coded {len(train_paths)}×{variants} variants in {time.perf_counter() - t0:.0f} s"
    )

    net = spec.build(width, tasks.scale_of(task))
    if init_from:
        console.print(f"warm start: {warm_start(net, init_from)} tensors from {init_from}")
    cfg = TrainConfig(
        model=model,
        width=width,
        task=task,
        steps=steps,
        max_minutes=max_minutes,
        batch=batch,
        patch=patch,
        lr=lr,
        seed=seed,
        device=device,
    )
    run_dir = runs / zoo.model_id(model, task, width)
    state = train(cfg, net, pool, _centre_crops(val_full, task, 96), run_dir)
    net.cpu().eval()

    console.print("final validation on the full validation images …")
    validation = evaluate(net, val_full, task)
    baseline = evaluate(None, val_full, task)
    for cond, scores in validation.items():
        console.print(
            f"  {cond}: {scores['psnr']:.2f} dB / SSIM {scores['ssim']:.4f} "
            f"(naive {baseline[cond]['psnr']:.2f} dB, gain {scores['psnr'] - baseline[cond]['psnr']:+.2f})"
        )
    per_pixel = metrics.flops_per_pixel(net, 64, 64)
    card = ModelCard(
        name=model,
        task=task,
        width=width,
        params=sum(p.numel() for p in net.parameters()),
        flops_per_pixel=per_pixel,
        flops_960x540=round(per_pixel * 960 * 540),
        data=_dataset_label(data, "train", train_paths, max_side),
        steps=state.step,
        batch=batch,
        patch=patch,
        device=_device_name(cfg.resolved_device()),
        minutes=round(state.seconds / 60, 1),
        validation=validation,
        baseline=baseline,
        command="accelir " + shlex.join(sys.argv[1:])
        if sys.argv and "accelir" in sys.argv[0]
        else "",
        notes=[f"validation: {_dataset_label(data, 'val', val_paths, max_side)}"],
    )
    if export:
        path = zoo.save(net, card, weights_dir)
        console.print(f"wrote {path} and its card")

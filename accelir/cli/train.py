"""``accelir train ir``: train one restoration network of the zoo and ship its weights and card."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.console import Console

from accelir import codec, metrics, tasks
from accelir.data import cap_size, find_images, load_image
from accelir.models import registry, zoo
from accelir.models.zoo import ModelCard
from accelir.training.loop import TrainConfig, train
from accelir.training.plan import PLANS, TrainJob
from accelir.training.pool import PatchPool
from accelir.training.validate import ValSample, evaluate, make_val_set

app = typer.Typer(help="Train the networks AccelIR ships.", no_args_is_help=True)

_SEAMLESS_NOTE = (
    "training and validation inputs decoded seamlessly (chroma upsampled across block edges, "
    "codec.decode_for_restoration)"
)


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


def warm_start_note(source: Path) -> str:
    """What the model card says about the weights a run started from."""
    card_path = source.with_suffix(".json")
    if not card_path.exists():
        return f"warm start from {source.name}"
    card = zoo.ModelCard.from_dict(json.loads(card_path.read_text()))
    return (
        f"warm start from the shipped {card.id} ({card.steps} steps, {card.minutes} min on "
        f"{card.device}); steps and minutes above count this run only"
    )


def run_job(
    job: TrainJob,
    *,
    data: Path,
    runs: Path,
    val_images: int = 0,
    seed: int = 0,
    device: str = "auto",
    export: bool = True,
    weights_dir: Path | None = None,
    console: Console | None = None,
    until: float | None = None,
    notes: tuple[str, ...] = (),
) -> ModelCard:
    """Train one network on degraded, block-coded photographs; evaluate; ship weights and card.

    ``until`` (Unix time) ends training at that wall-clock moment, whatever the steps say: the
    schedule fits the time left once the training pairs are ready."""
    console = console or Console()
    spec = registry.get(job.model)
    task = tasks.parse_task(job.task).name
    train_paths = find_images(data, "train")
    val_paths = find_images(data, "val")
    if val_images:
        val_paths = val_paths[:val_images]
    if not train_paths or not val_paths:
        raise typer.BadParameter(f"{data} needs train and val images (run `accelir data fetch`)")
    console.print(
        f"{job.model}-{job.width} {task}: {len(train_paths)} training and {len(val_paths)} validation photographs"
    )

    t0 = time.perf_counter()
    pool = PatchPool([im for _, im in _load(train_paths, job.max_side)], task, job.variants, seed)
    val_full = make_val_set(_load(val_paths, job.max_side), task)
    console.print(
        f"degraded and coded {len(train_paths)}×{job.variants} variants in {time.perf_counter() - t0:.0f} s"
    )

    net = spec.build(job.width, tasks.scale_of(task))
    if job.init_from:
        source = zoo.weights_dir() / f"{zoo.model_id(*job.init_from)}.safetensors"
        console.print(f"warm start: {warm_start(net, source)} tensors from {source.name}")
        notes = (*notes, warm_start_note(source))
    max_minutes = job.max_minutes
    if until is not None:
        left = max(0.05, (until - time.time()) / 60.0)
        max_minutes = left if max_minutes is None else min(max_minutes, left)
        console.print(f"training until the deadline: {left:.1f} min")
    cfg = TrainConfig(
        model=job.model,
        width=job.width,
        task=task,
        steps=job.steps,
        max_minutes=max_minutes,
        refresh_every=job.refresh_every,
        batch=job.batch,
        patch=job.patch,
        lr=job.lr,
        seed=seed,
        device=device,
    )
    state = train(
        cfg,
        net,
        pool,
        _centre_crops(val_full, task, 96),
        runs / zoo.model_id(job.model, task, job.width),
    )
    net.eval().to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]

    console.print("final validation on the full validation images …")
    validation = evaluate(net, val_full, task)  # on the training device
    net.cpu()
    baseline = evaluate(None, val_full, task)
    for cond, scores in validation.items():
        console.print(
            f"  {cond}: {scores['psnr']:.2f} dB / SSIM {scores['ssim']:.4f} "
            f"(naive {baseline[cond]['psnr']:.2f} dB, gain {scores['psnr'] - baseline[cond]['psnr']:+.2f})"
        )
    per_pixel = metrics.flops_per_pixel(net, 64, 64)
    card = ModelCard(
        name=job.model,
        task=task,
        width=job.width,
        params=sum(p.numel() for p in net.parameters()),
        flops_per_pixel=per_pixel,
        flops_960x540=round(per_pixel * 960 * 540),
        data=_dataset_label(data, "train", train_paths, job.max_side),
        steps=state.step,
        batch=job.batch,
        patch=job.patch,
        device=_device_name(cfg.resolved_device()) + (" bf16 autocast" if cfg.uses_bf16() else ""),
        minutes=round(state.seconds / 60, 1),
        validation=validation,
        baseline=baseline,
        command=f"accelir train ir --model {job.model} --task {task} --width {job.width} --steps {job.steps} "
        f"--batch {job.batch} --patch {job.patch} --lr {job.lr:g} --variants {job.variants} "
        f"--max-side {job.max_side} --refresh-every {job.refresh_every}"
        + (f" --init-from {zoo.model_id(*job.init_from)}" if job.init_from else "")
        + (f" --max-minutes {max_minutes:.2f}" if max_minutes is not None else "")
        + (f" --seed {seed}" if seed else ""),
        notes=[
            f"validation: {_dataset_label(data, 'val', val_paths, job.max_side)}",
            *([_SEAMLESS_NOTE] if codec.SEAMLESS else []),
            *notes,
        ],
    )
    if export:
        path = zoo.save(net, card, weights_dir)
        console.print(f"wrote {path} and its card")
    return card


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
    batch: Annotated[int, typer.Option(help="Patches per step.")] = 8,
    patch: Annotated[int, typer.Option(help="Input patch side in pixels.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (Adam).")] = 5e-4,
    variants: Annotated[int, typer.Option(help="Degraded, coded copies per training image.")] = 6,
    refresh_every: Annotated[
        int, typer.Option(help="Steps between re-degrading and re-coding one variant.")
    ] = 4,
    until: Annotated[
        float | None, typer.Option(help="Stop training at this Unix time (a lent machine's slot).")
    ] = None,
    note: Annotated[list[str] | None, typer.Option(help="A line for the model card.")] = None,
    max_side: Annotated[int | None, typer.Option(help="Cap on the photos' longest side.")] = 2048,
    val_images: Annotated[int, typer.Option(help="Validation photographs used (0: all).")] = 0,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    init_from: Annotated[
        str | None, typer.Option(help="Warm start from a shipped model id.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder for checkpoints.")] = Path("runs"),
    export: Annotated[bool, typer.Option(help="Write weights and card into the package.")] = True,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where to export (default: package).")
    ] = None,
) -> None:
    """Train one network of the zoo, evaluate it, and ship its weights and card."""
    if threads:
        torch.set_num_threads(threads)
    width = width or registry.get(model).full_width
    source = None
    if init_from:
        name, source_task, w = init_from.rsplit("_", 2)
        source = (name, source_task, int(w.lstrip("w")))
    job = TrainJob(
        model,
        task,
        width,
        steps,
        batch=batch,
        patch=patch,
        lr=lr,
        variants=variants,
        max_side=max_side or None,
        init_from=source,
        max_minutes=max_minutes,
        refresh_every=refresh_every,
    )
    run_job(
        job,
        data=data,
        runs=runs,
        val_images=val_images,
        seed=seed,
        device=device,
        export=export,
        weights_dir=weights_dir,
        until=until,
        notes=tuple(note or ()),
    )


@app.command("zoo")
def train_zoo(
    data: Annotated[Path, typer.Option(help="Dataset root.")] = Path("data/photos"),
    only: Annotated[list[str] | None, typer.Option(help="Train only these networks.")] = None,
    plan: Annotated[str, typer.Option(help="cpu (in order) or gpu (side by side).")] = "cpu",
    steps_scale: Annotated[float, typer.Option(help="Multiply every job's steps.")] = 1.0,
    force: Annotated[bool, typer.Option(help="Retrain models that already ship weights.")] = False,
    dry_run: Annotated[bool, typer.Option(help="List the jobs and stop.")] = False,
    runs: Annotated[Path, typer.Option(help="Folder for checkpoints.")] = Path("runs"),
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    parallel: Annotated[
        int, typer.Option(help="Jobs at once, each its own process (needs --minutes).")
    ] = 1,
    minutes: Annotated[
        float | None, typer.Option(help="With --parallel: train until this many minutes from now.")
    ] = None,
    grace_minutes: Annotated[
        float, typer.Option(help="With --parallel: time for validation and export, then stop.")
    ] = 2.0,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where to export (default: package).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    note: Annotated[list[str] | None, typer.Option(help="A line for every model card.")] = None,
) -> None:
    """Train the jobs of a zoo plan (accelir/training/plan.py): in order, or side by side."""
    console = Console()
    if plan not in PLANS:
        raise typer.BadParameter(f"unknown plan {plan!r}; one of {sorted(PLANS)}")
    if threads:
        torch.set_num_threads(threads)
    target = weights_dir or zoo.weights_dir()
    jobs = []
    for job in PLANS[plan]:
        if only and job.model not in only:
            continue
        job = job.scaled(steps_scale)
        shipped = (target / f"{zoo.model_id(job.model, job.task, job.width)}.safetensors").exists()
        console.print(f"{'skip (shipped)' if shipped and not force else 'train'}: {job}")
        if not shipped or force:
            jobs.append(job)
    if dry_run or not jobs:
        return
    if parallel > 1:
        if minutes is None:
            raise typer.BadParameter("--parallel needs --minutes (the common deadline)")
        from accelir.cli.train_parallel import run_parallel

        codes = run_parallel(
            jobs,
            parallel=parallel,
            minutes=minutes,
            grace_minutes=grace_minutes,
            data=data,
            runs=runs,
            weights_dir=target,
            device=device,
            notes=tuple(note or ()),
            console=console,
        )
        if any(code != 0 for code in codes.values()):
            raise typer.Exit(1)
        return
    until = None if minutes is None else time.time() + minutes * 60.0
    for job in jobs:
        run_job(
            job,
            data=data,
            runs=runs,
            console=console,
            device=device,
            weights_dir=weights_dir,
            until=until,
            notes=tuple(note or ()),
        )

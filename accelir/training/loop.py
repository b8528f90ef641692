"""Training a restoration network: L1 loss, Adam, cosine schedule, checkpoints, time budget.

``train(config, pool, val)`` runs on whatever device the config names, with bf16 autocast and
channels-last tensors where the hardware has bf16 units (CUDA; CPUs with AMX or AVX-512 BF16), checkpoints every ``checkpoint_every`` steps into ``run_dir`` and resumes from
there, stops at ``steps`` or when ``max_minutes`` is spent (the cosine schedule is re-planned to
the number of steps that fit the budget, again and again as the measured pace changes), and shows a progress bar
with the loss and the validation PSNR. Its minutes leave out time the process spent stopped
(``accelir.training.clock``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from accelir.models.inference import restore
from accelir.training.clock import ActiveClock
from accelir.training.pool import PatchPool
from accelir.training.validate import ValSample

# With a time budget the loop re-plans the cosine schedule from the step time measured since its
# previous re-plan: first after CALIBRATION_STEPS, then each time a quarter of the remaining
# planned steps has passed (at least CALIBRATION_STEPS). The first steps include warm-up, and on
# a shared machine the pace changes as neighbouring jobs start and finish.
CALIBRATION_STEPS = 20


@dataclass(frozen=True)
class TrainConfig:
    model: str
    width: int
    task: str
    steps: int = 20_000
    max_minutes: float | None = None
    batch: int = 16
    patch: int = 48
    lr: float = 2e-4
    final_lr_ratio: float = 0.02
    seed: int = 0
    refresh_every: int = 4  # steps between replacing one training variant by a fresh one
    val_every: int = 250
    checkpoint_every: int = 250
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with bf16 units, else fp32

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def uses_bf16(self) -> bool:
        if self.precision != "auto":
            return self.precision == "bf16"
        if self.resolved_device().type == "cuda":
            return True
        return cpu_has_bf16()


def cpu_has_bf16() -> bool:
    """AMX or AVX-512 BF16 units: bf16 autocast is then several times faster than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


@dataclass
class TrainState:
    step: int = 0
    planned_steps: int = 0
    seconds: float = 0.0
    last_loss: float = math.nan
    last_val_psnr: float = math.nan


def _param_groups(model: nn.Module) -> list[dict[str, object]]:
    """Adam parameter groups with an ``lr_scale`` each: 1 unless the model's ``lr_scales``
    (submodule name → factor) says otherwise, e.g. FSRCNN's 10× slower deconvolution."""
    scales: dict[str, float] = getattr(model, "lr_scales", {})
    groups: dict[float, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        owner = next((s for s in scales if name == s or name.startswith(s + ".")), None)
        groups.setdefault(1.0 if owner is None else scales[owner], []).append(param)
    return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]


def _lr_at(cfg: TrainConfig, step: int, planned: int) -> float:
    progress = min(1.0, step / max(1, planned))
    floor = cfg.lr * cfg.final_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def quick_psnr(model: nn.Module, samples: list[ValSample], task: str) -> float:
    """Mean PSNR on the q75 inputs of a few validation crops (for the progress bar)."""
    model.eval()
    values = []
    for s in samples:
        out = restore(model, s.inputs["q75"], task)
        mse = np.mean((out.astype(np.float64) - s.target.astype(np.float64)) ** 2)
        values.append(10 * math.log10(255.0**2 / max(float(mse), 1e-10)))
    model.train()
    return float(np.mean(values))


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    state: TrainState,
    cfg: TrainConfig,
    pool: PatchPool,
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "state": asdict(state),
            "config": asdict(cfg),
            "pool_rng": pool.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """L1 against the target; a multi-output network (MIMO-UNet's ``forward_multi``) is scored
    at every output scale against the target averaged down to it, as in its paper."""
    if getattr(model, "takes_noise_level", False):
        return nn.functional.l1_loss(model(x, sigma).float(), y)
    if hasattr(model, "forward_multi"):
        outputs = getattr(model, "forward_multi")(x)  # noqa: B009  (not every network has it)
        loss = x.new_zeros(())
        for out in outputs:
            target = (
                y
                if out.shape[-2:] == y.shape[-2:]
                else nn.functional.interpolate(
                    y, size=out.shape[-2:], mode="bilinear", align_corners=False, antialias=True
                )
            )
            loss = loss + nn.functional.l1_loss(out.float(), target)
        return loss
    return nn.functional.l1_loss(model(x).float(), y)


def train(
    cfg: TrainConfig,
    model: nn.Module,
    pool: PatchPool,
    val: list[ValSample],
    run_dir: Path,
    *,
    show_progress: bool = True,
) -> TrainState:
    """Train ``model`` in place; returns the final state (also kept in ``run_dir``)."""
    device = cfg.resolved_device()
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.Adam(_param_groups(model), lr=cfg.lr, betas=(0.9, 0.99))
    state = TrainState(planned_steps=cfg.steps)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state = TrainState(**saved["state"])
        state.planned_steps = max(state.step, cfg.steps)  # the budget re-plans below
        pool.rng.bit_generator.state = saved["pool_rng"]
        torch.set_rng_state(saved["torch_rng"])
    amp = cfg.uses_bf16()
    budget = None if cfg.max_minutes is None else cfg.max_minutes * 60.0
    seconds_at_start = state.seconds
    most_steps, mark = state.planned_steps, (state.step, state.seconds)
    next_plan = state.step + CALIBRATION_STEPS
    if budget is not None and state.seconds >= budget:
        state.planned_steps = state.step

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  val {task.fields[val]:.2f} dB"),
        TimeElapsedColumn(),
    )
    with ActiveClock() as clock, Progress(*columns, disable=not show_progress) as progress:
        bar = progress.add_task(
            f"{cfg.model}-{cfg.width} {cfg.task}",
            total=state.planned_steps,
            completed=state.step,
            loss=state.last_loss,
            val=state.last_val_psnr,
        )
        while state.step < state.planned_steps:
            x, y, sigma = pool.batch(cfg.batch, cfg.patch)
            x = x.to(device, memory_format=torch.channels_last)
            y, sigma = y.to(device), sigma.to(device)
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, state.step, state.planned_steps) * group.get(
                    "lr_scale", 1.0
                )
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                loss = _loss(model, x, y, sigma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.step += 1
            state.last_loss = float(loss.detach())
            if cfg.refresh_every and state.step % cfg.refresh_every == 0:
                pool.refresh()
            state.seconds = seconds_at_start + clock.tick()  # paused time (SIGSTOP) left out

            if budget is not None and state.step >= next_plan:
                per_step = (state.seconds - mark[1]) / max(1, state.step - mark[0])
                fit = state.step + int((budget - state.seconds) / max(per_step, 1e-6))
                state.planned_steps = max(state.step, min(most_steps, fit))
                mark = (state.step, state.seconds)
                left = state.planned_steps - state.step
                next_plan = state.step + max(CALIBRATION_STEPS, left // 4)
                progress.update(bar, total=state.planned_steps)
            if state.step % cfg.val_every == 0 or state.step == state.planned_steps:
                state.last_val_psnr = quick_psnr(model, val, cfg.task)
                if not progress.console.is_terminal:  # keep a record in logs
                    progress.console.print(
                        f"step {state.step}/{state.planned_steps} loss {state.last_loss:.4f} "
                        f"val {state.last_val_psnr:.2f} dB {state.seconds / 60:.1f} min"
                    )
            if state.step % cfg.checkpoint_every == 0 or state.step == state.planned_steps:
                _save_checkpoint(ckpt, model, opt, state, cfg, pool)
            progress.update(
                bar, completed=state.step, loss=state.last_loss, val=state.last_val_psnr
            )
            if budget is not None and state.seconds >= budget:
                state.planned_steps = state.step
                _save_checkpoint(ckpt, model, opt, state, cfg, pool)
                break
    model.eval()
    return state

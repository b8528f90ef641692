"""The schedule that trained the shipped zoo, one job per (network, task, width).

Within a family every width gets the same number of steps (so the full width is not handicapped
by being slower); ×2/×3 EDSR and reduced-width jobs may warm-start from a trained sibling.
``accelir train zoo`` runs these jobs in order, skipping models whose weights already exist.
``GPU_PLAN`` is the schedule for a lent GPU machine: its jobs run side by side (``--parallel``)
until a common wall-clock deadline, so their step counts are upper bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TrainJob:
    model: str
    task: str
    width: int
    steps: int
    batch: int = 8
    patch: int = 32
    lr: float = 5e-4
    variants: int = 6
    max_side: int | None = 2048
    init_from: tuple[str, str, int] | None = None  # (model, task, width) of a shipped sibling
    max_minutes: float | None = None
    refresh_every: int = 4  # steps between replacing one training variant by a fresh one

    def scaled(self, factor: float) -> TrainJob:
        return replace(self, steps=max(1, round(self.steps * factor)))


def _family(
    model: str, task: str, widths: tuple[int, ...], steps: int, **kw: object
) -> list[TrainJob]:
    return [TrainJob(model, task, w, steps, **kw) for w in widths]  # type: ignore[arg-type]


DENOISE = {"patch": 48, "max_side": 1280}
DEBLUR = {"patch": 48, "max_side": 1280}

# Order: what the AccelIR encoder needs first (EDSR ×4, its narrowest width early), then the
# cheap denoisers, then the rest. Step counts fit a 2-core CPU budget (see docs/models.md).
ZOO_PLAN: list[TrainJob] = [
    *_family("edsr", "sr4", (64, 32, 40), 8_000),
    *_family("dncnn", "denoise", (64, 56), 4_000, **DENOISE),
    # FFDNet predicts the clean image (no residual learning) and learns slower: at 4 000 steps
    # it stayed 3 dB below DnCNN, so it gets three times the steps.
    *_family("ffdnet", "denoise", (64, 52), 12_000, **DENOISE),
    *_family("ircnn", "denoise", (64, 52), 4_000, **DENOISE),
    # FSRCNN starts from bilinear upscaling (see its module) and, as in its paper, trains the
    # deconvolution at a tenth of the learning rate; from the paper's black start 12 000 steps
    # ended 0.26 dB below bicubic.
    *_family("fsrcnn", "sr4", (56, 36), 12_000, batch=16, lr=1e-3),
    *_family("mimo_unet", "deblur", (32, 28, 26), 2_500, **DEBLUR),
    *_family("carn", "sr4", (64, 48, 40), 5_000),
    *_family("latticenet", "sr4", (64, 48, 42), 5_000),
    *[
        TrainJob("edsr", t, w, 2_000, init_from=("edsr", "sr4", w))
        for t in ("sr2", "sr3")
        for w in (64, 40, 32)
    ],
    *_family("swinir", "sr4", (60, 36), 1_500),
]

# For one GPU and 16 CPU cores, all jobs at once until a deadline (``accelir train zoo --plan
# gpu --parallel 11 --minutes 6``). Bigger batches and patches than on the CPU, and a slower
# refresh of the variants: on a GPU a step is cheaper than re-coding a photograph. Families
# that already ship from the CPU schedule continue from their shipped weights where a bar or
# the full-before-reduced order was missed (the full width gets the extra steps).
_GPU_SR: dict[str, object] = {"batch": 32, "patch": 48, "refresh_every": 16, "steps": 100_000}
_GPU_DEBLUR: dict[str, object] = {
    "batch": 16,
    "patch": 64,
    "max_side": 1280,
    "refresh_every": 32,
    "steps": 100_000,
}
_GPU_DENOISE: dict[str, object] = {
    "batch": 32,
    "patch": 48,
    "max_side": 1280,
    "refresh_every": 32,
    "steps": 100_000,
}


def _gpu(model: str, task: str, width: int, *, cont: bool = False, **kw: object) -> TrainJob:
    base = {
        **(_GPU_SR if task.startswith("sr") else _GPU_DEBLUR if task == "deblur" else _GPU_DENOISE)
    }
    base.update(kw)
    if cont:
        base["init_from"] = (model, task, width)
    return TrainJob(model, task, width, **base)  # type: ignore[arg-type]


GPU_PLAN: list[TrainJob] = [
    # SwinIR-60 / 36 ship from the slot of 2026-11-27 16:09 (1 194 / 1 345 steps from the
    # bilinear start, +0.18 / +0.12 dB at q75, bar +0.6), CARN-64 from its continuation there
    # (+0.47 dB): all three continue. LatticeNet-64 met its bar there (+0.62 dB); FSRCNN's
    # fine-tuning at 1e-4 ended below its CPU weights (+0.20 / +0.11 vs +0.27 / +0.20) and was
    # discarded. Three jobs, not fifteen: fifteen-way sharing gave each job too few steps.
    *[_gpu("swinir", "sr4", w, cont=True, lr=2e-4) for w in (60, 36)],
    _gpu("carn", "sr4", 64, cont=True, lr=2e-4),
]

PLANS = {"cpu": ZOO_PLAN, "gpu": GPU_PLAN}

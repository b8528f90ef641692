"""The shipped weights: safetensors files and model cards inside the package, no downloads.

A model is identified by (name, task, width): ``edsr_sr4_w32.safetensors`` holds its fp16
weights and ``edsr_sr4_w32.json`` its card (data, schedule, device, minutes, validation scores,
FLOPs). ``catalog()`` reads the cards; ``load()`` builds the network and loads the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from accelir.models import registry
from accelir.tasks import parse_task

WEIGHTS_PACKAGE = "accelir.models"
WEIGHTS_DIR = "weights"


def model_id(name: str, task: str, width: int) -> str:
    return f"{name}_{parse_task(task).name.replace(':', '-')}_w{width}"


def weights_dir() -> Path:
    """The package's weights, or the folder named by ``ACCELIR_WEIGHTS_DIR`` (experiments, tests)."""
    override = os.environ.get("ACCELIR_WEIGHTS_DIR")
    return Path(override) if override else Path(str(resources.files(WEIGHTS_PACKAGE) / WEIGHTS_DIR))


@dataclass(frozen=True)
class ModelCard:
    """What a shipped model is and how good it is (see docs/models.md for the table)."""

    name: str
    task: str
    width: int
    params: int
    flops_per_pixel: float  # per input pixel, torch.utils.flop_counter (2 per multiply-add)
    flops_960x540: int  # for a 960×540 input
    data: str  # dataset description (folder, split, number of images, manifest digest)
    steps: int
    batch: int
    patch: int
    device: str
    minutes: float
    validation: dict[str, dict[str, float]]  # condition → psnr / psnr_y / ssim
    baseline: dict[str, dict[str, float]]  # the naive restoration on the same inputs
    command: str
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return model_id(self.name, self.task, self.width)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        return cls(**data)


def save(model: nn.Module, card: ModelCard, directory: Path | None = None) -> Path:
    """Write fp16 weights and the card; returns the weights path."""
    directory = directory or weights_dir()
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    }
    ints = {
        k: v.detach().to("cpu").contiguous()
        for k, v in model.state_dict().items()
        if not v.is_floating_point()
    }
    path = directory / f"{card.id}.safetensors"
    save_file({**state, **ints}, str(path), metadata={"card": card.id})
    path.chmod(0o644)
    (directory / f"{card.id}.json").write_text(card.to_json() + "\n")
    return path


def catalog(directory: Path | None = None) -> list[ModelCard]:
    """Every shipped model's card, sorted by name, task and descending width."""
    directory = directory or weights_dir()
    if not directory.is_dir():
        return []
    cards = [
        ModelCard.from_dict(json.loads(p.read_text()))
        for p in directory.glob("*.json")
        if not p.name.startswith("qpnet_") and p.with_suffix(".safetensors").exists()
    ]
    return sorted(cards, key=lambda c: (c.name, c.task, -c.width))


def files_digest(paths: list[Path] | tuple[Path, ...]) -> str:
    """A short digest of these files' bytes, in order (for cache keys)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def weights_digest(name: str, task: str, widths: tuple[int, ...] | list[int]) -> str:
    """A short digest of the shipped weights of these widths (cache keys change when they do)."""
    return files_digest([weights_dir() / f"{model_id(name, task, w)}.safetensors" for w in widths])


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    state = load_file(str(path))
    reference = model.state_dict()
    converted = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    model.load_state_dict(converted, strict=True)
    return model


def load(name: str, width: int, task: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """The trained model in eval mode, from the weights shipped in the package."""
    spec = registry.get(name)
    parsed = parse_task(task)
    if spec.kind != parsed.kind:
        raise ValueError(f"{name} is a {spec.kind} network, not for task {task!r}")
    path = weights_dir() / f"{model_id(name, task, width)}.safetensors"
    if not path.exists():
        shipped = ", ".join(f"{c.name}/{c.task}/w{c.width}" for c in catalog()) or "none"
        raise FileNotFoundError(
            f"no shipped weights for {name} {task} width {width} (shipped: {shipped})"
        )
    model = spec.build(width, parsed.scale)
    load_weights(model, path)
    return model.to(device).eval()

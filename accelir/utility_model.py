"""What the encoder needs for one restorer: QP-NET weights and the utility groups.

Shipped next to the IR weights: ``qpnet_<model id>.safetensors`` (QP-NET; with ``side.*``
tensors when it takes side inputs) and ``qpnet_<model id>.json`` (groups, accuracy on held-out
blocks, training history, the data, and for super-resolution the error-level model under
``"level"``, ``accelir.error_level``), and where cross-validation chose one, the restorer's
error-shape correction ``shape_<model id>.safetensors`` (``accelir.error_shape``; its
scores under ``"shape"`` in the card).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import Module

from accelir.error_level import LevelModel
from accelir.error_shape import ShapeCorrection
from accelir.groups import UtilityGroups
from accelir.models.zoo import files_digest, model_id, weights_dir
from accelir.qpnet import QPNet


@dataclass(frozen=True)
class UtilityModel:
    qpnet: QPNet
    groups: UtilityGroups
    report: dict[str, Any]
    level: LevelModel | None = None
    shape: ShapeCorrection | None = None


def _paths(name: str, task: str, width: int, directory: Path | None) -> tuple[Path, Path]:
    base = (directory or weights_dir()) / f"qpnet_{model_id(name, task, width)}"
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def _shape_path(name: str, task: str, width: int, directory: Path | None) -> Path:
    return (directory or weights_dir()) / f"shape_{model_id(name, task, width)}.safetensors"


def save(
    name: str, task: str, width: int, qpnet: QPNet, groups: UtilityGroups, report: dict[str, Any],
    directory: Path | None = None, shape: ShapeCorrection | None = None,
) -> Path:  # fmt: skip
    """Write QP-NET, its card and the shape correction (``shape=None`` removes a shipped one)."""
    weights, card = _paths(name, task, width, directory)
    weights.parent.mkdir(parents=True, exist_ok=True)
    shape_file = _shape_path(name, task, width, directory)
    if shape is None:
        shape_file.unlink(missing_ok=True)
    else:
        meta = {"members": str(len(shape.members)), "hidden": str(shape.hidden)}
        _save_module(shape, shape_file, meta)
    _save_module(qpnet, weights)
    card.write_text(json.dumps({"groups": groups.to_dict(), **report}, indent=1) + "\n")
    return weights


def _save_module(module: Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """``module``'s state as float32 safetensors at ``path``, readable by everyone."""
    state = {k: v.detach().cpu().float().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    path.chmod(0o644)


def available(name: str, task: str, width: int, directory: Path | None = None) -> bool:
    weights, card = _paths(name, task, width, directory)
    return weights.exists() and card.exists()


def digest(name: str, task: str, width: int, directory: Path | None = None) -> str:
    """A short digest of the shipped QP-NET, groups and shape correction (cache keys change when
    they do)."""
    shape_file = _shape_path(name, task, width, directory)
    extra = (shape_file,) if shape_file.exists() else ()
    return files_digest(_paths(name, task, width, directory) + extra)


def load(name: str, task: str, width: int, directory: Path | None = None) -> UtilityModel:
    weights, card = _paths(name, task, width, directory)
    if not (weights.exists() and card.exists()):
        raise FileNotFoundError(
            f"no QP-NET shipped for {name} {task} width {width} (run `accelir profile` and `accelir train qpnet`)"
        )
    data = json.loads(card.read_text())
    groups = UtilityGroups.from_dict(data.pop("groups"))
    state = load_file(str(weights))
    side = state["side.weight"].shape[1] if "side.weight" in state else 0
    model = QPNet(groups.count, side_inputs=side)
    model.load_state_dict(state)
    model.eval()
    level = LevelModel.from_dict(data["level"]) if "level" in data else None
    return UtilityModel(
        model, groups, data, level, _load_shape(_shape_path(name, task, width, directory))
    )


def _load_shape(path: Path) -> ShapeCorrection | None:
    if not path.exists():
        return None
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    shape = ShapeCorrection(int(meta.get("members", 3)), int(meta.get("hidden", 16)))
    shape.load_state_dict(load_file(str(path)))
    return shape.eval()

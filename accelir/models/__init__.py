"""The restoration zoo: nine networks with configurable widths, their shipped weights, inference.

Public API (stable; used by the pipeline, the service and outside checks):

- ``build(name, width=None, scale=4)`` — a fresh network from the registry;
- ``load(name, width, task)`` — the trained network in eval mode, from the package's weights;
- ``catalog()`` — every shipped (name, task, width) with FLOPs and validation scores;
- ``restore(model, image, task, tile=None)`` — uint8 in, uint8 out, exact tiling;
- ``restore_batch(model, images, task, tile=None)`` — same-size images stacked into one pass.

Every network module registers itself on import; they are imported here, explicitly.
"""

from __future__ import annotations

from torch import nn

from accelir.models import (  # noqa: F401  (each module registers its network)
    carn,
    dncnn,
    edsr,
    ffdnet,
    fsrcnn,
    ircnn,
    latticenet,
    mimo_unet,
    swinir,
)
from accelir.models.inference import restore, restore_batch
from accelir.models.registry import ModelSpec, get, names, specs
from accelir.models.zoo import ModelCard, catalog, load

__all__ = [
    "ModelCard",
    "ModelSpec",
    "build",
    "catalog",
    "get",
    "load",
    "names",
    "restore",
    "restore_batch",
    "specs",
]


def build(name: str, width: int | None = None, scale: int = 4) -> nn.Module:
    """A freshly initialised network (``width`` defaults to the paper's full width)."""
    return get(name).build(width, scale)

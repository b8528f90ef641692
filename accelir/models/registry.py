"""The model registry: one name → one builder, read by everything that lists models.

Each network module registers its builder with ``@register(...)``; ``accelir.models`` imports
every network module explicitly, so the registry is complete once the package is imported.

Contract for every registered network (so callers never special-case one):
- ``builder(width: int, scale: int) -> nn.Module``; ``width`` is the channel count of the body
  (the embedding dimension for SwinIR); ``scale`` matters only for super-resolution.
- ``forward(x)`` takes N×3×H×W float RGB in [0, 1] of *any* H, W ≥ 1 (a network that needs a
  multiple of some size pads and crops inside) and returns N×3×(sH)×(sW) for super-resolution,
  N×3×H×W otherwise.
- Networks that take a noise-level map (``takes_noise_level``) accept ``forward(x, sigma)`` with
  ``sigma`` a float or an N-tensor on the [0, 1] scale (σ / 255).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

Kind = Literal["sr", "denoise", "deblur"]
Builder = Callable[[int, int], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: its name, task family, widths (full first) and builder."""

    name: str
    kind: Kind
    widths: tuple[int, ...]
    builder: Builder
    paper: str
    takes_noise_level: bool = False

    @property
    def full_width(self) -> int:
        return self.widths[0]

    def build(self, width: int | None = None, scale: int = 4) -> nn.Module:
        width = self.full_width if width is None else width
        if width < 1:
            raise ValueError(f"{self.name}: width must be positive, got {width}")
        if self.kind == "sr" and scale not in (2, 3, 4):
            raise ValueError(f"{self.name}: super-resolution scale must be 2, 3 or 4, got {scale}")
        return self.builder(width, scale if self.kind == "sr" else 1)


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str, kind: Kind, widths: tuple[int, ...], paper: str, *, takes_noise_level: bool = False
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name`` (lowercase, e.g. ``edsr``, ``mimo_unet``)."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, kind, widths, builder, paper, takes_noise_level)
        return builder

    return wrap


def get(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    return list(_REGISTRY)


def specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())

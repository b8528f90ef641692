"""Which models exist (the library's registry) and which weights are shipped (its catalog), read
once per process, and the checks a request's (task, model, width) must pass.

The gateway refuses a model that does not exist or does not do the task (422). A model whose
weights for that width are not shipped is accepted and fails as a job with a clear error, so the
API stays the same when new weights ship.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from accelir.tasks import parse_task


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str
    widths: tuple[int, ...]


@dataclass(frozen=True)
class ModelCatalog:
    models: dict[str, ModelInfo]
    shipped: frozenset[tuple[str, str, int]]  # (name, task, width)

    def resolve_width(self, model: str, task: str, width: int | None) -> int:
        """The width to use, or ``ValueError`` with a message for the client."""
        info = self.models.get(model)
        if info is None:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(sorted(self.models))}")
        kind = parse_task(task).kind
        if info.kind != kind:
            raise ValueError(f"{model} is a {info.kind} network and cannot do task {task!r}")
        if width is None:
            shipped = sorted(
                (w for n, t, w in self.shipped if n == model and t == task), reverse=True
            )
            return shipped[0] if shipped else info.widths[0]
        if width not in info.widths:
            listed = ", ".join(str(w) for w in info.widths)
            raise ValueError(f"{model} comes in widths {listed}, not {width}")
        return width


@lru_cache(maxsize=1)
def load_catalog() -> ModelCatalog:
    """The registry and the shipped weights (imports torch: call once, at app start)."""
    from accelir import models

    infos = {s.name: ModelInfo(s.name, s.kind, tuple(s.widths)) for s in models.specs()}
    shipped = frozenset((c.name, c.task, c.width) for c in models.catalog())
    return ModelCatalog(infos, shipped)

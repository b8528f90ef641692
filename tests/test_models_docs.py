"""docs/models.md stays true: its FLOPs-by-width table is what flop_counter measures, and every
shipped model has a card row and loads."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

import accelir.models as M
from accelir import metrics, tasks

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def _section(name: str) -> str:
    text = DOC.read_text()
    return text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]


def _flops_rows() -> list[tuple[str, int, float]]:
    rows = []
    for line in _section("flops").splitlines():
        m = re.match(r"\| (\w+) \| (\d+) \| ([\d,]+) \|", line)
        if m:
            rows.append((m.group(1), int(m.group(2)), float(m.group(3).replace(",", ""))))
    return rows


def test_flops_table_covers_every_registered_width() -> None:
    rows = {(name, width) for name, width, _ in _flops_rows()}
    assert rows == {(s.name, w) for s in M.specs() for w in s.widths}


@pytest.mark.parametrize(("name", "width", "documented"), _flops_rows())
def test_documented_flops_are_measured(name: str, width: int, documented: float) -> None:
    measured = metrics.flops_per_pixel(M.build(name, width, 4).eval(), 64, 64)
    assert measured == pytest.approx(documented, abs=1.0)


def test_full_width_costs_most() -> None:
    by_model: dict[str, list[tuple[int, float]]] = {}
    for name, width, flops in _flops_rows():
        by_model.setdefault(name, []).append((width, flops))
    for name, rows in by_model.items():
        widths, flops = zip(*rows, strict=True)
        assert list(widths) == list(M.get(name).widths)
        assert all(a > b for a, b in itertools.pairwise(flops)), name


def test_every_shipped_model_is_documented_and_runs() -> None:
    catalog = _section("catalog")
    for card in M.catalog():
        assert f"| {card.name} | {card.task} | {card.width} |" in catalog
        model = M.load(card.name, card.width, card.task)
        out = M.restore(model, np.zeros((37, 53, 3), np.uint8), card.task)
        scale = tasks.scale_of(card.task)
        assert out.shape == (37 * scale, 53 * scale, 3)


def test_zoo_stays_under_60_megabytes() -> None:
    """Issue #3: every shipped weight file (IR networks and QP-NETs) together under 60 MB."""
    files = list(M.zoo.weights_dir().glob("*.safetensors"))
    assert len(files) >= len(M.catalog())
    assert sum(f.stat().st_size for f in files) < 60e6

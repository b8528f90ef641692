"""``accelir models``: the shipped zoo as a table (what docs/models.md holds)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from accelir.models import catalog, registry


def models_table() -> str:
    """Markdown table of every shipped model, from the model cards."""
    lines = [
        "| network | task | width | params | FLOPs / input px | GFLOPs @ 960×540 | val PSNR q75 (gain over naive) | "
        "SSIM q75 | val PSNR mixed (gain) | steps | device | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in catalog():
        v, b = c.validation, c.baseline
        q75 = v.get("q75", {}).get("psnr", float("nan"))
        mixed = v.get("mixed", {}).get("psnr", float("nan"))
        g75 = q75 - b.get("q75", {}).get("psnr", float("nan"))
        gmx = mixed - b.get("mixed", {}).get("psnr", float("nan"))
        lines.append(
            f"| {c.name} | {c.task} | {c.width} | {c.params:,} | {c.flops_per_pixel:,.0f} | "
            f"{c.flops_960x540 / 1e9:.1f} | {q75:.2f} ({g75:+.2f}) | {v.get('q75', {}).get('ssim', float('nan')):.4f} | "
            f"{mixed:.2f} ({gmx:+.2f}) | {c.steps} | {c.device} | {c.minutes:.1f} |"
        )
    # Card notes beyond the data description (every card names its validation data).
    notes = [(c, n) for c in catalog() for n in c.notes if not n.startswith("validation:")]
    if notes:
        lines.append("")
        lines += [f"- {c.name}-{c.width} {c.task}: {n}" for c, n in notes]
    return "\n".join(lines) + "\n"


def widths_table() -> str:
    lines = ["| network | task family | widths (full first) | paper |", "|---|---|---|---|"]
    for s in registry.specs():
        lines.append(f"| {s.name} | {s.kind} | {', '.join(map(str, s.widths))} | {s.paper} |")
    return "\n".join(lines) + "\n"


def _replace_section(text: str, name: str, body: str) -> str:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` (appended if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text:
        return f"{text}\n{start}\n{body}{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}{end}{tail}"


def models(
    markdown: Annotated[
        Path | None, typer.Option(help="Update the tables in this Markdown file.")
    ] = None,
) -> None:
    """List the shipped models with their FLOPs and validation scores."""
    table = models_table()
    if markdown is None:
        Console().print(table)
        return
    text = markdown.read_text() if markdown.exists() else ""
    text = _replace_section(text, "widths", widths_table())
    text = _replace_section(text, "flops", flops_table())
    text = _replace_section(text, "catalog", table)
    markdown.write_text(text)
    Console().print(f"updated {markdown}")


def flops_table(size: int = 64) -> str:
    """FLOPs per input pixel of every registered width (×4 for SR), counted by
    torch.utils.flop_counter on a 1×3×size×size input, and the ratio to the full width."""
    from accelir import metrics
    from accelir.models import build

    lines = [
        "| network | width | FLOPs / input px | vs full width | params |",
        "|---|---|---|---|---|",
    ]
    for s in registry.specs():
        full = None
        for w in s.widths:
            net = build(s.name, w, 4).eval()
            f = metrics.flops_per_pixel(net, size, size)
            full = full or f
            params = sum(p.numel() for p in net.parameters())
            lines.append(
                f"| {s.name} | {w} | {f:,.0f} | {f / full:.2f} (−{100 * (1 - f / full):.0f} %) | {params:,} |"
            )
    return "\n".join(lines) + "\n"

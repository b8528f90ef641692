"""``accelir eval``: AccelIR against plain JPEG on a folder of photographs, with one command.

Writes ``results.json`` (schema in docs/evaluation.md), ``results.md`` (tables laid out like the
paper's) and PNG plots. Every restoration is cached under ``OUT/cache`` so an interrupted run
resumes where it stopped. ``accelir eval allocators`` compares our allocator with the paper's
and the oracle (Figure 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from accelir import evaluation as E
from accelir import tasks, utility_model
from accelir.data import cap_size, find_images, load_image
from accelir.models import catalog, load, registry, restore, zoo
from accelir.pipeline import ENCODER_VERSION, Encoder

console = Console()
DEFAULT_BPP = (0.9, 1.2, 1.8)


def _shipped_widths(family: str, task: str) -> list[int]:
    shipped = {c.width for c in catalog() if c.name == family and c.task == task}
    return [w for w in registry.get(family).widths if w in shipped]


def _flops_per_pixel(family: str, task: str) -> dict[int, float]:
    return {c.width: c.flops_per_pixel for c in catalog() if c.name == family and c.task == task}


def _images(data: Path, split: str | None, limit: int | None) -> list[Path]:
    try:
        paths = find_images(data, split)
    except Exception:  # a plain folder has no split: take everything
        paths = find_images(data)
    if not paths:
        raise typer.BadParameter(f"no images under {data}")
    return paths[:limit] if limit else paths


def _points(bpp: list[float] | None, jpeg_quality: list[int] | None) -> list[tuple[str, float]]:
    if bpp and jpeg_quality:
        raise typer.BadParameter("give operating points as --bpp or as --jpeg-quality, not both")
    if jpeg_quality:
        return [("jpeg_quality", float(q)) for q in jpeg_quality]
    return [("bpp", float(b)) for b in (bpp or DEFAULT_BPP)]


def _label(kind: str, value: float) -> str:
    return f"{value:g} bpp" if kind == "bpp" else f"JPEG q{value:g}"


def _evaluate_image(
    original: np.ndarray, task: str, family: str, widths: list[int], point: tuple[str, float], baseline: str,
    encoder: Encoder, nets: dict[int, Any], fpp: dict[int, float], tile: int,
) -> dict[str, Any]:  # fmt: skip
    degraded = tasks.degrade(original, task)
    target = tasks.target(original, task)
    pixels = degraded.shape[0] * degraded.shape[1]
    kind, value = point
    if kind == "bpp":
        quality, jpeg = E.jpeg_at_bpp(degraded, value, baseline)
    else:
        quality, jpeg = int(value), E.plain_jpeg(degraded, int(value), baseline)
    full = widths[0]
    restored, seconds = E.timed(restore, nets[full], E.decode_jpeg(jpeg), task, tile=tile)
    base_row = E.score(restored, target, task, width=full, nbytes=len(jpeg), flops=fpp[full] * pixels,
                       seconds=seconds, degraded_pixels=pixels)  # fmt: skip
    encoded = encoder.encode(degraded, nbytes=len(jpeg), degraded=True)
    if encoded.nbytes > len(jpeg):
        raise AssertionError("AccelIR container larger than the baseline file")
    from accelir import codec

    decoded = codec.decode_for_restoration(encoded.container)
    rows = []
    for w in widths:
        out, seconds = E.timed(restore, nets[w], decoded, task, tile=tile)
        rows.append(E.score(out, target, task, width=w, nbytes=encoded.nbytes, flops=fpp[w] * pixels,
                            seconds=seconds, degraded_pixels=pixels).to_dict())  # fmt: skip
    return {"baseline": base_row.to_dict(), "baseline_quality": quality, "accelir": rows,
            "predicted_psnr": encoded.predicted_psnr, "size": list(original.shape[:2])}  # fmt: skip


def _summarise(
    task: str, family: str, points: list[tuple[str, float]], per_point: list[list[dict]]
) -> dict:
    summary: dict[str, Any] = {"task": task, "family": family, "points": []}
    base_curve, accel_curve = [], []
    for (kind, value), results in zip(points, per_point, strict=True):
        base = E.mean_rows([E.Row(**r["baseline"]) for r in results])
        widths = [r["width"] for r in results[0]["accelir"]]
        accel = [
            E.mean_rows([E.Row(**r["accelir"][i]) for r in results]) for i in range(len(widths))
        ]
        fraction, width = E.saving(base, accel)
        summary["points"].append({
            "target": {kind: value}, "label": _label(kind, value), "images": len(results),
            "baseline": base.to_dict(), "accelir": [a.to_dict() for a in accel],
            "saving": fraction, "saving_width": width, "gain_db": E.gain_db(base, accel),
        })  # fmt: skip
        base_curve.append(base)
        accel_curve.append(accel[0])
    bd_psnr, bd_rate, reliable = E.bd_metrics(base_curve, accel_curve)
    summary["bd_psnr_db"], summary["bd_rate"], summary["bd_reliable"] = bd_psnr, bd_rate, reliable
    return summary


def _markdown(s: dict, baseline: str) -> str:
    lines = [
        f"## {s['family']} — {s['task']} (baseline: {baseline}, restored by the full width)",
        "",
    ]
    head = "| operating point | encoder | width | PSNR (dB) | PSNR-Y | SSIM | bytes | bpp | GFLOPs | seconds |"
    lines += [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for p in s["points"]:
        b = p["baseline"]
        lines.append(
            f"| {p['label']} | JPEG | {b['width']} | {b['psnr']:.2f} | {b['psnr_y']:.2f} | {b['ssim']:.4f} | "
            f"{b['bytes']:.0f} | {b['bpp']:.3f} | {b['flops'] / 1e9:.1f} | {b['seconds']:.2f} |"
        )
        for a in p["accelir"]:
            lines.append(
                f"| | AccelIR | {a['width']} | {a['psnr']:.2f} | {a['psnr_y']:.2f} | {a['ssim']:.4f} | "
                f"{a['bytes']:.0f} | {a['bpp']:.3f} | {a['flops'] / 1e9:.1f} | {a['seconds']:.2f} |"
            )
    lines += [
        "",
        "| operating point | compute saving at equal PSNR and size | width | PSNR gain at equal compute |",
        "|---|---|---|---|",
    ]
    for p in s["points"]:
        width = p["saving_width"] if p["saving_width"] is not None else "—"
        lines.append(
            f"| {p['label']} | {100 * p['saving']:.0f} % | {width} | {p['gain_db']:+.3f} dB |"
        )
    lines += [
        "",
        f"BD-PSNR of AccelIR vs JPEG (full width): {s['bd_psnr_db']:+.3f} dB; "
        f"BD-rate: {100 * s['bd_rate']:+.1f} %"
        + (
            ""
            if s.get("bd_reliable", True)
            else " — not meaningful here: a curve's PSNR does not rise with its rate, or the "
            "curves barely overlap"
        )
        if not math.isnan(s["bd_psnr_db"])
        else "",
    ]
    return "\n".join(lines) + "\n"


def _plots(s: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    ax1.plot(
        [p["baseline"]["bpp"] for p in s["points"]],
        [p["baseline"]["psnr"] for p in s["points"]],
        "o-",
        label=f"JPEG + {s['family']}-{s['points'][0]['baseline']['width']}",
    )
    for i, row in enumerate(s["points"][0]["accelir"]):
        ax1.plot([p["accelir"][i]["bpp"] for p in s["points"]], [p["accelir"][i]["psnr"] for p in s["points"]],
                 "s--", label=f"AccelIR + {s['family']}-{row['width']}")  # fmt: skip
    ax1.set_xlabel("bits per pixel (degraded image)")
    ax1.set_ylabel("restored PSNR (dB)")
    ax1.set_title("Rate–distortion", fontsize=9)
    ax1.legend(fontsize=7)
    for p in s["points"]:
        ax2.plot([a["flops"] / 1e9 for a in p["accelir"]], [a["psnr"] for a in p["accelir"]], "s--")
        ax2.plot(
            [p["baseline"]["flops"] / 1e9], [p["baseline"]["psnr"]], "o", label=f"JPEG {p['label']}"
        )
    ax2.set_xlabel("restoration GFLOPs per image")
    ax2.set_ylabel("restored PSNR (dB)")
    ax2.set_title("Quality vs compute (squares: AccelIR widths)", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{s['family']}_{s['task']}.png")
    plt.close(fig)


def _extend_points(
    ctx: typer.Context, bpp: list[float] | None, jpeg_quality: list[int] | None
) -> tuple[list[float] | None, list[int] | None]:
    """Accept ``--bpp 0.9 1.2 1.8``: bare numbers after the option join the list given."""
    extra = list(ctx.args)
    if not extra:
        return bpp, jpeg_quality
    try:
        if bpp:
            return [*bpp, *(float(x) for x in extra)], jpeg_quality
        if jpeg_quality:
            return bpp, [*jpeg_quality, *(int(x) for x in extra)]
    except ValueError:
        pass
    raise typer.BadParameter(f"unexpected arguments {extra}")


def _qpnet_report(family: str, task: str, width: int | None) -> None:
    task = tasks.parse_task(task).name
    for w in [width] if width else registry.get(family).widths:
        if utility_model.available(family, task, w):
            r = utility_model.load(family, task, w).report
            given = " + ".join(["pixels", *r.get("side_inputs", [])])
            console.print(
                f"QP-NET {family}-{w} {task} ({given}): top-1 {r['top1']:.3f}, adjacent "
                f"{r['adjacent']:.3f} on {r['heldout_blocks']} held-out blocks; direct profile "
                f"prediction adjacent {r['direct_profile_adjacent']:.3f}"
            )


def evaluate(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(help="Folder of high-resolution photographs.")
    ] = None,
    task: Annotated[str, typer.Option(help="Task.")] = "sr4",
    family: Annotated[str, typer.Option(help="Network family, e.g. edsr.")] = "edsr",
    bpp: Annotated[
        list[float] | None, typer.Option(help="Operating points in bits per pixel.")
    ] = None,
    jpeg_quality: Annotated[
        list[int] | None, typer.Option(help="Operating points as JPEG qualities.")
    ] = None,
    baseline: Annotated[str, typer.Option(help="jpeg-opt or jpeg-std.")] = "jpeg-opt",
    split: Annotated[
        str | None, typer.Option(help="Split of a dataset with one (default: val).")
    ] = "val",
    limit: Annotated[int | None, typer.Option(help="At most this many images.")] = None,
    max_side: Annotated[
        int | None, typer.Option(help="Downscale photographs to this longest side.")
    ] = None,
    qpnet_width: Annotated[
        int | None, typer.Option(help="Width whose QP-NET the encoder uses.")
    ] = None,
    tile: Annotated[int, typer.Option(help="Restoration tile (memory bound).")] = 512,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results"),
    compare_allocators: Annotated[
        bool, typer.Option(help="Run the allocator comparison (Figure 2) instead.")
    ] = False,
    qpnet_accuracy: Annotated[
        bool, typer.Option(help="Print QP-NET's held-out accuracy (Figure 1).")
    ] = False,
) -> None:
    """Baseline JPEG vs AccelIR at each operating point, restored by every width of a family.

    ``--compare-allocators`` instead compares our allocator, the paper's and the oracle at the
    sizes of plain JPEGs (``--jpeg-quality``, default 50 70 85); ``--qpnet-accuracy`` prints the
    shipped QP-NET's report."""
    bpp, jpeg_quality = _extend_points(ctx, bpp, jpeg_quality)
    if qpnet_accuracy:
        return _qpnet_report(family, task, qpnet_width)
    if data is None:
        raise typer.BadParameter("--data is required")
    if compare_allocators:
        return allocators(data, task, family, qpnet_width or 32, jpeg_quality, split, limit, max_side or 1536,
                          out / "allocators")  # fmt: skip
    task = tasks.parse_task(task).name
    widths = _shipped_widths(family, task)
    if not widths or widths[0] != registry.get(family).full_width:
        raise typer.BadParameter(
            f"{family} {task}: the full width must be shipped (shipped widths: {widths})"
        )
    qp_widths = [w for w in reversed(widths) if utility_model.available(family, task, w)]
    qp_width = qpnet_width or (qp_widths[0] if qp_widths else None)
    if qp_width is None:
        raise typer.BadParameter(f"no QP-NET shipped for {family} {task}")
    points = _points(bpp, jpeg_quality)
    paths = _images(data, split, limit)
    encoder = Encoder(task, family, qp_width)
    nets = {w: load(family, w, task) for w in widths}
    fpp = _flops_per_pixel(family, task)
    # Keyed by everything a cached row depends on: the encoder's version, QP-NET and groups,
    # and the networks' weights.
    cache = out / "cache" / (f"{family}_{task}_{baseline}_enc{ENCODER_VERSION}_qp{qp_width}_"
                             f"{utility_model.digest(family, task, qp_width)}_w{'-'.join(map(str, widths))}_"
                             f"{zoo.weights_digest(family, task, widths)}")  # fmt: skip
    console.print(
        f"{len(paths)} images × {len(points)} operating points; widths {widths}; QP-NET of width {qp_width}"
    )
    per_point: list[list[dict]] = [[] for _ in points]
    jobs = [(p, k) for p in paths for k in range(len(points))]
    for path, k in track(jobs, description="evaluating"):
        kind, value = points[k]
        file = (
            cache
            / path.stem
            / f"{kind}_{value:g}{'' if max_side is None else f'_max{max_side}'}.json"
        )
        if file.exists():
            per_point[k].append(json.loads(file.read_text()))
            continue
        original = cap_size(load_image(path), max_side)
        result = _evaluate_image(
            original, task, family, widths, points[k], baseline, encoder, nets, fpp, tile
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(result))
        per_point[k].append(result)
    summary = _summarise(task, family, points, per_point)
    summary.update({"baseline_kind": baseline, "images": [p.name for p in paths], "qpnet_width": qp_width,
                    "max_side": max_side, "data": str(data)})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text(_markdown(summary, baseline))
    _plots(summary, out)
    console.print(_markdown(summary, baseline))


def allocators(
    data: Path,
    task: str = "sr4",
    model: str = "edsr",
    width: int = 32,
    jpeg_quality: list[int] | None = None,
    split: str | None = "val",
    limit: int | None = None,
    max_side: int | None = 1536,
    out: Path = Path("results/allocators"),
) -> None:
    """Restored-PSNR gain over plain JPEG (same size, same network) of our allocator, the
    paper's, and the oracle with true per-block profiles (the paper's Figure 2)."""
    from accelir import codec, metrics

    task = tasks.parse_task(task).name
    qualities = jpeg_quality or [50, 70, 85]
    encoder = Encoder(task, model, width)
    net = load(model, width, task)
    crop = tasks.metric_crop(task)
    names = ("lagrangian", "greedy", "oracle")
    gains: dict[int, dict[str, list[float]]] = {q: {n: [] for n in names} for q in qualities}
    cache = out / "cache" / (f"{model}_{task}_enc{ENCODER_VERSION}_w{width}_{utility_model.digest(model, task, width)}_"
                             f"{zoo.weights_digest(model, task, [width])}")  # fmt: skip
    paths = _images(data, split, limit)
    for path in track(paths, description="allocators"):
        original = cap_size(load_image(path), max_side)
        target = tasks.target(original, task)
        degraded = tasks.degrade(original, task)
        for q in qualities:
            file = cache / path.stem / f"q{q}{'' if max_side is None else f'_max{max_side}'}.json"
            if file.exists():
                result = json.loads(file.read_text())
            else:
                base = metrics.psnr(restore(net, E.decode_jpeg(E.plain_jpeg(degraded, q)), task, tile=512), target,
                                    crop=crop)  # fmt: skip
                result = {"baseline": base}
                for name in names:
                    enc = encoder.encode(original, jpeg_quality=q, allocator=name)
                    restored = restore(
                        net, codec.decode_for_restoration(enc.container), task, tile=512
                    )
                    result[name] = metrics.psnr(restored, target, crop=crop)
                    result[f"{name}_bytes"] = enc.nbytes
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(json.dumps(result))
            for name in names:
                gains[q][name].append(result[name] - result["baseline"])
    mean_gain = {q: {n: float(np.mean(v)) for n, v in g.items()} for q, g in gains.items()}
    summary = {
        "task": task,
        "model": model,
        "width": width,
        "images": [p.name for p in paths],
        "gain_db": mean_gain,
    }
    lines = ["| budget (plain JPEG quality) | ours (Lagrangian) | paper's greedy | oracle | ours / oracle |",
             "|---|---|---|---|---|"]  # fmt: skip
    for q, g in mean_gain.items():
        ratio = g["lagrangian"] / g["oracle"] if g["oracle"] > 0 else math.nan
        lines.append(
            f"| q{q} | {g['lagrangian']:+.3f} dB | {g['greedy']:+.3f} dB | {g['oracle']:+.3f} dB | "
            f"{100 * ratio:.0f} % |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "allocators.json").write_text(json.dumps(summary, indent=1))
    (out / "allocators.md").write_text("\n".join(lines) + "\n")
    _allocator_plot(summary, out / "allocators.png")
    console.print("\n".join(lines))


def _allocator_plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(summary["gain_db"])
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for i, (name, label) in enumerate(
        (("lagrangian", "ours"), ("greedy", "paper's greedy"), ("oracle", "oracle"))
    ):
        ax.bar(
            np.arange(len(qs)) + (i - 1) * 0.27,
            [summary["gain_db"][q][name] for q in qs],
            0.27,
            label=label,
        )
    ax.set_xticks(range(len(qs)), [f"q{q}" for q in qs])
    ax.set_ylabel("restored PSNR gain over plain JPEG (dB)")
    ax.set_title(
        f"{summary['model']}-{summary['width']} {summary['task']}: allocators at equal size",
        fontsize=9,
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

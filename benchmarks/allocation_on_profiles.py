"""How much of the oracle's allocation gain each way of predicting block curves reaches, on
held-out *profiles* (each block's restored error measured with the whole image at one quality).

For every validation image with cached profiles (`accelir profile --split val`) and budgets of
the container at uniform quality q: the Lagrangian allocator given per-block error curves from
QP-NET's argmax group, from the probability-weighted mixture of all groups' curves, and from the
block's *true* group (a perfect QP-NET), each turned into a per-block curve by the group's
coded → restored error law (the encoder before version 2); from the argmax group's level
shaped by the block's bicubic reference error (``accelir.reference_error``: what the encoder
does for super-resolution since version 2); the same reshaped by the restorer's shipped
``accelir.error_shape`` correction (version 3; equal to the previous column where none ships;
without a reference — denoising, deblurring — the argmax group's level plus the corrected
coding distortion);
and the exact knapsack on the true profiles (the
oracle). Each
choice is scored on the true profiles: the restored-PSNR gain over uniform quality. Interactions
between neighbouring blocks (what real mixed-quality encodes add) are outside this measure.

    python benchmarks/allocation_on_profiles.py --model edsr --task sr4 --width 32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from accelir import allocation, error_shape, reference_error, tasks, utility_model
from accelir import groups as G
from accelir import qpnet as Q
from accelir.cli.profile import DEFAULT_PROFILES, load_split
from accelir.codec.layout import Layout
from accelir.codec.rates import block_distortions
from accelir.codec.transform import block_dct
from accelir.data import cap_size, find_images, load_image
from accelir.profiles import QUALITY_SET, Profiles

CURVES = ("argmax group", "group mixture", "true group", "reference", "shaped reference", "oracle")


def image_gains(
    profiles: Profiles,
    index: int,
    low: np.ndarray,
    model: utility_model.UtilityModel,
    qualities: tuple[int, ...],
    task: str = "sr4",
) -> dict[int, dict[str, float]]:
    """{q: {curve kind: restored-PSNR gain over uniform q}} for one image of ``profiles``."""
    sel = profiles.image == index
    rate, sse, area = profiles.rate[sel], profiles.sse[sel], profiles.area[sel]
    groups = model.groups
    dct = block_dct(low, Layout(32))
    coded = block_distortions(dct, QUALITY_SET)
    if coded.shape[0] != rate.shape[0]:
        raise ValueError(f"{profiles.names[index]}: the photograph does not match its profile")
    scale = tasks.scale_of(task)
    ref = reference_error.reference_sse(low, dct, scale, QUALITY_SET) if scale > 1 else None
    side = (
        reference_error.qpnet_side_inputs(ref, area)
        if ref is not None and model.qpnet.side_inputs
        else None
    )
    logits = torch.from_numpy(Q.predict(model.qpnet, profiles.pixels[sel], side))
    probs = torch.softmax(logits, 1).numpy()
    n = len(area)
    per_group = [groups.predict_sse(np.full(n, g), coded, area) for g in range(groups.count)]
    true_groups = groups.assign(G.utility(sse / (3.0 * area[:, None])))
    curves = {
        "argmax group": groups.predict_sse(probs.argmax(1), coded, area),
        "group mixture": sum(probs[:, g : g + 1] * per_group[g] for g in range(groups.count)),
        "true group": groups.predict_sse(true_groups, coded, area),
    }
    if ref is not None:
        level = groups.mse[probs.argmax(1)][:, -1:] * 3.0 * area[:, None]
        curves["reference"] = level + ref - ref[:, -1:]
        curves["shaped reference"] = (
            level + error_shape.corrected_sse(model.shape, ref, coded, profiles.pixels[sel], area)
            if model.shape is not None
            else curves["reference"]
        )
    else:  # no reference: the argmax group's law, or its level plus the corrected distortion
        curves["reference"] = curves["shaped reference"] = curves["argmax group"]
        if model.shape is not None:
            shaped = error_shape.corrected_sse(
                model.shape, coded, coded, profiles.pixels[sel], area
            )
            curves["shaped reference"] = curves["argmax group"][:, -1:] + shaped
    out: dict[int, dict[str, float]] = {}
    for q in qualities:
        k = QUALITY_SET.index(q)
        budget, uniform = float(rate[:, k].sum()), float(sse[:, k].sum())
        row = {}
        for kind in CURVES:
            if kind == "oracle":
                choice = allocation.allocate_knapsack(rate, sse, budget)
            else:
                choice = allocation.allocate_lagrangian(rate, curves[kind], budget)
            row[kind] = 10 * np.log10(uniform / float(sse[np.arange(n), choice].sum()))
        out[q] = row
    return out


def profile_parser(doc: str) -> argparse.ArgumentParser:
    """Arguments naming a restorer's cached profiles and the photographs they were taken of."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--task", default="sr4")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--profiles", type=Path, default=DEFAULT_PROFILES)
    parser.add_argument("--max-side", type=int, default=2048, help="as the profiles were taken")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--quality", type=int, nargs="+", default=[50, 70, 85])
    args = parser.parse_args(argv)
    val = load_split(args.profiles, args.model, args.task, args.width, "val")
    model = utility_model.load(args.model, args.task, args.width)
    paths = {p.stem: p for p in find_images(args.data, "val")}
    rows: dict[int, list[dict[str, float]]] = {q: [] for q in args.quality}
    for i, name in enumerate(val.names):
        low = tasks.degrade(cap_size(load_image(paths[name]), args.max_side), args.task)
        for q, row in image_gains(val, i, low, model, tuple(args.quality), args.task).items():
            rows[q].append(row)
    print(f"{args.model}-{args.width} {args.task}: {len(val.names)} images, {len(val.area)} blocks")
    print(
        "| budget | "
        + " | ".join(CURVES)
        + " | "
        + " | ".join(f"{c} / oracle" for c in CURVES[:-1])
        + " |"
    )
    print("|---" * (2 * len(CURVES)) + "|")
    for q, image_rows in rows.items():
        mean = {c: float(np.mean([r[c] for r in image_rows])) for c in CURVES}
        gains = " | ".join(f"{mean[c]:+.3f} dB" for c in CURVES)
        shares = " | ".join(f"{100 * mean[c] / mean['oracle']:.0f} %" for c in CURVES[:-1])
        print(f"| q{q} | {gains} | {shares} |")


if __name__ == "__main__":
    main()

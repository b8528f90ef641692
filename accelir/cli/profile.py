"""``accelir profile`` and ``accelir train qpnet``: block profiles, utility groups, QP-NET."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from accelir import error_level, error_shape, reference_error, tasks, utility_model
from accelir import groups as G
from accelir import qpnet as Q
from accelir.codec.layout import Layout
from accelir.codec.rates import block_distortions
from accelir.codec.transform import block_dct
from accelir.data import cap_size, find_images, load_image
from accelir.models import zoo
from accelir.profiles import BLOCK, QUALITY_SET, Profiles, coded_sse, compute_profiles

console = Console()
DEFAULT_PROFILES = Path("data/profiles")
#: QP-NET's targets: one-hot groups (the paper's cross-entropy), with which every shipped QP-NET
#: but SwinIR's was trained; ``--label-sigma 1`` trains on ordinal soft targets instead
#: (docs/results.md measures both).
LABEL_SIGMA = 0.0
#: The error-shape correction ships where 4-fold cross-validation on the training photographs
#: raises the allocator's mean share of the oracle's gain (q50, q70, q85) by at least this much.
SHAPE_MIN_GAIN = 0.02
SHAPE_QUALITIES = (50, 70, 85)


def profile_path(root: Path, name: str, task: str, width: int, split: str, image: str) -> Path:
    return root / zoo.model_id(name, task, width) / split / f"{image}.npz"


def load_split(root: Path, name: str, task: str, width: int, split: str) -> Profiles:
    files = sorted((root / zoo.model_id(name, task, width) / split).glob("*.npz"))
    if not files:
        raise typer.BadParameter(
            f"no {split} profiles under {root} (run `accelir profile --split {split}`)"
        )
    return Profiles.concat([Profiles.load(f) for f in files])


def reference_curves(
    profiles: Profiles, data: Path, split: str, task: str, max_side: int | None
) -> np.ndarray:
    """(N, Q) bicubic reference error curves (``reference_error.reference_sse``) of every
    profiled block, recomputed from the photographs (profiles do not keep them), image by image
    in profile order, as the encoder computes them."""
    return reference_and_coded(profiles, data, split, task, max_side)[0]


def reference_and_coded(
    profiles: Profiles, data: Path, split: str, task: str, max_side: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``reference_curves`` and the (N, Q) coding distortions (``codec.rates.block_distortions``)
    of every profiled block, as the encoder computes them."""
    paths = {p.stem: p for p in find_images(data, split)}
    scale = tasks.scale_of(task)
    curves, coded = [], []
    for i, name in enumerate(profiles.names):
        if name not in paths:
            raise typer.BadParameter(f"{name} (profiled) is not among the {split} images of {data}")
        low = tasks.degrade(cap_size(load_image(paths[name]), max_side), task)
        dct = block_dct(low, Layout(BLOCK))
        if dct.coefs.shape[0] != np.count_nonzero(profiles.image == i):
            raise typer.BadParameter(
                f"{name}: the photograph does not match its profile (profiled with another --max-side?)"
            )
        curves.append(reference_error.reference_sse(low, dct, scale, QUALITY_SET))
        coded.append(block_distortions(dct, QUALITY_SET))
    return np.concatenate(curves), np.concatenate(coded)


def profile(
    model: Annotated[str, typer.Option(help="Restoration network.")] = "edsr",
    task: Annotated[str, typer.Option(help="Task.")] = "sr4",
    width: Annotated[int, typer.Option(help="Network width.")] = 32,
    data: Annotated[Path, typer.Option(help="Dataset root.")] = Path("data/photos"),
    split: Annotated[str, typer.Option(help="train or val.")] = "train",
    max_side: Annotated[int | None, typer.Option(help="Cap on the photos' longest side.")] = 2048,
    out: Annotated[Path, typer.Option(help="Profile cache folder.")] = DEFAULT_PROFILES,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Per-block byte costs and restored errors at every quality, cached per image."""
    import torch

    from accelir import models

    if threads:
        torch.set_num_threads(threads)
    task = tasks.parse_task(task).name
    net = models.load(model, width, task)
    paths = find_images(data, split)
    todo = [p for p in paths if not profile_path(out, model, task, width, split, p.stem).exists()]
    console.print(f"{len(paths)} {split} photographs, {len(paths) - len(todo)} already profiled")
    t0 = time.perf_counter()
    for path in track(todo, description=f"profiling {split}"):
        part = compute_profiles(net, [(path.stem, cap_size(load_image(path), max_side))], task)
        part.save(profile_path(out, model, task, width, split, path.stem))
    joined = load_split(out, model, task, width, split)
    console.print(
        f"{len(joined.rate)} blocks from {len(joined.names)} images in {time.perf_counter() - t0:.0f} s"
    )


def _curve_png(history: Q.History, direct: Q.History, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    ax.plot(history.epoch, np.array(history.adjacent) * 100, label="QP-NET adjacent (±1 group)")
    ax.plot(history.epoch, np.array(history.top1) * 100, label="QP-NET top-1")
    ax.plot(
        direct.epoch,
        np.array(direct.adjacent) * 100,
        "--",
        label="direct profile prediction, adjacent",
    )
    ax.axhline(93, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(0, 101.5)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _with_propagation(
    groups: G.UtilityGroups, net: Q.QPNet, train: Profiles, side: np.ndarray | None
) -> G.UtilityGroups:
    labels = Q.predict_groups(net, train.pixels, side)
    return G.fit_propagation(groups, train, coded_sse(train.pixels, train.qualities), labels)


def _with_level(
    report: dict, groups: G.UtilityGroups, net: Q.QPNet, train: Profiles, val: Profiles,
    val_side: np.ndarray | None,
) -> dict:  # fmt: skip
    """``report`` with the error-level model fitted on the training profiles (super-resolution)
    and, per held-out image, the predicted − profiled restored PSNR at the top quality with it
    and with the groups' mean levels (QP-NET's groups): mean and mean absolute, in dB."""
    level = error_level.fit(train.pixels, train.mse[:, -1])
    labels = Q.predict_groups(net, val.pixels, val_side)
    predicted = {
        "texture": level.sse(val.pixels, val.area),
        "group": groups.mse[labels, -1] * 3.0 * val.area,
    }
    scores = {}
    for kind, sse in predicted.items():
        err = np.array([10 * np.log10(val.sse[val.image == i, -1].sum() / sse[val.image == i].sum())
                        for i in range(len(val.names))])  # fmt: skip
        scores[kind] = {"mean_db": float(err.mean()), "mean_abs_db": float(np.abs(err).mean())}
    console.print(
        "top-quality PSNR predicted − profiled per held-out image (mean / mean absolute): "
        + ", ".join(f"{k} levels {v['mean_db']:+.2f} / {v['mean_abs_db']:.2f} dB" for k, v in scores.items())
    )  # fmt: skip
    return {**report, "level": level.to_dict(), "level_heldout": scores}


def _group_law_curves(
    groups: G.UtilityGroups, net: Q.QPNet, train: Profiles, val: Profiles,
    inputs: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per split, the error curves the encoder uses without a shape correction for a task
    without a reference: QP-NET's group law applied to each block's coding distortion."""
    return {
        split: groups.predict_sse(Q.predict_groups(net, p.pixels), inputs[split][1], p.area)
        for p, split in ((train, "train"), (val, "val"))
    }


def _with_shape(
    report: dict, train: Profiles, val: Profiles, inputs: dict[str, tuple[np.ndarray, np.ndarray]],
    ship: bool | None, scale: int, without: dict[str, np.ndarray] | None = None,
) -> tuple[dict, error_shape.ShapeCorrection | None]:  # fmt: skip
    """``report`` with the error-shape correction's cross-validated and held-out shares of the
    oracle's gain, and the correction when it ships (``ship``: forced either way; ``None``:
    when it gains ``SHAPE_MIN_GAIN`` in cross-validation over what the encoder uses without it).
    ``inputs``: per split, the stand-in curves (the bicubic reference for super-resolution,
    else the coding distortion) and the coding distortion. ``without``: per split, the curves
    the encoder uses without a correction where they are not the stand-in's (the group law for
    tasks without a reference; fitted on every training photograph, so its training share is
    in-sample and favours it)."""
    stand_in = "the bicubic reference's" if scale > 1 else "the coding distortion's"
    sets = {
        split: error_shape.TrainingSet(ref, coded, p.sse, p.pixels, p.area, p.image, p.rate)
        for (split, (ref, coded)), p in zip(inputs.items(), (train, val), strict=True)
    }
    if len(train.names) < error_shape.FOLDS or len(train.area) < error_shape.MIN_BLOCKS:
        why = (
            f"cross-validation needs {error_shape.FOLDS} training images and "
            f"{error_shape.MIN_BLOCKS} blocks (have {len(train.names)}, {len(train.area)})"
        )
        if ship:
            raise typer.BadParameter(f"--shape: {why}")
        console.print(f"error-shape correction: not fitted ({why})")
        return {**report, "shape": {"shipped": False, "rule": why}}, None
    console.print(
        f"error-shape correction: {error_shape.FOLDS}-fold cross-validation on the training photographs ..."
    )
    extra = {} if without is None else {"without": without["train"]}
    cv = error_shape.cross_validated_shares(
        sets["train"], SHAPE_QUALITIES, QUALITY_SET, also=extra,
        on_fold=lambda f: console.print(f"  fold {f}/{error_shape.FOLDS}"),
    )  # fmt: skip
    model = error_shape.fit(sets["train"])
    v = sets["val"]
    held_curves = {
        "reference": v.reference - v.reference[:, -1:],
        "corrected": error_shape.corrected_sse(model, v.reference, v.coded, v.pixels, v.area),
    }
    if without is not None:
        held_curves["without"] = without["val"]
    held = error_shape.oracle_shares(v, held_curves, SHAPE_QUALITIES, QUALITY_SET)
    if without is None:  # super-resolution: without a correction the encoder uses the stand-in
        cv["without"], held["without"] = cv["reference"], held["reference"]
        described = "the stand-in curves (bicubic reference)"
    else:
        described = "QP-NET's group law (fitted on all training photographs: in-sample on train)"
    cv_ref, cv_without, cv_shape = cv["reference"], cv["without"], cv["corrected"]
    held_ref, held_without, held_shape = held["reference"], held["without"], held["corrected"]
    gain = float(np.mean([cv_shape[q] - cv_without[q] for q in SHAPE_QUALITIES]))
    shipped = gain >= SHAPE_MIN_GAIN if ship is None else ship
    fmt = lambda d: " / ".join(f"{100 * d[q]:.1f}" for q in SHAPE_QUALITIES)  # noqa: E731
    console.print(
        f"share of the oracle's gain at q{'/'.join(map(str, SHAPE_QUALITIES))} (%): "
        f"cross-validated stand-in {fmt(cv_ref)}, without correction {fmt(cv_without)}, "
        f"corrected {fmt(cv_shape)}; held-out stand-in {fmt(held_ref)}, without correction "
        f"{fmt(held_without)}, corrected {fmt(held_shape)} -> "
        + ("shipped" if shipped else "not shipped")
    )
    as_json = lambda d: {str(q): round(v, 4) for q, v in d.items()}  # noqa: E731
    report = {
        **report,
        "shape": {
            "shipped": shipped,
            "rule": f"ships where the cross-validated mean gain over 'without' is >= {SHAPE_MIN_GAIN}"
            if ship is None
            else ("forced on" if ship else "forced off"),
            "method": "ensemble of 3 MLPs (33 -> 16 -> 16 -> 12, GELU), log10 ratio of the "
            f"restorer's error increase to {stand_in} per quality; accelir.error_shape",
            "without": described,
            "crossval_reference": as_json(cv_ref),
            "crossval_without": as_json(cv_without),
            "crossval_corrected": as_json(cv_shape),
            "heldout_reference": as_json(held_ref),
            "heldout_without": as_json(held_without),
            "heldout_corrected": as_json(held_shape),
        },
    }
    return report, (model if shipped else None)


def train_qpnet(
    model: Annotated[str, typer.Option(help="Restoration network.")] = "edsr",
    task: Annotated[str, typer.Option(help="Task.")] = "sr4",
    width: Annotated[int, typer.Option(help="Network width.")] = 32,
    profiles: Annotated[Path, typer.Option(help="Profile cache folder.")] = DEFAULT_PROFILES,
    groups: Annotated[int, typer.Option(help="Number of utility groups.")] = G.DEFAULT_GROUPS,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 60,
    seed: Annotated[int, typer.Option()] = 0,
    label_sigma: Annotated[
        float, typer.Option(help="Width (in groups) of the ordinal soft targets; 0: one-hot.")
    ] = LABEL_SIGMA,
    figure: Annotated[Path, typer.Option(help="Training-curve PNG.")] = Path("docs/figures"),
    keep_qpnet: Annotated[
        bool,
        typer.Option(
            help="Keep the shipped QP-NET and groups; refit only the error laws and levels."
        ),
    ] = False,
    reference: Annotated[
        bool | None,
        typer.Option(
            help="Give QP-NET each block's reference utility as a side input "
            "(default: for super-resolution)."
        ),
    ] = None,
    data: Annotated[
        Path, typer.Option(help="Dataset the profiles were taken of (for the reference).")
    ] = Path("data/photos"),
    max_side: Annotated[
        int | None, typer.Option(help="The cap the profiles were taken with (for the reference).")
    ] = 2048,
    shape: Annotated[
        bool | None,
        typer.Option(
            help="Ship the restorer's error-shape correction (default: where "
            "cross-validation on the training photographs says it helps)."
        ),
    ] = None,
) -> None:
    """Fit utility groups on the training profiles and QP-NET to predict them (for
    super-resolution given each block's reference utility, recomputed from the profiled
    photographs: ``--data`` and ``--max-side`` as profiled); compare with predicting each
    block's profile directly; fit each group's coded → restored error law; ship weights and
    report."""
    task = tasks.parse_task(task).name
    scale = tasks.scale_of(task)
    if reference is None:
        reference = scale > 1
    if reference and scale == 1:
        raise typer.BadParameter("the reference utility exists for super-resolution only")
    train = load_split(profiles, model, task, width, "train")
    val = load_split(profiles, model, task, width, "val")
    shipped = utility_model.load(model, task, width) if keep_qpnet else None
    side = val_side = None
    inputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if scale > 1:
        console.print("reference error curves of the profiled photographs ...")
        inputs = {
            split: reference_and_coded(p, data, split, task, max_side)
            for p, split in ((train, "train"), (val, "val"))
        }
    else:  # no reference: the coding distortion is the shape correction's stand-in curve
        for p, split in ((train, "train"), (val, "val")):
            coded = coded_sse(p.pixels, p.qualities)
            inputs[split] = (coded, coded)
    if reference or (shipped is not None and shipped.qpnet.side_inputs):
        side, val_side = (
            reference_error.qpnet_side_inputs(inputs[split][0], p.area)
            for p, split in ((train, "train"), (val, "val"))
        )
    correction = None
    if shipped is not None:
        refit = _with_propagation(shipped.groups, shipped.qpnet, train, side)
        report = shipped.report
        if scale > 1:
            report = _with_level(report, refit, shipped.qpnet, train, val, val_side)
        without = (
            _group_law_curves(refit, shipped.qpnet, train, val, inputs) if scale == 1 else None
        )
        report, correction = _with_shape(report, train, val, inputs, shape, scale, without)
        path = utility_model.save(
            model, task, width, shipped.qpnet, refit, report, shape=correction
        )
        console.print(
            f"refitted the error laws, the shape correction (and for super-resolution the levels) of {path}"
        )
        return
    fitted = G.fit_groups(train, groups)
    y_train, y_val = G.labels(train, fitted), G.labels(val, fitted)
    console.print(
        f"{len(y_train)} training blocks ({len(train.names)} images), {len(y_val)} held-out blocks "
        f"({len(val.names)} images), {groups} groups"
    )

    def log(kind: str) -> Callable[[int, float, float, float], None]:
        def on_epoch(epoch: int, loss: float, top1: float, adjacent: float) -> None:
            if epoch % 10 == 0 or epoch == epochs:
                console.print(
                    f"{kind} epoch {epoch}: loss {loss:.4f}, top-1 {top1:.3f}, adjacent {adjacent:.3f}"
                )

        return on_epoch

    t0 = time.perf_counter()
    net, history = Q.train_classifier(train.pixels, y_train, val.pixels, y_val, groups, epochs=epochs, seed=seed,
                                      label_sigma=label_sigma, side=side, val_side=val_side,
                                      on_epoch=log("QP-NET"))  # fmt: skip
    minutes = (time.perf_counter() - t0) / 60
    to_group = lambda log_mse: fitted.assign(G.utility(10.0**log_mse))  # noqa: E731
    _, direct = Q.train_profile_regressor(train.pixels, np.log10(train.mse + 1e-6), val.pixels, y_val, to_group,
                                          epochs=epochs, seed=seed, on_epoch=log("direct"))  # fmt: skip
    top1, adjacent = Q.accuracy(Q.predict_groups(net, val.pixels, val_side), y_val)
    report = {
        "model": zoo.model_id(model, task, width),
        "train_images": list(train.names),
        "heldout_images": list(val.names),
        "train_blocks": len(y_train),
        "heldout_blocks": len(y_val),
        "epochs": epochs,
        "label_sigma": label_sigma,
        "side_inputs": ["reference_utility"] if side is not None else [],
        "minutes": round(minutes, 1),
        "top1": top1,
        "adjacent": adjacent,
        "direct_profile_top1": direct.top1[-1],
        "direct_profile_adjacent": direct.adjacent[-1],
        "history": {
            "top1": history.top1,
            "adjacent": history.adjacent,
            "loss": [None if np.isnan(x) else x for x in history.loss],
        },
        "direct_history": {"top1": direct.top1, "adjacent": direct.adjacent},
    }
    if side is not None:  # the side map alone, before the CNN trained
        report["side_only_top1"], report["side_only_adjacent"] = (
            history.top1[0],
            history.adjacent[0],
        )
    fitted = _with_propagation(fitted, net, train, side)
    if scale > 1:
        report = _with_level(report, fitted, net, train, val, val_side)
    without = _group_law_curves(fitted, net, train, val, inputs) if scale == 1 else None
    report, correction = _with_shape(report, train, val, inputs, shape, scale, without)
    path = utility_model.save(model, task, width, net, fitted, report, shape=correction)
    png = figure / f"qpnet_{zoo.model_id(model, task, width)}.png"
    given = " + reference utility" if side is not None else ""
    _curve_png(history, direct, png, f"QP-NET{given} for {model}-{width} {task}: held-out accuracy")
    console.print(
        f"QP-NET: top-1 {top1:.3f}, adjacent {adjacent:.3f}; direct profile prediction: top-1 "
        f"{direct.top1[-1]:.3f}, adjacent {direct.adjacent[-1]:.3f}"
    )
    console.print(f"wrote {path}, its report and {png}")

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

from accelir import groups as G
from accelir import qpnet as Q
from accelir import tasks, utility_model
from accelir.data import cap_size, find_images, load_image
from accelir.models import zoo
from accelir.profiles import Profiles, compute_profiles

console = Console()
DEFAULT_PROFILES = Path("data/profiles")
#: QP-NET's targets: one-hot groups (the paper's cross-entropy), with which every shipped QP-NET
#: but SwinIR's was trained; ``--label-sigma 1`` trains on ordinal soft targets instead
#: (docs/results.md measures both).
LABEL_SIGMA = 0.0


def profile_path(root: Path, name: str, task: str, width: int, split: str, image: str) -> Path:
    return root / zoo.model_id(name, task, width) / split / f"{image}.npz"


def load_split(root: Path, name: str, task: str, width: int, split: str) -> Profiles:
    files = sorted((root / zoo.model_id(name, task, width) / split).glob("*.npz"))
    if not files:
        raise typer.BadParameter(
            f"no {split} profiles under {root} (run `accelir profile --split {split}`)"
        )
    return Profiles.concat([Profiles.load(f) for f in files])


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
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _with_propagation(groups: G.UtilityGroups, net: Q.QPNet, train: Profiles) -> G.UtilityGroups:
    from accelir.profiles import coded_sse

    labels = Q.predict_groups(net, train.pixels)
    return G.fit_propagation(groups, train, coded_sse(train.pixels, train.qualities), labels)


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
        bool, typer.Option(help="Keep the shipped QP-NET and groups; refit only the error laws.")
    ] = False,
) -> None:
    """Fit utility groups on the training profiles and QP-NET to predict them; compare with
    predicting each block's profile directly; fit each group's coded → restored error law;
    ship weights and report."""
    task = tasks.parse_task(task).name
    train = load_split(profiles, model, task, width, "train")
    val = load_split(profiles, model, task, width, "val")
    if keep_qpnet:
        shipped = utility_model.load(model, task, width)
        refit = _with_propagation(shipped.groups, shipped.qpnet, train)
        path = utility_model.save(model, task, width, shipped.qpnet, refit, shipped.report)
        console.print(f"refitted the error laws of {path}")
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
                                      label_sigma=label_sigma, on_epoch=log("QP-NET"))  # fmt: skip
    minutes = (time.perf_counter() - t0) / 60
    to_group = lambda log_mse: fitted.assign(G.utility(10.0**log_mse))  # noqa: E731
    _, direct = Q.train_profile_regressor(train.pixels, np.log10(train.mse + 1e-6), val.pixels, y_val, to_group,
                                          epochs=epochs, seed=seed, on_epoch=log("direct"))  # fmt: skip
    top1, adjacent = Q.accuracy(Q.predict_groups(net, val.pixels), y_val)
    report = {
        "model": zoo.model_id(model, task, width),
        "train_images": list(train.names),
        "heldout_images": list(val.names),
        "train_blocks": len(y_train),
        "heldout_blocks": len(y_val),
        "epochs": epochs,
        "label_sigma": label_sigma,
        "minutes": round(minutes, 1),
        "top1": top1,
        "adjacent": adjacent,
        "direct_profile_top1": direct.top1[-1],
        "direct_profile_adjacent": direct.adjacent[-1],
        "history": {"top1": history.top1, "adjacent": history.adjacent, "loss": history.loss},
        "direct_history": {"top1": direct.top1, "adjacent": direct.adjacent},
    }
    fitted = _with_propagation(fitted, net, train)
    path = utility_model.save(model, task, width, net, fitted, report)
    png = figure / f"qpnet_{zoo.model_id(model, task, width)}.png"
    _curve_png(history, direct, png, f"QP-NET for {model}-{width} {task}: held-out accuracy")
    console.print(
        f"QP-NET: top-1 {top1:.3f}, adjacent {adjacent:.3f}; direct profile prediction: top-1 "
        f"{direct.top1[-1]:.3f}, adjacent {direct.adjacent[-1]:.3f}"
    )
    console.print(f"wrote {path}, its report and {png}")

"""``accelir data``: build the photograph dataset from Debian wallpapers and inspect datasets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accelir.data import datasets, wallpapers
from accelir.data.pack import pack_dataset

app = typer.Typer(
    help="Build the photograph dataset from Debian wallpaper packages, and inspect datasets.",
    no_args_is_help=True,
)
console = Console()

_T = TypeVar("_T")


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _tracker(progress: Progress) -> wallpapers.Track:
    def track(items: Sequence[_T], description: str) -> Iterable[_T]:
        return progress.track(items, total=len(items), description=f"{description:<9}")

    return track


def _split_packages(values: Sequence[str] | None) -> list[str]:
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or list(wallpapers.DEFAULT_PACKAGES)


def _photo_table(report: wallpapers.WriteReport) -> Table:
    table = Table(title="Photographs", show_lines=False)
    for column in ("name", "split", "size", "MP", "score", "package"):
        table.add_column(column, justify="right" if column in ("MP", "score") else "left")
    for e in sorted(report.entries, key=lambda e: (e.split, e.name)):
        table.add_row(
            e.name, e.split, f"{e.width}×{e.height}", f"{e.width * e.height / 1e6:.1f}",
            f"{e.photo_score:.2f}", e.package,
        )  # fmt: skip
    return table


def _print_result(result: wallpapers.BuildResult, out: Path) -> None:
    selection, report = result.selection, result.report
    console.print(_photo_table(report))
    counts = {s: sum(e.split == s for e in report.entries) for s in datasets.SPLITS}
    overridden = [s.name for s in selection.scored if s.heuristic != s.photo]
    console.print(
        f"{selection.candidates} image files → {len(selection.scored)} wallpapers → "
        f"{len(selection.photos)} photographs ({counts['train']} train, {counts['val']} val); "
        f"heuristic agrees on {selection.agreement:.1%}"
        + (f", overridden: {', '.join(overridden)}" if overridden else ""),
        soft_wrap=True,
    )
    for dropped, kept in sorted(selection.duplicates.items()):
        console.print(f"  duplicate: {dropped} (same picture as {kept})", soft_wrap=True)
    manifest = "written" if report.manifest_written else "unchanged"
    console.print(
        f"{out}: {report.copied} copied, {report.unchanged} already there, "
        f"{report.removed} stale removed, manifest {manifest}",
        soft_wrap=True,
    )


@app.command()
def fetch(
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = Path("data/photos"),
    cache: Annotated[Path, typer.Option(help="Folder for the downloaded .deb files.")] = Path(
        "data/debs"
    ),
    packages: Annotated[
        list[str] | None,
        typer.Option(
            "--packages",
            "-p",
            help="Debian packages to use (repeat or comma-separate). Default: "
            + ", ".join(wallpapers.DEFAULT_PACKAGES),
        ),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of pictures for validation.")
    ] = 0.15,
    seed: Annotated[int, typer.Option(help="Salt of the name hash that splits train/val.")] = 0,
    staging: Annotated[
        Path | None, typer.Option(help="Where packages are extracted. Default: CACHE/extracted.")
    ] = None,
    tree: Annotated[
        Path | None,
        typer.Option(help="Use this already extracted tree (TREE/PKG/usr/… or TREE/usr/…)."),
    ] = None,
) -> None:
    """Download wallpaper packages, keep the photographs and write OUT/{train,val} + manifest."""
    names = _split_packages(packages)
    try:
        with _progress() as progress:
            track = _tracker(progress)
            if tree is None:
                roots, versions = wallpapers.fetch_packages(
                    names, cache, staging or cache / "extracted", track
                )
            else:
                roots = wallpapers.tree_roots(tree, names)
                versions = wallpapers.tree_versions(roots)
            result = wallpapers.build_dataset(roots, out, versions, val_fraction, seed, track)
    except wallpapers.FetchError as err:
        console.print(f"[red]fetch failed:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from err
    _print_result(result, out)


def _parse_index(text: str | None) -> range | None:
    if text is None:
        return None
    first, _, last = text.partition("-")
    try:
        start, stop = int(first), int(last or first)
    except ValueError as err:
        raise typer.BadParameter(f"expected N or A-B, got {text!r}") from err
    return range(start, stop + 1)


def _summary_table(summary: datasets.DatasetSummary) -> Table:
    table = Table(title=f"{summary.root} ({summary.layout} layout)", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for split, count in summary.counts.items():
        table.add_row(f"images ({split})", str(count))
    table.add_row("formats", ", ".join(f"{k}: {v}" for k, v in summary.formats.items()) or "-")
    table.add_row("size on disk", f"{summary.total_bytes / 1e6:.1f} MB")
    table.add_row(
        "megapixels",
        f"min {summary.megapixels_min:.1f}, median {summary.megapixels_median:.1f}, "
        f"max {summary.megapixels_max:.1f}",
    )
    for package, version in summary.packages.items():
        table.add_row(f"package {package}", version)
    return table


@app.command("list")
def list_dataset(
    root: Annotated[Path, typer.Argument(help="Dataset folder.")] = Path("data/photos"),
    split: Annotated[str | None, typer.Option(help="Only this split: train or val.")] = None,
    index: Annotated[
        str | None, typer.Option(help="Only numbered images N or A-B (DIV2K/DIV8K).")
    ] = None,
    files: Annotated[bool, typer.Option("--files", help="Also print every image path.")] = False,
) -> None:
    """Summarise a dataset folder (any layout accelir reads)."""
    try:
        summary = datasets.describe(root)
        paths = datasets.find_images(root, split, _parse_index(index))
    except datasets.DatasetError as err:
        console.print(f"[red]{err}[/red]", soft_wrap=True)
        raise typer.Exit(1) from err
    console.print(_summary_table(summary))
    if split is not None or index is not None:
        console.print(f"{len(paths)} images match split={split} index={index}")
    if files:
        for path in paths:
            console.print(str(path), highlight=False)


@app.command("pack")
def pack(
    source: Annotated[Path, typer.Argument(help="Dataset folder (any layout accelir reads).")],
    out: Annotated[Path, typer.Argument(help="Folder for the packed copy.")],
    max_side: Annotated[int, typer.Option(min=16, help="Cap on the longest side.")] = 2048,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality of re-encodes.")] = 90,
    keep_under: Annotated[
        int, typer.Option(help="Copy files smaller than this many bytes (within the cap).")
    ] = 500_000,
    repack: Annotated[
        list[str] | None, typer.Option(help="Splits that may be re-encoded (default: train).")
    ] = None,
) -> None:
    """A compact copy of a dataset to carry to a lent GPU machine (validation kept byte-exact)."""
    try:
        report = pack_dataset(
            source,
            out,
            max_side=max_side,
            quality=quality,
            keep_under=keep_under,
            repack_splits=tuple(repack or ("train",)),
        )
    except datasets.DatasetError as err:
        console.print(f"[red]{err}[/red]", soft_wrap=True)
        raise typer.Exit(1) from err
    console.print(
        f"{report.files} images ({report.repacked} re-encoded): "
        f"{report.bytes_in / 1e6:.1f} MB → {report.bytes_out / 1e6:.1f} MB in {out}"
    )

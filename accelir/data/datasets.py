"""Find and load images from the dataset layouts AccelIR reads.

Layouts recognised by :func:`find_images` (checked in this order):

``manifest``
    A folder written by ``accelir data fetch``: ``manifest.json`` at the root lists every
    image with its split (``train``/``val``) and its path relative to the root.
``div2k``
    The DIV2K release: ``DIV2K_train_HR/0001.png`` … and ``DIV2K_valid_HR/0801.png`` …; the
    ``train``/``val`` splits map to those folders. The root may also be one of those folders.
``numbered``
    A folder of numbered images such as DIV8K (``0001.png`` … ``1500.png``).
``folder``
    Any other folder: every image below it, recursively.

For every layout ``index`` keeps only images whose file stem is a number in that range (DIV2K
and DIV8K name their files that way), e.g. ``range(1301, 1401)``. A ``split`` in a ``numbered``
or ``folder`` layout is assigned by :func:`assign_splits`, a stable hash of the image name, so
the same file always lands in the same split on every machine.

:func:`load_image` returns H×W×3 ``uint8`` RGB whatever the file holds (palette, alpha, grey,
16-bit, EXIF rotation) and refuses images above an explicit pixel limit.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val")
DIV2K_FOLDERS = {"train": "DIV2K_train_HR", "val": "DIV2K_valid_HR"}
#: Large enough for 8K photographs (7680×4320 ≈ 33 MP) and big panoramas; explicit on purpose.
DEFAULT_MAX_PIXELS = 100_000_000

Split = Literal["train", "val"]
LayoutName = Literal["manifest", "div2k", "numbered", "folder"]


class ImageTooLargeError(ValueError):
    """The image has more pixels than the caller allowed."""


class DatasetError(ValueError):
    """The folder or the requested split does not make sense for the layout found."""


# --------------------------------------------------------------------------------------------
# Deterministic splits


def stable_unit(name: str, seed: int = 0) -> float:
    """Map ``name`` to [0, 1) with SHA-256: the same on every run, machine and Python."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(
    names: Iterable[str], val_fraction: float = 0.15, seed: int = 0, min_val: int = 4
) -> dict[str, Split]:
    """Split names into train/val by a stable hash, hitting ``val_fraction`` as closely as
    possible.

    The ``round(val_fraction × n)`` names with the smallest :func:`stable_unit` go to ``val``,
    but at least ``min_val`` of them when there are ``2 × min_val`` names or more, and at least
    one whenever there are two names or more; train always keeps at least one name. Adding or
    removing a name moves at most the one name at the boundary.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ranked = sorted(set(names), key=lambda name: (stable_unit(name, seed), name))
    count = len(ranked)
    wanted = round(val_fraction * count)
    if val_fraction > 0 and count >= 2:
        wanted = max(wanted, min(min_val, count // 2), 1)
    wanted = min(wanted, count - 1) if count else 0
    val = set(ranked[:wanted])
    return {name: "val" if name in val else "train" for name in sorted(ranked)}


# --------------------------------------------------------------------------------------------
# Layout detection and listing


def is_image_file(path: Path) -> bool:
    """An image by extension, not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _images_in(folder: Path, recursive: bool = False) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    found = [p for p in pattern if is_image_file(p) and p.is_file()]
    if recursive:
        found = [p for p in found if not any(part.startswith(".") for part in p.parts[-8:-1])]
    return sorted(found)


def _is_numbered(files: list[Path]) -> bool:
    return bool(files) and all(p.stem.isdigit() for p in files)


def detect_layout(root: Path) -> LayoutName:
    """Which of the layouts described in the module docstring ``root`` follows."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    if (root / MANIFEST_NAME).is_file():
        return "manifest"
    if root.name in DIV2K_FOLDERS.values() or any(
        (root / folder).is_dir() for folder in DIV2K_FOLDERS.values()
    ):
        return "div2k"
    if _is_numbered(_images_in(root)):
        return "numbered"
    return "folder"


def read_manifest(root: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a fetched dataset."""
    with (Path(root) / MANIFEST_NAME).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    if not isinstance(data.get("images"), list):
        raise DatasetError(f"{root / MANIFEST_NAME} has no 'images' list")
    return data


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS} or None, got {split!r}")


def _manifest_file(root: Path, file: str) -> Path:
    relative = Path(file)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(f"{root / MANIFEST_NAME}: file {file!r} is outside the dataset")
    return root / relative


def _manifest_images(root: Path, split: str | None) -> list[Path]:
    entries = read_manifest(root)["images"]
    return [
        _manifest_file(root, e["file"]) for e in entries if split is None or e["split"] == split
    ]


def _div2k_images(root: Path, split: str | None) -> list[Path]:
    if root.name in DIV2K_FOLDERS.values():
        own = next(s for s, folder in DIV2K_FOLDERS.items() if folder == root.name)
        if split is not None and split != own:
            raise DatasetError(f"{root} holds the DIV2K {own} split, not {split}")
        return _images_in(root)
    wanted = SPLITS if split is None else (split,)
    folders = [root / DIV2K_FOLDERS[s] for s in wanted]
    return [p for folder in folders if folder.is_dir() for p in _images_in(folder)]


def _hashed_split(root: Path, files: list[Path], split: str | None) -> list[Path]:
    if split is None:
        return files
    keys = {p: p.relative_to(root).with_suffix("").as_posix() for p in files}
    splits = assign_splits(keys.values())
    return [p for p in files if splits[keys[p]] == split]


def _filter_index(files: list[Path], index: range | None) -> list[Path]:
    if index is None:
        return files
    return [p for p in files if p.stem.isdigit() and int(p.stem) in index]


def find_images(root: Path, split: str | None = None, index: range | None = None) -> list[Path]:
    """Sorted image paths under ``root`` for ``split`` (None: all) and numeric ``index``."""
    root = Path(root)
    _check_split(split)
    layout = detect_layout(root)
    if layout == "manifest":
        files = _manifest_images(root, split)
    elif layout == "div2k":
        files = _div2k_images(root, split)
    else:
        files = _hashed_split(root, _images_in(root, recursive=layout == "folder"), split)
    return sorted(_filter_index(files, index))


# --------------------------------------------------------------------------------------------
# Loading


def _check_pixels(size: tuple[int, int], max_pixels: int, path: Path) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}×{height} = {width * height / 1e6:.1f} MP is over the limit of "
            f"{max_pixels / 1e6:.1f} MP (pass a larger max_pixels to load it)"
        )


def _high_bit_to_uint8(image: Image.Image) -> np.ndarray:
    """Grey 16/32-bit integer or float images to 8 bits (integers are taken as 16-bit)."""
    values = np.asarray(image)
    if image.mode == "F":
        values = values * 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else values
        return np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
    return np.clip(values.astype(np.float64) / 257.0, 0, 255).round().astype(np.uint8)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Any Pillow image as H×W×3 ``uint8``; transparency is composited over black."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        grey = _high_bit_to_uint8(image)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to H×W×3 ``uint8`` RGB, upright per its EXIF orientation.

    Raises :class:`ImageTooLargeError` above ``max_pixels`` (checked from the header, before
    decoding). Pillow's own decompression-bomb guard stays on: its warning is silenced for
    images within our limit, and its hard error (above twice ``Image.MAX_IMAGE_PIXELS``) is
    reported as :class:`ImageTooLargeError` too.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_pixels(image.size, max_pixels, path)
                upright = ImageOps.exif_transpose(image)
                return to_rgb8(upright)
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(f"{path}: {err}") from err


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            return image.size


def cap_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (antialiased bicubic) so that the longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


# --------------------------------------------------------------------------------------------
# Summary


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`describe` found in a dataset folder."""

    root: Path
    layout: LayoutName
    counts: Mapping[str, int]
    formats: Mapping[str, int]
    total_bytes: int
    megapixels_min: float
    megapixels_median: float
    megapixels_max: float
    packages: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of images over all splits."""
        return sum(self.counts.values())


def _split_counts(root: Path, layout: LayoutName) -> dict[str, int]:
    if layout == "manifest" or (layout == "div2k" and root.name not in DIV2K_FOLDERS.values()):
        return {split: len(find_images(root, split)) for split in SPLITS}
    return {"all": len(find_images(root))}


def describe(root: Path) -> DatasetSummary:
    """Layout, counts per split, formats, bytes and resolutions of the images under ``root``."""
    root = Path(root)
    layout = detect_layout(root)
    files = find_images(root)
    pixels = [w * h / 1e6 for w, h in (image_size(p) for p in files)] or [0.0]
    packages = read_manifest(root).get("packages", {}) if layout == "manifest" else {}
    return DatasetSummary(
        root=root,
        layout=layout,
        counts=_split_counts(root, layout),
        formats=dict(sorted(Counter(p.suffix.lower().lstrip(".") for p in files).items())),
        total_bytes=sum(p.stat().st_size for p in files),
        megapixels_min=min(pixels),
        megapixels_median=statistics.median(pixels),
        megapixels_max=max(pixels),
        packages=dict(packages),
    )

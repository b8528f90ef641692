"""A compact copy of a dataset, small enough to carry to another machine (a lent GPU takes
64 MiB a call, code and weights included).

Training photographs larger than a byte threshold, or with a longer side over ``max_side``,
are downscaled by the training loader's own ``cap_size`` and re-encoded as JPEG;
every other file — the validation split always — is copied byte for byte, so validation scores
on the packed copy equal those on the original. The copy has its own ``manifest.json`` with
the same names and splits, so ``find_images`` and the model cards' name digests agree.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from accelir.data.datasets import (
    MANIFEST_NAME,
    SPLITS,
    cap_size,
    find_images,
    image_size,
    load_image,
)


@dataclass(frozen=True)
class PackReport:
    files: int
    repacked: int
    bytes_in: int
    bytes_out: int


def pack_dataset(
    source: Path,
    out: Path,
    *,
    max_side: int = 2048,
    quality: int = 90,
    keep_under: int = 500_000,
    repack_splits: tuple[str, ...] = ("train",),
) -> PackReport:
    """Write the packed copy of ``source`` (any layout ``find_images`` reads) to ``out``."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1–100, got {quality}")
    entries, files, repacked, bytes_in, bytes_out = [], 0, 0, 0, 0
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        for path in find_images(source, split):
            size = path.stat().st_size
            small = size < keep_under and max(image_size(path)) <= max_side
            if split not in repack_splits or small:
                target = out / split / path.name
                shutil.copyfile(path, target)
            else:
                target = out / split / f"{path.stem}.jpg"
                image = cap_size(load_image(path), max_side)
                Image.fromarray(image).save(target, "JPEG", quality=quality)
                repacked += 1
            files += 1
            bytes_in += size
            bytes_out += target.stat().st_size
            entries.append(
                {"name": path.stem, "split": split, "file": target.relative_to(out).as_posix()}
            )
    manifest = {
        "format": 1,
        "description": f"packed copy of {source} (longest side ≤ {max_side} px, "
        f"files over {keep_under} bytes re-encoded as JPEG q{quality} in {list(repack_splits)})",
        "counts": {s: sum(e["split"] == s for e in entries) for s in SPLITS},
        "images": entries,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    return PackReport(files, repacked, bytes_in, bytes_out)

"""`accelir data pack`: a compact copy with byte-exact validation files and the same names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from accelir.cli import app
from accelir.data import find_images
from accelir.data.pack import pack_dataset


@pytest.fixture()
def source(photo: np.ndarray, tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "DIV2K_train_HR").mkdir(parents=True)
    (root / "DIV2K_valid_HR").mkdir()
    Image.fromarray(photo).save(root / "DIV2K_train_HR" / "0001.png")  # 960×600: over the cap
    Image.fromarray(photo[:64, :96]).save(root / "DIV2K_train_HR" / "0002.png")  # small: copied
    Image.fromarray(photo).save(root / "DIV2K_valid_HR" / "0801.png")  # validation: copied
    return root


def test_pack_caps_big_training_files_and_copies_the_rest(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "packed"
    report = pack_dataset(source, out, max_side=256, keep_under=10**9)
    assert (report.files, report.repacked) == (3, 1)
    train = find_images(out, "train")
    assert [p.name for p in train] == ["0001.jpg", "0002.png"]
    with Image.open(train[0]) as big:
        assert big.format == "JPEG" and big.size == (256, 160)
    assert (out / "train/0002.png").read_bytes() == (
        source / "DIV2K_train_HR/0002.png"
    ).read_bytes()
    val = find_images(out, "val")
    assert [p.read_bytes() for p in val] == [(source / "DIV2K_valid_HR/0801.png").read_bytes()]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 2, "val": 1}
    assert report.bytes_out < report.bytes_in


def test_pack_command_line_and_bad_quality(source: Path, tmp_path: Path) -> None:
    argv = [
        "data",
        "pack",
        str(source),
        str(tmp_path / "p"),
        "--max-side",
        "128",
        "--keep-under",
        "0",
    ]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "3 images (2 re-encoded)" in result.output
    assert len(find_images(tmp_path / "p", "train")) == 2
    with pytest.raises(ValueError, match="quality"):
        pack_dataset(source, tmp_path / "q", quality=0)

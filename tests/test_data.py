"""Tests for accelir.data (wallpaper dataset builder, dataset layouts, image loading) and the
``accelir data`` commands. Everything runs offline on synthetic images; the one test that
reads the real extracted Debian packages is skipped when /tmp/debs/x is absent.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from accelir.cli import data as data_cli
from accelir.data import datasets, wallpapers
from accelir.data.datasets import (
    DatasetError,
    ImageTooLargeError,
    assign_splits,
    describe,
    detect_layout,
    find_images,
    load_image,
    stable_unit,
)
from accelir.data.wallpapers import (
    Candidate,
    FetchError,
    WallpaperId,
    collect_candidates,
    dedupe,
    dhash,
    group_variants,
    hamming,
    is_photograph,
    photo_score,
    pick_largest,
    unique_files,
    unique_names,
    wallpaper_id,
)

REAL_TREE = Path("/tmp/debs/x")
# Labels by eye (see accelir/data/wallpapers.py): the 36 listed photographs plus two that the
# list missed (FreshFlower, greentock_by_Peter_Nerlich).
REAL_PHOTOGRAPHS = frozenset(
    [
        "Bridge_by_Sander_Klootwijk",
        "Dragonfly_by_Bolly",
        "Infinite-Sea_by_Aury88",
        "Kleiber_by_Lukas_Baubkus",
        "Picture_0B_by_freespace",
        "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede",
        "aitzgorri_by_Aitzol_Berasategi",
        "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi",
        "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi",
        "Aqua",
        "Blinds",
        "Dune",
        "Garden",
        "GreenMeadow",
        "LadyBird",
        "RainDrops",
        "Storm",
        "TwoWings",
        "Wood",
        "YellowFlower",
        "BytheWater",
        "ColdRipple",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Grey",
        "Kite",
        "OneStandsOut",
        "Path",
        "summer_1am",
        "FreshFlower",
        "greentock_by_Peter_Nerlich",
    ]
)


# --------------------------------------------------------------------------------------------
# Synthetic pictures


def _pink_field(height: int, width: int, seed: int) -> np.ndarray:
    """Unit-variance noise with a 1/f amplitude spectrum, like natural scenes."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.hypot(fy, fx)
    freq[0, 0] = 1.0
    spectrum = (rng.normal(size=freq.shape) + 1j * rng.normal(size=freq.shape)) / freq
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return field / field.std()


def photo_like(height: int = 192, width: int = 256, seed: int = 0) -> np.ndarray:
    """A textured, slightly noisy RGB picture with photo-like statistics."""
    luma = _pink_field(height, width, seed)[..., None]
    chroma = np.stack([_pink_field(height, width, seed + 100 + c) for c in range(3)], axis=-1)
    noise = np.random.default_rng(seed + 7).normal(0, 2, (height, width, 3))
    return np.clip(128 + 40 * luma + 8 * chroma + noise, 0, 255).astype(np.uint8)


def illustration(height: int = 192, width: int = 256) -> np.ndarray:
    """Flat fills and a clean gradient: a vector-style wallpaper."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (30, 80, 160)
    yy, xx = np.mgrid[:height, :width]
    image[yy > xx * 0.5 + height // 5] = (240, 180, 40)
    image[: height // 3, :, 0] = (xx[: height // 3] * 120 // width).astype(np.uint8)
    return image


def grainy_render(height: int = 192, width: int = 256, seed: int = 0) -> np.ndarray:
    """An illustration with white film grain on top."""
    grain = np.random.default_rng(seed).normal(0, 6, (height, width, 1))
    return np.clip(illustration(height, width) + grain, 0, 255).astype(np.uint8)


def save(path: Path, image: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB array; JPEG for .jpg, lossless otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if path.suffix == ".jpg":
        pil.save(path, "JPEG", quality=quality)
    else:
        pil.save(path)
    return path


def jpeg_roundtrip(image: np.ndarray, quality: int = 90) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let small synthetic pictures count as wallpapers."""
    monkeypatch.setattr(wallpapers, "MIN_SIDE", 64)
    monkeypatch.setattr(wallpapers, "MIN_FILE_BYTES", 512)


def _candidate(name: str, source_path: str, width: int, height: int) -> Candidate:
    ident = wallpaper_id(source_path)
    assert ident is not None and ident.name == name
    return Candidate("pkg", source_path, Path("/x") / source_path, False, ident, width, height,
                     "JPEG", 1)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Variant names, grouping and the largest pick


@pytest.mark.parametrize(
    ("source_path", "name"),
    [
        ("usr/share/wallpapers/Kite/contents/images/1920x1080.jpg", "Kite"),
        ("usr/share/wallpapers/Flow/contents/images_dark/5120x2880.jpg", "Flow-dark"),
        ("usr/share/backgrounds/sway/Sway_Wallpaper_Blue_2048x1536_Portrait.png",
         "Sway_Wallpaper_Blue"),
        ("usr/share/backgrounds/sway/Sway_Wallpaper_Blue_1136x640.png", "Sway_Wallpaper_Blue"),
        ("usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg", "Elephants"),
        ("usr/share/backgrounds/mate/abstract/Elephants.jpg", "Elephants"),
        ("usr/share/backgrounds/Dragonfly_by_Bolly.jpg", "Dragonfly_by_Bolly"),
        ("usr/share/backgrounds/gnome/adwaita-d.webp", "adwaita-d"),
    ],
)  # fmt: skip
def test_wallpaper_id_names_variants(source_path: str, name: str) -> None:
    ident = wallpaper_id(source_path)
    assert ident is not None
    assert ident.name == name


@pytest.mark.parametrize(
    "source_path",
    [
        "usr/share/wallpapers/Kite/contents/screenshot.jpg",
        "usr/share/backgrounds/gnome/blobs-d.svg",
        "usr/share/gnome-background-properties/adwaita.xml",
    ],
)
def test_wallpaper_id_skips_screenshots_and_non_images(source_path: str) -> None:
    assert wallpaper_id(source_path) is None


def test_pick_largest_uses_pixels_then_prefers_landscape() -> None:
    base = "usr/share/backgrounds/sway/Sway_Wallpaper_Blue"
    variants = [
        _candidate("Sway_Wallpaper_Blue", f"{base}_1920x1080.png", 1920, 1080),
        _candidate("Sway_Wallpaper_Blue", f"{base}_2048x1536_Portrait.png", 1536, 2048),
        _candidate("Sway_Wallpaper_Blue", f"{base}_2048x1536.png", 2048, 1536),
    ]
    assert pick_largest(variants).source_path.endswith("_2048x1536.png")
    assert pick_largest(list(reversed(variants))) == pick_largest(variants)
    with pytest.raises(ValueError):
        pick_largest([])


def test_collect_groups_kde_symlinks_and_keeps_largest(tmp_path: Path, small_limits: None) -> None:
    root = tmp_path / "pkg"
    images = root / "usr/share/wallpapers/Meadow/contents/images"
    picture = photo_like(192, 256, seed=1)
    save(images / "2560x1600.jpg", picture)
    save(images / "320x200.jpg", resized(picture, 128, 96))  # a real, smaller variant
    for alias in ("1920x1080.jpg", "5120x2880.jpg"):  # names lie: both link to 2560x1600.jpg
        link(images / alias, "2560x1600.jpg")
    link(images / "640x480.jpg", "/usr/share/wallpapers/Meadow/contents/images/2560x1600.jpg")
    link(images / "800x600.jpg", "missing.jpg")  # dangling
    save(root / "usr/share/wallpapers/Meadow/contents/images_dark/2560x1600.png", illustration())
    save(root / "usr/share/wallpapers/Meadow/contents/screenshot.jpg", picture)
    save(root / "usr/share/backgrounds/icon.png", illustration(16, 16))  # tiny

    files = unique_files(collect_candidates(root, "pkg"))
    groups = group_variants(files)

    assert sorted(key[2] for key in groups) == ["Meadow", "Meadow-dark"]
    meadow = next(v for k, v in groups.items() if k[2] == "Meadow")
    assert len(meadow) == 2  # the 2560x1600 file (all aliases folded) and the real 320x200
    best = pick_largest(meadow)
    assert (best.width, best.height) == (256, 192)
    assert best.source_path.endswith("contents/images/2560x1600.jpg") and not best.via_symlink


def test_unique_files_prefers_the_real_name(tmp_path: Path, small_limits: None) -> None:
    root = tmp_path / "pkg"
    save(root / "usr/share/backgrounds/warty-final-ubuntu.png", illustration())
    link(root / "usr/share/backgrounds/lomiri-default-background.png", "warty-final-ubuntu.png")
    files = unique_files(collect_candidates(root, "pkg"))
    assert [c.wallpaper.name for c in files] == ["warty-final-ubuntu"]


def test_unique_names_qualifies_clashes() -> None:
    kde = Candidate("p", "usr/share/wallpapers/Flow/contents/images/1.jpg", Path("/a"), False,
                    WallpaperId("Flow", "usr/share/wallpapers/Flow/contents/images", "kde"),
                    100, 100, "JPEG", 1)  # fmt: skip
    mate = Candidate("p", "usr/share/backgrounds/mate/abstract/Flow.png", Path("/b"), False,
                     WallpaperId("Flow", "usr/share/backgrounds/mate/abstract", "abstract"),
                     100, 100, "PNG", 1)  # fmt: skip
    names = unique_names([kde, mate])
    assert sorted(names.values()) == ["Flow-abstract", "Flow-kde"]
    assert unique_names([kde]) == {kde.group: "Flow"}


# --------------------------------------------------------------------------------------------
# Photograph heuristic


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_photo_score_separates_photos_from_illustrations(seed: int) -> None:
    photo = jpeg_roundtrip(photo_like(192, 256, seed))
    assert photo_score(photo, "JPEG") > 0.9
    assert is_photograph(photo, "JPEG") and is_photograph(photo)
    assert photo_score(illustration(), "PNG") < 0.1
    assert not is_photograph(illustration())
    assert photo_score(jpeg_roundtrip(grainy_render(seed=seed)), "JPEG") < 0.1  # grain ≠ texture


def test_photo_score_format_prior_is_a_prior() -> None:
    photo = jpeg_roundtrip(photo_like(seed=3))
    assert photo_score(photo, "PNG") < photo_score(photo, "JPEG")
    assert photo_score(photo, "JPEG") == photo_score(photo, None)


def test_flat_fraction_and_small_image_error() -> None:
    assert wallpapers.flat_fraction(np.zeros((10, 10, 3), np.uint8)) == 1.0
    assert wallpapers.flat_fraction(photo_like(64, 64)) < 0.05
    with pytest.raises(ValueError, match="too small"):
        photo_score(np.zeros((20, 20, 3), np.uint8))


def test_classify_applies_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wallpapers, "PHOTO_OVERRIDES", {"Painting": False, "Noisy": True})
    assert not wallpapers.classify("Painting", 0.99)
    assert wallpapers.classify("Noisy", 0.01)
    assert wallpapers.classify("Other", 0.6) and not wallpapers.classify("Other", 0.4)


# --------------------------------------------------------------------------------------------
# Near-duplicates


def test_dhash_matches_rescaled_copies_only() -> None:
    picture = photo_like(384, 512, seed=4)
    copy = jpeg_roundtrip(resized(picture, 256, 192), quality=80)
    other = photo_like(384, 512, seed=5)
    assert hamming(dhash(picture), dhash(copy)) <= 24
    assert hamming(dhash(picture), dhash(other)) > 64
    kept, dropped = dedupe([dhash(picture), dhash(other), dhash(copy)])
    assert kept == [0, 1]
    assert dropped == {2: 0}


# --------------------------------------------------------------------------------------------
# Splits


def test_stable_unit_is_fixed_across_runs() -> None:
    digest = hashlib.sha256(b"0:Kite").digest()
    assert stable_unit("Kite") == int.from_bytes(digest[:8], "big") / 2.0**64
    assert stable_unit("Kite", seed=1) != stable_unit("Kite")
    assert 0.0 <= stable_unit("") < 1.0


def test_assign_splits_is_deterministic_and_keeps_val_non_empty() -> None:
    names = [f"wallpaper-{i}" for i in range(40)]
    splits = assign_splits(names, 0.15)
    assert splits == assign_splits(list(reversed(names)), 0.15)
    assert sum(s == "val" for s in splits.values()) == 6
    assert sum(s == "val" for s in assign_splits(names[:10], 0.15).values()) == 4
    assert sum(s == "val" for s in assign_splits(names[:2], 0.15).values()) == 1
    assert assign_splits(names[:1], 0.15) == {"wallpaper-0": "train"}
    assert set(assign_splits(names, 0.0).values()) == {"train"}
    assert assign_splits(names, 0.15, seed=1) != splits
    with pytest.raises(ValueError):
        assign_splits(names, 1.0)


def test_assign_splits_moves_few_names_when_the_set_grows() -> None:
    names = [f"n{i}" for i in range(60)]
    before = assign_splits(names[:59], 0.2)
    after = assign_splits(names, 0.2)
    moved = [n for n in before if before[n] != after[n]]
    assert len(moved) <= 1


# --------------------------------------------------------------------------------------------
# Whole pipeline through the CLI, with apt-get/dpkg faked


def _package_trees(base: Path) -> dict[str, Path]:
    """Two fake packages: a KDE-style one and a backgrounds one with variants and a copy."""
    kde = base / "trees/pkg-kde"
    images = kde / "usr/share/wallpapers/Meadow/contents/images"
    save(images / "2560x1600.jpg", photo_like(seed=10))
    link(images / "1920x1080.jpg", "2560x1600.jpg")
    save(kde / "usr/share/wallpapers/Meadow/contents/images_dark/2560x1600.png", illustration())
    save(kde / "usr/share/wallpapers/Meadow/contents/screenshot.jpg", photo_like(seed=10))

    bg = base / "trees/pkg-bg/usr/share/backgrounds"
    forest = photo_like(seed=11)
    save(bg / "Forest_by_Someone.jpg", forest)
    save(bg / "mate/Forest_copy.jpg", resized(forest, 192, 144))  # same picture, smaller
    for seed, name in enumerate(("Lake", "Hills", "River"), start=12):
        save(bg / f"{name}.jpg", photo_like(seed=seed))
    stone = photo_like(seed=20)
    save(bg / "mate/Stone.jpg", resized(stone, 192, 144))
    save(bg / "mate/Stone_3840x2160.jpg", stone)
    save(bg / "Pattern.png", illustration())
    save(bg / "Grain.jpg", grainy_render(seed=3))
    save(bg / "icon.png", illustration(16, 16))
    doc = base / "trees/pkg-bg/usr/share/doc/pkg-bg"
    doc.mkdir(parents=True)
    with gzip.open(doc / "changelog.Debian.gz", "wt") as fh:
        fh.write("pkg-bg (2.0-3) unstable; urgency=medium\n")
    return {"pkg-kde": kde, "pkg-bg": base / "trees/pkg-bg"}


FakeRun = Callable[..., None]


def _fake_run(trees: dict[str, Path], calls: list[list[str]]) -> FakeRun:
    def run(command: Sequence[str], cwd: Path | None = None, timeout: float = 900) -> None:
        calls.append(list(command))
        if list(command[:2]) == ["apt-get", "download"]:
            assert cwd is not None
            (Path(cwd) / f"{command[2]}_1%3a1.0-1_all.deb").write_bytes(b"not really a deb")
        elif list(command[:2]) == ["dpkg", "-x"]:
            package = Path(command[2]).name.split("_")[0]
            shutil.copytree(trees[package], command[3], symlinks=True, dirs_exist_ok=True)
        else:
            raise AssertionError(f"unexpected command {command}")

    return run


EXPECTED_PHOTOS = {"Meadow", "Forest_by_Someone", "Lake", "Hills", "River", "Stone"}


def test_fetch_command_builds_dataset_offline(
    tmp_path: Path, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = _package_trees(tmp_path)
    calls: list[list[str]] = []
    monkeypatch.setattr(wallpapers, "run_command", _fake_run(trees, calls))
    out, cache = tmp_path / "photos", tmp_path / "debs"
    args = ["fetch", "--out", str(out), "--cache", str(cache), "-p", "pkg-kde,pkg-bg"]

    result = CliRunner().invoke(data_cli.app, args)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["apt-get", "dpkg", "apt-get", "dpkg"]
    assert "duplicate: Forest_copy" in result.output

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"] == {"pkg-bg": "1:1.0-1", "pkg-kde": "1:1.0-1"}
    entries = {e["name"]: e for e in manifest["images"]}
    assert set(entries) == EXPECTED_PHOTOS
    assert {e["split"] for e in entries.values()} == {"train", "val"}
    stone = entries["Stone"]
    assert (stone["width"], stone["height"]) == (256, 192)
    assert stone["source_path"] == "usr/share/backgrounds/mate/Stone_3840x2160.jpg"
    assert stone["package"] == "pkg-bg"
    assert entries["Meadow"]["source_path"].endswith("contents/images/2560x1600.jpg")
    for e in entries.values():
        copied = (out / e["file"]).read_bytes()
        assert e["file"] == f"{e['split']}/{e['name']}.jpg"
        assert hashlib.sha256(copied).hexdigest() == e["sha256"]
        assert copied == (trees[e["package"]] / e["source_path"]).resolve().read_bytes()
        assert e["photo_score"] > 0.5
    assert find_images(out, "val") == sorted(
        out / e["file"] for e in entries.values() if e["split"] == "val"
    )

    # Second run: nothing downloaded, extracted or copied; the same manifest.
    before = (out / "manifest.json").read_bytes()
    calls.clear()
    again = CliRunner().invoke(data_cli.app, args)
    assert again.exit_code == 0, again.output
    assert calls == []
    assert "0 copied" in again.output and "manifest unchanged" in again.output
    assert (out / "manifest.json").read_bytes() == before


def test_fetch_command_from_tree_and_stale_files(tmp_path: Path, small_limits: None) -> None:
    trees = _package_trees(tmp_path)
    out = tmp_path / "photos"
    (out / "train").mkdir(parents=True)
    (out / "train/Old.jpg").write_bytes(b"stale")
    args = ["fetch", "--tree", str(tmp_path / "trees"), "--out", str(out)]
    result = CliRunner().invoke(data_cli.app, [*args, "-p", "pkg-kde", "-p", "pkg-bg"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"] == {"pkg-bg": "2.0-3"}  # from the extracted changelog
    assert {e["name"] for e in manifest["images"]} == EXPECTED_PHOTOS
    assert not (out / "train/Old.jpg").exists()
    assert "1 stale removed" in result.output
    del trees


def test_fetch_command_reports_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(command: Sequence[str], cwd: Path | None = None, timeout: float = 900) -> None:
        raise FetchError("`apt-get download nope` failed with exit code 100: E: Unable to locate")

    monkeypatch.setattr(wallpapers, "run_command", broken)
    args = ["fetch", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "-p", "nope"]
    result = CliRunner().invoke(data_cli.app, args)
    assert result.exit_code == 1
    assert "fetch failed" in result.output and "Unable to locate" in result.output


def test_run_command_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not installed"):
        wallpapers.run_command(["accelir-no-such-tool-xyz", "download", "x"], cwd=tmp_path)
    with pytest.raises(FetchError, match="exit code 1"):
        wallpapers.run_command(["false"], cwd=tmp_path)


def test_deb_version_and_cached_deb(tmp_path: Path) -> None:
    deb = tmp_path / "plasma-workspace-wallpapers_4%3a5.27.5-2_all.deb"
    deb.write_bytes(b"")
    (tmp_path / "plasma-workspace-wallpapers-extra_1.0_all.deb").write_bytes(b"")
    assert wallpapers.deb_version(deb) == "4:5.27.5-2"
    assert wallpapers.cached_deb(tmp_path, "plasma-workspace-wallpapers") == deb
    assert wallpapers.cached_deb(tmp_path, "lomiri-wallpapers") is None


# --------------------------------------------------------------------------------------------
# Dataset layouts


def _tiny(path: Path) -> Path:
    return save(path.with_suffix(".png"), np.full((8, 8, 3), 100, np.uint8))


def test_div2k_layout(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        _tiny(tmp_path / f"DIV2K_train_HR/{i:04d}")
    for i in (801, 802):
        _tiny(tmp_path / f"DIV2K_valid_HR/{i:04d}")
    assert detect_layout(tmp_path) == "div2k"
    assert [p.name for p in find_images(tmp_path, "train")] == ["0001.png", "0002.png", "0003.png"]
    assert [p.name for p in find_images(tmp_path, "val")] == ["0801.png", "0802.png"]
    assert len(find_images(tmp_path)) == 5
    assert [p.name for p in find_images(tmp_path, "train", range(2, 3))] == ["0002.png"]
    valid = tmp_path / "DIV2K_valid_HR"
    assert detect_layout(valid) == "div2k"
    assert len(find_images(valid)) == 2 == len(find_images(valid, "val"))
    with pytest.raises(DatasetError):
        find_images(valid, "train")
    assert describe(tmp_path).counts == {"train": 3, "val": 2}


def test_div8k_numbered_layout_with_index(tmp_path: Path) -> None:
    for i in range(1295, 1406):
        _tiny(tmp_path / f"{i:04d}")
    assert detect_layout(tmp_path) == "numbered"
    chosen = find_images(tmp_path, index=range(1301, 1401))
    assert len(chosen) == 100
    assert (chosen[0].name, chosen[-1].name) == ("1301.png", "1400.png")
    assert len(find_images(tmp_path)) == 111


def test_generic_folder_layout(tmp_path: Path) -> None:
    names = [f"a/pic{i}" for i in range(6)] + [f"b/c/deep{i}" for i in range(4)]
    for name in names:
        _tiny(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    _tiny(tmp_path / ".hidden/secret")
    assert detect_layout(tmp_path) == "folder"
    everything = find_images(tmp_path)
    assert len(everything) == 10 and everything == sorted(everything)
    train, val = find_images(tmp_path, "train"), find_images(tmp_path, "val")
    assert sorted(train + val) == everything and val
    assert set(train).isdisjoint(val)
    assert val == find_images(tmp_path, "val")
    with pytest.raises(DatasetError):
        find_images(tmp_path, "test")
    summary = describe(tmp_path)
    assert summary.counts == {"all": 10} and summary.formats == {"png": 10}


def test_manifest_layout(tmp_path: Path) -> None:
    _tiny(tmp_path / "train/A")
    _tiny(tmp_path / "val/B")
    images = [{"name": "A", "split": "train", "file": "train/A.png"},
              {"name": "B", "split": "val", "file": "val/B.png"}]  # fmt: skip
    manifest = {"packages": {"p": "1"}, "images": images}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert detect_layout(tmp_path) == "manifest"
    assert find_images(tmp_path, "val") == [tmp_path / "val/B.png"]
    assert len(find_images(tmp_path)) == 2
    summary = describe(tmp_path)
    assert summary.counts == {"train": 1, "val": 1} and summary.packages == {"p": "1"}
    images.append({"name": "C", "split": "val", "file": "../outside.png"})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="outside"):
        find_images(tmp_path)


def test_list_command(tmp_path: Path) -> None:
    for i in range(1299, 1403):
        _tiny(tmp_path / f"{i:04d}")
    result = CliRunner().invoke(
        data_cli.app, ["list", str(tmp_path), "--index", "1301-1400", "--files"]
    )
    assert result.exit_code == 0, result.output
    assert "numbered" in result.output and "100 images match" in result.output
    assert "1400.png" in result.output and "1401.png" not in result.output
    missing = CliRunner().invoke(data_cli.app, ["list", str(tmp_path / "nope")])
    assert missing.exit_code == 1


# --------------------------------------------------------------------------------------------
# load_image


def test_load_image_palette_alpha_grey(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 2))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.shape == (2, 4, 3) and loaded.dtype == np.uint8
    assert loaded[0, 1].tolist() == [255, 0, 0] and loaded[0, 0].tolist() == [0, 0, 0]

    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[0, :, 3] = (255, 128, 0)
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded[0, 0].tolist() == [200, 100, 50]
    assert loaded[0, 2].tolist() == [0, 0, 0]  # transparent → composited over black
    assert loaded[0, 1].tolist() == pytest.approx([100, 50, 25], abs=1)

    Image.fromarray(np.array([[10, 200]], np.uint8), "L").save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").tolist() == [[[10] * 3, [200] * 3]]
    Image.new("LA", (2, 2), (90, 255)).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[0, 0].tolist() == [90, 90, 90]


def test_load_image_sixteen_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    loaded = load_image(tmp_path / "16.png")
    assert loaded.dtype == np.uint8
    assert loaded[..., 0].tolist() == [[0, 100, 255]]
    assert (loaded[..., 0] == loaded[..., 2]).all()


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").shape == (40, 20, 3)


def test_load_image_cmyk(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert loaded.shape == (4, 8, 3)
    assert loaded[0, 0, 0] > 200 and loaded[0, 0, 1] < 60


def test_load_image_pixel_limit(tmp_path: Path) -> None:
    save(tmp_path / "big.png", np.zeros((40, 50, 3), np.uint8))
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        load_image(tmp_path / "big.png", max_pixels=1999)
    assert load_image(tmp_path / "big.png", max_pixels=2000).shape == (40, 50, 3)
    assert limit_before == Image.MAX_IMAGE_PIXELS
    assert datasets.DEFAULT_MAX_PIXELS >= 7680 * 4320


# --------------------------------------------------------------------------------------------
# The real Debian wallpapers (developer machines only)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_TREE.is_dir(), reason="needs the extracted packages in /tmp/debs/x")
def test_real_wallpaper_selection() -> None:
    selection = wallpapers.select_photographs({wallpapers.UNKNOWN_PACKAGE: REAL_TREE})
    names = {s.name for s in selection.photos}
    assert 30 <= len(names) <= 40
    assert names == REAL_PHOTOGRAPHS
    assert selection.agreement > 0.9
    assert assign_splits(names, 0.15) == assign_splits(sorted(names), 0.15)

"""Encoder and Restorer plumbing, on a self-made utility model (the shipped EDSR-32, groups and a
tiny QP-NET fitted here on three crops):
targets, budgets, allocators, timings, the command line. Quality bars are measured with the
shipped models in docs/results.md, not here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import accelir.models as M
from accelir import codec, groups, qpnet, reference_error, utility_model
from accelir.cli import app
from accelir.models import zoo
from accelir.pipeline import Encoder, Restorer, pillow_jpeg_size
from accelir.profiles import compute_profiles


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    directory = tmp_path_factory.mktemp("weights")
    # The shipped EDSR-32 weights: its restored error falls with quality as a real network's
    # does (an untrained one's is noise, and whether more bytes "help" it is luck).
    net = M.load("edsr", 32, "sr4")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCELIR_WEIGHTS_DIR", str(directory))
        torch.manual_seed(0)
        card = zoo.ModelCard(
            name="edsr", task="sr4", width=32, params=1, flops_per_pixel=711_360.0, flops_960x540=1, data="test",
            steps=0, batch=0, patch=0, device="cpu", minutes=0.0, validation={}, baseline={}, command="",
        )  # fmt: skip
        zoo.save(net, card, directory)
        crops = [(f"c{i}", np.ascontiguousarray(photo[y : y + 256, x : x + 256])) for i, (y, x) in
                 enumerate([(0, 0), (300, 500), (200, 100)])]  # fmt: skip
        profiles = compute_profiles(net, crops, "sr4")
        fitted = groups.fit_groups(profiles, 4)
        labels = groups.labels(profiles, fitted)
        model, _ = qpnet.train_classifier(
            profiles.pixels, labels, profiles.pixels, labels, 4, epochs=2
        )
        utility_model.save("edsr", "sr4", 32, model, fitted, {"top1": 0.0}, directory)
    return directory


@pytest.fixture
def env(weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(weights))
    return weights


@pytest.fixture
def side_env(
    weights: Path, photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The weights above, with a QP-NET that takes each block's reference utility."""
    import shutil

    from accelir import tasks
    from accelir.codec.layout import Layout
    from accelir.codec.transform import block_dct
    from accelir.profiles import QUALITY_SET, block_areas, block_pixels

    directory = tmp_path / "weights"
    shutil.copytree(weights, directory)
    fitted = utility_model.load("edsr", "sr4", 32, weights).groups
    pixels, sides = [], []
    for y, x in [(0, 0), (300, 500), (200, 100)]:
        low = tasks.degrade(np.ascontiguousarray(photo[y : y + 256, x : x + 256]), "sr4")
        grid = Layout(32).grid(*low.shape[:2])
        ref = reference_error.reference_sse(low, block_dct(low, Layout(32)), 4, QUALITY_SET)
        area = block_areas(low.shape[0] * 4, low.shape[1] * 4, *grid, 128)
        pixels.append(block_pixels(low))
        sides.append(reference_error.qpnet_side_inputs(ref, area))
    side = np.concatenate(sides)
    labels = fitted.assign(side[:, 0])  # any labels will do: the plumbing is what is tested
    torch.manual_seed(0)
    model, _ = qpnet.train_classifier(
        np.concatenate(pixels), labels, np.concatenate(pixels), labels, fitted.count, epochs=1,
        side=side, val_side=side,
    )  # fmt: skip
    utility_model.save("edsr", "sr4", 32, model, fitted, {"top1": 0.0}, directory)
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(directory))
    return directory


@pytest.fixture(scope="module")
def original(photo: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(photo[100:420, 200:584])  # 320×384 → 80×96 after ×4


@pytest.mark.parametrize("allocator", ["lagrangian", "greedy"])
@pytest.mark.parametrize("target", [{"jpeg_quality": 70}, {"bpp": 1.2}, {"nbytes": 1500}])
def test_encode_fits_the_budget(
    env: Path, original: np.ndarray, allocator: str, target: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = reference_error.reference_sse
    monkeypatch.setattr(
        reference_error, "reference_sse", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    result = Encoder().encode(original, allocator=allocator, **target)
    assert result.nbytes == len(result.container)
    assert result.budget is not None and result.nbytes <= result.budget
    assert result.quality_map.shape == codec.info(result.container).quality_map.shape
    assert np.array_equal(result.quality_map, codec.info(result.container).quality_map)
    assert set(result.timings) >= {"degradation", "qpnet", "allocation", "entropy_coding"}
    # Ours shapes each block's curve by its bicubic reference error; the paper's does not.
    assert len(calls) == (1 if allocator == "lagrangian" else 0)
    if "jpeg_quality" in target:
        assert result.budget == pillow_jpeg_size(result.degraded, 70)
    if "bpp" in target:
        assert result.bpp <= 1.2


@pytest.mark.parametrize("allocator", ["lagrangian", "greedy"])
def test_a_qpnet_with_side_inputs_gets_the_reference_utility(
    side_env: Path, original: np.ndarray, allocator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs, sides = [], []
    real_ref, real_predict = reference_error.reference_sse, qpnet.predict_groups
    monkeypatch.setattr(
        reference_error, "reference_sse", lambda *a, **k: refs.append(real_ref(*a, **k)) or refs[-1]
    )
    monkeypatch.setattr(
        qpnet,
        "predict_groups",
        lambda m, p, side=None: sides.append(side) or real_predict(m, p, side),
    )
    result = Encoder().encode(original, allocator=allocator, jpeg_quality=70)
    assert result.nbytes <= result.budget  # type: ignore[operator]
    # One reference computation serves QP-NET and (ours) the error curves, the paper's too.
    assert len(refs) == 1 and len(sides) == 1 and sides[0] is not None
    from accelir.profiles import block_areas

    area = block_areas(320, 384, 3, 3, 128)  # the 80×96 degraded input's 3×3 blocks, ×4
    np.testing.assert_allclose(sides[0], reference_error.qpnet_side_inputs(refs[0], area))


def test_the_error_level_model_sets_the_predicted_psnr_but_not_the_container(
    env: Path, original: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from accelir.error_level import OFFSET, LevelModel

    results = {}
    for mse in (1.0, 100.0):
        directory = tmp_path / f"level{mse}"
        shutil.copytree(env, directory)
        shipped = utility_model.load("edsr", "sr4", 32, directory)
        level = LevelModel(np.array([np.log10(mse + OFFSET), 0.0, 0.0]), 1.0)  # a constant level
        report = {**shipped.report, "level": level.to_dict()}
        utility_model.save("edsr", "sr4", 32, shipped.qpnet, shipped.groups, report, directory)
        monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(directory))
        assert utility_model.load("edsr", "sr4", 32, directory).level is not None
        results[mse] = Encoder().encode(original, bpp=1.2)
    # The level is a per-block constant: the allocation at a byte budget does not see it, the
    # prediction does (a 100× higher level at the top quality, a lower predicted PSNR).
    assert results[1.0].container == results[100.0].container
    assert results[1.0].predicted_psnr > results[100.0].predicted_psnr + 3  # type: ignore[operator]


def test_more_budget_gives_higher_qualities(env: Path, original: np.ndarray) -> None:
    small = Encoder().encode(original, bpp=0.8)
    large = Encoder().encode(original, bpp=2.5)
    assert large.nbytes > small.nbytes
    assert large.quality_map.mean() > small.quality_map.mean()
    assert large.predicted_psnr is not None and small.predicted_psnr is not None
    assert large.predicted_psnr > small.predicted_psnr


def test_psnr_target_picks_the_fewest_bytes(env: Path, original: np.ndarray) -> None:
    encoder = Encoder()
    reference = encoder.encode(original, bpp=1.5)
    assert reference.predicted_psnr is not None
    reached = encoder.encode(original, psnr=reference.predicted_psnr - 0.5)
    assert (
        reached.predicted_psnr is not None
        and reached.predicted_psnr >= reference.predicted_psnr - 0.5 - 1e-6
    )
    assert reached.nbytes < reference.nbytes


def test_verified_psnr_target_is_measured_and_reached(env: Path, original: np.ndarray) -> None:
    from accelir import metrics, tasks

    encoder, restorer = Encoder(), Restorer(width=32)
    target = tasks.target(original, "sr4")

    def measured(data: bytes) -> float:
        return metrics.psnr(restorer.restore(data).image, target)

    goal = measured(encoder.encode(original, bpp=1.5).container) - 0.3
    result = encoder.encode(original, psnr=goal, verify=True)
    assert result.measured_psnr is not None and result.measured_psnr >= goal
    assert result.measured_psnr == pytest.approx(measured(result.container), abs=1e-9)
    assert "verification" in result.timings
    assert encoder.encode(original, psnr=goal).measured_psnr is None
    # Out of reach: the best the encoder found, and a measured PSNR that says it fell short.
    far = encoder.encode(original, psnr=80.0, verify=True)
    assert far.measured_psnr is not None and far.measured_psnr < 80.0
    assert far.quality_map.min() >= 90
    for kwargs in ({"bpp": 1.2, "verify": True}, {"psnr": 30.0, "verify": True, "degraded": True}):
        with pytest.raises(ValueError, match="verify"):
            encoder.encode(original, **kwargs)  # type: ignore[arg-type]


def test_degraded_input_and_oracle(env: Path, original: np.ndarray) -> None:
    encoder = Encoder()
    low = encoder.encode(original, bpp=1.2).degraded
    assert low is not None
    again = encoder.encode(low, bpp=1.2, degraded=True)
    assert again.container == encoder.encode(original, bpp=1.2).container
    oracle = encoder.encode(original, jpeg_quality=70, allocator="oracle")
    assert oracle.nbytes <= oracle.budget  # type: ignore[operator]
    with pytest.raises(ValueError, match="original"):
        encoder.encode(low, bpp=1.2, allocator="oracle", degraded=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one target"),
        ({"bpp": 1.0, "nbytes": 100}, "exactly one target"),
        ({"bpp": 1.0, "allocator": "fastest"}, "allocator"),
        ({"jpeg_quality": 0}, "1..100"),
        ({"nbytes": 10}, "below the smallest"),
    ],
)
def test_encode_rejects_bad_requests(
    env: Path, original: np.ndarray, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Encoder().encode(original, **kwargs)


def test_restorer_and_command_line(env: Path, original: np.ndarray, tmp_path: Path) -> None:
    encoded = Encoder().encode(original, bpp=1.2)
    result = Restorer().restore(encoded.container)
    assert result.image.shape == (320, 384, 3) and result.flops == round(711_360.0 * 80 * 96)
    assert set(result.timings) == {"decode", "restoration"}
    other = Encoder().encode(original[:, ::-1].copy(), bpp=0.9).container
    batch = Restorer().restore_batch([encoded.container, other, encoded.container])
    assert [r.flops for r in batch] == [result.flops] * 3
    assert np.abs(batch[0].image.astype(int) - result.image).max() <= 1
    assert np.abs(batch[1].image.astype(int) - Restorer().restore(other).image).max() <= 1

    source = tmp_path / "photo.png"
    Image.fromarray(original).save(source)
    runner = CliRunner()
    out = runner.invoke(app, ["encode", str(source), "-o", str(tmp_path / "a.air"), "--bpp", "1.2"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "a.air").read_bytes() == encoded.container
    out = runner.invoke(app, ["restore", str(tmp_path / "a.air"), "-o", str(tmp_path / "a.png"),
                              "--reference", str(source)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "PSNR" in out.output and (tmp_path / "a.png").exists()
    out = runner.invoke(app, ["inspect", str(tmp_path / "a.air"), "-o", str(tmp_path / "map.png")])
    assert out.exit_code == 0, out.output
    assert Image.open(tmp_path / "map.png").format == "PNG"
    out = runner.invoke(app, ["encode", str(source), "-o", str(tmp_path / "b.air"), "--psnr", "25",
                              "--verify"])  # fmt: skip
    assert out.exit_code == 0 and "measured" in out.output, out.output


def test_eval_command_writes_results(
    env: Path, photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`accelir eval` on a folder nobody has seen: results.json with every field, never larger
    than the baseline, a markdown table and plots; cached rows make a rerun free, and neither new
    weights under the same model id nor a new encoder version are served from the cache."""
    import json

    cards = {}
    for width in (64, 40):
        torch.manual_seed(width)
        card = zoo.ModelCard(
            name="edsr", task="sr4", width=width, params=1, flops_per_pixel=1e6 * width / 64, flops_960x540=1,
            data="test", steps=0, batch=0, patch=0, device="cpu", minutes=0.0, validation={}, baseline={},
            command="",
        )  # fmt: skip
        zoo.save(M.build("edsr", width, 4).eval(), card, env)
        cards[width] = card
    folder = tmp_path / "unseen"
    folder.mkdir()
    for i, (y, x) in enumerate([(0, 0), (250, 400)]):
        Image.fromarray(np.ascontiguousarray(photo[y : y + 192, x : x + 256])).save(
            folder / f"img{i}.png"
        )
    out = tmp_path / "results"
    args = [
        "eval",
        "--data",
        str(folder),
        "--task",
        "sr4",
        "--family",
        "edsr",
        "--bpp",
        "1.0",
        "2.0",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    assert summary["task"] == "sr4" and summary["family"] == "edsr" and len(summary["points"]) == 2
    for point in summary["points"]:
        assert set(point) >= {"target", "baseline", "accelir", "saving", "gain_db"}
        assert [row["width"] for row in point["accelir"]] == [64, 40, 32]
        for row in [point["baseline"], *point["accelir"]]:
            assert set(row) >= {
                "width",
                "psnr",
                "psnr_y",
                "ssim",
                "bytes",
                "bpp",
                "flops",
                "seconds",
            }
            assert row["bytes"] <= point["baseline"]["bytes"]
    assert "bd_psnr_db" in summary and "bd_rate" in summary
    assert (out / "results.md").exists() and (out / "edsr_sr4.png").exists()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and json.loads((out / "results.json").read_text()) == summary
    torch.manual_seed(99)
    zoo.save(M.build("edsr", 64, 4).eval(), cards[64], env)  # retrained: same id, new weights
    retrained = CliRunner().invoke(app, args)
    assert retrained.exit_code == 0, retrained.output
    assert len(list((out / "cache").iterdir())) == 2
    assert json.loads((out / "results.json").read_text()) != summary
    import accelir.cli.evaluate as evaluate_cli

    monkeypatch.setattr(evaluate_cli, "ENCODER_VERSION", evaluate_cli.ENCODER_VERSION + 1)
    assert CliRunner().invoke(app, args).exit_code == 0
    assert len(list((out / "cache").iterdir())) == 3
    for width in (64, 40):
        (env / f"edsr_sr4_w{width}.safetensors").unlink()
        (env / f"edsr_sr4_w{width}.json").unlink()


def test_budget_is_met_when_rates_are_underestimated(
    env: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refit loop shrinks from what the last choice was estimated to spend. When even the
    least-error choice fits the (under)estimate but not the real budget — denoising, where
    middle qualities restore best, or shared Huffman tables fitting a mixed map worse than the
    per-quality estimate — the container must still fit, not fail after its refits."""
    import accelir.pipeline as pipeline

    encoder = Encoder()
    top = encoder.encode(photo, nbytes=10**7)  # every block at its least-error quality
    real = pipeline.block_rates
    monkeypatch.setattr(pipeline, "block_rates", lambda dct, qs: 0.75 * real(dct, qs))
    result = encoder.encode(photo, nbytes=top.nbytes - 1)
    assert result.nbytes == len(result.container) <= top.nbytes - 1
    assert result.quality_map.mean() > 0.8 * top.quality_map.mean()  # a small step down, not q10


def test_profile_and_train_qpnet_commands_ship_a_qpnet_with_the_reference(
    env: Path, photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accelir.data.datasets import DIV2K_FOLDERS

    data, weights = tmp_path / "div2k", tmp_path / "weights"
    for split, names, corners in (("train", ["0001", "0002"], [(0, 0), (300, 500)]),
                                  ("val", ["0801"], [(200, 100)])):  # fmt: skip
        folder = data / DIV2K_FOLDERS[split]
        folder.mkdir(parents=True)
        for name, (y, x) in zip(names, corners, strict=True):
            Image.fromarray(photo[y : y + 256, x : x + 320]).save(folder / f"{name}.png")
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(weights))
    import shutil

    shutil.copytree(env, weights)
    runner, profiles = CliRunner(), tmp_path / "profiles"
    for split in ("train", "val"):
        result = runner.invoke(app, ["profile", "--data", str(data), "--split", split,
                                     "--out", str(profiles), "--max-side", "512"])  # fmt: skip
        assert result.exit_code == 0, result.output
    args = ["train", "qpnet", "--profiles", str(profiles), "--data", str(data), "--groups", "4",
            "--epochs", "2", "--figure", str(tmp_path / "figures")]  # fmt: skip
    # Profiles taken at one cap and photographs read at another do not line up: a clear error.
    result = runner.invoke(app, [*args, "--max-side", "200"])
    assert result.exit_code != 0 and "does not match its profile" in result.output
    result = runner.invoke(app, [*args, "--max-side", "512"])
    assert result.exit_code == 0, result.output
    shipped = utility_model.load("edsr", "sr4", 32, weights)
    assert shipped.qpnet.side_inputs == 1
    assert shipped.report["side_inputs"] == ["reference_utility"]
    assert shipped.level is not None and set(shipped.report["level_heldout"]) == {
        "texture",
        "group",
    }
    assert 0.0 <= shipped.report["side_only_adjacent"] <= 1.0
    # Two training photographs cannot be cross-validated over 4 folds: no correction, and why.
    assert shipped.shape is None and not shipped.report["shape"]["shipped"]
    assert "cross-validation needs 4 training images" in shipped.report["shape"]["rule"]
    assert (tmp_path / "figures" / "qpnet_edsr_sr4_w32.png").exists()
    report = runner.invoke(app, ["eval", "--qpnet-accuracy", "--qpnet-width", "32"])
    assert report.exit_code == 0 and "pixels + reference_utility" in report.output
    assert Encoder().encode(np.ascontiguousarray(photo[:256, :256]), bpp=1.0).nbytes > 0
    result = runner.invoke(app, [*args, "--max-side", "512", "--no-reference"])
    assert result.exit_code == 0, result.output
    assert utility_model.load("edsr", "sr4", 32, weights).qpnet.side_inputs == 0
    # Forcing the correction where it cannot be cross-validated is a clear error.
    result = runner.invoke(app, [*args, "--max-side", "512", "--keep-qpnet", "--shape"])
    assert result.exit_code != 0 and "cross-validation needs" in result.output


def test_a_shipped_shape_correction_shapes_the_lagrangian_curves(
    env: Path, original: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from accelir import allocation, error_shape

    directory = tmp_path / "shape"
    shutil.copytree(env, directory)
    shipped = utility_model.load("edsr", "sr4", 32, directory)
    args = ("edsr", "sr4", 32, shipped.qpnet, shipped.groups, shipped.report, directory)
    utility_model.save(*args, shape=error_shape.ShapeCorrection(members=1, hidden=4))
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(directory))
    refs, shaped, seen = [], [], []
    real_ref, real_shape = reference_error.reference_sse, error_shape.corrected_sse
    real_alloc = allocation.allocate_lagrangian
    monkeypatch.setattr(
        reference_error, "reference_sse", lambda *a, **k: refs.append(real_ref(*a, **k)) or refs[-1]
    )
    monkeypatch.setattr(
        error_shape, "corrected_sse", lambda m, r, *a, **k: shaped.append((r, real_shape(m, r, *a, **k))) or shaped[-1][1]
    )  # fmt: skip
    monkeypatch.setattr(
        allocation, "allocate_lagrangian", lambda r, d, b: seen.append(d) or real_alloc(r, d, b)
    )
    result = Encoder().encode(original, jpeg_quality=70)
    assert result.nbytes <= result.budget  # type: ignore[operator]
    assert len(refs) == 1 and len(shaped) == 1 and shaped[0][0] is refs[0]
    # What the allocator minimises: each block's level plus the corrected increase.
    increase = seen[0] - seen[0][:, -1:]
    np.testing.assert_allclose(increase, shaped[0][1])
    # Without the correction the same encoder takes the reference increase instead.
    utility_model.save(*args)
    seen.clear()
    Encoder().encode(original, jpeg_quality=70)
    np.testing.assert_allclose(seen[0] - seen[0][:, -1:], refs[-1] - refs[-1][:, -1:])
    assert len(shaped) == 1


def test_without_a_reference_the_shipped_correction_reshapes_the_coding_distortion(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deblurring has no bicubic reference: where a correction ships (MIMO-UNet-26), the
    allocator sees the group law's top level plus the corrected coding distortion."""
    from accelir import allocation, error_shape
    from accelir.codec import rates

    assert utility_model.load("mimo_unet", "deblur", 26).shape is not None
    shaped, seen, coded = [], [], []
    real_shape, real_alloc = error_shape.corrected_sse, allocation.allocate_lagrangian
    real_coded = rates.block_distortions
    monkeypatch.setattr(
        error_shape, "corrected_sse", lambda m, r, c, *a, **k: shaped.append((r, c, real_shape(m, r, c, *a, **k))) or shaped[-1][2]
    )  # fmt: skip
    monkeypatch.setattr(
        allocation, "allocate_lagrangian", lambda r, d, b: seen.append(d) or real_alloc(r, d, b)
    )
    import accelir.pipeline as pipeline

    monkeypatch.setattr(
        pipeline, "block_distortions", lambda *a: coded.append(real_coded(*a)) or coded[-1]
    )
    image = np.ascontiguousarray(photo[:200, :260])
    result = Encoder("deblur", "mimo_unet", 26).encode(image, jpeg_quality=70)
    assert result.nbytes <= result.budget  # type: ignore[operator]
    assert len(shaped) == 1 and shaped[0][0] is coded[0] and shaped[0][1] is coded[0]
    np.testing.assert_allclose(seen[0] - seen[0][:, -1:], shaped[0][2])

"""Training plumbing: patch pools, the loop (checkpoint, resume, budget), weights and cards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import accelir.models as M
from accelir.models import zoo
from accelir.training.loop import TrainConfig, _param_groups, train
from accelir.training.pool import PatchPool, random_quality_map
from accelir.training.validate import evaluate, make_val_set


@pytest.fixture(scope="module")
def photos(photo: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(photo[:200, :256]), np.ascontiguousarray(photo[300:500, 500:756])]


@pytest.mark.parametrize("task", ["sr4", "denoise", "deblur"])
def test_pool_batches_are_aligned_pairs(photos: list[np.ndarray], task: str) -> None:
    pool = PatchPool(photos, task, variants=2, seed=1)
    x, y, sigma = pool.batch(5, 16)
    s = 4 if task == "sr4" else 1
    assert x.shape == (5, 3, 16, 16) and y.shape == (5, 3, 16 * s, 16 * s) and sigma.shape == (5,)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    if task == "denoise":
        assert float(sigma.max()) <= 50 / 255
    # inputs were coded: the variant is not the plain degradation
    assert pool.variants[0][0].input.shape[:2] == (
        pool.targets[0].shape[0] // s,
        pool.targets[0].shape[1] // s,
    )


def test_quality_maps_use_the_quality_set() -> None:
    rng = np.random.default_rng(0)
    maps = [random_quality_map((3, 4), rng) for _ in range(20)]
    values = set(np.concatenate([m.ravel() for m in maps]).tolist())
    assert values <= {10, 20, 30, 40, 50, 60, 65, 70, 75, 80, 85, 90, 95}
    assert any(len(set(m.ravel().tolist())) > 1 for m in maps)
    assert any(len(set(m.ravel().tolist())) == 1 for m in maps)


def test_train_checkpoints_resumes_and_learns(photos: list[np.ndarray], tmp_path: Path) -> None:
    torch.manual_seed(0)
    pool = PatchPool(photos, "sr2", variants=1, seed=0)
    val = make_val_set([("a", photos[0][:64, :64])], "sr2")
    model = M.build("fsrcnn", 36, 2)
    cfg = TrainConfig(
        model="fsrcnn",
        width=36,
        task="sr2",
        steps=30,
        batch=4,
        patch=16,
        lr=2e-3,
        val_every=10,
        checkpoint_every=10,
        precision="fp32",
    )
    x, y, _ = pool.batch(8, 16)
    with torch.no_grad():
        before = float(torch.nn.functional.l1_loss(model(x), y))
    state = train(cfg, model, pool, val, tmp_path, show_progress=False)
    assert state.step == 30 and (tmp_path / "checkpoint.pt").exists()
    with torch.no_grad():
        after = float(torch.nn.functional.l1_loss(model(x), y))
    assert after < before
    # resuming a finished run trains no further
    again = train(cfg, M.build("fsrcnn", 36, 2), pool, val, tmp_path, show_progress=False)
    assert again.step == 30
    # a longer plan continues from the checkpoint
    more = train(
        TrainConfig(**{**cfg.__dict__, "steps": 40}),
        M.build("fsrcnn", 36, 2),
        pool,
        val,
        tmp_path,
        show_progress=False,
    )
    assert more.step == 40


def test_fsrcnn_deconvolution_learns_ten_times_slower() -> None:
    """FSRCNN's paper schedule: deconvolution at a tenth of the convolutions' learning rate."""
    model = M.build("fsrcnn", 36, 4)
    groups = _param_groups(model)
    by_scale = {g["lr_scale"]: {id(p) for p in g["params"]} for g in groups}  # type: ignore[attr-defined]
    assert set(by_scale) == {1.0, 0.1}
    assert by_scale[0.1] == {id(p) for p in model.deconvolution.parameters()}
    assert sum(len(v) for v in by_scale.values()) == len(list(model.parameters()))
    assert [g["lr_scale"] for g in _param_groups(M.build("edsr", 32, 4))] == [1.0]


def test_time_budget_stops_early(photos: list[np.ndarray], tmp_path: Path) -> None:
    pool = PatchPool(photos, "denoise", variants=1, seed=0)
    val = make_val_set([("a", photos[0][:48, :48])], "denoise")
    cfg = TrainConfig(
        model="ircnn",
        width=52,
        task="denoise",
        steps=10**6,
        max_minutes=0.05,
        batch=2,
        patch=16,
        precision="fp32",
    )
    state = train(cfg, M.build("ircnn", 52), pool, val, tmp_path, show_progress=False)
    assert 0 < state.step < 10**6 and state.seconds < 30


def test_validation_scores_the_naive_baseline(photos: list[np.ndarray]) -> None:
    val = make_val_set([("a", photos[0][:96, :96])], "sr2")
    scores = evaluate(None, val, "sr2")
    assert set(scores) == {"q75", "mixed"} and 20 < scores["q75"]["psnr"] < 50
    assert scores["q75"]["psnr"] > scores["mixed"]["psnr"] - 5


def test_weights_and_cards_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = M.build("dncnn", 56)
    card = zoo.ModelCard(
        name="dncnn",
        task="denoise",
        width=56,
        params=1,
        flops_per_pixel=2.0,
        flops_960x540=3,
        data="d",
        steps=1,
        batch=1,
        patch=1,
        device="cpu",
        minutes=0.1,
        validation={"q75": {"psnr": 30.0, "psnr_y": 31.0, "ssim": 0.9}},
        baseline={},
        command="",
    )
    path = zoo.save(model, card, tmp_path)
    assert path.name == "dncnn_denoise_w56.safetensors"
    assert json.loads((tmp_path / "dncnn_denoise_w56.json").read_text())["width"] == 56
    assert [c.id for c in zoo.catalog(tmp_path)] == ["dncnn_denoise_w56"]
    reloaded = zoo.load_weights(M.build("dncnn", 56), path).eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), reloaded(x), atol=2e-2)


def test_load_refuses_unknown_or_mismatched_models() -> None:
    with pytest.raises(ValueError, match="not for task"):
        M.load("edsr", 32, "denoise")
    with pytest.raises(FileNotFoundError, match="no shipped weights"):
        M.load("edsr", 17, "sr4")
    with pytest.raises(ValueError, match="unknown model"):
        M.load("vdsr", 64, "sr4")

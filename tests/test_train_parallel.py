"""Side-by-side training (`accelir train zoo --parallel`): real subprocesses, a real deadline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import accelir.models as M
from accelir.cli.train_parallel import run_parallel, threads_per_job
from accelir.models import registry, zoo
from accelir.training import loop
from accelir.training.loop import TrainConfig, train
from accelir.training.plan import GPU_PLAN, PLANS, TrainJob
from accelir.training.pool import PatchPool
from accelir.training.validate import make_val_set


@pytest.fixture()
def div2k(photo: np.ndarray, tmp_path: Path) -> Path:
    """A DIV2K-layout folder: two training and one validation crop of the bundled photograph."""
    root = tmp_path / "div2k"
    crops = {
        "DIV2K_train_HR/0001.png": photo[:128, :160],
        "DIV2K_train_HR/0002.png": photo[200:328, 300:460],
        "DIV2K_valid_HR/0801.png": photo[400:528, 600:760],
    }
    for name, crop in crops.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(root / name)
    return root


@pytest.mark.slow
def test_parallel_jobs_train_validate_and_export(div2k: Path, tmp_path: Path) -> None:
    jobs = [
        TrainJob("fsrcnn", "sr4", 36, steps=30, batch=4, patch=16, max_side=None, variants=1),
        TrainJob("dncnn", "denoise", 56, steps=30, batch=4, patch=16, max_side=None, variants=1),
    ]
    weights, runs = tmp_path / "weights", tmp_path / "runs"
    t0 = time.perf_counter()
    codes = run_parallel(
        jobs, parallel=2, minutes=3.0, grace_minutes=1.0, data=div2k, runs=runs, weights_dir=weights
    )
    assert codes == {"fsrcnn_sr4_w36": 0, "dncnn_denoise_w56": 0}
    assert time.perf_counter() - t0 < 150  # the jobs ended on their steps, not the deadline
    for model in codes:
        card = json.loads((weights / f"{model}.json").read_text())
        assert (weights / f"{model}.safetensors").exists()
        assert card["steps"] == 30 and card["validation"]["q75"]["psnr"] > 10
        assert any("side by side" in note for note in card["notes"])
        assert (runs / f"{model}.log").stat().st_size > 0


@pytest.mark.slow
def test_hard_deadline_stops_a_job_that_overruns(div2k: Path, tmp_path: Path) -> None:
    """A job that would train for ever is given until the deadline, then its grace, then stopped
    — its weights are exported when its own budget (the deadline) ends it."""
    job = TrainJob("fsrcnn", "sr4", 36, steps=10**9, batch=4, patch=16, max_side=None, variants=1)
    t0 = time.perf_counter()
    codes = run_parallel(
        [job],
        parallel=1,
        minutes=0.6,
        grace_minutes=0.05,
        data=div2k,
        runs=tmp_path / "runs",
        weights_dir=tmp_path / "weights",
    )
    elapsed = time.perf_counter() - t0
    # Either the job met its deadline and exported in the grace time, or it was stopped there.
    assert codes["fsrcnn_sr4_w36"] in (0, None)
    assert 30 < elapsed < 36 + 3 + 10 + 5  # deadline + grace + TERM→KILL wait + polling


def test_gpu_plan_covers_every_untrained_width_and_continues_only_shipped_models() -> None:
    assert PLANS["gpu"] is GPU_PLAN
    ids = {zoo.model_id(j.model, j.task, j.width) for j in GPU_PLAN}
    default_task = {"sr": "sr4", "denoise": "denoise", "deblur": "deblur"}
    for name in registry.names():
        spec = registry.get(name)
        for width in spec.widths:
            model = zoo.model_id(name, default_task[spec.kind], width)
            if not (zoo.weights_dir() / f"{model}.safetensors").exists():
                assert model in ids, f"{model} ships no weights and is not in the GPU plan"
    for job in GPU_PLAN:
        if job.init_from:
            assert (zoo.weights_dir() / f"{zoo.model_id(*job.init_from)}.safetensors").exists()


class SlowStartClock:
    """Active seconds as a function of steps taken: 1 s per step for the first 20 (warm-up),
    then 0.1 s per step. ``tick`` is called once per training step."""

    def __init__(self) -> None:
        self.steps = 0

    def __enter__(self) -> SlowStartClock:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def tick(self) -> float:
        self.steps += 1
        return min(self.steps, 20) * 1.0 + max(0, self.steps - 20) * 0.1


def test_budget_replans_the_schedule_as_the_pace_changes(
    photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow start must not fix the schedule: planned once after 20 one-second steps, a
    60-second budget would stop at step 60 with 36 s unused; re-planned as the pace settles at
    0.1 s, it runs ~400 steps and ends on its schedule's last step with the budget spent."""
    monkeypatch.setattr(loop, "ActiveClock", SlowStartClock)
    crop = np.ascontiguousarray(photo[:64, :64])
    pool = PatchPool([crop], "sr4", 1)
    val = make_val_set([("crop", crop)], "sr4")
    cfg = TrainConfig(
        "fsrcnn", 36, "sr4", steps=10**6, max_minutes=1.0, batch=1, patch=8, val_every=10**6
    )
    state = train(cfg, M.build("fsrcnn", 36, 4), pool, val, tmp_path, show_progress=False)
    assert 380 <= state.step <= 420
    assert state.seconds >= 0.95 * 60


def test_jobs_share_the_cores_equally() -> None:
    assert threads_per_job(jobs=6, parallel=16, cores=16) == 2
    assert threads_per_job(jobs=20, parallel=16, cores=16) == 1
    assert threads_per_job(jobs=3, parallel=2, cores=16) == 8
    assert threads_per_job(jobs=4, parallel=4, cores=2) == 1


def test_train_ir_card_records_the_seed(div2k: Path, tmp_path: Path) -> None:
    """The card's command reproduces the run: a non-default seed is part of it."""
    from typer.testing import CliRunner

    from accelir.cli import app

    weights = tmp_path / "weights"
    result = CliRunner().invoke(app, [
        "train", "ir", "--model", "fsrcnn", "--task", "sr4", "--width", "36", "--data", str(div2k),
        "--steps", "3", "--batch", "2", "--patch", "16", "--variants", "1", "--seed", "3",
        "--runs", str(tmp_path / "runs"), "--weights-dir", str(weights), "--threads", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((weights / "fsrcnn_sr4_w36.json").read_text())
    assert card["command"].endswith("--seed 3") and card["steps"] == 3

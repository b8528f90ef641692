"""Crashes (checklist items 11, 13, 14, 18): a SIGKILLed encoder's job is reclaimed by another
worker and stored once; a live worker's long job is never run twice (the heartbeat extends it);
a Redis restart with AOF persistence loses no accepted job."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from service_support import (
    job_status,
    make_settings,
    start_worker,
    subprocess_env,
    upload,
    wait_for,
)

from service import keys
from service.app import create_app
from service.redis_server import RedisServer

FAST = {
    "ACCELIR_VISIBILITY_TIMEOUT_S": "2",
    "ACCELIR_HEARTBEAT_INTERVAL_S": "0.4",
    "ACCELIR_RECLAIM_INTERVAL_S": "0.2",
    "ACCELIR_RETRY_BACKOFF_MAX_S": "0.5",
    "ACCELIR_BLOCK_MS": "200",
}


def _containers(blob_dir: Path) -> list[Path]:
    folder = blob_dir / "containers"
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.exists() else []


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_sigkilled_worker_job_is_reclaimed_and_stored_once(
    client, rdb, redis_url, blob_dir, weights_env, png_bytes, tmp_path
) -> None:
    env = subprocess_env(redis_url, blob_dir, weights_env, ACCELIR_WORKER_TEST_DELAY_S="30", **FAST)
    doomed = start_worker("encoder", env, log=tmp_path / "doomed.log")
    try:
        job_id = upload(client, png_bytes).json()["job_id"]
        wait_for(lambda: _containers(blob_dir), timeout=60)  # stored, now in the slow part
        assert job_status(client, job_id)["state"] == "encoding"
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    finally:
        _stop(doomed)
    assert rdb.xpending(keys.STREAM_ENCODE, "encoders")["pending"] == 1
    rescuer = start_worker(
        "encoder",
        subprocess_env(redis_url, blob_dir, weights_env, **FAST),
        burst=True,
        log=tmp_path / "rescuer.log",
    )
    try:
        assert rescuer.wait(90) == 0, (tmp_path / "rescuer.log").read_text()[-2000:]
    finally:
        _stop(rescuer)
    status = job_status(client, job_id)
    assert status["state"] == "done" and status["attempts"] == 2
    assert len(_containers(blob_dir)) == 1
    assert rdb.xlen(keys.STREAM_ENCODE) == 0 and rdb.exists(keys.job_lock(job_id, "encode")) == 0


@pytest.mark.slow
def test_long_job_is_never_run_twice_concurrently(
    client, redis_url, blob_dir, weights_env, png_bytes, tmp_path
) -> None:
    # The job (3 s) outlives the visibility timeout (1.5 s): only the heartbeat keeps it.
    env = subprocess_env(
        redis_url,
        blob_dir,
        weights_env,
        **{**FAST, "ACCELIR_VISIBILITY_TIMEOUT_S": "1.5", "ACCELIR_HEARTBEAT_INTERVAL_S": "0.3"},
        ACCELIR_WORKER_TEST_DELAY_S="3",
    )
    workers = [start_worker("encoder", env, log=tmp_path / f"w{i}.log") for i in range(2)]
    try:
        job_id = upload(client, png_bytes).json()["job_id"]
        wait_for(lambda: job_status(client, job_id)["state"] == "done", timeout=90, interval=0.2)
        assert job_status(client, job_id)["attempts"] == 1
    finally:
        for w in workers:
            _stop(w)


@pytest.mark.slow
def test_redis_restart_loses_no_accepted_job(tmp_path, weights_env, png_bytes) -> None:
    server = RedisServer(tmp_path / "redis").start()
    blob_dir = tmp_path / "blobs"
    worker = start_worker(
        "encoder",
        subprocess_env(
            server.url, blob_dir, weights_env, ACCELIR_WORKER_TEST_DELAY_S="0.2", **FAST
        ),
        log=tmp_path / "worker.log",
    )
    try:
        with redis.Redis.from_url(server.url, decode_responses=True) as r:
            assert r.config_get("appendonly")["appendonly"] == "yes"
            assert r.config_get("appendfsync")["appendfsync"] == "everysec"
        settings = make_settings(server.url, blob_dir)
        accepted: list[str] = []
        with TestClient(create_app(settings)) as c:
            for _ in range(8):
                response = upload(c, png_bytes)
                assert response.status_code == 202
                accepted.append(response.json()["job_id"])
            server.restart()  # SIGTERM: Redis fsyncs its AOF; then it replays it
            for _ in range(4):
                response = upload(c, png_bytes)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["job_id"])

            def all_done() -> bool:
                return all(job_status(c, j)["state"] == "done" for j in accepted)

            wait_for(all_done, timeout=120, interval=0.3)
    finally:
        _stop(worker)
        server.stop()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()

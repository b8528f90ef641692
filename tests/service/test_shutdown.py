"""SIGTERM (checklist item 25): readiness turns false first, nothing new is read, the job in
flight finishes within the grace period or is handed back (immediately claimable), then the
process exits — for workers and for the gateway."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest
from service_support import (
    LiveGateway,
    job_status,
    live_gateway_env,
    start_worker,
    subprocess_env,
    upload,
    wait_for,
)

from service import keys
from worker.main import build

FAST = {
    "ACCELIR_VISIBILITY_TIMEOUT_S": "3",
    "ACCELIR_HEARTBEAT_INTERVAL_S": "0.3",
    "ACCELIR_RECLAIM_INTERVAL_S": "0.2",
    "ACCELIR_RETRY_BACKOFF_MAX_S": "0.5",
    "ACCELIR_BLOCK_MS": "200",
}


def _registered(rdb) -> list[str]:
    return rdb.zrangebyscore(keys.workers("encoder"), time.time(), "+inf")


def _in_slow_part(client, job_id: str, blob_dir) -> bool:
    folder = blob_dir / "containers"
    return (
        folder.exists()
        and any(folder.iterdir())
        and job_status(client, job_id)["state"] == "encoding"
    )


@pytest.mark.slow
def test_worker_finishes_its_job_within_the_grace_period(
    client, rdb, redis_url, blob_dir, weights_env, png_bytes, tmp_path
) -> None:
    env = subprocess_env(
        redis_url,
        blob_dir,
        weights_env,
        ACCELIR_WORKER_TEST_DELAY_S="2",
        ACCELIR_DRAIN_GRACE_S="20",
        **FAST,
    )
    worker = start_worker("encoder", env, log=tmp_path / "w.log")
    try:
        wait_for(lambda: _registered(rdb), timeout=60)
        job_id = upload(client, png_bytes).json()["job_id"]
        queued_later = upload(client, png_bytes).json()["job_id"]
        wait_for(lambda: _in_slow_part(client, job_id, blob_dir), timeout=60, interval=0.05)
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: not _registered(rdb), timeout=1.5, interval=0.05)  # readiness first
        assert worker.poll() is None  # still finishing its job
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert job_status(client, job_id)["state"] == "done"
    assert job_status(client, queued_later)["state"] == "queued"  # not read while draining


@pytest.mark.slow
def test_worker_hands_back_its_job_when_the_grace_period_ends(
    client, rdb, redis_url, blob_dir, weights_env, worker_config, png_bytes, tmp_path
) -> None:
    env = subprocess_env(
        redis_url,
        blob_dir,
        weights_env,
        ACCELIR_WORKER_TEST_DELAY_S="60",
        ACCELIR_DRAIN_GRACE_S="0.5",
        **FAST,
    )
    worker = start_worker("encoder", env, log=tmp_path / "w.log")
    try:
        job_id = upload(client, png_bytes).json()["job_id"]
        wait_for(lambda: _in_slow_part(client, job_id, blob_dir), timeout=60, interval=0.05)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if worker.poll() is None:
            worker.kill()
    [row] = rdb.xpending_range(keys.STREAM_ENCODE, "encoders", "-", "+", 10)
    assert row["times_delivered"] == 0  # handed back without counting against max tries
    assert row["time_since_delivered"] >= 3000  # claimable at once
    assert rdb.exists(keys.job_lock(job_id, "encode")) == 0
    build("encoder", worker_config).run(burst=True)
    assert job_status(client, job_id)["state"] == "done"


@pytest.mark.slow
def test_gateway_turns_unready_before_it_stops(redis_url, blob_dir, weights_env) -> None:
    gateway = LiveGateway(
        live_gateway_env(redis_url, blob_dir, weights_env, ACCELIR_SHUTDOWN_DELAY_S="2")
    ).wait_ready()
    try:
        assert httpx.get(gateway.url + "/readyz").status_code == 200
        gateway.process.send_signal(signal.SIGTERM)
        response = wait_for(
            lambda: (r := httpx.get(gateway.url + "/readyz", timeout=1)).status_code == 503 and r,
            timeout=1.5,
            interval=0.05,
        )
        assert response.json()["draining"] is True
        assert httpx.get(gateway.url + "/healthz").status_code == 200  # still serving meanwhile
        # uvicorn re-raises the signal once it has shut down cleanly: -SIGTERM is a clean exit.
        assert gateway.process.wait(20) in (0, -signal.SIGTERM)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway did not stop")
    finally:
        gateway.stop()

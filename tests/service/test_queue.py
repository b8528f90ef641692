"""The queue's delivery guarantees (checklist items 11–17), against a real Redis:
ack only after the result is stored, idempotent handlers, own pending entries first, no double
claims, locks with TTLs, dead letters after max tries (trimmed), back-off inside the reclaim
window, bounded streams."""

from __future__ import annotations

import threading
import time
from typing import Any

from service_support import job_status, make_worker_config, upload

from service import keys
from service.jobs import JobState
from worker import leases
from worker.context import Job
from worker.main import build


class FlakyBlobs:
    """A blob store whose first ``fail_puts`` writes (or every read, with ``fail_gets``) fail."""

    def __init__(self, inner: Any, fail_puts: int = 0, fail_gets: bool = False) -> None:
        self.inner, self.fail_puts, self.fail_gets = inner, fail_puts, fail_gets

    def put(self, key: str, data: bytes) -> bool:
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise OSError("disk full")
        return self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        if self.fail_gets:
            raise OSError("storage unreachable")
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)


def _files(path) -> list:
    return sorted(p for p in path.iterdir() if not p.name.startswith(".")) if path.exists() else []


def test_ack_only_after_the_result_is_stored(
    client, rdb, worker_config, png_bytes, blob_dir
) -> None:
    job_id = upload(client, png_bytes).json()["job_id"]
    consumer = build("encoder", worker_config)
    consumer.ctx.blobs = FlakyBlobs(consumer.ctx.blobs, fail_puts=1)
    entries = consumer._read(">", None)
    consumer._handle_all(entries)  # the write fails: the entry stays pending, not acked
    assert rdb.xpending(keys.STREAM_ENCODE, "encoders")["pending"] == 1
    assert rdb.xlen(keys.STREAM_ENCODE) == 1
    assert job_status(client, job_id)["state"] == "encoding"
    assert _files(blob_dir / "containers") == []
    consumer.run(burst=True)  # retried after the back-off
    assert job_status(client, job_id)["state"] == "done"
    assert rdb.xpending(keys.STREAM_ENCODE, "encoders")["pending"] == 0
    assert len(_files(blob_dir / "containers")) == 1


def test_running_a_job_twice_stores_one_output(
    client, rdb, worker_config, png_bytes, blob_dir
) -> None:
    job_id = upload(client, png_bytes, restore="true").json()["job_id"]
    for kind, folder, state in (
        ("encoder", "containers", "encoded"),
        ("decoder", "outputs", "done"),
    ):
        consumer = build(kind, worker_config)
        consumer.ws.on_startup(consumer.ctx)
        for _ in range(2):
            before = "queued" if kind == "encoder" else "encoded"
            rdb.hset(
                keys.job(job_id), "state", before
            )  # as if the first run died before its transition
            record = consumer.ctx.load_job(job_id)
            consumer.ws.handler(consumer.ctx, Job("0-1", job_id, time.time(), 1, record))
            assert job_status(client, job_id)["state"] == state
        assert len(_files(blob_dir / folder)) == 1
    assert rdb.xlen(keys.STREAM_RESTORE) >= 1


def test_own_pending_entries_are_read_first(client, rdb, redis_url, blob_dir, png_bytes) -> None:
    config = make_worker_config(
        redis_url, blob_dir, visibility_timeout_s=30.0, heartbeat_interval_s=1.0
    )
    job_id = upload(client, png_bytes).json()["job_id"]
    rdb.xreadgroup(
        "encoders", "encoder-stable", {keys.STREAM_ENCODE: ">"}, count=1
    )  # delivered, then "crashed"
    stranger = build("encoder", config, consumer="encoder-other")
    assert stranger._reclaim() == 0  # idle for less than the visibility timeout: not reclaimable
    started = time.monotonic()
    build("encoder", config, consumer="encoder-stable").run(burst=True)
    assert time.monotonic() - started < 30
    assert job_status(client, job_id)["state"] == "done"


def test_reclaim_cannot_double_claim_and_locks_expire(rdb, redis_url, blob_dir) -> None:
    config = make_worker_config(redis_url, blob_dir, visibility_timeout_s=1.5)
    rdb.xgroup_create(keys.STREAM_ENCODE, "encoders", id="0", mkstream=True)
    for i in range(40):
        rdb.xadd(keys.STREAM_ENCODE, {"job_id": f"{i:032x}", "enqueued_at": "0"})
    rdb.xreadgroup("encoders", "ghost", {keys.STREAM_ENCODE: ">"}, count=100)  # a worker that died
    time.sleep(1.6)
    claims: dict[str, list[str]] = {}

    def claim(name: str) -> None:
        got: list[str] = []
        cursor = "0-0"
        while True:
            reply = rdb.xautoclaim(keys.STREAM_ENCODE, "encoders", name, 1500, cursor, count=3)
            got += [mid for mid, _ in reply[1]]
            cursor = reply[0]
            if cursor == "0-0":
                break
        claims[name] = got

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [m for got in claims.values() for m in got]
    assert len(claimed) == 40 and len(set(claimed)) == 40

    token = leases.acquire(rdb, "d" * 32, 0.3, "encode")
    assert token and leases.acquire(rdb, "d" * 32, 0.3, "encode") is None  # held
    time.sleep(0.4)
    assert leases.acquire(
        rdb, "d" * 32, 0.3, "encode"
    )  # the holder "died": its lock expired, no deadlock
    assert rdb.pttl(keys.job_lock("d" * 32, "encode")) > 0 and config.visibility_timeout_s > 0


def test_dead_letter_after_max_tries_then_ack(client, rdb, redis_url, blob_dir, png_bytes) -> None:
    config = make_worker_config(redis_url, blob_dir, max_tries=3)
    job_id = upload(client, png_bytes).json()["job_id"]
    consumer = build("encoder", config)
    consumer.ctx.blobs = FlakyBlobs(consumer.ctx.blobs, fail_gets=True)
    consumer.run(burst=True)
    status = job_status(client, job_id)
    assert status["state"] == "failed" and status["attempts"] == 3
    assert (
        status["error"]["type"] == "OSError"
        and "gave up after 3 deliveries" in status["error"]["detail"]
    )
    [(_, entry)] = rdb.xrange("accelir:dead:encode")
    assert (
        entry["job_id"] == job_id
        and entry["deliveries"] == "3"
        and entry["error"] == "storage unreachable"
    )
    assert (
        rdb.xlen(keys.STREAM_ENCODE) == 0
        and rdb.xpending(keys.STREAM_ENCODE, "encoders")["pending"] == 0
    )
    registry = consumer.ctx.metrics.registry
    assert (
        registry.get_sample_value(
            "accelir_jobs_processed_total", {"kind": "encoder", "outcome": "retried"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "accelir_jobs_processed_total", {"kind": "encoder", "outcome": "dead_lettered"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "accelir_job_errors_total", {"kind": "encoder", "error_type": "OSError"}
        )
        == 3
    )
    metrics = client.get("/metrics").text
    assert 'accelir_dead_letter_messages{stream="encode"} 1.0' in metrics


def test_dead_letter_stream_is_trimmed(rdb, redis_url, blob_dir) -> None:
    config = make_worker_config(redis_url, blob_dir, dead_letter_maxlen=50)
    consumer = build("encoder", config)
    consumer.ensure_group()
    for i in range(400):
        mid = rdb.xadd(keys.STREAM_ENCODE, {"job_id": f"{i:032x}"})
        consumer._dead_letter(mid, f"{i:032x}", 5, "OSError", "boom")
    assert rdb.xlen("accelir:dead:encode") <= 50 + 100  # MAXLEN ~ trims whole nodes of 100
    assert rdb.xlen(keys.STREAM_ENCODE) == 0


def test_retry_back_off_stays_inside_the_reclaim_window(
    client, rdb, redis_url, blob_dir, png_bytes
) -> None:
    config = make_worker_config(
        redis_url, blob_dir, retry_backoff_s=0.5, retry_backoff_max_s=2.0, visibility_timeout_s=3.0
    )
    assert all(config.backoff(n) <= 2.0 < config.visibility_timeout_s for n in range(1, 30))
    upload(client, png_bytes)
    consumer = build("encoder", config)
    consumer.ctx.blobs = FlakyBlobs(consumer.ctx.blobs, fail_gets=True)
    consumer._handle_all(consumer._read(">", None))
    [row] = rdb.xpending_range(keys.STREAM_ENCODE, "encoders", "-", "+", 10)
    idle_s = row["time_since_delivered"] / 1000
    assert (
        config.visibility_timeout_s - config.backoff(1) - 0.2
        <= idle_s
        < config.visibility_timeout_s
    )
    time.sleep(config.backoff(1) + 0.05)
    assert consumer._reclaim() == 1  # claimable exactly after the back-off


def test_streams_stay_bounded(client, rdb, run_workers, png_bytes) -> None:
    for _ in range(12):
        assert upload(client, png_bytes, restore="true").status_code == 202
    assert rdb.xlen(keys.STREAM_ENCODE) == 12
    run_workers("encoder", "decoder")
    assert rdb.xlen(keys.STREAM_ENCODE) == 0 and rdb.xlen(keys.STREAM_RESTORE) == 0
    small = rdb.memory_usage(keys.STREAM_ENCODE)
    for _ in range(24):
        upload(client, png_bytes)
    run_workers("encoder")
    assert rdb.xlen(keys.STREAM_ENCODE) == 0
    assert rdb.memory_usage(keys.STREAM_ENCODE) <= small + 1024  # flat: acked entries are deleted
    assert all(
        job_status(client, k.split(":")[-1])["state"] == JobState.DONE
        for k in rdb.keys("accelir:job:*")
    )

"""Limits (checklist item 6): request rate per key and queue backlog → 429 with Retry-After;
body read timeout → 408; job processing timeout → retried, then dead-lettered."""

from __future__ import annotations

import anyio
import pytest
from fastapi.testclient import TestClient
from service_support import AUTH, OTHER_KEY, job_status, make_settings, make_worker_config, upload

from service.app import create_app
from service.metrics import GatewayMetrics
from service.middleware import GatewayMiddleware
from worker.main import build


def test_rate_limit_per_key(redis_url, blob_dir, png_bytes) -> None:
    settings = make_settings(redis_url, blob_dir, rate_limit_requests=3, rate_limit_window_s=60)
    with TestClient(create_app(settings)) as c:
        for _ in range(3):
            assert upload(c, png_bytes).status_code == 202
        limited = upload(c, png_bytes)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 61
        other = upload(c, png_bytes, headers={"Authorization": f"Bearer {OTHER_KEY}"})
        assert other.status_code == 202  # per key
        metrics = c.get("/metrics").text
        assert 'accelir_requests_rejected_total{reason="rate_limit"} 1.0' in metrics


def test_bounded_queue_answers_429_when_the_backlog_is_full(
    redis_url, blob_dir, png_bytes, run_workers
) -> None:
    settings = make_settings(redis_url, blob_dir, max_backlog=2, backlog_retry_after_s=7)
    with TestClient(create_app(settings)) as c:
        assert upload(c, png_bytes).status_code == 202
        assert upload(c, png_bytes).status_code == 202
        full = upload(c, png_bytes)
        assert full.status_code == 429 and full.headers["retry-after"] == "7"
        assert full.json()["type"] == "urn:accelir:problem:backlog-full"
        run_workers("encoder")
        assert upload(c, png_bytes).status_code == 202  # room again once drained
        assert 'accelir_requests_rejected_total{reason="backlog"} 1.0' in c.get("/metrics").text


def test_body_read_timeout_is_408() -> None:
    metrics = GatewayMetrics()

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = GatewayMiddleware(
        app, metrics=metrics, max_upload_bytes=10_000, body_read_timeout_s=0.2
    )
    sent = []

    async def slow_receive():
        await anyio.sleep(5)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/jobs", "headers": []}

    async def main():
        with anyio.fail_after(3):
            await middleware(scope, slow_receive, send)

    anyio.run(main)
    assert sent[0]["status"] == 408
    assert b"request-timeout" in sent[1]["body"]


def test_job_timeout_is_retried_then_dead_lettered(
    client, rdb, redis_url, blob_dir, png_bytes
) -> None:
    job_id = upload(client, png_bytes).json()["job_id"]
    config = make_worker_config(
        redis_url, blob_dir, job_timeout_s=0.3, worker_test_delay_s=1.0, max_tries=2
    )
    build("encoder", config).run(burst=True)
    status = job_status(client, job_id)
    assert status["state"] == "failed"
    assert status["error"]["type"] == "JobTimeout"
    assert status["attempts"] == 2
    [(_, entry)] = rdb.xrange("accelir:dead:encode")
    assert entry["job_id"] == job_id and entry["error_type"] == "JobTimeout"


@pytest.mark.parametrize(
    "overrides",
    [{"visibility_timeout_s": 1.0, "heartbeat_interval_s": 0.5}, {"retry_backoff_max_s": 5.0}],
)
def test_timing_rules_are_enforced(redis_url, blob_dir, overrides) -> None:
    with pytest.raises(ValueError):
        make_worker_config(redis_url, blob_dir, **{"visibility_timeout_s": 3.0, **overrides})


def test_timeouts_are_configured(settings) -> None:
    assert settings.request_timeout_s > 0 and settings.body_read_timeout_s > 0
    assert AUTH

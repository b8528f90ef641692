"""Liveness and readiness (checklist item 10): /healthz answers while the process runs; /readyz
only when Redis answers, a worker of each kind has a fresh heartbeat (registered after its models
loaded), and the gateway is not draining."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from service_support import make_settings, make_worker_config

from service.app import create_app
from service.redis_server import free_port
from worker.main import build


def test_readiness_needs_redis_and_workers_and_no_draining(redis_url, blob_dir, rdb) -> None:
    settings = make_settings(redis_url, blob_dir, ready_requires_workers=True)
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        not_ready = c.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["workers"] == {"encoder": 0, "decoder": 0}
        config = make_worker_config(redis_url, blob_dir)
        consumers = [build(kind, config) for kind in ("encoder", "decoder")]
        for consumer in consumers:
            consumer.ws.on_startup(consumer.ctx)  # models loaded, then registered
            consumer.register()
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json() == {
            "ready": True,
            "redis": True,
            "draining": False,
            "workers": {"encoder": 1, "decoder": 1},
        }
        consumers[0].unregister()
        assert c.get("/readyz").status_code == 503
        consumers[0].register()
        rdb.zadd(
            "accelir:workers:encoder", {consumers[0].ctx.consumer: time.time() - 1}
        )  # heartbeat expired
        assert c.get("/readyz").status_code == 503
        consumers[0].register()
        c.app.state.draining = True
        draining = c.get("/readyz")
        assert draining.status_code == 503 and draining.json()["draining"] is True
        assert c.get("/healthz").status_code == 200


def test_not_ready_without_redis_but_alive(blob_dir) -> None:
    settings = make_settings(
        f"redis://127.0.0.1:{free_port()}/0", blob_dir, redis_socket_timeout_s=0.5
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200
        response = c.get("/readyz")
        assert response.status_code == 503 and response.json()["redis"] is False
        job = c.get("/v1/jobs/" + "a" * 32, headers={"Authorization": "Bearer test-key-0123456789"})
        assert job.status_code == 503 and job.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in job.text


def test_start_up_warms_scripts_and_redis_connections(redis_url, blob_dir, rdb) -> None:
    """Before the first request: the Lua scripts are in Redis and the pool holds open connections."""
    from service import store

    rdb.script_flush()
    shas = [rdb.script_load(source) for source in (store.CREATE_LUA, store.RATE_LUA)]
    rdb.script_flush()
    before = len(rdb.client_list())
    settings = make_settings(redis_url, blob_dir, redis_warm_connections=6)
    with TestClient(create_app(settings)):
        assert rdb.script_exists(*shas) == [True, True]
        assert len(rdb.client_list()) >= before + 6

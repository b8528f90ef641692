"""``create_app(settings)``: the FastAPI gateway, built by a factory (nothing happens at import).

For uvicorn: ``uvicorn --factory service.app:create_app`` (settings from the environment). The
lifespan opens the Redis client, creates the consumer groups, warms up (``service.warmup``), and
— in the main thread of a server process — hooks SIGTERM/SIGINT so that readiness turns false first and the server stops
``shutdown_delay_s`` later (time for the load balancer to notice). In multiprocess metrics mode
the process marks itself dead on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import multiprocess
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import Scope

from service import store
from service.blobs import make_blob_store
from service.catalog import load_catalog
from service.deps import _match_key
from service.metrics import GatewayMetrics, multiprocess_dir
from service.middleware import GatewayMiddleware, Refusal
from service.problems import Problem, install_handlers
from service.routes import health, images, jobs, metrics, restorations, signing
from service.schemas import Manifest
from service.settings import Settings, get_settings
from service.warmup import warm_decoders, warm_redis

log = logging.getLogger("accelir.service")


def _upload_precheck(settings: Settings) -> Any:
    def precheck(scope: Scope) -> Refusal | None:
        headers = dict(scope.get("headers", []))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            detail = "an API key is required: Authorization: Bearer <key>"
            return 401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"}, "auth"
        if _match_key(settings, token.strip()) is None:
            return 401, "unauthorized", "unknown API key", {"WWW-Authenticate": "Bearer"}, "auth"
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith("multipart/form-data"):
            detail = "uploads must be multipart/form-data with the image in the 'file' part"
            return 415, "unsupported-media-type", detail, {}, "bad_input"
        return None

    return precheck


def _install_drain(app: FastAPI, delay_s: float) -> None:
    """On SIGTERM/SIGINT: readiness false now, then hand the signal to the server after the delay."""
    if threading.current_thread() is not threading.main_thread():
        return  # in-process test clients: no signals to hook
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            if not app.state.draining:
                log.info("draining: readiness is now false")
            app.state.draining = True
            loop.call_soon_threadsafe(loop.call_later, delay_s, previous, signum, frame)

        signal.signal(sig, handler)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    components["Problem"] = Problem.model_json_schema(ref_template=ref)
    manifest = Manifest.model_json_schema(ref_template=ref)
    components.update(manifest.pop("$defs", {}))
    components["Manifest"] = manifest
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; ``settings`` default to the environment's."""
    settings = settings or get_settings()
    if not settings.api_keys:
        log.warning("ACCELIR_API_KEYS is empty: every upload and restoration will be refused (401)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=settings.redis_socket_timeout_s,
            socket_connect_timeout=settings.redis_socket_timeout_s,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        app.state.redis = client
        await warm_decoders()
        try:
            await store.ensure_groups(client)
            await warm_redis(client, settings.redis_warm_connections)
        except (RedisError, OSError) as exc:
            log.warning(
                "Redis not reachable at start (%s); /readyz stays false", type(exc).__name__
            )
        _install_drain(app, settings.shutdown_delay_s)
        try:
            yield
        finally:
            await client.aclose()
            if multiprocess_dir():
                multiprocess.mark_process_dead(os.getpid())

    app = FastAPI(
        title="AccelIR",
        version="1.0.0",
        description=(
            "Task-aware image compression and neural restoration. Errors are RFC 9457 "
            "problem details (application/problem+json). See docs/service.md."
        ),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = GatewayMetrics()
    app.state.blobs = make_blob_store(settings)
    app.state.catalog = load_catalog()
    app.state.draining = False
    install_handlers(app)
    app.add_middleware(
        GatewayMiddleware,
        metrics=app.state.metrics,
        max_upload_bytes=settings.max_upload_bytes,
        body_read_timeout_s=settings.body_read_timeout_s,
        precheck=_upload_precheck(settings),
    )
    for module in (images, restorations, jobs, signing, health, metrics):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app

"""``/healthz`` (the process is alive) and ``/readyz`` (it should get traffic: Redis answers,
at least one worker of each kind has a fresh heartbeat — so its models are loaded — and the
gateway is not draining)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from service import store
from service.deps import RedisDep, SettingsDep
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={
        503: {"model": Readiness, "description": "Not ready (Redis down, no workers, draining)"}
    },
)
async def readyz(request: Request, settings: SettingsDep, redis: RedisDep) -> JSONResponse:
    draining = bool(request.app.state.draining)
    workers: dict[str, int] = {}
    redis_ok = True
    try:
        await redis.ping()
        workers = await store.workers_alive(redis, time.time())
    except (RedisError, OSError):
        redis_ok = False
    has_workers = all(n > 0 for n in workers.values()) if workers else False
    ready = redis_ok and not draining and (has_workers or not settings.ready_requires_workers)
    body = Readiness(ready=ready, redis=redis_ok, draining=draining, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

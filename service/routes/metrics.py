"""``/metrics``: Prometheus exposition (this process's metrics, or every process's in
multiprocess mode, plus the queue gauges read from Redis now)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from service.deps import MetricsDep, RedisDep
from service.metrics import QueueSnapshot, read_snapshot, render

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={
        200: {
            "description": "Text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(metrics: MetricsDep, redis: RedisDep) -> Response:
    try:
        snapshot = await read_snapshot(redis, time.time())
    except (RedisError, OSError):
        snapshot = QueueSnapshot()
    return Response(render(metrics, snapshot), media_type=CONTENT_TYPE_LATEST)

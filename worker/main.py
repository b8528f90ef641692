"""``python -m worker encoder|decoder [--burst]``: run one worker process.

``--burst`` processes what is queued (and pending) and exits — deterministic for tests and
batch runs. Without it the worker runs until SIGTERM/SIGINT, which drains it: readiness first
(its heartbeat entry is removed), then no new reads, then the current job finishes within
``ACCELIR_DRAIN_GRACE_S`` or is handed back. Metrics are served on
``ACCELIR_WORKER_METRICS_PORT`` (default 9101 encoder, 9102 decoder; 0 disables).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from service.blobs import make_blob_store
from service.keys import WorkerKind
from worker.consumer import Consumer
from worker.context import WorkerContext
from worker.metrics import WorkerMetrics
from worker.settings import WorkerConfig, get_config, settings_for

log = logging.getLogger("accelir.worker")


def build(
    kind: WorkerKind, config: WorkerConfig | None = None, *, consumer: str | None = None
) -> Consumer:
    """A consumer of ``kind`` wired to Redis and the blob store (nothing runs yet)."""
    config = config or get_config()
    client = redis.Redis.from_url(
        config.redis_url,
        decode_responses=True,
        socket_timeout=config.redis_socket_timeout_s + config.block_ms / 1000,
        socket_connect_timeout=config.redis_socket_timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    name = consumer or config.consumer_name or f"{kind}-{socket.gethostname()}-{os.getpid()}"
    ctx = WorkerContext(
        redis=client,
        blobs=make_blob_store(config),
        config=config,
        metrics=WorkerMetrics(kind),
        consumer=name,
    )
    return Consumer(settings_for(kind, config), ctx)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("kind", choices=["encoder", "decoder"])
    parser.add_argument("--burst", action="store_true", help="process what is queued, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    consumer = build(args.kind)

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: draining", signum)
        consumer.drain()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if consumer.ws.metrics_port and not args.burst:
        consumer.ctx.metrics.serve(consumer.ws.metrics_port)
        log.info("metrics on :%d/metrics", consumer.ws.metrics_port)
    log.info("%s worker %s started", args.kind, consumer.ctx.consumer)
    processed = consumer.run(burst=args.burst)
    log.info("%s worker %s stopped after %d jobs", args.kind, consumer.ctx.consumer, processed)
    return 0

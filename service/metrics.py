"""Prometheus metrics of the gateway, and the queue gauges read from Redis on each scrape.

Names are a contract with the Grafana dashboards and alert rules (docs/service.md lists them).
``GatewayMetrics`` holds the counters and histograms of one app in its own registry; in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before start, several uvicorn workers) the
values live in that directory and a scrape merges every process's files. The queue gauges
(``accelir_queue_depth`` & co.) are not stored: ``read_snapshot`` reads Redis when scraped and
``QueueCollector`` reports what it read. This module imports no web framework (workers share
``STAGE_BUCKETS``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import ResponseError

from service import keys

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120)
"""Seconds; they reach 120 s because encoding and restoring big images on a CPU take minutes."""
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30)
REJECT_REASONS = ("auth", "signature", "rate_limit", "backlog", "too_large", "bad_input")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class GatewayMetrics:
    """The gateway's own metrics, in one registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if not multiprocess_dir():  # per-process series make no sense merged across workers
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            r.register(GC_COLLECTOR)
        self.http_requests = Counter(
            "accelir_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "accelir_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.upload_bytes = Counter(
            "accelir_upload_bytes", "Bytes received in upload bodies", registry=r
        )
        self.jobs_submitted = Counter(
            "accelir_jobs_submitted", "Jobs accepted", ["task"], registry=r
        )
        self.rejected = Counter(
            "accelir_requests_rejected", "Requests refused, by reason", ["reason"], registry=r
        )
        self.stage_duration = Histogram(
            "accelir_stage_duration_seconds",
            "Seconds spent per pipeline stage (upload is measured by the gateway)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        for reason in REJECT_REASONS:  # every series exists from the start (rate() needs a zero)
            self.rejected.labels(reason)


@dataclass
class QueueSnapshot:
    """What Redis says about the queues at one scrape."""

    depth: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)


async def read_snapshot(redis: Any, now: float) -> QueueSnapshot:
    """XLEN, XPENDING and live-worker counts, in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for name, stream in keys.STREAMS.items():
        pipe.xlen(stream)
        pipe.xpending(stream, keys.CONSUMER_GROUPS[name])
    for stream in keys.DEAD_LETTER_STREAMS.values():
        pipe.xlen(stream)
    for kind in keys.WORKER_STREAM:
        pipe.zcount(keys.workers(kind), now, "+inf")
    results = await pipe.execute(raise_on_error=False)
    it = iter(results)
    snap = QueueSnapshot()
    for name in keys.STREAMS:
        depth, pending = next(it), next(it)
        snap.depth[name] = depth if isinstance(depth, int) else 0
        if isinstance(pending, ResponseError) or not isinstance(pending, dict):
            snap.pending[name] = 0
        else:
            snap.pending[name] = int(pending.get("pending", 0))
    for name in keys.DEAD_LETTER_STREAMS:
        dead = next(it)
        snap.dead[name] = dead if isinstance(dead, int) else 0
    for kind in keys.WORKER_STREAM:
        alive = next(it)
        snap.workers[kind] = alive if isinstance(alive, int) else 0
    return snap


class QueueCollector:
    """Reports a ``QueueSnapshot`` as gauges."""

    def __init__(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        for name, doc, values, label in (
            (
                "accelir_queue_depth",
                "Stream entries not yet acknowledged (XLEN)",
                s.depth,
                "stream",
            ),
            (
                "accelir_queue_pending",
                "Entries delivered to a worker, not acked (XPENDING)",
                s.pending,
                "stream",
            ),
            (
                "accelir_dead_letter_messages",
                "Entries in the dead-letter streams",
                s.dead,
                "stream",
            ),
            ("accelir_workers_alive", "Workers whose heartbeat is fresh", s.workers, "kind"),
        ):
            family = GaugeMetricFamily(name, doc, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], float(value))
            yield family


class _Union:
    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for c in self.collectors:
            yield from c.collect()


def render(metrics: GatewayMetrics, snapshot: QueueSnapshot) -> bytes:
    """The exposition text: this app's metrics (or every process's, in multiprocess mode) and the
    queue gauges."""
    if multiprocess_dir():
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        own: Any = merged
    else:
        own = metrics.registry
    return generate_latest(_Union([own, QueueCollector(snapshot)]))

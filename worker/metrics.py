"""Prometheus metrics of a worker process (served on its own port, one registry per worker).

Names and labels are a contract with the dashboards (docs/service.md): spans per stage, jobs by
outcome, errors by type, restoration FLOPs, bytes written and saved, busy time, jobs in progress
— plus client_python's standard ``process_*`` and ``python_*`` series.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from service.jobs import DECODER_STAGES, ENCODER_STAGES
from service.keys import WorkerKind
from service.metrics import STAGE_BUCKETS

OUTCOMES = ("done", "failed", "retried", "dead_lettered")
# Stage series each kind observes, created at start so rate() panels read 0, not "no data".
STAGES: dict[WorkerKind, tuple[str, ...]] = {"encoder": ENCODER_STAGES, "decoder": DECODER_STAGES}


class WorkerMetrics:
    def __init__(self, kind: WorkerKind) -> None:
        self.kind = kind
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_start_time_seconds & co.: the dashboards compute utilisation since start.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        r.register(GC_COLLECTOR)
        self.stage_duration = Histogram(
            "accelir_stage_duration_seconds",
            "Seconds spent per pipeline stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.jobs_processed = Counter(
            "accelir_jobs_processed",
            "Job deliveries handled, by outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.job_errors = Counter(
            "accelir_job_errors", "Job errors by exception type", ["kind", "error_type"], registry=r
        )
        self.restoration_flops = Counter(
            "accelir_restoration_flops",
            "Floating-point operations of restorations",
            ["model", "width"],
            registry=r,
        )
        self.bytes_out = Counter(
            "accelir_bytes_out", "Bytes of results written", ["kind"], registry=r
        )
        self.bytes_saved = Counter(
            "accelir_bytes_saved",
            "Plain-JPEG bytes minus container bytes, for JPEG-equivalent targets",
            registry=r,
        )
        self.busy_seconds = Counter(
            "accelir_worker_busy_seconds", "Seconds spent running jobs", ["kind"], registry=r
        )
        self.in_progress = Gauge(
            "accelir_jobs_in_progress", "Jobs running now", ["kind"], registry=r
        )
        self.restoration_batch_size = Histogram(
            "accelir_restoration_batch_size",
            "Images restored together in one forward pass",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=r,
        )
        for stage in STAGES[kind]:
            self.stage_duration.labels(stage)
        for outcome in OUTCOMES:
            self.jobs_processed.labels(kind, outcome)
        self.busy_seconds.labels(kind)
        self.in_progress.labels(kind)
        self.bytes_out.labels(kind)

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (a daemon thread)."""
        start_http_server(port, registry=self.registry)

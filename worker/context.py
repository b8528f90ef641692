"""What a handler gets: the worker's long-lived context (Redis, blobs, models, metrics) and the
job at hand, plus the job-record operations a handler needs (atomic, monotonic transitions)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from service import keys
from service.blobs import BlobStore
from service.jobs import TRANSITION_LUA, JobRecord, JobState, transition_args
from worker.metrics import WorkerMetrics
from worker.settings import WorkerConfig


@dataclass
class WorkerContext:
    """Long-lived state of one worker process; ``models`` is the process-level model cache."""

    redis: Any
    blobs: BlobStore
    config: WorkerConfig
    metrics: WorkerMetrics
    consumer: str
    models: dict[tuple[str, ...], Any] = field(default_factory=dict)
    # Results computed ahead for a batch of entries (see ``WorkerSettings.prefetch``), by job.
    prefetched: dict[str, Any] = field(default_factory=dict)

    def load_job(self, job_id: str) -> JobRecord | None:
        data = self.redis.hgetall(keys.job(job_id))
        if not data or "state" not in data:
            return None
        return JobRecord.from_hash(data)

    def transition(
        self,
        job_id: str,
        state: JobState,
        fields: dict[str, str] | None = None,
        *,
        enqueue: str | None = None,
    ) -> bool:
        """Move the job to ``state`` (with ``fields``) if that is forward; optionally append a
        message to the ``enqueue`` stream in the same atomic step. True when applied."""
        message = {"job_id": job_id, "enqueued_at": repr(time.time())} if enqueue else None
        args = transition_args(
            state,
            self.config.job_ttl_s,
            time.time(),
            self.config.stream_maxlen,
            fields or {},
            message,
        )
        applied, _ = self.redis.eval(TRANSITION_LUA, 2, keys.job(job_id), enqueue or "", *args)
        return bool(applied)


@dataclass(frozen=True)
class Job:
    """One delivery of a stream entry."""

    message_id: str
    job_id: str
    enqueued_at: float
    deliveries: int
    record: JobRecord

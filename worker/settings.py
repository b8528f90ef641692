"""Worker configuration: ``WorkerConfig`` from the environment (prefix ``ACCELIR_``), and one
``WorkerSettings`` per worker kind that declares what the worker runs (arq's WorkerSettings idea).

Timing rules, checked when the config is built:
- the heartbeat (every ``heartbeat_interval_s``) extends the job's lock and resets the stream
  entry's idle time, so a live worker keeps its job however long it runs (up to
  ``job_timeout_s``); a dead one's entry is reclaimed ``visibility_timeout_s`` after its last beat;
- ``visibility_timeout_s`` is at least three heartbeats, and the job lock has the same TTL;
- retry back-off is capped below the visibility timeout (back-off uses the entry's idle time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, Field, model_validator

from service import keys
from service.keys import WorkerKind
from service.settings import CommonSettings

if TYPE_CHECKING:
    from worker.context import Job, WorkerContext

DEFAULT_METRICS_PORTS: dict[WorkerKind, int] = {"encoder": 9101, "decoder": 9102}


class WorkerConfig(CommonSettings):
    visibility_timeout_s: float = Field(60.0, gt=0)
    heartbeat_interval_s: float = Field(10.0, gt=0)
    job_timeout_s: float = Field(600.0, gt=0)
    max_tries: int = Field(5, ge=1)
    retry_backoff_s: float = Field(1.0, ge=0)
    retry_backoff_max_s: float = Field(30.0, ge=0)
    drain_grace_s: float = Field(
        25.0,
        ge=0,
        validation_alias=AliasChoices(
            "ACCELIR_DRAIN_GRACE_S", "ACCELIR_WORKER_DRAIN_SECONDS", "drain_grace_s"
        ),
    )
    block_ms: int = Field(1000, ge=10)
    reclaim_interval_s: float = Field(5.0, gt=0)
    worker_metrics_port: int | None = None  # default: 9101 encoder, 9102 decoder; 0 disables
    consumer_name: str | None = None  # stable across restarts so pending entries are re-read
    gpu_batch_size: int = Field(8, ge=1)  # decoder entries read and restored together on CUDA
    cpu_batch_size: int = Field(1, ge=1)  # the same without CUDA (1: no gain on a CPU)
    burst_timeout_s: float = Field(300.0, gt=0)
    worker_test_delay_s: float = Field(0.0, ge=0)  # tests only: sleep after storing the result

    @model_validator(mode="after")
    def _timing(self) -> WorkerConfig:
        if self.visibility_timeout_s < 3 * self.heartbeat_interval_s:
            raise ValueError("ACCELIR_VISIBILITY_TIMEOUT_S must be at least 3 heartbeat intervals")
        if self.heartbeat_interval_s >= self.worker_heartbeat_ttl_s:
            raise ValueError(
                "ACCELIR_HEARTBEAT_INTERVAL_S must be below ACCELIR_WORKER_HEARTBEAT_TTL_S"
            )
        if self.retry_backoff_max_s >= self.visibility_timeout_s:
            raise ValueError(
                "ACCELIR_RETRY_BACKOFF_MAX_S must be below ACCELIR_VISIBILITY_TIMEOUT_S"
            )
        return self

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before delivery ``attempt + 1`` (exponential, capped)."""
        return min(self.retry_backoff_max_s, self.retry_backoff_s * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class WorkerSettings:
    """What one kind of worker runs."""

    kind: WorkerKind
    handler: Callable[[WorkerContext, Job], None]
    on_startup: Callable[[WorkerContext], None]
    on_shutdown: Callable[[WorkerContext], None]
    job_timeout_s: float
    max_tries: int
    metrics_port: int | None
    batch_size: int = 1
    # Called with every entry of a read batch before they are handled one by one; the decoder
    # restores compatible jobs together there (one forward pass) and handlers reuse the result.
    prefetch: Callable[[WorkerContext, list[str]], None] | None = None

    @property
    def stream_name(self) -> keys.StreamName:
        return keys.WORKER_STREAM[self.kind]

    @property
    def stream(self) -> str:
        return keys.STREAMS[self.stream_name]

    @property
    def group(self) -> str:
        return keys.CONSUMER_GROUPS[self.stream_name]

    @property
    def dead_letter_stream(self) -> str:
        return keys.DEAD_LETTER_STREAMS[self.stream_name]

    @property
    def health_key(self) -> str:
        return keys.workers(self.kind)


def get_config(**overrides: Any) -> WorkerConfig:
    return WorkerConfig(**overrides)


def metrics_port(kind: WorkerKind, config: WorkerConfig) -> int | None:
    port = config.worker_metrics_port
    if port is None:
        return DEFAULT_METRICS_PORTS[kind]
    return port or None


def settings_for(kind: WorkerKind, config: WorkerConfig) -> WorkerSettings:
    """The WorkerSettings of a kind (imports the kind's module only)."""
    if kind == "encoder":
        from worker import encoder as module
    else:
        from worker import decoder as module  # type: ignore[no-redef]
    return WorkerSettings(
        kind=kind,
        handler=module.handle,
        on_startup=module.startup,
        on_shutdown=module.shutdown,
        job_timeout_s=config.job_timeout_s,
        max_tries=config.max_tries,
        metrics_port=metrics_port(kind, config),
        batch_size=module.batch_size(config),
        prefetch=getattr(module, "prefetch", None),
    )

"""Submitting jobs: parameter checks, Idempotency-Key semantics, backlog bound, enqueueing.

Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): a key is remembered per
client with the fingerprint of its request (SHA-256 of the upload and the canonical parameters)
for the job TTL. The same key with the same request answers with the same job once that job has
finished, 409 while it is still queued or running, and 422 with a different request.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, cast

from service import keys, store, views
from service.jobs import TERMINAL, JobRecord, TargetKind
from service.metrics import GatewayMetrics
from service.problems import ProblemError
from service.schemas import JobAccepted
from service.settings import Settings


def fingerprint(parts: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def one_target(targets: dict[str, float | int | None]) -> tuple[TargetKind, float]:
    given = {k: v for k, v in targets.items() if v is not None}
    if len(given) != 1:
        names = ", ".join(targets)
        raise ProblemError(
            422,
            "invalid-request",
            f"give exactly one target of {names} (got {', '.join(given) or 'none'})",
            reason="bad_input",
        )
    ((kind, value),) = given.items()
    assert value is not None and kind in ("bpp", "bytes", "jpeg_quality", "psnr")
    return cast(TargetKind, kind), float(value)


async def replay(redis: Any, idem_key: str, fp: str) -> JobAccepted | None:
    """The earlier job for this Idempotency-Key, a problem, or None when the key is new."""
    found = await store.idempotency_record(redis, idem_key)
    if found is None:
        return None
    return await _answer_existing(redis, found[0], found[1], fp)


async def _answer_existing(redis: Any, stored_fp: str, job_id: str, fp: str) -> JobAccepted:
    if stored_fp != fp:
        raise ProblemError(
            422,
            "idempotency-mismatch",
            "this Idempotency-Key was used with a different request",
            reason="bad_input",
        )
    record = await store.get_job(redis, job_id)
    if record is None:
        raise ProblemError(
            422,
            "idempotency-mismatch",
            "the job of this Idempotency-Key expired",
            reason="bad_input",
        )
    if record.state not in TERMINAL:
        raise ProblemError(
            409,
            "idempotency-in-progress",
            f"the request with this Idempotency-Key is still being processed (job {job_id}: {record.state.value})",
            headers={"Retry-After": "1", "Location": views.job_path(job_id)},
            extra={"job_id": job_id},
        )
    return views.accepted(record)


async def check_backlog(redis: Any, settings: Settings, stream: str) -> None:
    if await store.backlog(redis, stream) >= settings.max_backlog:
        raise _backlog_full(settings)


def _backlog_full(settings: Settings) -> ProblemError:
    return ProblemError(
        429,
        "backlog-full",
        f"the queue holds {settings.max_backlog} jobs or more; try again later",
        headers={"Retry-After": str(settings.backlog_retry_after_s)},
        reason="backlog",
    )


async def enqueue(
    redis: Any,
    settings: Settings,
    metrics: GatewayMetrics,
    record: JobRecord,
    stream: str,
    idem: tuple[str, str] | None,
) -> tuple[JobAccepted, bool]:
    """Create and enqueue the job; (answer, replayed)."""
    created = await store.create_job(
        redis,
        record,
        stream,
        ttl_s=settings.job_ttl_s,
        maxlen=settings.stream_maxlen,
        max_backlog=settings.max_backlog,
        idempotency=idem,
    )
    if created.outcome == "backlog":
        raise _backlog_full(settings)
    if created.outcome == "exists":
        assert idem is not None
        return await _answer_existing(redis, created.fingerprint, created.job_id, idem[1]), True
    metrics.jobs_submitted.labels(record.task).inc()
    return views.accepted(record), False


def idempotency(client_id: str, header: str | None, fp: str) -> tuple[str, str] | None:
    return None if header is None else (keys.idempotency(client_id, header), fp)


def now() -> float:
    return time.time()

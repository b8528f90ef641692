"""Every Redis key and stream name used by the gateway and the workers, and nothing else.

The KEDA ScaledObject, the Grafana dashboards and the runbooks refer to these names; change them
here only. Keys that hold per-job or per-client data are built by the functions below.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

NAMESPACE: Final = "accelir"

StreamName = Literal["encode", "restore"]
WorkerKind = Literal["encoder", "decoder"]

STREAM_ENCODE: Final = f"{NAMESPACE}:stream:encode"
"""Jobs for the encoder workers (fields: job_id, enqueued_at)."""
STREAM_RESTORE: Final = f"{NAMESPACE}:stream:restore"
"""Jobs for the decoder (restoration) workers (fields: job_id, enqueued_at)."""
STREAMS: Final[dict[StreamName, str]] = {"encode": STREAM_ENCODE, "restore": STREAM_RESTORE}

DEAD_LETTER_STREAMS: Final[dict[StreamName, str]] = {
    "encode": f"{NAMESPACE}:dead:encode",
    "restore": f"{NAMESPACE}:dead:restore",
}
"""Messages that failed ``max_tries`` deliveries, with their error (trimmed with MAXLEN ~)."""

CONSUMER_GROUPS: Final[dict[StreamName, str]] = {"encode": "encoders", "restore": "decoders"}
"""The one consumer group of each stream (KEDA's ``consumerGroup``)."""

WORKER_STREAM: Final[dict[WorkerKind, StreamName]] = {"encoder": "encode", "decoder": "restore"}


def group_of(stream: str) -> str:
    """The consumer group of a stream key (``STREAM_ENCODE`` → ``encoders``)."""
    for name, key in STREAMS.items():
        if key == stream:
            return CONSUMER_GROUPS[name]
    raise KeyError(stream)


def workers(kind: WorkerKind) -> str:
    """Sorted set of live workers of a kind: member = consumer name, score = heartbeat expiry."""
    return f"{NAMESPACE}:workers:{kind}"


def job(job_id: str) -> str:
    """Hash holding one job's record (see ``service.jobs``), with a TTL."""
    return f"{NAMESPACE}:job:{job_id}"


def job_lock(job_id: str, stage: StreamName) -> str:
    """Lock held (with a TTL, extended by the heartbeat) while a worker runs one stage of a job.

    One lock per stage: the encoder enqueues the restoration of a job it still holds, and the
    decoder must be able to start it at once rather than wait for the visibility timeout."""
    return f"{NAMESPACE}:lock:{stage}:{job_id}"


def idempotency(client_id: str, idempotency_key: str) -> str:
    """The job created for an Idempotency-Key of a client (the key is hashed, never stored)."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"{NAMESPACE}:idem:{client_id}:{digest}"


def rate_limit(client_id: str, window: int) -> str:
    """Request counter of a client in one fixed rate-limit window."""
    return f"{NAMESPACE}:rate:{client_id}:{window}"

"""The encoder worker: upload → ``accelir.pipeline.Encoder`` → container in the blob store.

Idempotent: the container is stored under its digest (a rerun writes nothing new), and the
transition to ``encoded`` (which enqueues the restoration, when asked, in the same atomic step)
or ``done`` applies once; a redelivered entry of an encoded job does nothing. Encoders are cached
per (task, model, width) for the life of the process. Encoding is CPU work: there is nothing to
batch, so this kind reads one entry at a time.
"""

from __future__ import annotations

import time
from typing import Any

from service import blobs, images, keys
from service.jobs import RANK, JobState, timing_fields
from worker.context import Job, WorkerContext
from worker.errors import PermanentJobError
from worker.settings import WorkerConfig

_TARGET_ARGS = {"bytes": "nbytes", "bpp": "bpp", "jpeg_quality": "jpeg_quality", "psnr": "psnr"}


def startup(ctx: WorkerContext) -> None:
    from accelir import pipeline

    ctx.models[("pipeline",)] = pipeline


def shutdown(ctx: WorkerContext) -> None:
    ctx.models.clear()


def batch_size(config: WorkerConfig) -> int:
    return 1


def _encoder(ctx: WorkerContext, task: str, model: str, width: int) -> Any:
    key = ("encoder", task, model, str(width))
    if key not in ctx.models:
        from accelir.pipeline import Encoder

        ctx.models[key] = Encoder(task=task, model=model, width=width)
    return ctx.models[key]


def _target(kind: str | None, value: float | None) -> dict[str, Any]:
    if kind is None or value is None or kind not in _TARGET_ARGS:
        raise PermanentJobError("InvalidTarget", f"the job has no valid target ({kind}={value})")
    return {_TARGET_ARGS[kind]: int(value) if kind in ("bytes", "jpeg_quality") else float(value)}


def handle(ctx: WorkerContext, job: Job) -> None:
    from accelir.pipeline import pillow_jpeg_size

    record = job.record
    if RANK[record.state] >= RANK[JobState.ENCODED] or record.upload_key is None:
        return  # already encoded by an earlier delivery
    ctx.transition(job.job_id, JobState.ENCODING)
    try:
        data = ctx.blobs.get(record.upload_key)
    except blobs.BlobNotFound:
        raise PermanentJobError("UploadMissing", "the uploaded image is no longer stored") from None
    try:
        image = images.decode(data, max_pixels=ctx.config.max_pixels, max_side=ctx.config.max_side)
    except images.ImageRejected as exc:
        raise PermanentJobError("ImageRejected", exc.detail) from None
    encoder = _encoder(ctx, record.task, record.model, record.width)
    try:
        result = encoder.encode(
            image,
            **_target(record.target_kind, record.target_value),
            allocator=record.allocator,
            degraded=record.degraded,
            verify=record.verify,
        )
    except NotImplementedError as exc:
        raise PermanentJobError("NotImplemented", str(exc)) from None
    except FileNotFoundError as exc:
        raise PermanentJobError("MissingWeights", str(exc)) from None
    except ValueError as exc:
        raise PermanentJobError("InvalidTarget", str(exc)) from None
    digest = blobs.digest(result.container)
    key = blobs.container_key(digest)
    if ctx.blobs.put(key, result.container):
        ctx.metrics.bytes_out.labels("encoder").inc(len(result.container))
    if ctx.config.worker_test_delay_s:
        time.sleep(ctx.config.worker_test_delay_s)  # tests only: a slow job to kill or drain
    fields = {
        "container_key": key,
        "container_digest": digest,
        "container_bytes": str(result.nbytes),
        "bpp": repr(float(result.bpp)),
        **timing_fields(result.timings),
        "timing:queue_wait": repr(max(0.0, time.time() - job.enqueued_at)),
    }
    if result.predicted_psnr is not None:
        fields["predicted_psnr"] = repr(float(result.predicted_psnr))
    if result.measured_psnr is not None:  # verify: the encoder restored it with the job's network
        fields["measured_psnr"] = repr(float(result.measured_psnr))
    state = JobState.ENCODED if record.restore else JobState.DONE
    applied = ctx.transition(
        job.job_id, state, fields, enqueue=keys.STREAM_RESTORE if record.restore else None
    )
    if not applied:
        return
    for stage, seconds in result.timings.items():
        ctx.metrics.stage_duration.labels(stage).observe(seconds)
    if record.target_kind == "jpeg_quality" and result.degraded is not None and record.target_value:
        saved = pillow_jpeg_size(result.degraded, int(record.target_value)) - result.nbytes
        if saved > 0:
            ctx.metrics.bytes_saved.inc(saved)

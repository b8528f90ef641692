"""The decoder worker: container → ``accelir.pipeline.Restorer`` → PNG in the blob store, with
the measured PSNR when the upload was the reference original.

Restorers are cached per (task, model, width) for the life of the process; missing weights fail
the job with a clear ``MissingWeights`` error (``accelir.models.catalog()`` lists what ships).
Idempotent like the encoder: the PNG is stored under its digest and ``done`` applies once.

Batching: with a GPU, up to ``ACCELIR_GPU_BATCH_SIZE`` entries are read at once and run back to
back on the loaded model (images of different sizes are not stacked into one tensor); on a CPU
the batch is one entry, so batching is a no-op.
"""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from accelir import codec
from service import blobs, images
from service.jobs import TERMINAL, JobState, timing_fields
from worker.context import Job, WorkerContext
from worker.errors import PermanentJobError
from worker.settings import WorkerConfig


def startup(ctx: WorkerContext) -> None:
    from accelir import models

    ctx.models[("registry",)] = models


def shutdown(ctx: WorkerContext) -> None:
    ctx.models.clear()


def batch_size(config: WorkerConfig) -> int:
    import torch

    return config.gpu_batch_size if torch.cuda.is_available() else 1


def _restorer(ctx: WorkerContext, task: str, model: str, width: int) -> Any:
    key = ("restorer", task, model, str(width))
    if key not in ctx.models:
        from accelir.pipeline import Restorer

        try:
            ctx.models[key] = Restorer(task=task, model=model, width=width)
        except FileNotFoundError as exc:
            raise PermanentJobError("MissingWeights", str(exc)) from None
        except ValueError as exc:
            raise PermanentJobError("InvalidModel", str(exc)) from None
    return ctx.models[key]


def png_bytes(image: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG", compress_level=6)
    return out.getvalue()


def measured_psnr(ctx: WorkerContext, upload_key: str, task: str, restored: Any) -> float | None:
    """PSNR of the restoration against the task's ground truth of the uploaded original."""
    from accelir import metrics, tasks

    original = images.decode(
        ctx.blobs.get(upload_key), max_pixels=ctx.config.max_pixels, max_side=ctx.config.max_side
    )
    reference = tasks.target(original, task)
    if reference.shape != restored.shape:
        return None
    return float(metrics.psnr(restored, reference))


def handle(ctx: WorkerContext, job: Job) -> None:
    record = job.record
    if record.state in TERMINAL:
        return
    if record.container_key is None:
        raise PermanentJobError("NotEncoded", "the image has no container to restore")
    ctx.transition(job.job_id, JobState.RESTORING)
    try:
        container = ctx.blobs.get(record.container_key)
    except blobs.BlobNotFound:
        raise PermanentJobError("ContainerMissing", "the container is no longer stored") from None
    restorer = _restorer(ctx, record.task, record.model, record.width)
    try:
        result = restorer.restore(container)
    except codec.ContainerError as exc:
        raise PermanentJobError("InvalidContainer", str(exc)) from None
    png = png_bytes(result.image)
    digest = blobs.digest(png)
    key = blobs.output_key(digest)
    if ctx.blobs.put(key, png):
        ctx.metrics.bytes_out.labels("decoder").inc(len(png))
    fields = {
        "output_key": key,
        "output_digest": digest,
        "output_bytes": str(len(png)),
        "flops": str(int(result.flops)),
        **timing_fields(result.timings),
    }
    if record.kind == "restoration":
        fields["timing:queue_wait"] = repr(max(0.0, time.time() - job.enqueued_at))
    if not record.degraded and record.upload_key:
        try:
            value = measured_psnr(ctx, record.upload_key, record.task, result.image)
        except (blobs.BlobNotFound, images.ImageRejected, ValueError):
            value = None
        if value is not None:
            fields["measured_psnr"] = repr(value)
    if ctx.config.worker_test_delay_s:
        time.sleep(ctx.config.worker_test_delay_s)  # tests only: a slow job to kill or drain
    if not ctx.transition(job.job_id, JobState.DONE, fields):
        return
    for stage, seconds in result.timings.items():
        ctx.metrics.stage_duration.labels(stage).observe(seconds)
    ctx.metrics.restoration_flops.labels(record.model, str(record.width)).inc(result.flops)

"""The decoder worker: container → ``accelir.pipeline.Restorer`` → PNG in the blob store, with
the measured PSNR when the upload was the reference original.

Restorers are cached per (task, model, width) for the life of the process; missing weights fail
the job with a clear ``MissingWeights`` error (``accelir.models.catalog()`` lists what ships).
Idempotent like the encoder: the PNG is stored under its digest and ``done`` applies once.

Batching: up to ``ACCELIR_GPU_BATCH_SIZE`` entries are read at once with CUDA
(``ACCELIR_CPU_BATCH_SIZE``, default 1, without). ``prefetch`` restores the batch's jobs that share
a (task, model, width) together — images of the same size stacked into one forward pass — and
each job's handler then stores its own result under its own lease, exactly as if it had run
alone; a job the prefetch could not do (bad container, missing blob) simply runs alone.
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

    return config.gpu_batch_size if torch.cuda.is_available() else config.cpu_batch_size


def prefetch(ctx: WorkerContext, job_ids: list[str]) -> None:
    """Restore the read batch's compatible jobs together; results land in ``ctx.prefetched``."""
    groups: dict[tuple[str, str, int], list[tuple[str, bytes]]] = {}
    container_keys: dict[str, str] = {}  # content-addressed: the key names the exact bytes
    for job_id in dict.fromkeys(job_ids):
        record = ctx.load_job(job_id)
        if record is None or record.state in TERMINAL or record.container_key is None:
            continue
        try:
            container = ctx.blobs.get(record.container_key)
            codec.info(container)
        except (blobs.BlobNotFound, codec.ContainerError):
            continue  # the job's own run reports it
        groups.setdefault((record.task, record.model, record.width), []).append((job_id, container))
        container_keys[job_id] = record.container_key
    for (task, model, width), items in groups.items():
        if len(items) < 2:
            continue
        try:
            restorer = _restorer(ctx, task, model, width)
        except PermanentJobError:
            continue
        results = restorer.restore_batch([c for _, c in items], max_batch=len(items))
        ctx.metrics.restoration_batch_size.observe(len(items))
        for (job_id, _), result in zip(items, results, strict=True):
            ctx.prefetched[job_id] = (container_keys[job_id], result)


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
    ahead = ctx.prefetched.pop(job.job_id, None)
    if ahead is not None and ahead[0] == record.container_key:
        result = ahead[1]  # restored in this read batch's shared forward pass
    else:
        try:
            container = ctx.blobs.get(record.container_key)
        except blobs.BlobNotFound:
            raise PermanentJobError(
                "ContainerMissing", "the container is no longer stored"
            ) from None
        restorer = _restorer(ctx, record.task, record.model, record.width)
        try:
            result = restorer.restore(container)
        except codec.ContainerError as exc:
            raise PermanentJobError("InvalidContainer", str(exc)) from None
        ctx.metrics.restoration_batch_size.observe(1)
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

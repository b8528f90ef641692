"""From internal job records to the API's response bodies (and the links between resources)."""

from __future__ import annotations

from service.jobs import JobRecord, JobState
from service.schemas import JobAccepted, JobError, JobLinks, JobSizes, JobStatus, Target


def job_path(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def links(record: JobRecord) -> JobLinks:
    image = f"/v1/images/{record.image_id}"
    encoded = record.container_key is not None
    restored = record.state is JobState.DONE and record.output_key is not None
    return JobLinks(
        self=job_path(record.id),
        image=f"{image}/container" if encoded else None,
        manifest=f"{image}/manifest" if encoded else None,
        restoration=f"{image}/restorations/{record.id}" if restored else None,
    )


def accepted(record: JobRecord) -> JobAccepted:
    return JobAccepted(
        job_id=record.id, image_id=record.image_id, state=record.state, links=links(record)
    )


def status(record: JobRecord) -> JobStatus:
    target = None
    if record.target_kind is not None and record.target_value is not None:
        target = Target(kind=record.target_kind, value=record.target_value)
    error = None
    if record.error_type:
        error = JobError(type=record.error_type, detail=record.error_detail or "")
    return JobStatus(
        id=record.id,
        kind=record.kind,
        image_id=record.image_id,
        state=record.state,
        task=record.task,
        model=record.model,
        width=record.width,
        target=target,
        allocator=record.allocator,
        restore=record.restore,
        degraded=record.degraded,
        verify=record.verify,
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempts=record.attempts,
        timings=record.timings,
        sizes=JobSizes(
            upload_bytes=record.upload_bytes,
            width=record.image_width,
            height=record.image_height,
            container_bytes=record.container_bytes,
            bpp=record.bpp,
            output_bytes=record.output_bytes,
        ),
        predicted_psnr=record.predicted_psnr,
        measured_psnr=record.measured_psnr,
        flops=record.flops,
        error=error,
        links=links(record),
    )

"""``/v1/jobs/{job_id}``: the state of an encoding or restoration job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service import store, views
from service.deps import ClientDep, RedisDep
from service.problems import ProblemError, problem_responses
from service.schemas import ID_PATTERN, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "/{job_id}",
    response_model=JobStatus,
    summary="Job state, timings per stage, sizes, PSNR, FLOPs and error detail",
    responses=problem_responses(401, 404, 422),
)
async def get_job(
    job_id: Annotated[str, Path(pattern=ID_PATTERN)], _: ClientDep, redis: RedisDep
) -> JobStatus:
    record = await store.get_job(redis, job_id)
    if record is None:
        raise ProblemError(404, "not-found", f"no job {job_id} (unknown or expired)")
    return views.status(record)

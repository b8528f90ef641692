"""Request and response bodies of the HTTP API (pydantic v2), separate from the internal
``service.jobs.JobRecord``. Task and allocator names come from the library (one registry each);
model names are checked against ``accelir.models`` when a request arrives.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from accelir.pipeline import ALLOCATORS
from accelir.tasks import TASKS
from service.jobs import JobKind, JobState, TargetKind

TaskName = Literal[TASKS]  # type: ignore[valid-type]
AllocatorName = Literal[ALLOCATORS]  # type: ignore[valid-type]
ID_PATTERN = r"^[0-9a-f]{32}$"
MODEL_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MAX_WIDTH = 1024
MAX_SIGNED_TTL_S = 7 * 24 * 3600


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobLinks(_Out):
    self: str = Field(description="This job")
    image: str | None = Field(None, description="The encoded image's container (once encoded)")
    manifest: str | None = None
    restoration: str | None = Field(None, description="The restored image (once done)")


class JobAccepted(_Out):
    job_id: str
    image_id: str
    state: JobState
    links: JobLinks


class Target(_Out):
    kind: TargetKind
    value: float


class JobSizes(_Out):
    upload_bytes: int | None = None
    width: int | None = Field(None, description="Width of the uploaded image in pixels")
    height: int | None = None
    container_bytes: int | None = None
    bpp: float | None = Field(None, description="Container bits per pixel of the encoded image")
    output_bytes: int | None = Field(None, description="Bytes of the restored PNG")


class JobError(_Out):
    type: str = Field(description="Error class, e.g. MissingWeights, ImageRejected, JobTimeout")
    detail: str


class JobStatus(_Out):
    id: str
    kind: JobKind
    image_id: str
    state: JobState
    task: str
    model: str
    width: int
    target: Target | None = None
    allocator: str
    restore: bool
    degraded: bool = Field(description="The upload was already degraded (no reference to measure)")
    verify: bool = Field(
        False, description="PSNR target met as measured by restoring trial encodings"
    )
    created_at: float = Field(description="Unix time")
    updated_at: float
    attempts: int = Field(
        description="How many times a worker started this job: each stage (encode, then "
        "restore when asked) counts once, so more than the stages means a retry"
    )
    timings: dict[str, float] = Field(description="Seconds per stage (upload, queue_wait, ...)")
    sizes: JobSizes
    predicted_psnr: float | None = None
    measured_psnr: float | None = Field(
        None, description="PSNR (dB) of the restoration against the uploaded reference"
    )
    flops: int | None = Field(None, description="Floating-point operations of the restoration")
    error: JobError | None = None
    links: JobLinks


class Manifest(_Out):
    image_id: str
    container_digest: str = Field(description="Hex SHA-256 of the container (its ETag)")
    version: int
    width: int
    height: int
    block: int
    subsampling: str
    huffman: str
    rows: int
    cols: int
    bytes: int
    header_bytes: int
    quality_map: list[list[int]]
    byte_ranges: list[list[list[int]]] = Field(
        description="[start, end) of each block's segment in the container, rows × cols × 2"
    )
    first_dc: list[list[list[int]]] | None = Field(
        None,
        description="Version 4 on: the DC of each block's first Y, Cb and Cr unit, which its "
        "segment leaves out (rows × cols × 3; docs/format.md)",
    )
    scan_lengths: list[list[int]] | None = Field(
        None,
        description="Version 4 on: bytes of each block's rebuilt scan before byte stuffing",
    )


class RestorationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(
        None, ge=1, le=MAX_WIDTH, description="Model width (default: the image's)"
    )
    model: str | None = Field(
        None, pattern=MODEL_PATTERN, description="Model family (default: the image's)"
    )


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        pattern=r"^/v1/images/[0-9a-f]{32}/(container|manifest|blocks/[0-9]{1,5}/[0-9]{1,5}\.jpg)$",
        description="A container, manifest or block path",
    )
    ttl_s: int = Field(3600, ge=1, le=MAX_SIGNED_TTL_S, description="Seconds until the URL expires")


class SignedUrl(_Out):
    url: str
    path: str
    expires: int


class Health(_Out):
    status: Literal["ok"] = "ok"


class Readiness(_Out):
    ready: bool
    redis: bool
    draining: bool
    workers: dict[str, int]

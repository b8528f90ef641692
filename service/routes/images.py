"""``/v1/images``: upload an image to encode (and restore), and the edge reads of an encoded
image — its container, its manifest and any block as a standalone JPEG."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, Header, Path, Request, Response, UploadFile

from accelir import codec
from service import blobs as blob_keys
from service import images, keys, lookups, submit
from service.deps import (
    BlobsDep,
    CatalogDep,
    MetricsDep,
    RateLimitedClientDep,
    ReadAccessDep,
    RedisDep,
    SettingsDep,
)
from service.httpcache import immutable_response
from service.jobs import JobRecord, JobState
from service.problems import ProblemError, problem_responses
from service.schemas import (
    ID_PATTERN,
    MAX_WIDTH,
    MODEL_PATTERN,
    AllocatorName,
    JobAccepted,
    Manifest,
    TaskName,
)

router = APIRouter(prefix="/v1/images", tags=["images"])

ImageId = Annotated[str, Path(pattern=ID_PATTERN, description="The image (its upload job's id)")]
CONTAINER_MEDIA_TYPE = "application/vnd.accelir.container"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_CACHE_HEADERS = {
    "ETag": {"description": "Strong: the SHA-256 of the bytes", "schema": {"type": "string"}},
    "Cache-Control": {
        "description": "public, max-age=31536000, immutable",
        "schema": {"type": "string"},
    },
}
_LOCATION = {"Location": {"description": "The job to poll", "schema": {"type": "string"}}}


def _binary_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The whole representation",
            "content": {media_type: _BINARY},
            "headers": _CACHE_HEADERS,
        },
        206: {
            "description": "One byte range of it",
            "content": {media_type: _BINARY},
            "headers": _CACHE_HEADERS,
        },
        **problem_responses(304, 401, 403, 404, 409, 416, 422),
    }


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Upload an image to encode (and optionally restore)",
    responses={202: {"headers": _LOCATION}, **problem_responses(401, 408, 409, 413, 415, 422, 429)},
)
async def upload_image(
    request: Request,
    response: Response,
    client: RateLimitedClientDep,
    settings: SettingsDep,
    redis: RedisDep,
    blobs: BlobsDep,
    metrics: MetricsDep,
    catalog: CatalogDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP (first frame of animations)")],
    task: Annotated[TaskName, Form(description="The restoration task")] = "sr4",
    model: Annotated[
        str, Form(pattern=MODEL_PATTERN, description="Model family, e.g. edsr")
    ] = "edsr",
    width: Annotated[
        int | None, Form(ge=1, le=MAX_WIDTH, description="Model width (default: widest shipped)")
    ] = None,
    bpp: Annotated[float | None, Form(gt=0, le=24, description="Target: bits per pixel")] = None,
    target_bytes: Annotated[
        int | None, Form(alias="bytes", ge=1, le=1 << 31, description="Target: container bytes")
    ] = None,
    jpeg_quality: Annotated[
        int | None,
        Form(ge=1, le=100, description="Target: the size of a plain JPEG at this quality"),
    ] = None,
    psnr: Annotated[
        float | None, Form(gt=0, le=100, description="Target: predicted restored PSNR (dB)")
    ] = None,
    verify: Annotated[
        bool,
        Form(
            description="With psnr: the encoder restores trial encodings and reaches the "
            "*measured* PSNR (seconds of restoration per job; not with degraded uploads)"
        ),
    ] = False,
    allocator: Annotated[AllocatorName, Form()] = "lagrangian",
    restore: Annotated[bool, Form(description="Restore once encoded")] = False,
    degraded: Annotated[
        bool, Form(description="The upload is already degraded (no reference PSNR)")
    ] = False,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> JobAccepted:
    target_kind, target_value = submit.one_target(
        {"bpp": bpp, "bytes": target_bytes, "jpeg_quality": jpeg_quality, "psnr": psnr}
    )
    if verify and (target_kind != "psnr" or degraded):
        raise ProblemError(
            422,
            "invalid-request",
            "verify needs a psnr target and an original upload (degraded=false)",
            reason="bad_input",
        )
    try:
        model_width = catalog.resolve_width(model, task, width)
    except ValueError as exc:
        raise ProblemError(422, "invalid-request", str(exc), reason="bad_input") from None
    data = await file.read()
    digest = blob_keys.digest(data)
    params = {
        "task": task,
        "model": model,
        "width": model_width,
        "target": [target_kind, target_value],
        "allocator": allocator,
        "restore": restore,
        "degraded": degraded,
        **({"verify": True} if verify else {}),  # absent when false: fingerprints as before
    }
    fp = submit.fingerprint({"upload": digest, **params})
    idem = submit.idempotency(client.id, idempotency_key, fp)
    if idem is not None and (earlier := await submit.replay(redis, idem[0], fp)) is not None:
        response.headers["Location"] = earlier.links.self
        return earlier
    await submit.check_backlog(redis, settings, keys.STREAM_ENCODE)
    upload_key = blob_keys.upload_key(digest)

    def check_and_store() -> tuple[int, int]:
        pixels = images.decode(data, max_pixels=settings.max_pixels, max_side=settings.max_side)
        blobs.put(upload_key, data)  # only a valid image is stored
        return int(pixels.shape[1]), int(pixels.shape[0])

    try:
        with anyio.fail_after(settings.request_timeout_s):
            image_width, image_height = await anyio.to_thread.run_sync(check_and_store)
    except images.ImageRejected as exc:
        raise ProblemError(exc.status, exc.kind, exc.detail, reason=exc.reason) from None
    except TimeoutError:
        raise ProblemError(503, "timeout", "the image took too long to check") from None
    job_id = uuid.uuid4().hex
    upload_s = time.perf_counter() - request.scope.get("accelir.t0", time.perf_counter())
    record = JobRecord(
        id=job_id,
        kind="encode",
        image_id=job_id,
        state=JobState.QUEUED,
        task=task,
        model=model,
        width=model_width,
        target_kind=target_kind,
        target_value=target_value,
        allocator=allocator,
        restore=restore,
        degraded=degraded,
        verify=verify,
        created_at=time.time(),
        updated_at=time.time(),
        upload_key=upload_key,
        upload_bytes=len(data),
        image_width=image_width,
        image_height=image_height,
        timings={"upload": upload_s},
    )
    answer, replayed = await submit.enqueue(
        redis, settings, metrics, record, keys.STREAM_ENCODE, idem
    )
    if not replayed:
        metrics.stage_duration.labels("upload").observe(upload_s)
    response.headers["Location"] = answer.links.self
    return answer


@router.get(
    "/{image_id}/container",
    response_class=Response,
    summary="The encoded container (content-addressed, immutable)",
    responses=_binary_responses(CONTAINER_MEDIA_TYPE),
)
async def get_container(
    request: Request, image_id: ImageId, _: ReadAccessDep, redis: RedisDep, blobs: BlobsDep
) -> Response:
    record = await lookups.encoded_image(redis, image_id)
    assert record.container_key and record.container_digest
    data = await lookups.read_blob(blobs, record.container_key)
    return immutable_response(request, data, record.container_digest, CONTAINER_MEDIA_TYPE)


def _parse(data: bytes) -> codec.ContainerInfo:
    try:
        return codec.info(data)
    except codec.ContainerError as exc:
        raise ProblemError(
            422, "invalid-container", f"the stored container is invalid: {exc}"
        ) from None


@router.get(
    "/{image_id}/manifest",
    response_class=Response,
    summary="Block grid, qualities and byte ranges of the container",
    responses={
        200: {
            "description": "The manifest",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Manifest"}}},
            "headers": _CACHE_HEADERS,
        },
        206: {"description": "One byte range of it", "content": {"application/json": _BINARY}},
        **problem_responses(304, 401, 403, 404, 409, 416, 422),
    },
)
async def get_manifest(
    request: Request, image_id: ImageId, _: ReadAccessDep, redis: RedisDep, blobs: BlobsDep
) -> Response:
    record = await lookups.encoded_image(redis, image_id)
    assert record.container_key and record.container_digest
    data = await lookups.read_blob(blobs, record.container_key)
    info = _parse(data)
    manifest = Manifest(
        image_id=image_id, container_digest=record.container_digest, **info.to_dict()
    )
    # absent, not null, for containers before version 4: their bodies (and ETags) stay as
    # they were
    body = json.dumps(manifest.model_dump(exclude_none=True), separators=(",", ":")).encode()
    return immutable_response(request, body, hashlib.sha256(body).hexdigest(), "application/json")


@router.get(
    "/{image_id}/blocks/{row}/{col}.jpg",
    response_class=Response,
    summary="One block as a standalone baseline JPEG",
    responses=_binary_responses("image/jpeg"),
)
async def get_block(
    request: Request,
    image_id: ImageId,
    row: Annotated[int, Path(ge=0, le=99_999)],
    col: Annotated[int, Path(ge=0, le=99_999)],
    _: ReadAccessDep,
    redis: RedisDep,
    blobs: BlobsDep,
) -> Response:
    record = await lookups.encoded_image(redis, image_id)
    assert record.container_key
    data = await lookups.read_blob(blobs, record.container_key)
    info = _parse(data)
    if not (row < info.rows and col < info.cols):
        raise ProblemError(
            404, "not-found", f"no block ({row}, {col}) in the {info.rows}×{info.cols} grid"
        )
    try:
        jpeg = codec.block_jpeg(data, row, col)
    except codec.ContainerError as exc:
        raise ProblemError(
            422, "invalid-container", f"the stored container is invalid: {exc}"
        ) from None
    return immutable_response(request, jpeg, hashlib.sha256(jpeg).hexdigest(), "image/jpeg")

"""``/v1/images/{image_id}/restorations``: restore an encoded image at a model width, and fetch
the restored image as PNG or WebP (``Accept`` or ``?format=``)."""

from __future__ import annotations

import io
import time
import uuid
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from PIL import Image

from service import blobs as blob_keys
from service import keys, lookups, store, submit
from service.deps import (
    BlobsDep,
    CatalogDep,
    ClientDep,
    MetricsDep,
    RateLimitedClientDep,
    RedisDep,
    SettingsDep,
)
from service.httpcache import CACHE_IMMUTABLE, immutable_response
from service.jobs import JobRecord, JobState
from service.problems import ProblemError, problem_responses
from service.schemas import ID_PATTERN, JobAccepted, RestorationRequest

router = APIRouter(prefix="/v1/images/{image_id}/restorations", tags=["restorations"])

ImageId = Annotated[str, Path(pattern=ID_PATTERN)]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_HEADERS = {
    "ETag": {"description": "Strong: the SHA-256 of the bytes", "schema": {"type": "string"}},
    "Cache-Control": {"description": CACHE_IMMUTABLE, "schema": {"type": "string"}},
}


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Restore an encoded image (at a model width)",
    responses={
        202: {
            "headers": {
                "Location": {"description": "The job to poll", "schema": {"type": "string"}}
            }
        },
        **problem_responses(401, 404, 409, 415, 422, 429),
    },
)
async def create_restoration(
    response: Response,
    image_id: ImageId,
    client: RateLimitedClientDep,
    settings: SettingsDep,
    redis: RedisDep,
    metrics: MetricsDep,
    catalog: CatalogDep,
    body: Annotated[RestorationRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> JobAccepted:
    request_body = body or RestorationRequest(width=None, model=None)
    image = await lookups.encoded_image(redis, image_id)
    model = request_body.model or image.model
    try:
        width = catalog.resolve_width(
            model, image.task, request_body.width or (image.width if model == image.model else None)
        )
    except ValueError as exc:
        raise ProblemError(422, "invalid-request", str(exc), reason="bad_input") from None
    fp = submit.fingerprint({"image": image_id, "model": model, "width": width})
    idem = submit.idempotency(client.id, idempotency_key, fp)
    if idem is not None and (earlier := await submit.replay(redis, idem[0], fp)) is not None:
        response.headers["Location"] = earlier.links.self
        return earlier
    await submit.check_backlog(redis, settings, keys.STREAM_RESTORE)
    now = time.time()
    record = JobRecord(
        id=uuid.uuid4().hex,
        kind="restoration",
        image_id=image_id,
        state=JobState.QUEUED,
        task=image.task,
        model=model,
        width=width,
        allocator=image.allocator,
        restore=True,
        degraded=image.degraded,
        created_at=now,
        updated_at=now,
        upload_key=image.upload_key,
        upload_bytes=image.upload_bytes,
        image_width=image.image_width,
        image_height=image.image_height,
        container_key=image.container_key,
        container_digest=image.container_digest,
        container_bytes=image.container_bytes,
    )
    answer, _ = await submit.enqueue(redis, settings, metrics, record, keys.STREAM_RESTORE, idem)
    response.headers["Location"] = answer.links.self
    return answer


def _negotiate(accept: str | None, fmt: str | None) -> Literal["png", "webp"]:
    if fmt is not None:
        return fmt  # type: ignore[return-value]
    if not accept:
        return "png"
    ranges = {}
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges[media.strip().lower()] = q

    def quality(media: str) -> float:
        family = media.split("/")[0] + "/*"
        return ranges.get(media, ranges.get(family, ranges.get("*/*", 0.0)))

    png, webp = quality("image/png"), quality("image/webp")
    if png <= 0 and webp <= 0:
        raise ProblemError(
            406, "not-acceptable", "the restored image is available as image/png or image/webp"
        )
    return "webp" if webp > png else "png"


def _to_webp(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
        out = io.BytesIO()
        im.save(out, "WEBP", lossless=True, quality=60, method=2)
        return out.getvalue()


@router.get(
    "/{restoration_id}",
    response_class=Response,
    summary="The restored image (PNG or WebP)",
    responses={
        200: {
            "description": "The restored image",
            "content": {"image/png": _BINARY, "image/webp": _BINARY},
            "headers": _HEADERS,
        },
        206: {
            "description": "One byte range of it",
            "content": {"image/png": _BINARY, "image/webp": _BINARY},
        },
        **problem_responses(304, 401, 404, 406, 409, 416, 422),
    },
)
async def get_restoration(
    request: Request,
    image_id: ImageId,
    restoration_id: Annotated[str, Path(pattern=ID_PATTERN)],
    _: ClientDep,
    redis: RedisDep,
    blobs: BlobsDep,
    format: Annotated[Literal["png", "webp"] | None, Query(description="Overrides Accept")] = None,
) -> Response:
    record = await store.get_job(redis, restoration_id)
    if record is None or record.image_id != image_id or not record.restore:
        raise ProblemError(404, "not-found", f"no restoration {restoration_id} of image {image_id}")
    if record.state is not JobState.DONE or not record.output_key or not record.output_digest:
        detail = f"restoration {restoration_id} is {record.state.value}"
        if record.error_detail:
            detail += f": {record.error_detail}"
        raise ProblemError(409, "not-ready", detail, headers={"Retry-After": "1"})
    chosen = _negotiate(request.headers.get("accept"), format)
    png = await lookups.read_blob(blobs, record.output_key)
    if chosen == "png":
        response = immutable_response(request, png, record.output_digest, "image/png")
    else:
        webp_key = f"outputs/{record.output_digest}.webp"
        if await anyio.to_thread.run_sync(blobs.exists, webp_key):
            webp = await lookups.read_blob(blobs, webp_key)
        else:
            webp = await anyio.to_thread.run_sync(_to_webp, png)
            await anyio.to_thread.run_sync(blobs.put, webp_key, webp)
        response = immutable_response(request, webp, blob_keys.digest(webp), "image/webp")
    if format is None:
        response.headers["Vary"] = "Accept"
    return response

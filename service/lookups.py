"""Finding an encoded image and its container for the read routes (404/409 as problems)."""

from __future__ import annotations

from typing import Any

import anyio

from service import store
from service.blobs import BlobNotFound, BlobStore
from service.jobs import JobRecord
from service.problems import ProblemError


async def image_record(redis: Any, image_id: str) -> JobRecord:
    record = await store.get_job(redis, image_id)
    if record is None or record.kind != "encode":
        raise ProblemError(404, "not-found", f"no image {image_id}")
    return record


async def encoded_image(redis: Any, image_id: str) -> JobRecord:
    record = await image_record(redis, image_id)
    if record.container_key is None or record.container_digest is None:
        detail = f"image {image_id} is not encoded yet (state: {record.state.value})"
        if record.error_type:
            detail = f"image {image_id} failed: {record.error_detail}"
        raise ProblemError(409, "not-ready", detail, headers={"Retry-After": "1"})
    return record


async def read_blob(blobs: BlobStore, key: str) -> bytes:
    try:
        return await anyio.to_thread.run_sync(blobs.get, key)
    except BlobNotFound:
        raise ProblemError(
            404, "not-found", "the stored data is gone (expired or deleted)"
        ) from None

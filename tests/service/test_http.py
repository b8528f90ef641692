"""HTTP conventions (checklist items 7, 8, 9): 202 + Location of the job, Idempotency-Key
semantics, and immutable content-addressed representations with ETag, Range, If-Range,
If-None-Match (200, 206, 304, 416) on the container and on blocks."""

from __future__ import annotations

import pytest
from service_support import AUTH, job_status, upload

IMMUTABLE = "public, max-age=31536000, immutable"


def test_post_answers_202_with_the_location_of_the_job(client, png_bytes) -> None:
    response = upload(client, png_bytes)
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/v1/jobs/{body['job_id']}" == body["links"]["self"]
    status = client.get(response.headers["location"], headers=AUTH)
    assert status.status_code == 200 and status.json()["state"] == "queued"


def test_idempotency_key_semantics(client, run_workers, png_bytes, jpeg_bytes) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = upload(client, png_bytes, headers=key)
    assert first.status_code == 202
    job_id = first.json()["job_id"]
    running = upload(client, png_bytes, headers=key)  # the original is still queued
    assert running.status_code == 409
    assert running.headers["content-type"] == "application/problem+json"
    assert running.json()["job_id"] == job_id
    different = upload(client, jpeg_bytes, headers=key)
    assert different.status_code == 422
    assert different.json()["type"] == "urn:accelir:problem:idempotency-mismatch"
    other_params = upload(client, png_bytes, headers=key, jpeg_quality=60)
    assert other_params.status_code == 422
    run_workers("encoder")
    assert job_status(client, job_id)["state"] == "done"
    again = upload(client, png_bytes, headers=key)
    assert again.status_code == 202 and again.json()["job_id"] == job_id
    assert again.headers["location"] == f"/v1/jobs/{job_id}"
    fresh = upload(client, png_bytes, headers={"Idempotency-Key": "order-43"})
    assert fresh.json()["job_id"] != job_id
    unkeyed = upload(client, png_bytes)
    assert unkeyed.json()["job_id"] not in (job_id, fresh.json()["job_id"])


def test_idempotency_keys_are_per_client(client, png_bytes) -> None:
    from service_support import OTHER_KEY

    key = {"Idempotency-Key": "same"}
    a = upload(client, png_bytes, headers=key)
    b = upload(client, png_bytes, headers={**key, "Authorization": f"Bearer {OTHER_KEY}"})
    assert a.status_code == b.status_code == 202 and a.json()["job_id"] != b.json()["job_id"]


@pytest.fixture
def image_id(client, run_workers, png_bytes) -> str:
    image = upload(client, png_bytes).json()["image_id"]
    run_workers("encoder")
    return image


@pytest.mark.parametrize("suffix", ["container", "blocks/0/1.jpg"])
def test_caching_and_ranges(client, image_id, suffix) -> None:
    url = f"/v1/images/{image_id}/{suffix}"
    full = client.get(url, headers=AUTH)
    assert full.status_code == 200
    data, etag = full.content, full.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert full.headers["cache-control"] == IMMUTABLE and full.headers["accept-ranges"] == "bytes"
    import hashlib

    assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
    n = len(data)

    not_modified = client.get(url, headers={**AUTH, "If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert client.get(url, headers={**AUTH, "If-None-Match": '"other"'}).status_code == 200

    first = client.get(url, headers={**AUTH, "Range": "bytes=0-9"})
    assert first.status_code == 206 and first.content == data[:10]
    assert first.headers["content-range"] == f"bytes 0-9/{n}"
    tail = client.get(url, headers={**AUTH, "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    rest = client.get(url, headers={**AUTH, "Range": "bytes=7-"})
    assert rest.content == data[7:] and rest.headers["content-range"] == f"bytes 7-{n - 1}/{n}"
    clipped = client.get(url, headers={**AUTH, "Range": f"bytes=3-{n + 100}"})
    assert clipped.status_code == 206 and clipped.content == data[3:]

    matching = client.get(url, headers={**AUTH, "Range": "bytes=0-3", "If-Range": etag})
    assert matching.status_code == 206 and matching.content == data[:4]
    stale = client.get(url, headers={**AUTH, "Range": "bytes=0-3", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data

    unsatisfiable = client.get(url, headers={**AUTH, "Range": f"bytes={n}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{n}"
    assert unsatisfiable.headers["content-type"] == "application/problem+json"
    for ignored in ("bytes=0-1,4-5", "items=0-1", "bytes=5-2", "nonsense"):
        response = client.get(url, headers={**AUTH, "Range": ignored})
        assert response.status_code == 200 and response.content == data


def test_block_range_matches_the_manifest(client, image_id) -> None:
    manifest = client.get(f"/v1/images/{image_id}/manifest", headers=AUTH)
    assert manifest.headers["cache-control"] == IMMUTABLE
    body = manifest.json()
    assert body["version"] == 5  # what an edge node needs to rebuild a block from its range
    assert len(body["first_dc"]) == body["rows"] and len(body["first_dc"][0][0]) == 3
    assert len(body["scan_lengths"]) == body["rows"]
    start, end = body["byte_ranges"][0][0]
    segment = client.get(
        f"/v1/images/{image_id}/container", headers={**AUTH, "Range": f"bytes={start}-{end - 1}"}
    )
    assert segment.status_code == 206 and len(segment.content) == end - start


def test_not_encoded_yet_is_409(client, png_bytes) -> None:
    image = upload(client, png_bytes).json()["image_id"]
    response = client.get(f"/v1/images/{image}/container", headers=AUTH)
    assert response.status_code == 409 and response.headers["retry-after"] == "1"

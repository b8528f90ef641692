"""Untrusted input: upload size, pixel limits, format sniffing, malformed parameters and
containers — each refused with its documented 4xx problem, the service staying up and stored
data untouched (checklist items 1, 2, 3; the bad-input suite)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_support import (
    AUTH,
    MODEL,
    OTHER_KEY,
    encode_image,
    job_status,
    jpeg_with_size,
    png_with_size,
    upload,
)

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status and body["detail"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    if kind:
        assert body["type"] == f"urn:accelir:problem:{kind}"
    return body


def _nothing_stored(rdb, blob_dir: Path) -> None:
    assert rdb.keys("accelir:job:*") == []
    assert rdb.xlen("accelir:stream:encode") == 0
    assert not (blob_dir / "uploads").exists() or not any((blob_dir / "uploads").iterdir())


def test_upload_over_the_byte_limit_is_413(client, rdb, blob_dir) -> None:
    big = b"\xff\xd8\xff" + bytes(3 * 1024 * 1024)
    body = _assert_problem(
        upload(client, big, filename="big.jpg", content_type="image/jpeg"), 413, "payload-too-large"
    )
    assert "limit" in body["detail"]
    _nothing_stored(rdb, blob_dir)


def test_streamed_body_over_the_limit_is_413(client, rdb, blob_dir) -> None:
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    pulled = []

    def body():
        yield head
        for i in range(64):  # 4 MiB in 64 KiB chunks, no Content-Length (chunked)
            pulled.append(i)
            yield bytes(64 * 1024)

    response = client.post(
        "/v1/images",
        content=body(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    _assert_problem(response, 413, "payload-too-large")
    _nothing_stored(rdb, blob_dir)


@pytest.mark.parametrize(
    ("size", "kind"),
    [
        ((100_000, 100_000), "too-many-pixels"),
        ((3000, 3000), "too-many-pixels"),
        ((20_000, 10), "too-many-pixels"),
    ],
)
def test_png_bombs_are_refused_from_the_header(client, rdb, blob_dir, size, kind) -> None:
    bomb = png_with_size(*size)
    assert len(bomb) < 200
    _assert_problem(upload(client, bomb), 422, kind)
    _nothing_stored(rdb, blob_dir)


def test_jpeg_bomb_is_refused_from_the_header(client, rdb, blob_dir, jpeg_bytes) -> None:
    bomb = jpeg_with_size(jpeg_bytes, 60_000, 60_000)
    _assert_problem(
        upload(client, bomb, filename="b.jpg", content_type="image/jpeg"), 422, "too-many-pixels"
    )
    _nothing_stored(rdb, blob_dir)


def test_pillow_guard_is_left_in_place() -> None:
    import service.images  # noqa: F401  (importing the service must not disable it)

    assert Image.MAX_IMAGE_PIXELS is not None


@pytest.mark.parametrize(
    ("data", "status", "kind"),
    [
        (
            b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
            415,
            "unsupported-media-type",
        ),
        (b"<svg onload='alert(1)'></svg>", 415, "unsupported-media-type"),
        (b"GIF89a" + bytes(64), 415, "unsupported-media-type"),
        (b"just some text pretending to be a PNG", 415, "unsupported-media-type"),
        (b"", 422, "invalid-image"),
    ],
)
def test_formats_are_sniffed_from_magic_bytes(client, rdb, blob_dir, data, status, kind) -> None:
    _assert_problem(upload(client, data, content_type="image/png"), status, kind)
    _nothing_stored(rdb, blob_dir)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_422(client, rdb, blob_dir, photo_small, fmt) -> None:
    data = encode_image(photo_small, fmt)
    _assert_problem(upload(client, data[: len(data) // 2]), 422, "invalid-image")
    _nothing_stored(rdb, blob_dir)


def test_declared_content_type_is_ignored(client, photo_small) -> None:
    data = encode_image(photo_small, "WEBP")
    response = upload(client, data, filename="x.svg", content_type="image/svg+xml")
    assert response.status_code == 202


def test_animations_are_reduced_to_their_first_frame(client, run_workers) -> None:
    frames = [Image.new("RGB", (64, 48), c) for c in ((200, 10, 10), (10, 200, 10), (10, 10, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    response = upload(client, buf.getvalue(), jpeg_quality=90)
    assert response.status_code == 202, response.text
    status = job_status(client, response.json()["job_id"])
    assert (status["sizes"]["width"], status["sizes"]["height"]) == (64, 48)


def test_wrong_request_content_type_is_415(client, rdb, blob_dir) -> None:
    response = client.post("/v1/images", json={"task": "sr4"}, headers=AUTH)
    _assert_problem(response, 415, "unsupported-media-type")
    response = client.post(
        "/v1/images", content=b"raw bytes", headers={**AUTH, "Content-Type": "image/png"}
    )
    _assert_problem(response, 415, "unsupported-media-type")
    _nothing_stored(rdb, blob_dir)


@pytest.mark.parametrize(
    "params",
    [
        {"jpeg_quality": None},  # no target
        {"bpp": "1.0"},  # two targets
        {"jpeg_quality": "0"},
        {"jpeg_quality": "101"},
        {"jpeg_quality": "abc"},
        {"bpp": "-1", "jpeg_quality": None},
        {"task": "sr5"},
        {"model": "nosuchnet"},
        {"model": "DROP TABLE"},
        {"model": "dncnn"},  # a denoiser cannot do sr4
        {"width": "33"},  # not a width of edsr
        {"width": "-4"},
        {"allocator": "magic"},
        {"restore": "maybe"},
    ],
)
def test_malformed_parameters_are_422(client, rdb, blob_dir, png_bytes, params) -> None:
    _assert_problem(upload(client, png_bytes, **params), 422)
    _nothing_stored(rdb, blob_dir)


def test_missing_file_part_is_422(client, rdb, blob_dir) -> None:
    response = client.post(
        "/v1/images",
        data={**MODEL, "jpeg_quality": "75"},
        files={"other": ("a", b"x")},
        headers=AUTH,
    )
    _assert_problem(response, 422, "invalid-request")
    _nothing_stored(rdb, blob_dir)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_wrong_keys_are_401(client, rdb, blob_dir, png_bytes, headers) -> None:
    response = client.post(
        "/v1/images",
        files={"file": ("a.png", png_bytes, "image/png")},
        data={**MODEL, "jpeg_quality": "75"},
        headers=headers,
    )
    body = _assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "wrong" not in json.dumps(body)
    _nothing_stored(rdb, blob_dir)
    other = client.get("/v1/jobs/" + "0" * 32, headers=headers)
    _assert_problem(other, 401, "unauthorized")


def test_second_key_is_accepted(client, png_bytes) -> None:
    response = upload(client, png_bytes, headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert response.status_code == 202


def test_malformed_container_is_a_clear_error_and_the_service_stays_up(
    client, run_workers, png_bytes, blob_dir
) -> None:
    job_id = upload(client, png_bytes).json()["job_id"]
    run_workers("encoder")
    [stored] = list((blob_dir / "containers").iterdir())
    good = stored.read_bytes()
    stored.write_bytes(good[:10] + b"\x00\xff" * 8)  # corrupt the stored blob
    _assert_problem(
        client.get(f"/v1/images/{job_id}/manifest", headers=AUTH), 422, "invalid-container"
    )
    _assert_problem(
        client.get(f"/v1/images/{job_id}/blocks/0/0.jpg", headers=AUTH), 422, "invalid-container"
    )
    created = client.post(f"/v1/images/{job_id}/restorations", json={}, headers=AUTH)
    assert created.status_code == 202
    run_workers("decoder")
    status = job_status(client, created.json()["job_id"])
    assert status["state"] == "failed" and status["error"]["type"] == "InvalidContainer"
    assert client.get("/healthz").status_code == 200
    stored.write_bytes(good)
    assert client.get(f"/v1/images/{job_id}/manifest", headers=AUTH).status_code == 200


def test_unknown_ids_and_blocks_are_404(client, run_workers, png_bytes) -> None:
    _assert_problem(client.get("/v1/jobs/" + "a" * 32, headers=AUTH), 404, "not-found")
    _assert_problem(
        client.get("/v1/images/" + "a" * 32 + "/container", headers=AUTH), 404, "not-found"
    )
    _assert_problem(client.get("/v1/jobs/not-an-id", headers=AUTH), 422, "invalid-request")
    job_id = upload(client, png_bytes).json()["job_id"]
    run_workers("encoder")
    _assert_problem(
        client.get(f"/v1/images/{job_id}/blocks/99/0.jpg", headers=AUTH), 404, "not-found"
    )
    _assert_problem(client.get(f"/v1/images/{job_id}/blocks/-1/0.jpg", headers=AUTH), 422)
    _assert_problem(client.get("/nowhere"), 404, "not-found")
    _assert_problem(client.delete("/v1/images"), 405, "method-not-allowed")


def test_the_decoded_upload_matches_what_was_sent(
    client, run_workers, photo_small, blob_dir
) -> None:
    data = encode_image(photo_small)
    job_id = upload(client, data).json()["job_id"]
    [stored] = list((blob_dir / "uploads").iterdir())
    assert stored.read_bytes() == data
    run_workers("encoder")
    assert job_status(client, job_id)["state"] == "done"
    assert np.asarray(Image.open(stored)).shape == photo_small.shape

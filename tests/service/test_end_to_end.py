"""Upload → encode → restore, end to end through the gateway, Redis and both workers.

The restored image's PSNR reported by the job equals what ``Restorer`` gives on the container
served by the gateway. Runs on the self-made test weights, and again on shipped weights when the
package ships a (model, task, width) with its QP-NET (skipped, with the reason, otherwise).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_support import AUTH, encode_image, job_status, upload

from accelir import codec, metrics, tasks
from accelir.pipeline import Restorer


def _round_trip(
    client, run_workers, png: bytes, original: np.ndarray, task: str, model: str, width: int
) -> None:
    response = upload(client, png, task=task, model=model, width=width, restore="true")
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    assert job_status(client, job_id)["state"] == "queued"

    run_workers("encoder")
    status = job_status(client, job_id)
    assert status["state"] == "encoded", status
    run_workers("decoder")
    status = job_status(client, job_id)
    assert status["state"] == "done", status
    assert status["attempts"] == 2  # one encoder run, one decoder run
    assert {
        "upload",
        "degradation",
        "qpnet",
        "allocation",
        "entropy_coding",
        "decode",
        "restoration",
    } <= set(status["timings"])
    assert status["sizes"]["container_bytes"] > 0 and status["flops"] > 0

    container = client.get(f"/v1/images/{job_id}/container", headers=AUTH)
    assert container.status_code == 200
    assert container.headers["content-type"] == "application/vnd.accelir.container"
    info = codec.info(container.content)
    manifest = client.get(f"/v1/images/{job_id}/manifest", headers=AUTH).json()
    assert (manifest["rows"], manifest["cols"]) == (info.rows, info.cols)
    assert manifest["quality_map"] == info.quality_map.tolist()
    assert container.headers["etag"] == f'"{manifest["container_digest"]}"'
    block = client.get(f"/v1/images/{job_id}/blocks/0/0.jpg", headers=AUTH)
    assert block.status_code == 200 and block.headers["content-type"] == "image/jpeg"
    assert block.content == codec.block_jpeg(container.content, 0, 0)
    assert Image.open(io.BytesIO(block.content)).size == (info.block, info.block)

    restored = client.get(status["links"]["restoration"], headers=AUTH)
    assert restored.status_code == 200 and restored.headers["content-type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(restored.content)).convert("RGB"))
    expected = Restorer(task=task, model=model, width=width).restore(container.content).image
    np.testing.assert_array_equal(served, expected)
    reference = tasks.target(original, task)
    assert status["measured_psnr"] == pytest.approx(metrics.psnr(expected, reference), abs=1e-9)


def test_upload_encode_restore_with_test_weights(client, run_workers, photo_small) -> None:
    png = encode_image(photo_small)
    _round_trip(client, run_workers, png, photo_small, "sr4", "edsr", 32)


def _shipped() -> tuple[str, str, int] | None:
    from accelir import models, utility_model

    for card in models.catalog():
        if card.task in tasks.TASKS and utility_model.available(card.name, card.task, card.width):
            return card.name, card.task, card.width
    return None


@pytest.mark.slow
def test_upload_encode_restore_with_shipped_weights(
    client, run_workers, photo_small, monkeypatch
) -> None:
    monkeypatch.delenv("ACCELIR_WEIGHTS_DIR")
    shipped = _shipped()
    if shipped is None:
        pytest.skip(
            "the package ships no restoration model with its QP-NET yet (accelir.models.catalog())"
        )
    model, task, width = shipped
    png = encode_image(photo_small)
    _round_trip(client, run_workers, png, photo_small, task, model, width)


def test_restoration_at_another_request_and_formats(client, run_workers, photo_small) -> None:
    response = upload(client, encode_image(photo_small))
    image_id = response.json()["image_id"]
    run_workers("encoder")
    assert job_status(client, image_id)["state"] == "done"
    created = client.post(f"/v1/images/{image_id}/restorations", json={"width": 32}, headers=AUTH)
    assert created.status_code == 202, created.text
    rid = created.json()["job_id"]
    assert created.headers["location"] == f"/v1/jobs/{rid}"
    not_yet = client.get(f"/v1/images/{image_id}/restorations/{rid}", headers=AUTH)
    assert (
        not_yet.status_code == 409 and not_yet.headers["content-type"] == "application/problem+json"
    )
    run_workers("decoder")
    status = job_status(client, rid)
    assert status["state"] == "done" and status["kind"] == "restoration"
    url = f"/v1/images/{image_id}/restorations/{rid}"
    webp = client.get(url, headers={**AUTH, "Accept": "image/webp"})
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
    assert webp.headers["vary"] == "Accept"
    png = client.get(url + "?format=png", headers={**AUTH, "Accept": "image/webp"})
    assert png.headers["content-type"] == "image/png"
    a = np.asarray(Image.open(io.BytesIO(webp.content)).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"))
    np.testing.assert_array_equal(a, b)  # lossless WebP
    refused = client.get(url, headers={**AUTH, "Accept": "image/gif"})
    assert refused.status_code == 406


def test_missing_weights_fail_the_job_with_a_clear_error(
    client, run_workers, photo_small, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(tmp_path))  # nothing shipped there
    response = upload(client, encode_image(photo_small))
    job_id = response.json()["job_id"]
    run_workers("encoder")
    status = job_status(client, job_id)
    assert status["state"] == "failed"
    assert status["error"]["type"] == "MissingWeights"
    assert "no QP-NET shipped" in status["error"]["detail"]
    assert status["attempts"] == 1  # permanent: not retried


def test_decoder_restores_a_read_batch_together(
    client, run_workers, photo_small, redis_url, blob_dir
) -> None:
    """With a batch size above one, the decoder stacks same-size jobs into one forward pass;
    each job still ends ``done`` with the image ``Restorer`` gives on its own container."""
    from service_support import make_worker_config

    from worker.main import build

    variants = [photo_small, photo_small[::-1].copy(), photo_small[:, ::-1].copy()]
    job_ids = []
    for image in variants:
        response = upload(client, encode_image(image), restore="true")
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["job_id"])
    run_workers("encoder")
    decoder = build("decoder", make_worker_config(redis_url, blob_dir, cpu_batch_size=4))
    assert decoder.run(burst=True) == 3
    registry = decoder.ctx.metrics.registry
    assert registry.get_sample_value("accelir_restoration_batch_size_count") == 1
    assert registry.get_sample_value("accelir_restoration_batch_size_sum") == 3
    for job_id in job_ids:
        status = job_status(client, job_id)
        assert status["state"] == "done", status
        container = client.get(f"/v1/images/{job_id}/container", headers=AUTH).content
        served = client.get(status["links"]["restoration"], headers=AUTH).content
        expected = Restorer().restore(container).image
        got = np.asarray(Image.open(io.BytesIO(served)).convert("RGB"))
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_verified_psnr_target_reports_the_encoders_measurement(
    client, run_workers, photo_small
) -> None:
    png = encode_image(photo_small)
    response = upload(client, png, jpeg_quality=None, psnr="8", verify="true", restore="true")
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    run_workers("encoder")
    status = job_status(client, job_id)
    assert status["state"] == "encoded" and status["verify"] is True
    assert status["target"] == {"kind": "psnr", "value": 8.0}
    encoder_measured = status["measured_psnr"]
    assert encoder_measured is not None and "verification" in status["timings"]
    run_workers("decoder")
    status = job_status(client, job_id)
    assert status["state"] == "done"
    # The decoder restores the same container with the same network and measures it the same way.
    assert status["measured_psnr"] == pytest.approx(encoder_measured, abs=0.05)


@pytest.mark.parametrize(
    "params",
    [
        {"verify": "true"},
        {"jpeg_quality": None, "psnr": "30", "verify": "true", "degraded": "true"},
    ],
)
def test_verify_needs_a_psnr_target_and_an_original(client, photo_small, params) -> None:
    response = upload(client, encode_image(photo_small), **params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "verify" in response.json()["detail"]

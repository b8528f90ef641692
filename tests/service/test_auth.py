"""Keys and signed URLs (checklist items 4 and 5): HMAC-SHA256 signed, expiring edge URLs with
several keys accepted at once (rotation), tampering → 403, no unsigned route unless the
development setting is on, no stack traces in responses, API keys never logged."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from service_support import API_KEY, AUTH, SIGNING, make_settings, upload

from service import sign
from service.app import create_app
from service.signing import Verdict, sign_path, signature, verify


@pytest.fixture
def encoded(client, run_workers, png_bytes) -> str:
    image_id = upload(client, png_bytes).json()["image_id"]
    run_workers("encoder")
    return image_id


def _pairs(settings):
    return settings.signing_pairs


def test_minted_url_reads_container_manifest_and_block_without_a_key(client, encoded) -> None:
    for path in (
        f"/v1/images/{encoded}/container",
        f"/v1/images/{encoded}/manifest",
        f"/v1/images/{encoded}/blocks/0/0.jpg",
    ):
        minted = client.post("/v1/signed-urls", json={"path": path, "ttl_s": 60}, headers=AUTH)
        assert minted.status_code == 200, minted.text
        body = minted.json()
        assert body["url"].endswith(body["path"]) and body["expires"] > time.time()
        assert client.get(body["path"]).status_code == 200


def test_tampering_and_expiry_are_403_never_data(client, settings, encoded) -> None:
    path = f"/v1/images/{encoded}/container"
    signed = sign_path(path, _pairs(settings), 60)
    assert client.get(signed).status_code == 200
    query = signed.split("?", 1)[1]
    expires = int(query.split("&")[0].split("=")[1])
    other = "f" * 32
    cases = [
        f"/v1/images/{other}/container?{query}",  # signature of another path
        f"/v1/images/{encoded}/manifest?{query}",
        f"{path}?expires={expires + 1}&sig={query.split('sig=')[1]}",  # extended expiry
        f"{path}?expires={expires}&sig={'A' * 43}",
        f"{path}?expires={expires}&sig=",
        f"{path}?expires={expires}",
    ]
    for url in cases:
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
    expired = sign_path(path, _pairs(settings), -5)
    response = client.get(expired)
    assert response.status_code == 403 and "expired" in response.json()["detail"]
    unknown_key = sign_path(path, [(b"k" * 32, b"s" * 16)], 60)
    assert client.get(unknown_key).status_code == 403


def test_every_configured_key_verifies_so_keys_rotate(client, settings, encoded) -> None:
    path = f"/v1/images/{encoded}/container"
    old, new = _pairs(settings)
    assert client.get(sign_path(path, [old], 60)).status_code == 200
    assert client.get(sign_path(path, [new], 60)).status_code == 200
    assert verify(path, "9999999999", signature(*new, path, 9999999999), [old]) is Verdict.INVALID


def test_no_credentials_is_401_and_bad_key_is_401(client, encoded) -> None:
    path = f"/v1/images/{encoded}/container"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_unsigned_reads_only_with_the_development_setting(
    redis_url, blob_dir, run_workers, png_bytes
) -> None:
    assert make_settings(redis_url, blob_dir).allow_unsigned_reads is False  # the default
    dev = make_settings(redis_url, blob_dir, allow_unsigned_reads=True)
    with TestClient(create_app(dev)) as c:
        image_id = upload(c, png_bytes).json()["image_id"]
        run_workers("encoder")
        assert c.get(f"/v1/images/{image_id}/container").status_code == 200
        assert c.get(f"/v1/images/{image_id}/manifest").status_code == 200
        assert c.get(f"/v1/jobs/{image_id}").status_code == 401  # the API itself still needs a key


def test_sign_cli(monkeypatch, capsys, client, encoded) -> None:
    monkeypatch.setenv("ACCELIR_SIGNING_KEYS", SIGNING["signing_keys"])
    monkeypatch.setenv("ACCELIR_SIGNING_SALTS", SIGNING["signing_salts"])
    monkeypatch.setenv("ACCELIR_PUBLIC_BASE_URL", "https://edge.example")
    assert sign.main([f"/v1/images/{encoded}/manifest", "--ttl", "120"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://edge.example/v1/images/")
    assert client.get(url.removeprefix("https://edge.example")).status_code == 200


def test_mint_endpoint_needs_a_key_and_a_signable_path(client, encoded) -> None:
    assert (
        client.post("/v1/signed-urls", json={"path": f"/v1/images/{encoded}/container"}).status_code
        == 401
    )
    bad = client.post("/v1/signed-urls", json={"path": "/v1/jobs/" + encoded}, headers=AUTH)
    assert bad.status_code == 422


def test_errors_carry_no_stack_trace(client, rdb) -> None:
    job_id = "b" * 32
    rdb.hset(f"accelir:job:{job_id}", mapping={"id": job_id, "state": "bogus", "kind": "encode"})
    response = client.get(f"/v1/jobs/{job_id}", headers=AUTH)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "an internal error occurred"
    assert "Traceback" not in response.text and "bogus" not in response.text


def test_keys_are_never_logged(client, png_bytes, caplog, settings) -> None:
    caplog.set_level(logging.DEBUG)
    upload(client, png_bytes)
    client.get("/v1/jobs/" + "c" * 32, headers={"Authorization": "Bearer some-wrong-key"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert API_KEY not in text and "some-wrong-key" not in text
    assert API_KEY not in repr(settings) and API_KEY not in str(settings.model_dump())

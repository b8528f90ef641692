"""Metrics (checklist items 19–22): exact names, labels and units of the contract with the
dashboards, buckets reaching 120 s, no high-cardinality labels, multiprocess mode with several
uvicorn workers (monotonic counters), worker spans, in-progress gauges, utilisation, errors."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from metrics_contract import GATEWAY_METRICS, WORKER_METRICS
from prometheus_client.parser import text_string_to_metric_families
from service_support import AUTH, LiveGateway, live_gateway_env, upload, wait_for

from service.run import prepare_multiprocess_dir
from worker.main import build

STAGES = {
    "upload",
    "queue_wait",
    "degradation",
    "qpnet",
    "allocation",
    "entropy_coding",
    "verification",
    "decode",
    "restoration",
}
SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def _samples(text: str) -> dict[str, list]:
    """Sample name (without histogram suffixes) → samples, skipping the *_created series."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        declared = family.name + ("_total" if family.type == "counter" else "")
        out.setdefault(declared, [])  # declared even before its first labelled sample
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            base = sample.name
            for suffix in SUFFIXES[:3]:
                if family.type == "histogram" and base.endswith(suffix):
                    base = base[: -len(suffix)]
            out.setdefault(base, []).append(sample)
    return out


def _check_contract(samples: dict[str, list], contract: dict[str, set[str]]) -> None:
    for name, labels in contract.items():
        assert name in samples, f"{name} is not exported"
        for sample in samples[name]:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    for name in samples:
        assert name.startswith(("accelir_", "process_", "python_")), name
        assert not re.search(r"[0-9a-f]{32}", str(samples[name])), f"{name} carries an id"


def test_gateway_metrics_contract(client, run_workers, png_bytes) -> None:
    job_id = upload(client, png_bytes, restore="true").json()["job_id"]
    client.get(f"/v1/jobs/{job_id}", headers=AUTH)
    client.get(f"/v1/jobs/{'e' * 32}", headers=AUTH)
    client.get("/v1/jobs/" + job_id)  # 401
    text = client.get("/metrics").text
    samples = _samples(text)
    _check_contract(samples, GATEWAY_METRICS)
    routes = {s.labels["route"] for s in samples["accelir_http_requests_total"]}
    assert "/v1/jobs/{job_id}" in routes and "/v1/images" in routes
    assert not any(job_id in r for r in routes)
    uploads = samples["accelir_upload_bytes_total"][0].value
    assert uploads >= len(png_bytes)
    assert {s.labels["reason"] for s in samples["accelir_requests_rejected_total"]} == {
        "auth", "signature", "rate_limit", "backlog", "too_large", "bad_input"
    }  # fmt: skip
    rejected = {s.labels["reason"]: s.value for s in samples["accelir_requests_rejected_total"]}
    assert rejected["auth"] == 1
    depth = {s.labels["stream"]: s.value for s in samples["accelir_queue_depth"]}
    assert depth == {"encode": 1.0, "restore": 0.0}
    assert [s.value for s in samples["accelir_jobs_submitted_total"]] == [1.0]
    buckets = [
        float(s.labels["le"])
        for s in samples["accelir_stage_duration_seconds"]
        if "le" in s.labels and s.labels["le"] != "+Inf"
    ]
    assert max(buckets) >= 120


def test_worker_metrics_contract(client, worker_config, png_bytes) -> None:
    from service.metrics import STAGE_BUCKETS

    assert STAGE_BUCKETS[-1] >= 120  # client_python's defaults stop at 10 s
    upload(client, png_bytes, restore="true")
    registries = []
    for kind in ("encoder", "decoder"):
        consumer = build(kind, worker_config)
        consumer.run(burst=True)
        registries.append(consumer.ctx.metrics.registry)
    from prometheus_client import generate_latest

    text = "".join(generate_latest(r).decode() for r in registries)
    samples = _samples(text)
    _check_contract(samples, WORKER_METRICS)
    stages = {s.labels["stage"] for s in samples["accelir_stage_duration_seconds"]}
    assert STAGES - {"upload"} <= stages
    done = {
        s.labels["kind"]: s.value
        for s in samples["accelir_jobs_processed_total"]
        if s.labels["outcome"] == "done"
    }
    assert done == {"encoder": 1.0, "decoder": 1.0}
    flops = samples["accelir_restoration_flops_total"]
    assert flops[0].labels == {"model": "edsr", "width": "32"} and flops[0].value > 0
    assert all(s.value == 0 for s in samples["accelir_jobs_in_progress"])
    busy = {s.labels["kind"]: s.value for s in samples["accelir_worker_busy_seconds_total"]}
    assert busy["encoder"] > 0 and busy["decoder"] > 0
    assert samples["accelir_bytes_saved_total"][0].value >= 0
    assert sum(s.value for s in samples["accelir_bytes_out_total"]) > 0


def test_worker_serves_metrics_on_its_port(worker_config) -> None:
    from service.redis_server import free_port

    consumer = build("encoder", worker_config)
    port = free_port()
    consumer.ctx.metrics.serve(port)
    text = wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text, timeout=10
    )
    assert "accelir_jobs_in_progress" in text and "accelir_worker_busy_seconds_total" in text


def test_multiprocess_dir_is_wiped(tmp_path) -> None:
    stale = tmp_path / "prom" / "counter_123.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    assert list(prepare_multiprocess_dir(tmp_path / "prom").iterdir()) == []


@pytest.mark.slow
def test_several_uvicorn_workers_share_monotonic_counters(
    redis_url, blob_dir, weights_env, tmp_path, png_bytes
) -> None:
    metrics_dir = prepare_multiprocess_dir(tmp_path / "prom")
    env = live_gateway_env(
        redis_url, blob_dir, weights_env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    gateway = LiveGateway(env, workers=2).wait_ready()
    try:
        seen: list[float] = []
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            for round_ in range(3):
                with httpx.Client(
                    base_url=gateway.url
                ) as fresh:  # new connections spread over workers
                    for _ in range(15):
                        assert fresh.get("/healthz").status_code == 200
                text = http.get("/metrics").text
                samples = _samples(text)
                total = sum(
                    s.value
                    for s in samples["accelir_http_requests_total"]
                    if s.labels["route"] == "/healthz"
                )
                seen.append(total)
                assert total >= 15 * (round_ + 1)
            response = http.post(
                "/v1/images",
                files={"file": ("a.png", png_bytes, "image/png")},
                data={"jpeg_quality": "75", "width": "32"},
                headers=AUTH,
            )
            assert response.status_code == 202
            samples = _samples(http.get("/metrics").text)
            assert samples["accelir_upload_bytes_total"][0].value >= len(png_bytes)
        assert seen == sorted(seen)
        pids = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) >= 2, pids  # both uvicorn worker processes wrote their counters
    finally:
        gateway.stop()
    assert list(metrics_dir.glob("counter_*.db"))  # counters outlive their processes (monotonic)
    time.sleep(0)

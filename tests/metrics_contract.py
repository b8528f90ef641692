"""The service's metrics contract with the dashboards and alert rules, used by the tests that
check it from both sides: what the gateway and workers export (tests/service) and what the
Prometheus rules and Grafana panels query (tests/deploy)."""

from __future__ import annotations

GATEWAY_METRICS: dict[str, set[str]] = {
    "accelir_http_requests_total": {"route", "method", "status"},
    "accelir_http_request_duration_seconds": {"route", "method"},
    "accelir_upload_bytes_total": set(),
    "accelir_jobs_submitted_total": {"task"},
    "accelir_requests_rejected_total": {"reason"},
    "accelir_queue_depth": {"stream"},
    "accelir_queue_pending": {"stream"},
    "accelir_dead_letter_messages": {"stream"},
    "accelir_workers_alive": {"kind"},
    "accelir_stage_duration_seconds": {"stage"},  # the upload stage
}
WORKER_METRICS: dict[str, set[str]] = {
    "accelir_stage_duration_seconds": {"stage"},
    "accelir_jobs_processed_total": {"kind", "outcome"},
    "accelir_job_errors_total": {"kind", "error_type"},
    "accelir_restoration_flops_total": {"model", "width"},
    "accelir_bytes_out_total": {"kind"},
    "accelir_bytes_saved_total": set(),
    "accelir_worker_busy_seconds_total": {"kind"},
    "accelir_jobs_in_progress": {"kind"},
    "accelir_restoration_batch_size": set(),
}
METRIC_LABELS: dict[str, set[str]] = {**GATEWAY_METRICS, **WORKER_METRICS}
HISTOGRAMS = {
    "accelir_http_request_duration_seconds",
    "accelir_stage_duration_seconds",
    "accelir_restoration_batch_size",
}

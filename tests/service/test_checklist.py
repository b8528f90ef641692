"""Where each item of ../shared/docs/service-checklist.md is tested (module::test).

 1 upload byte limit → 413 problem+json: test_inputs::test_upload_over_the_byte_limit_is_413,
   test_inputs::test_streamed_body_over_the_limit_is_413
 2 pixel limit from the header, bombs → 4xx, MAX_IMAGE_PIXELS kept:
   test_inputs::test_png_bombs_are_refused_from_the_header,
   test_inputs::test_jpeg_bomb_is_refused_from_the_header, test_inputs::test_pillow_guard_is_left_in_place
 3 magic-byte allowlist, one frame of animations, SVG refused:
   test_inputs::test_formats_are_sniffed_from_magic_bytes, test_inputs::test_declared_content_type_is_ignored,
   test_inputs::test_animations_are_reduced_to_their_first_frame
 4 HMAC-SHA256 signed, expiring URLs, key rotation, tampering → 403:
   test_auth::test_minted_url_reads_container_manifest_and_block_without_a_key,
   test_auth::test_tampering_and_expiry_are_403_never_data,
   test_auth::test_every_configured_key_verifies_so_keys_rotate, test_auth::test_sign_cli
 5 no unsigned route in production, no stack traces:
   test_auth::test_unsigned_reads_only_with_the_development_setting,
   test_auth::test_errors_carry_no_stack_trace, test_auth::test_keys_are_never_logged
 6 timeouts, bounded queue → 429 + Retry-After: test_limits::test_rate_limit_per_key,
   test_limits::test_bounded_queue_answers_429_when_the_backlog_is_full,
   test_limits::test_body_read_timeout_is_408, test_limits::test_job_timeout_is_retried_then_dead_lettered
 7 POST → 202 + Location, GET reports state: test_http::test_post_answers_202_with_the_location_of_the_job,
   test_end_to_end::test_restoration_at_another_request_and_formats
 8 Idempotency-Key (same → same job, different → 422, in progress → 409):
   test_http::test_idempotency_key_semantics, test_http::test_idempotency_keys_are_per_client
 9 strong ETag, immutable caching, Range/If-Range/If-None-Match, 206/304/416:
   test_http::test_caching_and_ranges, test_http::test_block_range_matches_the_manifest
10 /healthz and /readyz (Redis, workers with models loaded, draining):
   test_health::test_readiness_needs_redis_and_workers_and_no_draining,
   test_health::test_not_ready_without_redis_but_alive
11 XACK after durable storage, idempotent handlers: test_queue::test_ack_only_after_the_result_is_stored,
   test_queue::test_running_a_job_twice_stores_one_output
12 own pending entries first: test_queue::test_own_pending_entries_are_read_first
13 XAUTOCLAIM after the visibility timeout, heartbeat, never twice concurrently:
   test_crash::test_long_job_is_never_run_twice_concurrently,
   test_crash::test_sigkilled_worker_job_is_reclaimed_and_stored_once
14 locks with TTLs, no double claim: test_queue::test_reclaim_cannot_double_claim_and_locks_expire,
   test_crash::test_sigkilled_worker_job_is_reclaimed_and_stored_once
15 dead letters after N deliveries, then XACK; trimmed; alerting on it:
   test_queue::test_dead_letter_after_max_tries_then_ack, test_queue::test_dead_letter_stream_is_trimmed,
   test_deploy_contract::test_dashboards_and_alerts_query_only_exported_metrics
16 back-off inside the reclaim window: test_queue::test_retry_back_off_stays_inside_the_reclaim_window,
   test_limits::test_timing_rules_are_enforced
17 bounded streams, flat memory: test_queue::test_streams_stay_bounded
18 AOF everysec, no accepted job lost on restart: test_crash::test_redis_restart_loses_no_accepted_job,
   test_deploy_contract::test_redis_config_persists_with_aof, test_run::test_run_starts_everything_and_stops_on_ctrl_c
19 units, suffixes, prefix, low-cardinality labels: test_service_metrics::test_gateway_metrics_contract,
   test_service_metrics::test_worker_metrics_contract
20 buckets reaching 120 s: test_service_metrics::test_gateway_metrics_contract, test_service_metrics::test_worker_metrics_contract
21 several uvicorn workers, multiprocess dir wiped, monotonic counters:
   test_service_metrics::test_several_uvicorn_workers_share_monotonic_counters, test_service_metrics::test_multiprocess_dir_is_wiped
22 worker spans, in-progress, utilisation, errors by type: test_service_metrics::test_worker_metrics_contract,
   test_service_metrics::test_worker_serves_metrics_on_its_port, test_queue::test_dead_letter_after_max_tries_then_ack
23 Grafana provisioning: test_deploy_contract::test_grafana_provisioning_loads_dashboards_from_files,
   test_deploy_contract::test_dashboards_and_alerts_query_only_exported_metrics
24 KEDA redis-streams trigger: test_deploy_contract::test_keda_scaled_objects_name_our_streams_and_groups,
   test_deploy_contract::test_consumer_groups_exist_from_the_gateway_start
25 SIGTERM drain: test_shutdown::test_worker_finishes_its_job_within_the_grace_period,
   test_shutdown::test_worker_hands_back_its_job_when_the_grace_period_ends,
   test_shutdown::test_gateway_turns_unready_before_it_stops

Beyond the checklist: test_end_to_end (upload → restored image, PSNR equal to Restorer's),
test_load (200 uploads, 20 clients, p95 < 200 ms), test_openapi (Schemathesis), test_inputs (the
bad-input suite).
"""

from __future__ import annotations

import importlib
import re

ITEM = re.compile(r"^\s?(\d{1,2}) ", re.M)
REFERENCE = re.compile(r"(test_\w+)::(test_\w+)")


def test_every_checklist_item_maps_to_existing_tests() -> None:
    doc = __doc__ or ""
    items = [int(n) for n in ITEM.findall(doc)]
    assert items == list(range(1, 26))
    for module_name, test_name in REFERENCE.findall(doc):
        module = importlib.import_module(module_name)
        assert callable(getattr(module, test_name, None)), (
            f"{module_name}::{test_name} does not exist"
        )

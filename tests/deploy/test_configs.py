"""Deployment configuration checks: Prometheus, alert rules, Grafana, compose, Kubernetes, Docker.

Nothing here starts a container or needs a cluster. External tools are used when installed and
the tests that need them are skipped, with the reason, when they are not:
  - promtool (Debian package `prometheus`): config/rule checks, alert unit tests, and the
    "every dashboard panel returns data after one job" check, all evaluated by Prometheus' engine;
  - redis-server (Debian `redis-server`): loads deploy/redis/redis.conf;
  - kubectl (Debian `kubectl`): builds the kustomization.
YAML files need PyYAML (skipped with a reason when it is missing).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from metrics_contract import HISTOGRAMS, METRIC_LABELS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "accelir.json"
GRAFANA_DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
GRAFANA_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "accelir.yaml"
COMPOSE = ROOT / "docker-compose.yml"
K8S = DEPLOY / "k8s"
REDIS_CONF = DEPLOY / "redis" / "redis.conf"
DOCKERFILES = [DEPLOY / "docker" / "Dockerfile.gateway", DEPLOY / "docker" / "Dockerfile.worker"]
DOCS = ROOT / "docs" / "deploy.md"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package `prometheus`; CI installs it)",
)

# ------------------------------------------------------------------------------------------------
# The service's metrics contract (tests/metrics_contract.py) and the label values enumerated.
# ------------------------------------------------------------------------------------------------
# prometheus-client's default process and platform collectors, and Prometheus' own `up`.
DEFAULT_METRICS: dict[str, set[str]] = {
    "up": set(),
    "process_cpu_seconds_total": set(),
    "process_virtual_memory_bytes": set(),
    "process_resident_memory_bytes": set(),
    "process_start_time_seconds": set(),
    "process_open_fds": set(),
    "process_max_fds": set(),
    "python_gc_objects_collected_total": {"generation"},
    "python_gc_objects_uncollectable_total": {"generation"},
    "python_gc_collections_total": {"generation"},
    "python_info": {"implementation", "major", "minor", "patchlevel", "version"},
}
TARGET_LABELS = {"job", "instance"}
LABEL_VALUES: dict[str, set[str]] = {
    # service.keys: the short stream names (queues and dead letters are labelled by source).
    "stream": {"encode", "restore"},
    "kind": {"encoder", "decoder"},
    "outcome": {"done", "failed", "retried", "dead_lettered"},
    "reason": {"auth", "signature", "rate_limit", "backlog", "too_large", "bad_input"},
    "stage": {
        "upload",
        "queue_wait",
        "degradation",
        "qpnet",
        "allocation",
        "entropy_coding",
        "verification",
        "decode",
        "restoration",
    },
}
STREAMS = {"accelir:stream:encode": "encoders", "accelir:stream:restore": "decoders"}
WORKER_METRICS_PORTS = {"encoder": 9101, "decoder": 9102}
JOB_NAMES = {"accelir-gateway", "accelir-encoder", "accelir-decoder"}


def allowed_series() -> dict[str, set[str]]:
    """Every series name a query may select, with the labels it carries (besides job/instance)."""
    names: dict[str, set[str]] = {}
    for name, labels in METRIC_LABELS.items():
        if name in HISTOGRAMS:
            names[f"{name}_bucket"] = labels | {"le"}
            names[f"{name}_sum"] = set(labels)
            names[f"{name}_count"] = set(labels)
        else:
            names[name] = set(labels)
    names.update(DEFAULT_METRICS)
    return names


ALLOWED = allowed_series()

# ------------------------------------------------------------------------------------------------
# A small PromQL scanner: enough to pull out metric names, label matchers and grouping labels.
# (Syntax itself is checked by promtool, which parses every expression.)
# ------------------------------------------------------------------------------------------------
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
    # aggregation operators, which may be separated from their "(" by a grouping clause
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_LABEL_REPLACE_DST = re.compile(r'label_replace\s*\(.*?,\s*"([a-zA-Z_][a-zA-Z0-9_]*)"', re.S)


def metric_names(expr: str) -> set[str]:
    s = _STRING.sub('""', expr)
    s = re.sub(r"#[^\n]*", " ", s)  # comments
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)  # range and subquery selectors
    s = _GROUPING.sub(r"\1 ", s)  # grouping label lists
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables
    names = set()
    for m in _IDENT.finditer(s):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def label_matchers(expr: str) -> Iterator[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every matcher of a named selector."""
    for sel in _SELECTOR.finditer(expr):
        metric = sel.group(1) or ""
        if metric.lower() in _KEYWORDS or not metric:
            continue
        for m in _MATCHER.finditer(sel.group(2)):
            yield metric, m.group(1), m.group(2), m.group(3)


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for m in _GROUPING.finditer(_STRING.sub('""', expr)):
        labels |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    return labels


def check_expr(expr: str, where: str) -> list[str]:
    """Problems with one PromQL expression against the metrics contract."""
    problems = []
    names = metric_names(expr)
    if not names:
        problems.append(f"{where}: selects no metric: {expr!r}")
    for name in sorted(names - ALLOWED.keys()):
        problems.append(f"{where}: unknown metric {name!r}")
    available = set(TARGET_LABELS)
    for name in names & ALLOWED.keys():
        available |= ALLOWED[name]
    available |= set(_LABEL_REPLACE_DST.findall(expr))
    for label in sorted(grouping_labels(expr) - available):
        problems.append(f"{where}: groups by {label!r}, which none of {sorted(names)} has")
    for metric, label, op, value in label_matchers(expr):
        if metric not in ALLOWED:
            continue
        if label not in ALLOWED[metric] | TARGET_LABELS:
            problems.append(f"{where}: {metric} has no label {label!r}")
            continue
        known = LABEL_VALUES.get(label)
        if known is None:
            continue
        if op in ("=", "!=") and value not in known:
            problems.append(f"{where}: {label}={value!r} is not one of {sorted(known)}")
        elif op in ("=~", "!~") and re.fullmatch(r"[a-z_]+(\|[a-z_]+)*", value):
            for alt in value.split("|"):
                if alt not in known:
                    problems.append(f"{where}: {label}=~ alternative {alt!r} is unknown")
    return problems


def test_promql_scanner_on_known_expressions() -> None:
    expr = (
        'sum by (kind) (rate(accelir_jobs_processed_total{outcome=~"failed|done"}[5m])) '
        "/ on (kind) group_left () (time() - process_start_time_seconds) "
        '+ label_replace(max by (stream) (accelir_queue_depth{stream=~".*encode.*"}), '
        '"kind", "encoder", "", "") > bool 1e-3 offset 5m'
    )
    assert metric_names(expr) == {
        "accelir_jobs_processed_total",
        "process_start_time_seconds",
        "accelir_queue_depth",
    }
    assert grouping_labels(expr) == {"kind", "stream"}
    assert check_expr(expr, "x") == []
    assert check_expr('sum(rate(accelir_job_total{outcome="ok"}[5m]))', "x") == [
        "x: unknown metric 'accelir_job_total'"
    ]
    assert check_expr('sum by (kinds) (accelir_jobs_processed_total{outcome="ok"})', "x") == [
        "x: groups by 'kinds', which none of ['accelir_jobs_processed_total'] has",
        "x: outcome='ok' is not one of ['dead_lettered', 'done', 'failed', 'retried']",
    ]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def yaml() -> Any:
    return pytest.importorskip(
        "yaml", reason="PyYAML is not installed (add `pyyaml` to the [dev] extra)"
    )


def load_yaml(yaml: Any, path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_yaml_all(yaml: Any, path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def data_panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dash["panels"]:
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def grafana_to_promql(expr: str) -> str:
    """Substitute Grafana's macros and this dashboard's variables with plain PromQL values."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("$stage", ".*")
    )


def alert_rules(yaml: Any) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(yaml, ALERTS)["groups"] for rule in group["rules"]]


# ------------------------------------------------------------------------------------------------
# Prometheus
# ------------------------------------------------------------------------------------------------
@needs_promtool
def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(PROM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_alert_unit_tests() -> None:
    result = promtool("test", "rules", ALERTS_TEST.name, cwd=PROM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrape_jobs(yaml: Any) -> None:
    config = load_yaml(yaml, PROM_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs.keys() >= JOB_NAMES
    assert config["rule_files"] == [ALERTS.name]
    assert jobs["accelir-gateway"]["static_configs"][0]["targets"] == ["gateway:8000"]
    for kind, port in WORKER_METRICS_PORTS.items():
        (sd,) = jobs[f"accelir-{kind}"]["dns_sd_configs"]
        assert sd["port"] == port
        assert sd["names"] == [kind]


def test_alert_rules_shape(yaml: Any) -> None:
    rules = alert_rules(yaml)
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    anchors = markdown_anchors(DOCS.read_text(encoding="utf-8"))
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        ann = rule["annotations"]
        for key in ("summary", "description", "runbook", "runbook_url"):
            assert ann.get(key), f"{rule['alert']}: no {key} annotation"
        doc, _, anchor = ann["runbook_url"].partition("#")
        assert doc == "docs/deploy.md" and anchor in anchors, (rule["alert"], ann["runbook_url"])
    # The alert families the service needs.
    for required in (
        "AccelIRQueueBacklog",
        "AccelIRHighErrorRate",
        "AccelIRJobsStuck",
        "AccelIRPendingNotDraining",
        "AccelIRNoWorkersForBacklog",
        "AccelIRWorkerScrapeDown",
        "AccelIRGatewayDown",
        "AccelIRDeadLetters",
    ):
        assert required in names


def test_alert_expressions_use_only_contract_metrics(yaml: Any) -> None:
    problems = []
    for rule in alert_rules(yaml):
        problems += check_expr(rule["expr"], rule["alert"])
    assert problems == []


def test_alert_unit_tests_cover_every_alert(yaml: Any) -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(yaml, ALERTS_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules(yaml)} - tested == set()


def markdown_anchors(text: str) -> set[str]:
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


# ------------------------------------------------------------------------------------------------
# Grafana
# ------------------------------------------------------------------------------------------------
def test_dashboard_panels_have_datasource_and_queries(yaml: Any) -> None:
    uid = load_yaml(yaml, GRAFANA_DATASOURCE)["datasources"][0]["uid"]
    dash = dashboard()
    panels = data_panels(dash)
    assert len(panels) >= 15
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        title = panel["title"]
        assert panel.get("datasource", {}).get("uid") == uid, title
        targets = panel.get("targets") or []
        assert targets, f"{title}: no query"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{title}: duplicate refIds"
        for target in targets:
            assert target.get("datasource", {}).get("uid") == uid, title
            assert target.get("expr", "").strip(), f"{title}/{target['refId']}: empty query"
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            assert var["datasource"]["uid"] == uid, var["name"]


def test_dashboard_layout_does_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_queries_use_only_contract_metrics() -> None:
    dash = dashboard()
    problems = []
    used: set[str] = set()
    for panel in data_panels(dash):
        for target in panel["targets"]:
            expr = grafana_to_promql(target["expr"])
            problems += check_expr(expr, f"{panel['title']}/{target['refId']}")
            used |= metric_names(expr)
    for var in dash["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)", query)
        assert m, f"variable {var['name']}: unexpected query {query!r}"
        assert m.group(1) in ALLOWED and m.group(2) in ALLOWED[m.group(1)], query
    assert problems == []
    # Every metric of the service appears on the dashboard.
    used_base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert set(METRIC_LABELS) - used_base == set()


@needs_promtool
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as recording rules of a throwaway rule file)."""
    rules = []
    for panel in data_panels(dashboard()):
        for target in panel["targets"]:
            rules.append(
                {
                    "record": f"dashboard:panel{panel['id']}:{target['refId'].lower()}",
                    "expr": grafana_to_promql(target["expr"]),
                }
            )
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))  # JSON is YAML
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def one_job_series() -> list[dict[str, str]]:
    """What Prometheus holds after a single job went through an idle system.

    Scrapes every 15 s from t=0. Gauges exist from the start; counters and histograms whose
    label sets are created by the job first appear in the scrape at t=60 s. Nothing was rejected, failed or
    errored, so those labelled counters do not exist at all.
    """
    after_job = "_x4 {}x40"  # 4 scrapes (t=0..45 s) without the series, the value from t=60 s
    always = "{}x45"
    gw = 'job="accelir-gateway",instance="gateway:8000"'
    enc = 'job="accelir-encoder",instance="encoder:9101"'
    dec = 'job="accelir-decoder",instance="decoder:9102"'
    series = {
        f"up{{{gw}}}": always.format(1),
        f"up{{{enc}}}": always.format(1),
        f"up{{{dec}}}": always.format(1),
        f"process_start_time_seconds{{{enc}}}": always.format(0),
        f"process_start_time_seconds{{{dec}}}": always.format(0),
        f'accelir_workers_alive{{{gw},kind="encoder"}}': always.format(1),
        f'accelir_workers_alive{{{gw},kind="decoder"}}': always.format(1),
        f'accelir_jobs_in_progress{{{enc},kind="encoder"}}': always.format(0),
        f'accelir_jobs_in_progress{{{dec},kind="decoder"}}': always.format(0),
        f'accelir_worker_busy_seconds_total{{{enc},kind="encoder"}}': always.format(0),
        f'accelir_worker_busy_seconds_total{{{dec},kind="decoder"}}': always.format(0),
        f'accelir_http_requests_total{{{gw},route="/v1/jobs",method="POST",status="202"}}': after_job.format(
            1
        ),
        f'accelir_http_requests_total{{{gw},route="/v1/jobs/{{job_id}}",method="GET",status="200"}}': after_job.format(
            1
        ),
        f"accelir_upload_bytes_total{{{gw}}}": after_job.format(250000),
        f'accelir_jobs_submitted_total{{{gw},task="denoise"}}': after_job.format(1),
        f'accelir_jobs_processed_total{{{enc},kind="encoder",outcome="done"}}': after_job.format(1),
        f'accelir_jobs_processed_total{{{dec},kind="decoder",outcome="done"}}': after_job.format(1),
        f'accelir_restoration_flops_total{{{dec},model="dncnn",width="32"}}': after_job.format(
            4e11
        ),
        f'accelir_bytes_out_total{{{enc},kind="encoder"}}': after_job.format(90000),
        f'accelir_bytes_out_total{{{dec},kind="decoder"}}': after_job.format(700000),
        f"accelir_bytes_saved_total{{{enc}}}": after_job.format(30000),
    }
    # An unlabelled histogram exists from the start (zeros); the job is one batch of one image.
    for suffix in ('_bucket{le="+Inf",', "_sum{", "_count{"):
        name = f"accelir_restoration_batch_size{suffix}{dec}}}"
        series[name] = "0x3 1x40"  # zeros at t=0..45 s, the job from t=60 s
    for stream in ("encode", "restore"):
        series[f'accelir_queue_depth{{{gw},stream="{stream}"}}'] = always.format(0)
        series[f'accelir_queue_pending{{{gw},stream="{stream}"}}'] = always.format(0)
        series[f'accelir_dead_letter_messages{{{gw},stream="{stream}"}}'] = always.format(0)
    histograms = [
        (f'accelir_http_request_duration_seconds{{{gw},route="/v1/jobs",method="POST"', 0.2),
        (
            f'accelir_http_request_duration_seconds{{{gw},route="/v1/jobs/{{job_id}}",method="GET"',
            0.01,
        ),
    ]
    for stage, seconds in (
        ("upload", 0.2),
        ("queue_wait", 0.05),
        ("qpnet", 0.4),
        ("entropy_coding", 0.1),
    ):
        histograms.append((f'accelir_stage_duration_seconds{{{enc},stage="{stage}"', seconds))
    for stage, seconds in (("queue_wait", 0.05), ("decode", 0.1), ("restoration", 3.0)):
        histograms.append((f'accelir_stage_duration_seconds{{{dec},stage="{stage}"', seconds))
    for prefix, seconds in histograms:
        name, _, labels = prefix.partition("{")
        for le in (0.05, 0.25, 1.0, 5.0, 30.0, 120.0, float("inf")):
            le_text = "+Inf" if le == float("inf") else repr(le)
            series[f'{name}_bucket{{{labels},le="{le_text}"}}'] = after_job.format(
                int(seconds <= le)
            )
        series[f"{name}_sum{{{labels}}}"] = after_job.format(seconds)
        series[f"{name}_count{{{labels}}}"] = after_job.format(1)
    return [{"series": s, "values": v} for s, v in series.items()]


@needs_promtool
def test_every_dashboard_panel_returns_data_after_one_job(tmp_path: Path) -> None:
    """Prometheus evaluates each panel's queries right after the first scrape that saw the job
    (t=60 s, a single sample: no rate yet) and a few scrapes later (t=3 min); each panel must return a non-NaN sample.
    Heatmaps (bucket increases, which need two samples) are only checked at t=3 min."""
    cases = []
    for panel in data_panels(dashboard()):
        exprs = [f"({grafana_to_promql(t['expr'])}) >= -Inf" for t in panel["targets"]]
        for eval_time in ("60s", "3m"):
            if eval_time == "60s" and panel["type"] == "heatmap":
                continue
            # absent(x) is empty exactly when x has a sample: expect no samples.
            expr = f"absent({' or '.join(exprs)})"
            cases.append({"expr": expr, "eval_time": eval_time, "exp_samples": []})
    unit = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": one_job_series(), "promql_expr_test": cases}],
    }
    path = tmp_path / "dashboard_test.yml"
    path.write_text(json.dumps(unit, indent=1))  # JSON is YAML
    result = promtool("test", "rules", path.name, cwd=tmp_path)
    assert result.returncode == 0, "panels without data after one job:\n" + result.stdout[:8000]


# ------------------------------------------------------------------------------------------------
# Grafana provisioning, compose
# ------------------------------------------------------------------------------------------------
def test_grafana_provisioning(yaml: Any) -> None:
    (ds,) = load_yaml(yaml, GRAFANA_DATASOURCE)["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    scrape = load_yaml(yaml, PROM_CONFIG)["global"]["scrape_interval"]
    assert ds["jsonData"]["timeInterval"] == scrape  # keeps $__rate_interval >= 4 scrapes
    (provider,) = load_yaml(yaml, GRAFANA_PROVIDER)["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(yaml, COMPOSE)
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_compose_services(yaml: Any) -> None:
    compose = load_yaml(yaml, COMPOSE)
    services = compose["services"]
    required = {"redis", "gateway", "encoder", "decoder", "prometheus", "grafana"}
    assert required <= services.keys()
    for name in required:
        svc = services[name]
        assert "healthcheck" in svc, f"{name}: no healthcheck"
        assert "profiles" not in svc, f"{name} must run without a profile"
        image = svc.get("image", "")
        if "build" not in svc:
            assert re.search(r":v?\d+\.\d+\.\d+", image), f"{name}: image {image!r} not pinned"
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: volume {source}"
    # Workers: the metrics ports Prometheus scrapes, and a stop grace period above the drain.
    env = services["encoder"]["environment"]
    drain = int(env["ACCELIR_WORKER_DRAIN_SECONDS"])
    for kind, port in WORKER_METRICS_PORTS.items():
        svc = services[kind]
        assert svc["command"] == [kind]
        assert int(svc["environment"]["ACCELIR_WORKER_METRICS_PORT"]) == port
        assert int(svc["stop_grace_period"].rstrip("s")) > drain
    gateway = services["gateway"]
    assert gateway["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert gateway["environment"]["ACCELIR_REDIS_URL"].startswith("redis://redis:6379")
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    # The GPU decoder: opt-in profile, a GPU reservation, and the CUDA build.
    gpu = services["decoder-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert gpu["build"]["args"]["VARIANT"] == "cuda"
    assert "decoder" in gpu["networks"]["default"]["aliases"]
    redis_mounts = services["redis"]["volumes"]
    assert "./deploy/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis_mounts


# ------------------------------------------------------------------------------------------------
# Docker
# ------------------------------------------------------------------------------------------------
def dockerfile_bases(path: Path) -> list[str]:
    """Base images of every FROM, with ARG defaults substituted; stage names are dropped."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases = []
    for line in text.splitlines():
        line = line.strip()
        if m := re.match(r"ARG\s+(\w+)(?:=(\S*))?", line):
            if m.group(2) is not None:
                args.setdefault(m.group(1), m.group(2))
        elif m := re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I):
            image = re.sub(r"\$\{?(\w+)\}?", lambda a: args.get(a.group(1), ""), m.group(1))
            if image not in stages:
                bases.append(image)
            if m.group(2):
                stages.add(m.group(2))
    return bases


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_base_images_are_pinned(path: Path) -> None:
    bases = dockerfile_bases(path)
    assert bases
    for image in bases:
        assert "latest" not in image, image
        assert re.search(r"@sha256:[0-9a-f]{64}$", image) or re.search(
            r":\d+\.\d+\.\d+(-[\w.-]+)?$", image
        ), f"{path.name}: base image {image!r} is not pinned to a full version or digest"


def test_dockerfiles_run_the_service_entry_points() -> None:
    gateway = (DEPLOY / "docker" / "Dockerfile.gateway").read_text(encoding="utf-8")
    assert "uvicorn service.app:create_app --factory" in gateway
    assert "PROMETHEUS_MULTIPROC_DIR" in gateway and "EXPOSE 8000" in gateway
    worker = (DEPLOY / "docker" / "Dockerfile.worker").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "-m", "worker"]' in worker
    assert "FROM torch-${VARIANT}" in worker
    assert "AS torch-cpu" in worker and "AS torch-cuda" in worker
    for text in (gateway, worker):
        assert "torch==${TORCH_VERSION}" in text and "TORCH_VERSION=2.13.0" in text
        assert re.search(r"^USER 10001", text, re.M), "images must not run as root"
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "README.md", "accelir/**", "service/**", "worker/**"):
        assert f"!{needed}" in ignore


# ------------------------------------------------------------------------------------------------
# Redis
# ------------------------------------------------------------------------------------------------
def redis_directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key.lower()] = value.strip().strip('"')
    return out


def test_redis_conf_durability_settings() -> None:
    conf = redis_directives(REDIS_CONF.read_text(encoding="utf-8"))
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["dir"] == "/data"


def redis_server_major() -> int | None:
    """Major version of the `redis-server` on PATH (None when there is none)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else None


@pytest.mark.skipif(
    (redis_server_major() or 0) < 7,
    reason="needs redis-server >= 7 on PATH (Debian `redis-server`); the config uses Redis 7 "
    "directives and consumer-group lag",
)
def test_redis_server_accepts_the_config(tmp_path: Path) -> None:
    conf = REDIS_CONF.read_text(encoding="utf-8").replace("\ndir /data\n", f"\ndir {tmp_path}\n")
    (tmp_path / "redis.conf").write_text(conf)
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", str(tmp_path / "redis.conf"), "--port", "0", "--unixsocket", str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def command(*words: str) -> bytes:
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(sock))
            client.sendall(payload.encode())
            return client.recv(4096)

    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"redis-server did not start:\n{out}")
            time.sleep(0.05)
        assert b"everysec" in command("CONFIG", "GET", "appendfsync")
        assert b"noeviction" in command("CONFIG", "GET", "maxmemory-policy")
        assert b"yes" in command("CONFIG", "GET", "appendonly")
        # Consumer-group lag (what KEDA scales on) needs Redis >= 7.
        command("XADD", "s", "*", "f", "v")
        command("XGROUP", "CREATE", "s", "g", "0")
        assert b"lag" in command("XINFO", "GROUPS", "s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------------
# Kubernetes
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s(yaml: Any) -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = load_yaml(yaml, K8S / "kustomization.yaml")
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        path = K8S / resource
        assert path.is_file(), resource
        for doc in load_yaml_all(yaml, path):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), resource
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"duplicate {key}"
            objects[key] = doc
    return objects


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (c,) = obj["spec"]["template"]["spec"]["containers"]
    return c


def env_names(obj: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]) -> set[str]:
    c = container(obj)
    names = {e["name"] for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            names |= objects[("ConfigMap", source["configMapRef"]["name"])]["data"].keys()
    return names


def test_k8s_workloads(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    config = k8s[("ConfigMap", "accelir-config")]["data"]
    drain = int(config["ACCELIR_WORKER_DRAIN_SECONDS"])
    # Workers scale to zero when idle, so the gateway must be ready without them (or no job
    # would ever arrive to wake them).
    assert config["ACCELIR_READY_REQUIRES_WORKERS"] == "false"
    for name in ("accelir-gateway", "accelir-encoder", "accelir-decoder"):
        deploy = k8s[("Deployment", name)]
        c = container(deploy)
        for probe in ("readinessProbe", "livenessProbe"):
            assert probe in c, f"{name}: no {probe}"
        assert c["resources"]["requests"] and c["resources"]["limits"], name
        assert "ACCELIR_REDIS_URL" in env_names(deploy, k8s)
    gateway = container(k8s[("Deployment", "accelir-gateway")])
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ("Service", "accelir-gateway") in k8s
    assert ("PodDisruptionBudget", "accelir-gateway") in k8s
    for kind, port in WORKER_METRICS_PORTS.items():
        deploy = k8s[("Deployment", f"accelir-{kind}")]
        spec = deploy["spec"]["template"]["spec"]
        c = container(deploy)
        assert c["args"] == [kind]
        assert c["ports"][0]["containerPort"] == port
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["ACCELIR_WORKER_METRICS_PORT"] == str(port)
        assert spec["terminationGracePeriodSeconds"] >= drain + 15, kind
    decoder = k8s[("Deployment", "accelir-decoder")]["spec"]["template"]["spec"]
    assert decoder["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert decoder["nodeSelector"]


def test_k8s_redis_statefulset(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    sts = k8s[("StatefulSet", "accelir-redis")]
    assert sts["spec"]["replicas"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    image = container(sts)["image"]
    assert int(re.search(r":(\d+)\.", image).group(1)) >= 7, "KEDA lag scaling needs Redis 7"
    embedded = k8s[("ConfigMap", "accelir-redis-config")]["data"]["redis.conf"]
    assert embedded == REDIS_CONF.read_text(encoding="utf-8"), "k8s redis.conf drifted"


def test_k8s_keda_scaled_objects(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    scaled = {name: obj for (kind, name), obj in k8s.items() if kind == "ScaledObject"}
    assert set(scaled) == {"accelir-encoder", "accelir-decoder"}
    seen_streams = set()
    for name, obj in scaled.items():
        target = obj["spec"]["scaleTargetRef"]["name"]
        deploy = k8s[("Deployment", target)]
        lag_triggers = []
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "redis-streams", name
            meta = trigger["metadata"]
            assert STREAMS[meta["stream"]] == meta["consumerGroup"], name
            seen_streams.add(meta["stream"])
            if "addressFromEnv" in meta:
                assert meta["addressFromEnv"] in env_names(deploy, k8s), name
            else:
                assert "address" in meta or "host" in meta, name
            if "lagCount" in meta:
                lag_triggers.append(meta)
            for key, value in meta.items():
                assert isinstance(value, str), f"{name}: {key} must be a string"
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth:
                assert ("TriggerAuthentication", auth) in k8s
        assert lag_triggers, f"{name}: no lag-based redis-streams trigger"
        for meta in lag_triggers:
            assert {"stream", "consumerGroup", "lagCount", "activationLagCount"} <= meta.keys()
            # A threshold above 0 would leave a lone job waiting at zero replicas.
            assert meta["activationLagCount"] == "0"
        assert obj["spec"]["minReplicaCount"] == 0
    assert seen_streams == set(STREAMS)
    worker_for_stream = {"accelir:stream:encode": "encoder", "accelir:stream:restore": "decoder"}
    for stream, kind in worker_for_stream.items():
        so = scaled[f"accelir-{kind}"]
        assert {t["metadata"]["stream"] for t in so["spec"]["triggers"]} == {stream}


def test_k8s_monitoring_matches_prometheus_config(
    yaml: Any, k8s: dict[tuple[str, str], dict[str, Any]]
) -> None:
    rule = k8s[("PrometheusRule", "accelir")]
    assert rule["spec"]["groups"] == load_yaml(yaml, ALERTS)["groups"], "PrometheusRule drifted"
    # Job labels must equal the compose job names the rules and dashboard select on.
    assert k8s[("ServiceMonitor", "accelir-gateway")]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "accelir-gateway"
    }
    for kind in WORKER_METRICS_PORTS:
        pm = k8s[("PodMonitor", f"accelir-{kind}")]
        assert pm["spec"]["jobLabel"] == "app.kubernetes.io/name"
        labels = k8s[("Deployment", f"accelir-{kind}")]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == f"accelir-{kind}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomization_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    for kind in ("StatefulSet", "Deployment", "ScaledObject", "PrometheusRule"):
        assert f"\nkind: {kind}\n" in result.stdout, kind

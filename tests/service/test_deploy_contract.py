"""The service's side of the deployment contract (checklist items 18, 23, 24): every metric the
Grafana dashboards and alert rules query is one the gateway or a worker exports; the Grafana
provisioning files load the dashboards with a file provider; the KEDA ScaledObjects name this
service's streams and consumer groups; the consumer groups exist from the gateway's start (so
the lag is measurable before any worker runs); the Redis config persists with AOF.

The deploy/ files belong to the deployment; these tests skip when a file is not there yet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from service_support import ROOT

from service import keys
from service.metrics import GatewayMetrics, QueueCollector, QueueSnapshot
from worker.metrics import WorkerMetrics

DEPLOY = ROOT / "deploy"
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the deploy files")


def _exported() -> set[str]:
    names: set[str] = set()
    snapshot = QueueSnapshot({"encode": 0}, {"encode": 0}, {"encode": 0}, {"encoder": 0})
    families = [
        *GatewayMetrics().registry.collect(),
        *WorkerMetrics("encoder").registry.collect(),
        *QueueCollector(snapshot).collect(),
    ]
    for family in families:
        if family.type == "counter":
            names |= {family.name + "_total"}
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def _read(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not there yet")
    return path.read_text()


@pytest.mark.parametrize("relative", ["grafana/dashboards/accelir.json", "prometheus/alerts.yml"])
def test_dashboards_and_alerts_query_only_exported_metrics(relative: str) -> None:
    text = _read(DEPLOY / relative)
    used = set(re.findall(r"\baccelir_[a-z_]+", text))
    assert used, "no accelir_ metric referenced"
    missing = sorted(used - _exported())
    assert not missing, f"queried but not exported: {missing}"


def test_grafana_provisioning_loads_dashboards_from_files() -> None:
    providers = yaml.safe_load(_read(DEPLOY / "grafana/provisioning/dashboards/accelir.yaml"))
    assert any(p.get("type") == "file" for p in providers["providers"])
    datasources = yaml.safe_load(_read(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml"))
    assert any(d.get("type") == "prometheus" for d in datasources["datasources"])


def test_keda_scaled_objects_name_our_streams_and_groups() -> None:
    documents = [d for d in yaml.safe_load_all(_read(DEPLOY / "k8s/keda.yaml")) if d]
    triggers = [
        t for d in documents if d.get("kind") == "ScaledObject" for t in d["spec"]["triggers"]
    ]
    assert triggers
    pairs = {
        (t["metadata"]["stream"], t["metadata"]["consumerGroup"])
        for t in triggers
        if t["type"] == "redis-streams"
    }
    expected = {(keys.STREAMS[s], keys.CONSUMER_GROUPS[s]) for s in keys.STREAMS}
    assert pairs == expected
    lag = [t["metadata"] for t in triggers if "lagCount" in t["metadata"]]
    assert lag and all("activationLagCount" in m for m in lag)


def test_consumer_groups_exist_from_the_gateway_start(client, rdb) -> None:
    for name, stream in keys.STREAMS.items():
        groups = {g["name"] for g in rdb.xinfo_groups(stream)}
        assert groups == {keys.CONSUMER_GROUPS[name]}


def test_redis_config_persists_with_aof() -> None:
    from service.redis_server import command

    args = command(6379, Path("/tmp"))
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] in ("everysec", "always")
    conf = DEPLOY / "redis" / "redis.conf"
    if conf.exists():
        text = conf.read_text()
        assert re.search(r"^appendonly\s+yes", text, re.M)
        assert re.search(r"^appendfsync\s+(everysec|always)", text, re.M)

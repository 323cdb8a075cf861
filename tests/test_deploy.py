"""deploy/ (issue 17 §4): the compose file, the systemd units and the Dockerfile start what the README documents,
and the Prometheus alerts and the Grafana dashboard use only metric names that GET /metrics really exposes
(a renamed metric would otherwise leave an alert silently matching nothing). No image is built here: this
machine cannot pull a base image (docs/operations.md)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import inbound

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
METRIC = re.compile(r"\b(otklik_[a-z0-9_]+)\b")
PROMQL_BUILTINS = {"up"}  # Prometheus's own series


def _exposed_names(client, ws) -> set[str]:
    """Every sample name of a scrape, after traffic that creates each labelled series (a request, a customer
    message and the assistant's decision on it)."""
    inbound(client, ws, identity="deploy@example.com", text="Где мой заказ?")
    with client.websocket_connect("/api/v1/ws") as conn:  # the open-sockets gauge has a series once one opened
        conn.send_json({"type": "auth", "token": ws.agent_token})
        assert conn.receive_json()["type"] == "ready"
    r = client.get("/metrics")
    assert r.status_code == 200
    names = set()
    for family in text_string_to_metric_families(r.text):
        names.update(sample.name for sample in family.samples)
    return names


def _alert_rules() -> list[dict]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "otklik-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    doc = json.loads((DEPLOY / "grafana" / "otklik-dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


def test_alerts_and_dashboard_name_only_metrics_that_metrics_exposes(client, ws):
    exposed = _exposed_names(client, ws)
    exprs = [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "no otklik_* metric found in the alerts and the dashboard"
    missing = sorted(used - exposed)
    assert not missing, f"not exposed by /metrics: {missing} (exposed: {sorted(n for n in exposed if 'otklik' in n)})"
    # and every metric family /metrics has is on the dashboard
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exposed if n.startswith("otklik_")}
    on_dashboard = {re.sub(r"_(total|bucket|count|sum)$", "", n) for e in _dashboard_exprs() for n in METRIC.findall(e)}
    assert families <= on_dashboard, sorted(families - on_dashboard)


def test_alert_rules_are_well_formed():
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 6
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        bare = set(re.findall(r"\b([a-z_]+)\{", rule["expr"])) - {"sum", "rate", "by"}
        assert bare <= PROMQL_BUILTINS | {n for n in bare if n.startswith("otklik_")}, bare


def test_dashboard_is_importable_json_with_unique_panels():
    doc = json.loads((DEPLOY / "grafana" / "otklik-dashboard.json").read_text(encoding="utf-8"))
    assert doc["uid"] == "otklik-overview" and doc["title"]
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"])


def test_compose_runs_web_worker_postgres_and_redis_as_the_readme_scales_out():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert {"web", "worker", "postgres", "redis", "migrate"} <= set(services)
    web, worker = services["web"], services["worker"]
    assert web["command"][:2] == ["otklik", "serve"] and worker["command"][:2] == ["otklik", "worker"]
    for service in (web, worker):
        env = service["environment"]
        assert env["OTKLIK_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["OTKLIK_DATABASE_URL"]
        assert env["OTKLIK_REDIS_URL"].startswith("redis://redis:6379")
        assert env["OTKLIK_EMBEDDED_WORKER"] == "false" and env["OTKLIK_QUEUE"] == "redis"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert any(v.endswith(":/var/lib/otklik") for v in service["volumes"])  # attachments shared
    assert all(p.startswith("127.0.0.1:") for p in web["ports"])  # behind a TLS proxy, not on every interface
    assert services["migrate"]["command"] == ["otklik", "migrate"]
    assert (DEPLOY / services["web"]["env_file"]).with_suffix(".env.example").exists()


def test_systemd_units_start_serve_and_worker_unprivileged():
    for unit, command in (("otklik-web.service", "otklik serve"), ("otklik-worker.service", "otklik worker")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string((DEPLOY / "systemd" / unit).read_text(encoding="utf-8"))
        service = parser["Service"]
        assert command in service["ExecStart"]
        assert service["User"] == "otklik" and service["NoNewPrivileges"] == "yes"
        assert service["EnvironmentFile"] == "/etc/otklik/otklik.env"
        assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_dockerfile_is_python_311_slim_non_root_serving():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert lines[-1] == 'CMD ["otklik", "serve"]'
    assert any("/healthz" in line for line in lines)

"""deploy/: promtool checks of the Prometheus config, alert rules and their unit tests, the
Grafana dashboard's PromQL, metric names against TradingMetrics, and static wiring checks of
docker-compose.yml, the Dockerfile and the Grafana provisioning (no Docker or Grafana here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeforge.monitor.drift_metrics import METRICS as DRIFT_METRICS
from tradeforge.monitor.drift_metrics import MetricSample
from tradeforge.monitor.prometheus import TradingMetrics, series_counts

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tradeforge.json"
PROMTOOL = shutil.which("promtool") or (
    "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package 'prometheus'; CI has it)"
)

# Grafana macros promtool does not know, replaced by a plausible value before checking.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1d"}


def _promtool(*args: str, cwd: Path) -> str:
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in _load_yaml(PROM / "alerts.yml")["groups"] for r in g["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _dashboard_exprs() -> list[tuple[str, str]]:
    """``(panel title/refId, expr)`` of every query, Grafana macros substituted."""
    out = []
    for p in _panels(_dashboard()["panels"]):
        for t in p.get("targets", []):
            expr = t["expr"]
            for macro, value in GRAFANA_MACROS.items():
                expr = expr.replace(macro, value)
            out.append((f"{p['title']}/{t['refId']}", expr))
    return out


_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery durations
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def _exported_sample_names() -> set[str]:
    """Every sample name a fully exercised TradingMetrics renders (drift samples included)."""
    m = TradingMetrics(["AAPL"], ["ppo"], denial_reasons=["max_open_orders"])
    m.observe_decision("ppo", 0.01)
    m.count_order("ppo", "paper", "buy", "accepted")
    m.count_denial("ppo", "max_open_orders")
    m.count_fill("ppo", "buy", 0.1)
    m.set_account("account", 1.0, 0.0, 0.0, 0.0)
    m.set_exposure(0.5, 0.5)
    m.set_position("ppo", "AAPL", 1.0)
    m.set_trading_state("active")
    m.set_kill_switch(False)
    m.set_last_bar("bars", "AAPL", datetime.now(UTC))
    m.set_bar_interval("bars", 60.0)
    m.set_market_open("bars", True)
    m.set_data_age("bars", 1.0)
    m.count_reconcile_mismatches(0)
    m.count_alert("log", "sent")
    m.set_model_info("champion", "m", "1")
    m.heartbeat()
    m.set_drift([MetricSample(name, {"model": "m"}, 0.0) for name in DRIFT_METRICS])
    return set(series_counts(m.render()[0].decode()))


# ------------------------------------------------------------------------------- promtool
@needs_promtool
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = _load_yaml(PROM / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "tradeforge")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["tradeforge:8000"]
    assert job["authorization"]["type"] == "Bearer"
    token_path = job["authorization"]["credentials_file"]
    assert token_path == "/run/secrets/metrics_token"
    assert config["rule_files"] == ["alerts.yml"]
    # promtool stats the token file: point a copy of the config at a temporary one
    token = tmp_path / "metrics_token"
    token.write_text("test-token\n")
    text = (PROM / "prometheus.yml").read_text()
    assert text.count(token_path) == 1
    (tmp_path / "prometheus.yml").write_text(text.replace(token_path, str(token)))
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    out = _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS: 1 rule files found" in out
    assert "SUCCESS: 10 rules found" in out


@needs_promtool
def test_alert_rules_pass_promtool_and_cover_the_required_alerts() -> None:
    out = _promtool("check", "rules", "alerts.yml", cwd=PROM)
    assert "SUCCESS" in out
    rules = {r["alert"]: r for r in _alert_rules()}
    expr = {name: " ".join(r["expr"].split()) for name, r in rules.items()}
    assert "time() - tradeforge_last_bar_timestamp_seconds" in expr["TradeforgeBarDataStale"]
    assert "2 * tradeforge_bar_interval_seconds" in expr["TradeforgeBarDataStale"]
    assert expr["TradeforgeDecisionLatencyHigh"].startswith("histogram_quantile(0.99,")
    assert expr["TradeforgeTradingHalted"] == 'tradeforge_trading_state{state="halted"} == 1'
    assert expr["TradeforgeKillSwitchEngaged"] == "tradeforge_kill_switch_engaged == 1"
    assert expr["TradeforgeServiceDown"] == 'up{job="tradeforge"} == 0'
    assert "tradeforge_service_heartbeat_timestamp_seconds" in expr["TradeforgeHeartbeatStale"]
    for r in rules.values():
        assert r["labels"]["severity"] in {"critical", "warning"}
        assert r["annotations"]["summary"]
        assert r["annotations"]["description"]


@needs_promtool
def test_alert_unit_tests_pass() -> None:
    tests = _load_yaml(PROM / "alerts_test.yml")
    tested = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"]}
    assert {"TradeforgeBarDataStale", "TradeforgeTradingHalted"} <= tested
    out = _promtool("test", "rules", "alerts_test.yml", cwd=PROM)
    assert "SUCCESS" in out


@needs_promtool
def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The dashboard check below would catch a bad expr: promtool fails on one."""
    bad = {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (le (foo)"}]}]}
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    assert PROMTOOL is not None
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", "bad.yml"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert proc.returncode != 0


@needs_promtool
def test_every_dashboard_expr_is_valid_promql(tmp_path: Path) -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 25
    rules = [
        {"record": f"tradeforge:dashboard:q{i}", "expr": expr} for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = _promtool("check", "rules", path.name, cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


# ------------------------------------------------------------------------------- names
def test_the_name_parser_finds_selected_metrics_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (strategy, le) (rate(foo_bucket{a="b,c", le!="x"}[5m])))'
        " > on (job, feed) group_left () (2 * bar_seconds) and on (feed) (baz == 1)"
        " unless time() - qux offset 5m"
    )
    assert metric_names(expr) == {"foo_bucket", "bar_seconds", "baz", "qux"}


def test_every_metric_in_rules_and_dashboard_is_exported() -> None:
    exported = _exported_sample_names() | {"up"}
    used: dict[str, set[str]] = {}
    for rule in _alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for where, expr in _dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"panel {where}")
    missing = {name: sorted(w) for name, w in used.items() if name not in exported}
    assert not missing, missing
    assert {
        "tradeforge_last_bar_timestamp_seconds",
        "tradeforge_decision_latency_seconds_bucket",
        "tradeforge_trading_state",
        "tradeforge_orders_total",
        "tradeforge_risk_denials_total",
        "tradeforge_equity_usd",
        "up",
    } <= set(used)


# ------------------------------------------------------------------------------- grafana
def test_dashboard_has_the_required_panels_on_the_provisioned_datasource() -> None:
    dash = _dashboard()
    assert dash["uid"] == "tradeforge-overview"
    assert dash["title"]
    assert dash["schemaVersion"] >= 36
    panels = list(_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels}
    for wanted in (
        "Equity",
        "P&L",
        "Drawdown",
        "Exposure",
        "Decision latency p50 / p99",
        "Orders by outcome",
        "Risk denials by reason",
        "Trading state",
        "Last bar age",
    ):
        assert wanted in titles, wanted
    datasources = _load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    compose = _load_yaml(DEPLOY / "docker-compose.yml")
    host, port = source["url"].removeprefix("http://").split(":")
    assert host in compose["services"]
    assert port == "9090"
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        for t in [p, *p["targets"]]:
            assert t["datasource"] == {"type": "prometheus", "uid": source["uid"]}, p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        assert g["h"] > 0, p["title"]
    latency = next(p for p in panels if p["title"].startswith("Decision latency"))
    quantiles = [re.match(r"histogram_quantile\(([\d.]+),", t["expr"]) for t in latency["targets"]]
    assert [q.group(1) for q in quantiles if q] == ["0.5", "0.99"]


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    provider = _load_yaml(DEPLOY / "grafana/provisioning/dashboards/tradeforge.yml")
    (p,) = provider["providers"]
    compose = _load_yaml(DEPLOY / "docker-compose.yml")
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == p["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# ------------------------------------------------------------------------------- compose, image
def test_compose_wiring_is_consistent() -> None:
    compose = _load_yaml(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"tradeforge", "prometheus", "grafana"}
    declared_volumes = set(compose["volumes"])
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in declared_volumes, (name, source)
        for secret in svc.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    assert (DEPLOY / "secrets/.gitignore").read_text().splitlines()[-2:] == ["*", "!.gitignore"]
    tf = services["tradeforge"]
    assert (DEPLOY / tf["build"]["context"] / tf["build"]["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    ).resolve()
    assert "tradeforge-state:/var/lib/tradeforge" in tf["volumes"]
    assert "metrics_token" in tf["secrets"]
    assert "metrics_token" in services["prometheus"]["secrets"]
    prom_mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    config_dir = Path(prom_mounts["./prometheus/prometheus.yml"]).parent
    rule_files = _load_yaml(PROM / "prometheus.yml")["rule_files"]
    for rule_file in rule_files:
        assert prom_mounts[f"./prometheus/{rule_file}"] == str(config_dir / rule_file)
    # the scrape target is the compose service on the port the image serves
    target = _load_yaml(PROM / "prometheus.yml")["scrape_configs"][0]["static_configs"][0]
    assert target["targets"] == ["tradeforge:8000"]


def test_dockerfile_installs_with_constraints_and_serves_on_8000() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert re.search(r"pip install .*-c constraints\.txt \.", text)
    (cmd,) = re.findall(r"^CMD (.+)$", text, re.MULTILINE)  # the HEALTHCHECK's CMD is indented
    assert json.loads(cmd) == [
        "tradeforge", "serve", "/app/configs/serve.yaml", "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
    assert "EXPOSE 8000" in lines
    assert any(ln.startswith("USER ") and ln != "USER root" for ln in lines)
    for ln in lines:
        if ln.startswith("COPY "):
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), src

"""TradingMetrics: values after calls, read back through the Prometheus text parser."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tradeforge.core.errors import ConfigError, DataValidationError
from tradeforge.domain.enums import OrderSide
from tradeforge.monitor import build_reference_profile, drift_metrics, drift_report
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.drift_metrics import METRICS as DRIFT_METRICS
from tradeforge.monitor.drift_metrics import MetricSample
from tradeforge.monitor.prometheus import (
    ALERT_OUTCOMES,
    DECISION_LATENCY_BUCKETS,
    ORDER_OUTCOMES,
    TRADING_STATES,
    TradingMetrics,
    series_counts,
)
from tradeforge.risk.checks import DenyReason
from tradeforge.risk.state import TradingState

UNIVERSE = ["AAPL", "IBM", "MSFT", "GOOG"]  # the bundled equities
REASONS = [r.value for r in DenyReason]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _make(**kwargs: object) -> TradingMetrics:
    return TradingMetrics(UNIVERSE, ["ppo", "a2c"], denial_reasons=REASONS, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> TradingMetrics:
    return _make()


def _parse(m: TradingMetrics) -> tuple[dict[str, object], Samples]:
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples: Samples = {}
    for f in families.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def _v(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_family_is_prefixed_documented_and_typed(metrics: TradingMetrics) -> None:
    metrics.set_trading_state("active")
    metrics.set_model_info("champion", "spy-ppo", "3")
    families, samples = _parse(metrics)
    assert set(families) == {
        "tradeforge_decision_latency_seconds",
        "tradeforge_orders",
        "tradeforge_risk_denials",
        "tradeforge_fills",
        "tradeforge_fees_usd",
        "tradeforge_equity_usd",
        "tradeforge_pnl_realized_usd",
        "tradeforge_pnl_unrealized_usd",
        "tradeforge_drawdown_ratio",
        "tradeforge_exposure_gross_ratio",
        "tradeforge_exposure_net_ratio",
        "tradeforge_position_quantity",
        "tradeforge_trading_state",
        "tradeforge_kill_switch_engaged",
        "tradeforge_last_bar_timestamp_seconds",
        "tradeforge_bar_interval_seconds",
        "tradeforge_market_open",
        "tradeforge_data_age_seconds",
        "tradeforge_reconcile_mismatches",
        "tradeforge_alerts_sent",
        "tradeforge_model_info",
        "tradeforge_build_info",
        "tradeforge_service_heartbeat_timestamp_seconds",
    }
    for name, fam in families.items():
        assert name.startswith("tradeforge_"), name
        assert fam.documentation, name
        assert fam.documentation != name, name  # real HELP text, not the name repeated
        assert fam.type in {"counter", "gauge", "histogram"}, (name, fam.type)
        if fam.type == "counter":
            assert all(s.name == f"{name}_total" for s in fam.samples), name
        else:
            assert not name.endswith("_total"), name
    # prometheus_client's *_created series are left out of the exposition
    assert not any(n.endswith("_created") for n, _ in samples)


def test_decision_latency_histogram_counts_sums_and_buckets(metrics: TradingMetrics) -> None:
    for seconds in (0.003, 0.004, 0.15, 3.0):
        metrics.observe_decision("ppo", seconds)
    families, s = _parse(metrics)
    assert families["tradeforge_decision_latency_seconds"].type == "histogram"
    assert _v(s, "tradeforge_decision_latency_seconds_count", strategy="ppo") == 4
    assert _v(s, "tradeforge_decision_latency_seconds_sum", strategy="ppo") == pytest.approx(3.157)
    bucket = "tradeforge_decision_latency_seconds_bucket"
    assert _v(s, bucket, strategy="ppo", le="0.0025") == 0
    assert _v(s, bucket, strategy="ppo", le="0.005") == 2
    assert _v(s, bucket, strategy="ppo", le="0.2") == 3
    assert _v(s, bucket, strategy="ppo", le="2.5") == 3
    assert _v(s, bucket, strategy="ppo", le="5.0") == 4
    assert _v(s, bucket, strategy="ppo", le="+Inf") == 4
    # the other strategy exists at zero, so rate() sees its first decision
    assert _v(s, "tradeforge_decision_latency_seconds_count", strategy="a2c") == 0
    assert DECISION_LATENCY_BUCKETS[0] == 0.001
    assert DECISION_LATENCY_BUCKETS[-1] == 5.0
    with pytest.raises(DataValidationError, match="seconds"):
        metrics.observe_decision("ppo", -0.1)
    with pytest.raises(DataValidationError, match="seconds"):
        metrics.observe_decision("ppo", math.nan)


def test_orders_are_counted_by_outcome_and_start_at_zero(metrics: TradingMetrics) -> None:
    metrics.count_order("ppo", "paper", "buy", "accepted")
    metrics.count_order("ppo", "paper", "buy", "accepted")
    metrics.count_order("ppo", "paper", OrderSide.SELL, "filled")  # enum members are plain str
    metrics.count_order("a2c", "alpaca", "sell", "rejected")
    _, s = _parse(metrics)
    name = "tradeforge_orders_total"
    assert _v(s, name, strategy="ppo", venue="paper", side="buy", outcome="accepted") == 2
    assert _v(s, name, strategy="ppo", venue="paper", side="sell", outcome="filled") == 1
    assert _v(s, name, strategy="a2c", venue="alpaca", side="sell", outcome="rejected") == 1
    assert _v(s, name, strategy="a2c", venue="paper", side="buy", outcome="denied") == 0
    n_series = sum(1 for n, _ in s if n == name)
    assert n_series == 2 * 2 * 2 * len(ORDER_OUTCOMES)  # strategies x venues x sides x outcomes


def test_denials_take_every_risk_reason_and_refuse_others(metrics: TradingMetrics) -> None:
    for reason in DenyReason:
        metrics.count_denial("ppo", reason)
    metrics.count_denial("ppo", "max_open_orders")
    _, s = _parse(metrics)
    name = "tradeforge_risk_denials_total"
    assert _v(s, name, strategy="ppo", reason="max_open_orders") == 2
    assert _v(s, name, strategy="ppo", reason="trading_halted") == 1
    assert _v(s, name, strategy="a2c", reason="trading_halted") == 0
    with pytest.raises(ConfigError, match=r"reason: 'cosmic_rays' is not in the configured"):
        metrics.count_denial("ppo", "cosmic_rays")


def test_fills_and_fees(metrics: TradingMetrics) -> None:
    metrics.count_fill("ppo", "buy", 1.25)
    metrics.count_fill("ppo", "buy", 0.5)
    metrics.count_fill("ppo", "sell", 0.0)
    _, s = _parse(metrics)
    assert _v(s, "tradeforge_fills_total", strategy="ppo", side="buy") == 2
    assert _v(s, "tradeforge_fills_total", strategy="ppo", side="sell") == 1
    assert _v(s, "tradeforge_fees_usd_total", strategy="ppo") == pytest.approx(1.75)
    assert _v(s, "tradeforge_fees_usd_total", strategy="a2c") == 0
    with pytest.raises(DataValidationError, match="fee_usd"):
        metrics.count_fill("ppo", "buy", -1.0)
    _, after = _parse(metrics)
    assert _v(after, "tradeforge_fills_total", strategy="ppo", side="buy") == 2  # nothing counted


def test_account_exposure_and_positions(metrics: TradingMetrics) -> None:
    metrics.set_account("account", 1_000_000.0, 1200.5, -300.25, 0.031)
    metrics.set_account("ppo", 10_000.0, -20.0, 5.0, 0.0)
    metrics.set_exposure(0.85, -0.1)
    metrics.set_position("ppo", "AAPL", 120)
    metrics.set_position("ppo", "AAPL", -40)
    _, s = _parse(metrics)
    assert _v(s, "tradeforge_equity_usd", sleeve="account") == 1_000_000.0
    assert _v(s, "tradeforge_pnl_realized_usd", sleeve="account") == 1200.5
    assert _v(s, "tradeforge_pnl_unrealized_usd", sleeve="account") == -300.25
    assert _v(s, "tradeforge_drawdown_ratio", sleeve="account") == 0.031
    assert _v(s, "tradeforge_pnl_realized_usd", sleeve="ppo") == -20.0
    assert _v(s, "tradeforge_exposure_gross_ratio") == 0.85
    assert _v(s, "tradeforge_exposure_net_ratio") == -0.1
    assert _v(s, "tradeforge_position_quantity", strategy="ppo", symbol="AAPL") == -40
    with pytest.raises(DataValidationError, match="drawdown_ratio"):
        metrics.set_account("account", 1.0, 0.0, 0.0, -0.5)
    with pytest.raises(DataValidationError, match="equity_usd"):
        metrics.set_account("account", math.inf, 0.0, 0.0, 0.0)
    with pytest.raises(DataValidationError, match="gross_ratio"):
        metrics.set_exposure(-0.1, 0.0)


def test_trading_state_is_one_hot(metrics: TradingMetrics) -> None:
    assert {s.value for s in TradingState} == set(TRADING_STATES)
    for state, expected in (
        ("active", (1, 0, 0)),
        (TradingState.HALTED, (0, 0, 1)),
        ("REDUCING", (0, 1, 0)),
    ):
        metrics.set_trading_state(state)
        _, s = _parse(metrics)
        got = tuple(_v(s, "tradeforge_trading_state", state=st) for st in TRADING_STATES)
        assert got == expected, state
    with pytest.raises(ConfigError, match=r"state: 'paused'"):
        metrics.set_trading_state("paused")


def test_kill_switch_heartbeat_and_last_bar(metrics: TradingMetrics) -> None:
    metrics.set_kill_switch(True)
    bar = datetime(2024, 11, 29, 18, 0, tzinfo=UTC)
    metrics.set_last_bar("bars", "MSFT", bar)
    eastern = timezone(timedelta(hours=-5))
    metrics.heartbeat(datetime(2024, 11, 29, 13, 0, 5, tzinfo=eastern))
    metrics.set_bar_interval("bars", 86_400)
    metrics.set_market_open("bars", True)
    metrics.set_data_age("bars", 2.5)
    _, s = _parse(metrics)
    assert _v(s, "tradeforge_kill_switch_engaged") == 1
    assert _v(s, "tradeforge_last_bar_timestamp_seconds", feed="bars", symbol="MSFT") == (
        1732903200.0
    )
    assert _v(s, "tradeforge_service_heartbeat_timestamp_seconds") == 1732903205.0
    assert _v(s, "tradeforge_bar_interval_seconds", feed="bars") == 86_400
    assert _v(s, "tradeforge_market_open", feed="bars") == 1
    assert _v(s, "tradeforge_data_age_seconds", feed="bars") == 2.5
    metrics.set_kill_switch(False)
    before = datetime.now(UTC).timestamp()
    metrics.heartbeat()
    _, s = _parse(metrics)
    assert _v(s, "tradeforge_kill_switch_engaged") == 0
    assert before <= _v(s, "tradeforge_service_heartbeat_timestamp_seconds") <= before + 60
    with pytest.raises(DataValidationError, match="timezone-aware"):
        metrics.set_last_bar("bars", "MSFT", datetime(2024, 11, 29, 18, 0))
    with pytest.raises(DataValidationError, match="engaged"):
        metrics.set_kill_switch(1)  # type: ignore[arg-type]


def test_reconcile_and_alert_counters(metrics: TradingMetrics) -> None:
    metrics.count_reconcile_mismatches(3)
    metrics.count_reconcile_mismatches(0)
    metrics.count_alert("webhook", "sent")
    metrics.count_alert("webhook", "failed")
    metrics.count_alert("webhook", "failed")
    _, s = _parse(metrics)
    assert _v(s, "tradeforge_reconcile_mismatches_total") == 3
    assert _v(s, "tradeforge_alerts_sent_total", channel="webhook", outcome="failed") == 2
    assert _v(s, "tradeforge_alerts_sent_total", channel="webhook", outcome="sent") == 1
    assert _v(s, "tradeforge_alerts_sent_total", channel="email", outcome="suppressed") == 0
    assert set(ALERT_OUTCOMES) == {"sent", "failed", "suppressed"}
    for bad in (-1, 1.5, True):
        with pytest.raises(DataValidationError, match="n: expected an integer"):
            metrics.count_reconcile_mismatches(bad)  # type: ignore[arg-type]


def test_model_info_keeps_one_series_per_alias(metrics: TradingMetrics) -> None:
    metrics.set_model_info("champion", "spy-ppo", "3")
    metrics.set_model_info("canary", "spy-ppo", "4")
    metrics.set_model_info("champion", "spy-ppo", "4")  # promotion replaces the old version
    families, _ = _parse(metrics)
    rows = {
        (x.labels["alias"], x.labels["name"], x.labels["version"]): x.value
        for x in families["tradeforge_model_info"].samples
    }
    assert rows == {("champion", "spy-ppo", "4"): 1.0, ("canary", "spy-ppo", "4"): 1.0}
    metrics.clear_model_info("canary")
    metrics.clear_model_info("canary")  # clearing twice is harmless
    families, _ = _parse(metrics)
    assert [x.labels["alias"] for x in families["tradeforge_model_info"].samples] == ["champion"]
    build = families["tradeforge_build_info"].samples[0]
    assert build.name == "tradeforge_build_info"
    assert build.labels["version"]
    assert build.labels["python"].startswith("3.")
    m = _make(build_version="9.9.9", build_commit="abc123")
    families, _ = _parse(m)
    assert families["tradeforge_build_info"].samples[0].labels["commit"] == "abc123"
    assert families["tradeforge_build_info"].samples[0].labels["version"] == "9.9.9"


def test_drift_samples_are_reexported_with_the_drift_names(metrics: TradingMetrics) -> None:
    rng = np.random.default_rng(7)
    profile = build_reference_profile(
        rng.standard_normal((2000, 3)),
        ["rsi", "vol", "ret"],
        oos_returns=0.0005 + 0.01 * rng.standard_normal(300),
        cusum=CusumConfig(n_paths=100),
    )
    live = np.random.default_rng(1).standard_normal((600, 3))
    live[:, 0] += 1.0
    report = drift_report(profile, live)
    samples = drift_metrics(report, {"model": "spy-ppo", "alias": "champion"})
    metrics.set_drift([*samples, samples[0]._replace(value=9.0)])  # the repeat wins
    families, s = _parse(metrics)
    psi_rsi = _v(s, "tradeforge_feature_psi", model="spy-ppo", alias="champion", feature="rsi")
    assert psi_rsi == 9.0
    psi_vol = next(x.value for x in samples if x.labels.get("feature") == "vol")
    assert _v(s, "tradeforge_feature_psi", model="spy-ppo", alias="champion", feature="vol") == (
        pytest.approx(psi_vol)
    )
    for name in {x.name for x in samples}:
        kind, text = DRIFT_METRICS[name]
        family = name.removesuffix("_total") if kind == "counter" else name
        assert families[family].type == kind
        assert families[family].documentation == text
    assert _v(s, "tradeforge_drift_rollback", model="spy-ppo", alias="champion") == float(
        report.rollback
    )
    # a new snapshot replaces the old one
    metrics.set_drift([MetricSample("tradeforge_drift_rollback", {"model": "x"}, 1.0)])
    families, s = _parse(metrics)
    assert "tradeforge_feature_psi" not in families
    assert _v(s, "tradeforge_drift_rollback", model="x") == 1.0
    with pytest.raises(ConfigError, match="tradeforge_orders_total"):
        metrics.set_drift([MetricSample("tradeforge_orders_total", {}, 1.0)])


@pytest.mark.parametrize(
    ("call", "label", "value"),
    [
        (lambda m: m.set_position("ppo", "TSLA", 1.0), "symbol", "TSLA"),
        (lambda m: m.set_last_bar("bars", "aapl", datetime.now(UTC)), "symbol", "aapl"),
        (lambda m: m.observe_decision("sac", 0.1), "strategy", "sac"),
        (lambda m: m.count_order("ppo", "binance", "buy", "accepted"), "venue", "binance"),
        (lambda m: m.count_order("ppo", "paper", "short", "accepted"), "side", "short"),
        (lambda m: m.count_order("ppo", "paper", "buy", "partial"), "outcome", "partial"),
        (lambda m: m.count_order("ppo", "paper", "buy", "ord-123"), "outcome", "ord-123"),
        (lambda m: m.set_account("sac", 1.0, 0.0, 0.0, 0.0), "sleeve", "sac"),
        (lambda m: m.set_data_age("iex", 1.0), "feed", "iex"),
        (lambda m: m.count_alert("pager", "sent"), "channel", "pager"),
        (lambda m: m.count_alert("email", "bounced"), "outcome", "bounced"),
        (lambda m: m.set_model_info("prod", "m", "1"), "alias", "prod"),
    ],
)
def test_label_values_outside_their_sets_are_refused(call, label: str, value: str) -> None:  # type: ignore[no-untyped-def]
    m = _make()
    before = m.render()[0]
    with pytest.raises(ConfigError, match=rf"^{label}: '{value}' is not in the configured") as e:
        call(m)
    assert "expected one of [" in str(e.value)
    assert m.render()[0] == before  # nothing was recorded


def test_the_universe_message_names_a_few_symbols_and_the_count() -> None:
    universe = [f"S{i:02d}" for i in range(50)]
    m = TradingMetrics(universe, ["ppo"], denial_reasons=REASONS)
    with pytest.raises(ConfigError, match=r"'S00', 'S01'.*\(50 in all\)"):
        m.set_position("ppo", "ZZZ", 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"universe": []}, "universe: expected a non-empty list"),
        ({"universe": "AAPL"}, "universe: expected a non-empty list"),
        ({"universe": ["AAPL", "AAPL"]}, r"universe: duplicate names \['AAPL'\]"),
        ({"strategies": [""]}, "strategies: every name must be a non-empty string"),
        ({"denial_reasons": []}, "denial_reasons: expected a non-empty list"),
        ({"venues": [" paper"]}, "venues: every name"),
        ({"latency_buckets": [0.1, 0.05]}, "latency_buckets: expected strictly increasing"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "universe": UNIVERSE,
        "strategies": ["ppo"],
        "denial_reasons": REASONS,
        **kwargs,
    }
    with pytest.raises(ConfigError, match=match):
        TradingMetrics(**args)  # type: ignore[arg-type]


def test_registries_are_dedicated_and_can_be_shared() -> None:
    a, b = _make(), _make()  # two instances: no duplicate-name clash
    a.count_fill("ppo", "buy", 1.0)
    _, sb = _parse(b)
    assert _v(sb, "tradeforge_fills_total", strategy="ppo", side="buy") == 0
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("tradeforge_")]
    shared = CollectorRegistry()
    m = _make(registry=shared)
    assert m.registry is shared
    assert "tradeforge_orders_total" in shared._names_to_collectors
    assert "tradeforge_feature_psi" in shared._names_to_collectors  # drift names reserved


def test_a_50_symbol_universe_stays_under_1000_series_per_metric() -> None:
    universe = [f"S{i:02d}" for i in range(50)]
    strategies = ["ppo", "a2c", "sac"]
    m = TradingMetrics(universe, strategies, denial_reasons=REASONS, feeds=["bars", "quotes"])
    now = datetime.now(UTC)
    # every allowed label combination, each once
    for st in strategies:
        m.observe_decision(st, 0.01)
        for sym in universe:
            m.set_position(st, sym, 1.0)
        for reason in REASONS:
            m.count_denial(st, reason)
        for side in ("buy", "sell"):
            m.count_fill(st, side, 0.1)
            for venue in m.venues:
                for outcome in ORDER_OUTCOMES:
                    m.count_order(st, venue, side, outcome)
    for feed in m.feeds:
        m.set_data_age(feed, 1.0)
        for sym in universe:
            m.set_last_bar(feed, sym, now)
    for sleeve in m.sleeves:
        m.set_account(sleeve, 1.0, 0.0, 0.0, 0.0)
    for alias in m.model_aliases:
        m.set_model_info(alias, "spy-ppo", "1")
    for channel in m.alert_channels:
        for outcome in ALERT_OUTCOMES:
            m.count_alert(channel, outcome)
    counts = series_counts(m.render()[0].decode())
    assert max(counts.values()) <= 1000, counts
    assert counts["tradeforge_position_quantity"] == 150
    assert counts["tradeforge_last_bar_timestamp_seconds"] == 100
    assert counts["tradeforge_orders_total"] == 3 * 2 * 2 * 6
    assert counts["tradeforge_risk_denials_total"] == 3 * len(REASONS)
    assert counts["tradeforge_decision_latency_seconds_bucket"] == 3 * 13
    assert counts["tradeforge_model_info"] == 5
    assert sum(counts.values()) < 2000

"""The trading service's Prometheus metrics on a dedicated registry (never the global one).

The service owns one :class:`TradingMetrics` and calls its plain methods as things happen; the
``/metrics`` route serves :meth:`TradingMetrics.render`::

    from tradeforge.risk.checks import DenyReason

    metrics = TradingMetrics(
        universe=["AAPL", "MSFT"],
        strategies=["spy-ppo"],
        denial_reasons=[r.value for r in DenyReason],
    )
    metrics.observe_decision("spy-ppo", 0.012)
    metrics.count_order("spy-ppo", "paper", "buy", "accepted")
    body, content_type = metrics.render()

Conventions (prometheus.io/docs/practices/naming): every name starts with ``tradeforge_`` and
carries its base unit (``_seconds``, ``_usd``, ``_ratio``); ``_total`` only on counters; no id
labels. **Every label is bounded**: symbols by the configured universe, strategies, venues,
feeds, sleeves, alert channels, model aliases and denial reasons by the lists given at
construction, sides/outcomes/states by closed enums. A label value outside its set raises
:class:`~tradeforge.core.errors.ConfigError` (a ``ValueError``) naming the label, the value and
the allowed values: an unknown value means the service and its configuration disagree, and
mapping it to a catch-all would hide that. Non-finite or negative amounts where they make no
sense raise :class:`~tradeforge.core.errors.DataValidationError`.

Counters, the latency histogram and their label sets are created at zero on construction, so
``rate()``/``increase()`` see the first event. :meth:`render` leaves out the ``*_created``
series prometheus_client adds to counters and histograms (they would double the series count
in the 0.0.4 text format and nothing here reads them).

Drift numbers from :func:`~tradeforge.monitor.drift_metrics.drift_metrics` /
:func:`~tradeforge.monitor.drift_metrics.monitor_metrics` are re-exported under the same
registry by :meth:`TradingMetrics.set_drift`, with the names, types and help texts of
:data:`~tradeforge.monitor.drift_metrics.METRICS`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

from tradeforge.core.errors import ConfigError, DataValidationError
from tradeforge.domain.enums import OrderSide
from tradeforge.monitor.drift_metrics import METRICS as DRIFT_METRICS
from tradeforge.monitor.drift_metrics import MetricSample

PREFIX = "tradeforge_"

#: Closed label enums.
SIDES: tuple[str, ...] = tuple(side.value for side in OrderSide)
ORDER_OUTCOMES = ("accepted", "rejected", "denied", "canceled", "filled", "unknown")
TRADING_STATES = ("active", "reducing", "halted")  # tradeforge.risk.state.TradingState values
ALERT_OUTCOMES = ("sent", "failed", "suppressed")

#: Defaults for the configurable label sets.
DEFAULT_VENUES = ("paper", "alpaca")
DEFAULT_FEEDS = ("bars",)
DEFAULT_ALERT_CHANNELS = ("log", "webhook", "email", "slack", "telegram")
DEFAULT_MODEL_ALIASES = ("champion", "challenger", "shadow", "canary", "previous_champion")
ACCOUNT_SLEEVE = "account"

#: Decision latency buckets, 1 ms .. 5 s (0.2 s is the decision SLO in the alert rules).
DECISION_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.5,
    5.0,
)


def _label_set(kind: str, values: Iterable[str]) -> tuple[str, ...]:
    """Validate a configured label set: non-empty strings, no duplicates, at least one."""
    out = tuple(values)
    if isinstance(values, str) or not out:
        raise ConfigError(f"{kind}: expected a non-empty list of names, got {values!r}")
    for v in out:
        if not isinstance(v, str) or not v or v != v.strip():
            raise ConfigError(
                f"{kind}: every name must be a non-empty string without surrounding spaces, "
                f"got {v!r}"
            )
    dupes = sorted({v for v in out if out.count(v) > 1})
    if dupes:
        raise ConfigError(f"{kind}: duplicate names {dupes}; expected each name once")
    return out


def _allowed_text(allowed: Sequence[str]) -> str:
    shown = ", ".join(repr(a) for a in allowed[:12])
    more = f", ... ({len(allowed)} in all)" if len(allowed) > 12 else ""
    return f"[{shown}{more}]"


def _finite(field: str, value: float, *, minimum: float | None = None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataValidationError(f"{field}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise DataValidationError(f"{field}: expected a finite number, got {value!r}")
    if minimum is not None and x < minimum:
        raise DataValidationError(f"{field}: expected a number >= {minimum}, got {value!r}")
    return x


def _epoch(field: str, ts: datetime) -> float:
    if not isinstance(ts, datetime):
        raise DataValidationError(f"{field}: expected a datetime, got {ts!r}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise DataValidationError(f"{field}: expected a timezone-aware datetime, got naive {ts}")
    return ts.timestamp()


def _package_version() -> str:
    try:
        return metadata.version("tradeforge")
    except metadata.PackageNotFoundError:
        return "unknown"


class _DriftCollector:
    """Serves the latest drift snapshot with the drift module's names, types and help texts."""

    def __init__(self) -> None:
        self.samples: tuple[MetricSample, ...] = ()

    @staticmethod
    def _family(name: str) -> Metric:
        kind, text = DRIFT_METRICS[name]
        family = name.removesuffix("_total") if kind == "counter" else name
        return Metric(family, text, kind)

    def describe(self) -> Iterator[Metric]:
        for name in DRIFT_METRICS:
            yield self._family(name)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for s in self.samples:
            if s.name not in families:
                families[s.name] = self._family(s.name)
            families[s.name].add_sample(s.name, dict(s.labels), s.value)
        yield from families.values()


class _WithoutCreated:
    """A view of a registry without the ``*_created`` samples prometheus_client adds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            created = metric.name + "_created"
            copy = Metric(metric.name, metric.documentation, metric.type)
            copy.samples = [s for s in metric.samples if s.name != created]
            yield copy


class TradingMetrics:
    """Every metric the trading service exports, on one dedicated registry.

    ``universe`` bounds the ``symbol`` label, ``strategies`` the ``strategy`` label and
    ``denial_reasons`` (the risk engine's closed reason codes, e.g.
    ``[r.value for r in tradeforge.risk.checks.DenyReason]``) the ``reason`` label.
    ``sleeves`` defaults to ``"account"`` plus one sleeve per strategy. Pass ``registry`` to
    share one (tests, or a service adding its own collectors); by default a fresh one is made.
    """

    def __init__(
        self,
        universe: Sequence[str],
        strategies: Sequence[str],
        registry: CollectorRegistry | None = None,
        *,
        denial_reasons: Sequence[str],
        venues: Sequence[str] = DEFAULT_VENUES,
        feeds: Sequence[str] = DEFAULT_FEEDS,
        sleeves: Sequence[str] | None = None,
        alert_channels: Sequence[str] = DEFAULT_ALERT_CHANNELS,
        model_aliases: Sequence[str] = DEFAULT_MODEL_ALIASES,
        latency_buckets: Sequence[float] = DECISION_LATENCY_BUCKETS,
        build_version: str | None = None,
        build_commit: str = "unknown",
    ) -> None:
        self.universe = _label_set("universe", universe)
        self.strategies = _label_set("strategies", strategies)
        self.denial_reasons = _label_set("denial_reasons", denial_reasons)
        self.venues = _label_set("venues", venues)
        self.feeds = _label_set("feeds", feeds)
        self.sleeves = _label_set(
            "sleeves", (ACCOUNT_SLEEVE, *self.strategies) if sleeves is None else sleeves
        )
        self.alert_channels = _label_set("alert_channels", alert_channels)
        self.model_aliases = _label_set("model_aliases", model_aliases)
        buckets = tuple(_finite("latency_buckets", b, minimum=0.0) for b in latency_buckets)
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ConfigError(
                f"latency_buckets: expected strictly increasing upper bounds, got {buckets!r}"
            )
        self.registry = CollectorRegistry() if registry is None else registry
        self._lock = threading.Lock()
        r = self.registry

        self.decision_latency = Histogram(
            "tradeforge_decision_latency_seconds",
            "Seconds from bar close (data available) to the order intents of a decision.",
            ["strategy"],
            buckets=buckets,
            registry=r,
        )
        self.orders = Counter(
            "tradeforge_orders",
            "Orders by strategy, venue, side and outcome "
            "(accepted|rejected|denied|canceled|filled|unknown).",
            ["strategy", "venue", "side", "outcome"],
            registry=r,
        )
        self.risk_denials = Counter(
            "tradeforge_risk_denials",
            "Orders the pre-trade risk checks denied, by strategy and closed reason code.",
            ["strategy", "reason"],
            registry=r,
        )
        self.fills = Counter(
            "tradeforge_fills",
            "Fills (partial or full) by strategy and side.",
            ["strategy", "side"],
            registry=r,
        )
        self.fees = Counter(
            "tradeforge_fees_usd",
            "Fees and commissions paid, in USD.",
            ["strategy"],
            registry=r,
        )
        self.equity = Gauge(
            "tradeforge_equity_usd",
            "Equity of a sleeve (or the account), in USD.",
            ["sleeve"],
            registry=r,
        )
        self.pnl_realized = Gauge(
            "tradeforge_pnl_realized_usd",
            "Realised profit and loss of a sleeve since the start of the trading day, in USD.",
            ["sleeve"],
            registry=r,
        )
        self.pnl_unrealized = Gauge(
            "tradeforge_pnl_unrealized_usd",
            "Unrealised profit and loss of a sleeve's open positions, in USD.",
            ["sleeve"],
            registry=r,
        )
        self.drawdown = Gauge(
            "tradeforge_drawdown_ratio",
            "Drawdown of a sleeve's equity from its high-water mark (0 = at the high, 0.1 = 10%).",
            ["sleeve"],
            registry=r,
        )
        self.exposure_gross = Gauge(
            "tradeforge_exposure_gross_ratio",
            "Gross exposure: sum of absolute position values over equity.",
            registry=r,
        )
        self.exposure_net = Gauge(
            "tradeforge_exposure_net_ratio",
            "Net exposure: signed sum of position values over equity.",
            registry=r,
        )
        self.position = Gauge(
            "tradeforge_position_quantity",
            "Signed position quantity (shares) by strategy and symbol.",
            ["strategy", "symbol"],
            registry=r,
        )
        self.trading_state = Gauge(
            "tradeforge_trading_state",
            "Trading state, one-hot: 1 for the current state (active|reducing|halted), else 0.",
            ["state"],
            registry=r,
        )
        self.kill_switch = Gauge(
            "tradeforge_kill_switch_engaged",
            "1 while the kill switch is engaged, else 0.",
            registry=r,
        )
        self.last_bar = Gauge(
            "tradeforge_last_bar_timestamp_seconds",
            "Unix time of the newest bar received, by feed and symbol.",
            ["feed", "symbol"],
            registry=r,
        )
        self.bar_interval = Gauge(
            "tradeforge_bar_interval_seconds",
            "Expected seconds between bars of a feed (staleness alerts fire after two).",
            ["feed"],
            registry=r,
        )
        self.market_open = Gauge(
            "tradeforge_market_open",
            "1 while the feed's trading calendar expects bars, else 0.",
            ["feed"],
            registry=r,
        )
        self.data_age = Gauge(
            "tradeforge_data_age_seconds",
            "Seconds between the newest bar's time and the time it was processed, by feed.",
            ["feed"],
            registry=r,
        )
        self.reconcile_mismatches = Counter(
            "tradeforge_reconcile_mismatches",
            "Differences found between the local order/position book and the broker's.",
            registry=r,
        )
        self.alerts_sent = Counter(
            "tradeforge_alerts_sent",
            "Alert deliveries by channel and outcome (sent|failed|suppressed).",
            ["channel", "outcome"],
            registry=r,
        )
        self.model_info = Info(
            "tradeforge_model",
            "The registered model name and version behind each alias (value is always 1).",
            ["alias"],
            registry=r,
        )
        self.build_info = Info(
            "tradeforge_build",
            "tradeforge version, commit and Python version of the running service.",
            registry=r,
        )
        self.heartbeat_ts = Gauge(
            "tradeforge_service_heartbeat_timestamp_seconds",
            "Unix time of the service's last heartbeat (its main loop is alive).",
            registry=r,
        )
        self._drift = _DriftCollector()
        r.register(self._drift)  # a duck-typed Collector

        for s in self.strategies:
            self.decision_latency.labels(strategy=s)
            self.fees.labels(strategy=s)
            for side in SIDES:
                self.fills.labels(strategy=s, side=side)
                for v in self.venues:
                    for o in ORDER_OUTCOMES:
                        self.orders.labels(strategy=s, venue=v, side=side, outcome=o)
            for reason in self.denial_reasons:
                self.risk_denials.labels(strategy=s, reason=reason)
        for c in self.alert_channels:
            for o in ALERT_OUTCOMES:
                self.alerts_sent.labels(channel=c, outcome=o)
        self.set_build_info(build_version or _package_version(), build_commit)

    # ----------------------------------------------------------------- label checks
    @staticmethod
    def _check(label: str, value: str, allowed: Sequence[str], source: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ConfigError(
                f"{label}: {value!r} is not in the configured {source}; "
                f"expected one of {_allowed_text(allowed)}"
            )
        return str(value)  # a StrEnum member becomes its plain value

    def _strategy(self, strategy: str) -> str:
        return self._check("strategy", strategy, self.strategies, "strategies")

    def _side(self, side: str) -> str:
        return self._check("side", side, SIDES, "sides")

    def _feed(self, feed: str) -> str:
        return self._check("feed", feed, self.feeds, "feeds")

    # ----------------------------------------------------------------- decisions and orders
    def observe_decision(self, strategy: str, seconds: float) -> None:
        """One decision's latency (bar close → order intents)."""
        s = self._strategy(strategy)
        self.decision_latency.labels(strategy=s).observe(_finite("seconds", seconds, minimum=0.0))

    def count_order(self, strategy: str, venue: str, side: str, outcome: str) -> None:
        """One order event; ``outcome`` in accepted|rejected|denied|canceled|filled|unknown."""
        self.orders.labels(
            strategy=self._strategy(strategy),
            venue=self._check("venue", venue, self.venues, "venues"),
            side=self._side(side),
            outcome=self._check("outcome", outcome, ORDER_OUTCOMES, "order outcomes"),
        ).inc()

    def count_denial(self, strategy: str, reason: str) -> None:
        """One pre-trade risk denial with its closed reason code."""
        self.risk_denials.labels(
            strategy=self._strategy(strategy),
            reason=self._check("reason", reason, self.denial_reasons, "denial_reasons"),
        ).inc()

    def count_fill(self, strategy: str, side: str, fee_usd: float) -> None:
        """One fill and the fee it paid (USD, >= 0)."""
        s = self._strategy(strategy)
        fee = _finite("fee_usd", fee_usd, minimum=0.0)
        self.fills.labels(strategy=s, side=self._side(side)).inc()
        self.fees.labels(strategy=s).inc(fee)

    # ----------------------------------------------------------------- account and positions
    def set_account(
        self,
        sleeve: str,
        equity_usd: float,
        realized_pnl_usd: float,
        unrealized_pnl_usd: float,
        drawdown_ratio: float,
    ) -> None:
        """Equity, today's realised and current unrealised P&L, and drawdown of a sleeve."""
        sl = self._check("sleeve", sleeve, self.sleeves, "sleeves")
        values = (
            _finite("equity_usd", equity_usd),
            _finite("realized_pnl_usd", realized_pnl_usd),
            _finite("unrealized_pnl_usd", unrealized_pnl_usd),
            _finite("drawdown_ratio", drawdown_ratio, minimum=0.0),
        )
        self.equity.labels(sleeve=sl).set(values[0])
        self.pnl_realized.labels(sleeve=sl).set(values[1])
        self.pnl_unrealized.labels(sleeve=sl).set(values[2])
        self.drawdown.labels(sleeve=sl).set(values[3])

    def set_exposure(self, gross_ratio: float, net_ratio: float) -> None:
        """Gross (>= 0) and net exposure over equity."""
        gross = _finite("gross_ratio", gross_ratio, minimum=0.0)
        net = _finite("net_ratio", net_ratio)
        self.exposure_gross.set(gross)
        self.exposure_net.set(net)

    def set_position(self, strategy: str, symbol: str, quantity: float) -> None:
        """A strategy's signed position in a symbol of the universe."""
        self.position.labels(
            strategy=self._strategy(strategy),
            symbol=self._check("symbol", symbol, self.universe, "universe"),
        ).set(_finite("quantity", quantity))

    # ----------------------------------------------------------------- state
    def set_trading_state(self, state: str) -> None:
        """One-hot trading state over active|reducing|halted (case-insensitive)."""
        key = state.lower() if isinstance(state, str) else state
        current = self._check("state", key, TRADING_STATES, "trading states")
        with self._lock:
            for st in TRADING_STATES:
                self.trading_state.labels(state=st).set(1.0 if st == current else 0.0)

    def set_kill_switch(self, engaged: bool) -> None:
        """1 while the kill switch is engaged."""
        if not isinstance(engaged, bool):
            raise DataValidationError(f"engaged: expected a bool, got {engaged!r}")
        self.kill_switch.set(1.0 if engaged else 0.0)

    # ----------------------------------------------------------------- data freshness
    def set_last_bar(self, feed: str, symbol: str, ts: datetime) -> None:
        """The newest bar's (timezone-aware) time for a feed and symbol."""
        self.last_bar.labels(
            feed=self._feed(feed),
            symbol=self._check("symbol", symbol, self.universe, "universe"),
        ).set(_epoch("ts", ts))

    def set_bar_interval(self, feed: str, seconds: float) -> None:
        """Expected seconds between bars of ``feed``; the stale-data alert fires after two."""
        self.bar_interval.labels(feed=self._feed(feed)).set(
            _finite("seconds", seconds, minimum=0.0)
        )

    def set_market_open(self, feed: str, is_open: bool) -> None:
        """Whether the feed's calendar expects bars now (the stale-data alert only fires then)."""
        if not isinstance(is_open, bool):
            raise DataValidationError(f"is_open: expected a bool, got {is_open!r}")
        self.market_open.labels(feed=self._feed(feed)).set(1.0 if is_open else 0.0)

    def set_data_age(self, feed: str, seconds: float) -> None:
        """Delay between a bar's time and its processing (>= 0)."""
        self.data_age.labels(feed=self._feed(feed)).set(_finite("seconds", seconds, minimum=0.0))

    # ----------------------------------------------------------------- reconciliation, alerts
    def count_reconcile_mismatches(self, n: int) -> None:
        """Add ``n`` (>= 0) reconciliation differences."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataValidationError(f"n: expected an integer >= 0, got {n!r}")
        self.reconcile_mismatches.inc(n)

    def count_alert(self, channel: str, outcome: str) -> None:
        """One alert delivery attempt; ``outcome`` in sent|failed|suppressed."""
        self.alerts_sent.labels(
            channel=self._check("channel", channel, self.alert_channels, "alert_channels"),
            outcome=self._check("outcome", outcome, ALERT_OUTCOMES, "alert outcomes"),
        ).inc()

    # ----------------------------------------------------------------- models and build
    def set_model_info(self, alias: str, name: str, version: str) -> None:
        """The model behind ``alias``; a new call replaces the alias's previous name/version."""
        a = self._check("alias", alias, self.model_aliases, "model_aliases")
        for field, value in (("name", name), ("version", version)):
            if not isinstance(value, str) or not value:
                raise DataValidationError(f"{field}: expected a non-empty string, got {value!r}")
        self.model_info.labels(alias=a).info({"name": name, "version": str(version)})

    def clear_model_info(self, alias: str) -> None:
        """Remove ``alias`` (e.g. after a canary is rolled back)."""
        a = self._check("alias", alias, self.model_aliases, "model_aliases")
        with contextlib.suppress(KeyError):  # not set: nothing to remove
            self.model_info.remove(a)

    def set_build_info(self, version: str, commit: str = "unknown") -> None:
        """``tradeforge_build_info{version,commit,python}`` (set at construction)."""
        python = ".".join(str(p) for p in sys.version_info[:3])
        self.build_info.info({"version": version, "commit": commit, "python": python})

    # ----------------------------------------------------------------- drift
    def set_drift(self, samples: Iterable[MetricSample]) -> None:
        """Replace the drift snapshot with ``samples`` (from ``drift_metrics``/``monitor_metrics``).

        Names must be drift metric names; when one series (name and labels) appears twice the
        last value wins, so ``drift_metrics(...) + monitor_metrics(...)`` can be passed whole.
        """
        latest: dict[tuple[str, tuple[tuple[str, str], ...]], MetricSample] = {}
        for s in samples:
            if s.name not in DRIFT_METRICS:
                raise ConfigError(
                    f"drift sample name: {s.name!r} is not a drift metric; "
                    f"expected one of {_allowed_text(list(DRIFT_METRICS))}"
                )
            labels = {str(k): str(v) for k, v in s.labels.items()}
            value = float(s.value)  # NaN allowed: a PSI without data
            latest[(s.name, tuple(sorted(labels.items())))] = MetricSample(s.name, labels, value)
        self._drift.samples = tuple(latest.values())

    # ----------------------------------------------------------------- liveness and output
    def heartbeat(self, ts: datetime | None = None) -> None:
        """Mark the service alive at ``ts`` (timezone-aware; default now)."""
        if ts is None:
            self.heartbeat_ts.set_to_current_time()
        else:
            self.heartbeat_ts.set(_epoch("ts", ts))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition (0.0.4) of the registry and its content type."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE_PLAIN_0_0_4


def series_counts(text: str) -> Mapping[str, int]:
    """Distinct label sets per sample name in an exposition (cardinality check helper)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, set()).add(tuple(sorted(s.labels.items())))
    return {name: len(sets) for name, sets in out.items()}


__all__ = [
    "ALERT_OUTCOMES",
    "DECISION_LATENCY_BUCKETS",
    "DEFAULT_ALERT_CHANNELS",
    "DEFAULT_FEEDS",
    "DEFAULT_MODEL_ALIASES",
    "DEFAULT_VENUES",
    "ORDER_OUTCOMES",
    "SIDES",
    "TRADING_STATES",
    "TradingMetrics",
    "series_counts",
]

"""The trading node's bar loop on the in-process simulated broker (bundled AAPL/IBM/MSFT bars).

The decisive check: the node's equity at every bar equals ``run_backtest`` of the very weights
the node decided (same sizing, costs and fills: the backtest engine is the reference). Then:
each bar is decided once across interruptions at every OMS step, a restarted node rebuilds a
stateful policy, warm-up and bad bars get no orders, reconciliation halts on an unexplained
difference, and the risk engine's denials and kill latch hold.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_node_support import (
    SIM,
    START,
    TiltPolicy,
    TrendPolicy,
    bar_time,
    broker,
    make_node,
    pipeline,
)

from tradeforge.backtest.engine import run_backtest
from tradeforge.core.errors import ConfigError
from tradeforge.data.panel import BarPanel
from tradeforge.domain import OrderSide, StrategyId, SubmitOrder, Symbol
from tradeforge.execution.algos import ExecAlgoConfig, child_order_id
from tradeforge.execution.ids import client_order_id
from tradeforge.execution.node import NodeConfig, NodeResult
from tradeforge.execution.oms import HOOK_POINTS
from tradeforge.risk import RiskConfig, RiskEngine

N_BARS = 8


def _window(panel: BarPanel, start: str = START, n: int = N_BARS) -> tuple[int, int]:
    first = int(panel.index.searchsorted(pd.Timestamp(start, tz="UTC")))
    return first, first + n - 1


def _run(tmp: Path, panel: BarPanel, **kwargs: object) -> tuple[NodeResult, object]:
    first, last = _window(panel)
    venue = broker(panel)
    node = make_node(tmp, panel, venue, **kwargs)  # type: ignore[arg-type]
    try:
        result = node.run(bar_time(panel, first), bar_time(panel, last))
    finally:
        node.close()
    return result, venue


def _equity(result: NodeResult) -> pd.Series:
    return pd.Series({pd.Timestamp(m.bar_time): float(m.equity) for m in result.marks})


def test_node_equity_is_the_backtest_of_its_own_decisions(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    result, _ = _run(tmp_path, equities_panel)
    first, last = _window(equities_panel)
    weights = np.full((equities_panel.n_bars, equities_panel.n_symbols), np.nan)
    rows = {ts: i for i, ts in enumerate(equities_panel.index)}
    for decision in result.decisions:
        weights[rows[pd.Timestamp(decision.bar_time)]] = decision.weights
    assert len(result.decisions) == N_BARS
    assert len(result.fills) >= 2 * N_BARS
    backtest = run_backtest(equities_panel, weights, SIM, first, last + 2)
    paper = _equity(result)
    assert list(paper.index) == list(backtest.equity.index)
    rel = ((paper - backtest.equity).abs() / backtest.equity).to_numpy()
    assert rel.max() < 1e-9
    assert backtest.costs["commission"].sum() > 0  # costs were charged on both sides


@pytest.mark.parametrize("point", [p for p in HOOK_POINTS if p != "fill_received"])
def test_an_interrupted_node_finishes_with_each_bar_and_order_once(
    equities_panel: BarPanel, tmp_path: Path, point: str
) -> None:
    reference, ref_venue = _run(tmp_path / "ref", equities_panel)
    first, last = _window(equities_panel)
    venue = broker(equities_panel)
    seen = Counter[str]()

    def crash(reached: str, cid: str) -> None:
        seen[reached] += 1
        if reached == point and seen[reached] == 4:
            raise RuntimeError(f"crash at {point}")

    state = tmp_path / "crashed"
    node = make_node(state, equities_panel, venue, hook=crash)
    with pytest.raises(RuntimeError, match="crash at"):
        node.run(bar_time(equities_panel, first), bar_time(equities_panel, last))
    node.close()
    node = make_node(state, equities_panel, venue)
    result = node.run(bar_time(equities_panel, first), bar_time(equities_panel, last))
    node.close()
    cids = [o.client_order_id for o in venue.list_orders()]
    assert len(cids) == len(set(cids)) == len(ref_venue.list_orders())  # type: ignore[attr-defined]
    assert sorted(cids) == sorted(o.client_order_id for o in reference.orders)
    assert [float(m.equity) for m in result.marks] == [float(m.equity) for m in reference.marks]
    assert [d.bar_time for d in result.decisions] == [d.bar_time for d in reference.decisions]


def test_a_restarted_node_rebuilds_a_stateful_policy(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    n = equities_panel.n_symbols
    reference, _ = _run(tmp_path / "ref", equities_panel, policy=TrendPolicy(n))
    first, last = _window(equities_panel)
    venue = broker(equities_panel)
    node = make_node(tmp_path / "s", equities_panel, venue, policy=TrendPolicy(n))
    node.run(bar_time(equities_panel, first), bar_time(equities_panel, first + 3))
    node.close()
    fresh = TrendPolicy(n)
    node = make_node(tmp_path / "s", equities_panel, venue, policy=fresh)
    result = node.run(bar_time(equities_panel, first), bar_time(equities_panel, last))
    node.close()
    assert result.restore_mismatches == 0
    assert fresh.calls == N_BARS  # 4 replayed on restart + 4 new decisions
    assert [d.weights for d in result.decisions] == [d.weights for d in reference.decisions]
    assert [m.equity for m in result.marks] == [m.equity for m in reference.marks]


class _Drifting(TiltPolicy):
    """Not deterministic across processes: a counter that ``reset`` does not clear."""

    count = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        _Drifting.count += 1
        return super().act(observation) * (1.0 - 0.001 * _Drifting.count)


def test_a_replayed_decision_that_differs_from_the_journal_is_counted(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    first, _ = _window(equities_panel)
    venue = broker(equities_panel)
    node = make_node(tmp_path, equities_panel, venue, policy=_Drifting(3))
    node.run(bar_time(equities_panel, first), bar_time(equities_panel, first + 2))
    node.close()
    node = make_node(tmp_path, equities_panel, venue, policy=_Drifting(3))
    result = node.run(bar_time(equities_panel, first), bar_time(equities_panel, first + 3))
    node.close()
    assert result.restore_mismatches > 0
    assert len(result.decisions) == 4


def test_update_and_transform_feature_modes_decide_alike(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    online, _ = _run(tmp_path / "u", equities_panel)
    config = NodeConfig(strategy_id="unit", reconcile_every=3, features="transform")
    batch, _ = _run(tmp_path / "t", equities_panel, config=config)
    assert [d.weights for d in online.decisions] == [d.weights for d in batch.decisions]
    assert [m.equity for m in online.marks] == [m.equity for m in batch.marks]


def test_no_decision_before_the_features_warm_up(equities_panel: BarPanel, tmp_path: Path) -> None:
    panel = equities_panel
    venue = broker(panel, start="2000-03-02")
    node = make_node(tmp_path, panel, venue, window=3)
    result = node.run(bar_time(panel, 1), bar_time(panel, 20))
    node.close()
    feats = pipeline(panel).transform(panel).values
    finite = np.isfinite(feats).all(axis=(1, 2))
    ready = next(t for t in range(2, 21) if finite[t - 2 : t + 1].all())
    assert ready > 5  # rsi_14 needs its history
    assert next(pd.Timestamp(d.bar_time) for d in result.decisions) == panel.index[ready]
    assert len(result.skipped) == ready - 1
    assert all("warm-up" in why for _, why in result.skipped)


def test_a_bad_bar_gets_no_orders(equities_panel: BarPanel, tmp_path: Path) -> None:
    first, _last = _window(equities_panel)
    high = equities_panel.high.copy()
    high[first + 2, 0] = equities_panel.low[first + 2, 0] * 0.5  # AAPL high below its low
    panel = BarPanel(equities_panel.index, equities_panel.symbols, equities_panel.open, high,
                     equities_panel.low, equities_panel.close, equities_panel.volume)  # fmt: skip
    result, _ = _run(tmp_path, panel)
    assert [ts for ts, _ in result.skipped] == [bar_time(panel, first + 2)]
    assert "AAPL" in result.skipped[0][1]
    assert "high" in result.skipped[0][1]
    assert len(result.decisions) == N_BARS - 1


def test_startup_reconciliation_halts_on_an_unknown_position(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    first, last = _window(equities_panel)
    venue = broker(equities_panel)
    outside = SubmitOrder(client_order_id="outside-1", strategy_id="manual", symbol=Symbol("IBM"),
                          side=OrderSide.BUY, quantity=Decimal(10))  # fmt: skip
    venue.submit(outside)
    venue.advance()
    venue.drain_events()
    node = make_node(tmp_path, equities_panel, venue)
    result = node.run(bar_time(equities_panel, first + 1), bar_time(equities_panel, last))
    node.close()
    assert result.halted
    assert result.decisions == []
    assert result.orders == []
    assert "position_mismatches" in result.reconciliations[0]
    assert all("halted" in why for _, why in result.skipped)


def test_periodic_reconciliation_halts_new_orders(equities_panel: BarPanel, tmp_path: Path) -> None:
    first, last = _window(equities_panel, n=10)
    venue = broker(equities_panel)
    acks = Counter[str]()

    def outsider(point: str, cid: str) -> None:  # someone trades the account by hand
        acks[point] += 1
        if point == "after_ack" and acks[point] == 4:
            venue.submit(SubmitOrder(client_order_id="manual-1", strategy_id="manual",
                                     symbol=Symbol("MSFT"), side=OrderSide.BUY,
                                     quantity=Decimal(7)))  # fmt: skip

    config = NodeConfig(strategy_id="unit", reconcile_every=3)
    node = make_node(tmp_path, equities_panel, venue, hook=outsider, config=config)
    result = node.run(bar_time(equities_panel, first), bar_time(equities_panel, last))
    node.close()
    assert result.halted
    halted_at = next(r for r in result.reconciliations if "unknown_at_broker" in r
                     or "position_mismatches" in r)  # fmt: skip
    assert halted_at.startswith(bar_time(equities_panel, first + 3).isoformat())
    assert len(result.decisions) == 3  # bars 0-2 traded; from bar 3's reconciliation on: none
    assert [ts for ts, _ in result.skipped] == [bar_time(equities_panel, first + k)
                                                for k in range(3, 10)]  # fmt: skip
    assert "MSFT" in result.skipped[0][1]


def test_risk_denials_are_journaled_and_never_sent(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    config = RiskConfig(restricted_symbols=frozenset({"IBM"}))

    def factory(target: object, clock: object) -> RiskEngine:
        return RiskEngine.open(tmp_path / "risk", config, clock=clock, kill_target=target)  # type: ignore[arg-type]

    result, venue = _run(tmp_path / "node", equities_panel, risk_factory=factory)
    assert result.denied
    assert all("restricted_symbol" in why for why in result.denied.values())
    assert {o.symbol for o in venue.list_orders()} == {"AAPL", "MSFT"}  # type: ignore[attr-defined]
    ibm = [c for d in result.decisions for c in d.commands if c.symbol == "IBM"]
    assert {c.client_order_id for c in ibm} == set(result.denied)


def test_a_latched_kill_denies_every_order(equities_panel: BarPanel, tmp_path: Path) -> None:
    (tmp_path / "risk").mkdir()
    (tmp_path / "risk" / "KILL").write_text("operator stop\n", encoding="utf-8")

    def factory(target: object, clock: object) -> RiskEngine:
        return RiskEngine.open(tmp_path / "risk", RiskConfig(), clock=clock, kill_target=target)  # type: ignore[arg-type]

    result, venue = _run(tmp_path / "node", equities_panel, risk_factory=factory)
    assert venue.list_orders() == []  # type: ignore[attr-defined]
    assert result.denied
    assert all("trading_halted" in why for why in result.denied.values())


def test_stop_loss_exits_are_sent_with_their_own_ids(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    def factory(target: object, clock: object) -> RiskEngine:
        return RiskEngine(RiskConfig(stop_loss=0.001), clock=clock, kill_target=target)  # type: ignore[arg-type]

    result, _ = _run(tmp_path, equities_panel, risk_factory=factory)
    first, last = _window(equities_panel)
    exit_ids = {
        client_order_id(StrategyId("unit"), bar_time(equities_panel, t), f"exit:{symbol}")
        for t in range(first, last + 2)
        for symbol in equities_panel.symbols
    }
    exits = [o for o in result.orders if o.client_order_id in exit_ids]
    assert exits, "a 0.1 % stop must fire on a falling position within 8 bars"
    assert all(o.side is OrderSide.SELL and o.status.value == "filled" for o in exits)
    assert result.denied == {}  # the policy's order for an exiting symbol is held, not denied


def test_config_errors_name_the_field(equities_panel: BarPanel, tmp_path: Path) -> None:
    venue = broker(equities_panel)
    with pytest.raises(ConfigError, match="delay_bars = 1"):
        make_node(
            tmp_path / "a", equities_panel, venue, sim=SIM.model_copy(update={"delay_bars": 1})
        )
    with pytest.raises(ConfigError, match="strategy_id = None"):
        make_node(tmp_path / "b", equities_panel, venue, config=NodeConfig())


# -- execution algorithms (TWAP/VWAP slicing) and implementation shortfall -----------------------
LOTS = SIM.model_copy(update={"fractional": False})  # whole shares: children respect the lot
TWAP3 = ExecAlgoConfig(kind="twap", n_bars=3, min_parent_notional=10_000)


class _Scripted:
    """Target weights from a script, one entry per decision (NaN after its end: hold).
    ``reset`` rewinds it, so a restarted node's replay brings it back to where it was."""

    def __init__(self, script: list[list[float]]) -> None:
        self.script, self.calls = script, 0

    def reset(self) -> None:
        self.calls = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        self.calls += 1
        row = self.script[self.calls - 1] if self.calls <= len(self.script) else [np.nan] * 3
        return np.array(row, dtype=float)


def _algo_config(algo: ExecAlgoConfig) -> NodeConfig:
    return NodeConfig(strategy_id="unit", reconcile_every=3, exec_algo=algo)


def _filled(result: NodeResult) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for fill in result.fills:
        out[fill.symbol] = out.get(fill.symbol, Decimal(0)) + fill.signed_quantity
    return out


def _children(panel: BarPanel, row: int, k: int) -> set[str]:
    return {child_order_id("unit", bar_time(panel, row), s, k) for s in panel.symbols}


def test_twap_sends_each_parent_over_three_bars_and_fills_what_the_whole_order_fills(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    panel = equities_panel
    first, _ = _window(panel)
    once = [[0.3, 0.3, 0.3]]
    whole, _ = _run(tmp_path / "whole", panel, policy=_Scripted(once), sim=LOTS)
    sliced, venue = _run(tmp_path / "twap", panel, policy=_Scripted(once), sim=LOTS,
                         config=_algo_config(TWAP3))  # fmt: skip
    assert len(whole.orders) == 3  # one whole order per symbol at the first bar
    # the decision of bar first + k holds child k of each parent, and it fills on the next bar
    for k in range(3):
        assert {c.client_order_id for c in sliced.decisions[k].commands} == _children(panel,
                                                                                       first, k)  # fmt: skip
    fill_bars = {f.client_order_id: pd.Timestamp(f.ts) for f in sliced.fills}
    for k in range(3):
        assert {fill_bars[c] for c in _children(panel, first, k)} == {panel.index[first + k + 1]}
    assert all(not d.commands for d in sliced.decisions[3:])
    # every child is whole shares, children equal up to one share, and they sum to the order
    for parent in sliced.parents:
        assert parent.algo == "twap"
        assert parent.status == "done"
        assert parent.sent == 3
        assert all(q == q.to_integral_value() for q in parent.children)
        assert max(parent.children) - min(parent.children) <= 1
    whole_qty = {o.symbol: o.quantity for o in whole.orders}
    assert {p.symbol: p.quantity for p in sliced.parents} == whole_qty
    assert _filled(sliced) == _filled(whole) == whole_qty
    assert len(venue.list_orders()) == 9  # type: ignore[attr-defined]
    # the shortfall: one row per parent, arrival = the decision bar's close
    table = sliced.shortfall().set_index("symbol")
    for j, symbol in enumerate(panel.symbols):
        row = table.loc[symbol]
        assert row["arrival_price"] == panel.close[first, j]
        assert row["n_children"] == row["n_orders"] == 3
        assert row["fill_ratio"] == 1.0
        opens = panel.open[first + 1 : first + 4, j]  # the simulator fills at the next open
        qty = np.array([float(q) for q in sliced.parents[j].children])
        avg = float((opens * qty).sum() / qty.sum())
        assert row["avg_fill_price"] == pytest.approx(avg, rel=1e-12)
        close = panel.close[first, j]
        assert row["shortfall_bps"] == pytest.approx((avg - close) / close * 1e4, rel=1e-9)


@pytest.mark.parametrize("point", ["after_intent", "after_submit", "after_ack"])
def test_a_restart_mid_schedule_neither_duplicates_nor_drops_a_child(
    equities_panel: BarPanel, tmp_path: Path, point: str
) -> None:
    panel = equities_panel
    first, last = _window(panel)
    once = [[0.3, 0.3, 0.3]]
    config = _algo_config(TWAP3)
    reference, ref_venue = _run(tmp_path / "ref", panel, policy=_Scripted(once), sim=LOTS,
                                config=config)  # fmt: skip
    # a clean stop after the second bar, then a crash inside the third bar's second child
    venue = broker(panel, sim=LOTS)
    node = make_node(tmp_path / "s", panel, venue, policy=_Scripted(once), sim=LOTS, config=config)
    node.run(bar_time(panel, first), bar_time(panel, first + 1))
    node.close()
    assert {o.client_order_id for o in venue.list_orders()} == (
        _children(panel, first, 0) | _children(panel, first, 1))  # fmt: skip
    seen = Counter[str]()

    def crash(reached: str, cid: str) -> None:
        seen[reached] += 1
        if reached == point and seen[reached] == 2:
            raise RuntimeError(f"crash at {point}")

    node = make_node(tmp_path / "s", panel, venue, policy=_Scripted(once), sim=LOTS,
                     config=config, hook=crash)  # fmt: skip
    with pytest.raises(RuntimeError, match="crash at"):
        node.run(bar_time(panel, first), bar_time(panel, last))
    node.close()
    node = make_node(tmp_path / "s", panel, venue, policy=_Scripted(once), sim=LOTS, config=config)
    result = node.run(bar_time(panel, first), bar_time(panel, last))
    node.close()
    cids = [o.client_order_id for o in venue.list_orders()]
    assert len(cids) == len(set(cids)) == 9
    assert set(cids) == {o.client_order_id for o in ref_venue.list_orders()}  # type: ignore[attr-defined]
    assert _filled(result) == _filled(reference)
    assert [m.equity for m in result.marks] == [m.equity for m in reference.marks]
    assert [p.sent for p in result.parents] == [3, 3, 3]


def test_a_changed_decision_replaces_the_rest_of_the_schedule(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    panel = equities_panel
    first, _ = _window(panel)
    w, nan = 0.3, float("nan")
    # bar 0: parents A; bar 1: same weights (A goes on); bar 2: IBM's weight changes (its A is
    # replaced by a new parent B), AAPL holds (NaN: A goes on), MSFT same; then hold
    script = [[w, w, w], [w, w, w], [nan, 0.1, w]]
    result, _ = _run(tmp_path, panel, policy=_Scripted(script), sim=LOTS,
                     config=_algo_config(TWAP3))  # fmt: skip
    by_id = {p.parent_id: p for p in result.parents}
    t0, t2 = bar_time(panel, first), bar_time(panel, first + 2)
    old_ibm = by_id[f"{t0.isoformat()}|IBM"]
    assert (old_ibm.status, old_ibm.sent, old_ibm.ended_at) == ("replaced", 2, t2)
    new_ibm = by_id[f"{t2.isoformat()}|IBM"]
    assert new_ibm.side is OrderSide.SELL  # 0.1 is below the ~0.2 already bought
    assert new_ibm.algo == "twap"  # about $100k to sell: sliced again
    assert (new_ibm.status, new_ibm.sent, len(new_ibm.children)) == ("done", 3, 3)
    assert by_id[f"{t0.isoformat()}|AAPL"].status == "done"
    assert by_id[f"{t0.isoformat()}|MSFT"].status == "done"
    sent_ibm = [
        c.client_order_id for d in result.decisions for c in d.commands if c.symbol == "IBM"
    ]
    assert child_order_id("unit", t0, "IBM", 2) not in sent_ibm
    assert sent_ibm[:2] == [child_order_id("unit", t0, "IBM", k) for k in range(2)]
    assert sent_ibm[2:] == list(new_ibm.client_order_ids)
    # the replacement is sized against what was really bought: IBM ends at 0.1 of equity
    ibm = _filled(result)["IBM"]
    equity = float(result.marks[-1].equity)
    weight = float(ibm) * panel.close[first + 7, 1] / equity
    assert weight == pytest.approx(0.1, abs=0.01)


def test_default_node_records_whole_orders_with_their_shortfall(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    panel = equities_panel
    result, _ = _run(tmp_path, panel)
    assert len(result.parents) == len(result.orders) > 0
    assert {p.algo for p in result.parents} == {"none"}
    rows = {ts: i for i, ts in enumerate(panel.index)}
    table = result.shortfall()
    assert len(table) == len(result.orders)
    for _, row in table.iterrows():
        t, j = rows[row["arrival_time"]], panel.symbols.index(row["symbol"])
        assert row["arrival_price"] == panel.close[t, j]
        assert row["avg_fill_price"] == panel.open[t + 1, j]
        sign = 1.0 if row["side"] == "buy" else -1.0
        expected = sign * (panel.open[t + 1, j] - panel.close[t, j]) * row["filled_quantity"]
        assert row["shortfall"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert table["fees"].sum() == pytest.approx(sum(float(f.fee) for f in result.fills))
    summary = result.shortfall_summary()
    assert summary["shortfall"] == pytest.approx(table["shortfall"].sum())
    assert set(summary["by_symbol"]) == set(panel.symbols)
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready for the paper report


def test_vwap_with_a_participation_cap_lengthens_by_the_trailing_adv(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    panel = equities_panel
    first, _ = _window(panel)
    cap = 1e-4
    algo = ExecAlgoConfig(kind="vwap", n_bars=3, participation_cap=cap, max_bars=10)
    result, _ = _run(tmp_path, panel, policy=_Scripted([[0.3, 0.3, 0.3]]), sim=LOTS,
                     config=_algo_config(algo))  # fmt: skip
    adv = panel.volume[first - 20 : first].mean(axis=0)  # the 20 bars before the decision bar
    lengths = {}
    for parent in result.parents:
        j = panel.symbols.index(parent.symbol)
        limit = cap * adv[j]
        n = next(n for n in range(3, 11) if math.ceil(parent.quantity / n) <= limit)
        lengths[parent.symbol] = n
        assert len(parent.children) == parent.sent == n
        assert max(parent.children) <= limit
        assert sum(parent.children) == parent.quantity
    assert max(lengths.values()) > 3  # the cap made at least one schedule longer
    ibm = [d.bar_time for d in result.decisions for c in d.commands if c.symbol == "IBM"]
    assert ibm == [bar_time(panel, first + k) for k in range(lengths["IBM"])]


def test_a_bar_without_a_decision_moves_the_rest_of_the_schedule_one_bar_later(
    equities_panel: BarPanel, tmp_path: Path
) -> None:
    first, _ = _window(equities_panel)
    high = equities_panel.high.copy()
    high[first + 1, 0] = equities_panel.low[first + 1, 0] * 0.5  # bar 1 is bad: no orders
    panel = BarPanel(equities_panel.index, equities_panel.symbols, equities_panel.open, high,
                     equities_panel.low, equities_panel.close, equities_panel.volume)  # fmt: skip
    result, _ = _run(tmp_path, panel, policy=_Scripted([[0.3, 0.3, 0.3]]), sim=LOTS,
                     config=_algo_config(TWAP3))  # fmt: skip
    assert [ts for ts, _ in result.skipped] == [bar_time(panel, first + 1)]
    sent = {d.bar_time: {c.client_order_id for c in d.commands} for d in result.decisions}
    assert sent[bar_time(panel, first)] == _children(panel, first, 0)
    assert sent[bar_time(panel, first + 2)] == _children(panel, first, 1)
    assert sent[bar_time(panel, first + 3)] == _children(panel, first, 2)
    assert [p.status for p in result.parents] == ["done"] * 3

"""The canary sleeve and the shadow runner inside the service, on the local venue in process.

Injected canary loss: the canary (registry alias ``canary``) puts its whole sleeve into AAPL and
its monitor's ``max_daily_loss`` is lowered from 2 % to 1 % of the sleeve. It buys on the first
bar (2010-01-04); AAPL's real close of 2010-01-06 is 1.59 % below the day before, so that bar
fires the ``daily_loss`` trigger. Within that bar the sleeve's closing orders go out, so it is
flat at the next bar (2010-01-07); the alias is removed (one audit event of the rollback kind),
one alert reaches the webhook, and the canary stops trading."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("alpaca")
pytest.importorskip("mlflow")

from test_serve_service import Receiver

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.execution.node import NodeConfig
from tradeforge.execution.store import OrderStore
from tradeforge.experiment.paper import PaperConfig
from tradeforge.governance.canary import ROLLBACK_KIND, CanaryConfig
from tradeforge.governance.gates import GateConfig
from tradeforge.governance.lifecycle import open_audit
from tradeforge.monitor.alerts import AlertsConfig
from tradeforge.risk import RiskConfig
from tradeforge.serve.config import CanaryServeConfig, ReplayConfig, ServeConfig
from tradeforge.serve.runtime import TradingService
from tradeforge.testing.programs import bundled_panel, numpy_program
from tradeforge.testing.registry import make_registry_store

START, END = "2010-01-04", "2010-01-22"
MODEL = "swing"


class OneSymbolPolicy:
    """Target weight 1.0 on the symbol at ``index`` (the sleeve all in one stock)."""

    def __init__(self, index: int, n: int) -> None:
        self.index, self.n = index, n

    def act(self, observation: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        out[self.index] = 1.0
        return out


def _program(name: str, index: int) -> Any:
    base = numpy_program(name)
    return dataclasses.replace(base, policy=OneSymbolPolicy(index, len(base.symbols)))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _registry(tmp_path: Path) -> tuple[str, PolicyRegistry]:
    store = make_registry_store(tmp_path / "registry" / "mlflow.db", name=MODEL, versions=3)
    uri = f"sqlite:///{store}"
    registry = PolicyRegistry(uri, create=False)
    registry.set_alias(MODEL, "champion", 1)
    registry.set_alias(MODEL, "canary", 2)
    registry.set_alias(MODEL, "shadow", 3)
    return uri, registry


def _config(state: Path, uri: str, hook: str, **canary: Any) -> ServeConfig:
    return ServeConfig.model_validate({
        "policy": str(state / "unused"), "venue": "local", "state_dir": str(state),
        "replay": ReplayConfig(start=START, end=END, bar_interval_s=0.1),
        "paper": PaperConfig(node=NodeConfig(strategy_id="swing"),
                             risk=RiskConfig(max_gross=2.0)),
        "alerts": AlertsConfig.model_validate({"webhooks": [{"url": hook, "name": "hook"}],
                                               "cooldown_s": 60, "retries": 1}),
        "registry": {"model": MODEL, "uri": uri},
        "canary": {"enabled": True, "share": 0.05, "ramp": [0.05, 0.25], **canary},
        "shadow": {"enabled": True},
    })  # fmt: skip


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def test_an_injected_canary_loss_flattens_the_sleeve_and_rolls_back_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    uri, registry = _registry(tmp_path)
    monitor = CanaryConfig(max_daily_loss=0.01, cusum=False)
    config = _config(tmp_path / "svc", uri, receiver.url, monitor=monitor)
    service = TradingService(config, numpy_program(), canary_program=_program("canary", 0),
                             shadow_program=_program("shadow", 2))  # fmt: skip
    with service:
        _until(lambda: service._ended.is_set(), 90.0, "the replay to end")
        snap = service.snapshot()
        canary = service.canary
        assert canary is not None
        service._observe(snap)
        metrics = service.metrics.render()[0].decode()
    store = OrderStore.open_sqlite(tmp_path / "svc" / "oms.sqlite")
    try:
        orders, fills = store.load_orders(), store.fills()
    finally:
        store.close()
    state = snap.canary
    assert state is not None
    assert state["rolled_back"] is True
    assert state["active"] is False
    assert "daily_loss" in state["reason"].split(", ")
    decision = state["last_decision"]
    trigger = next(t for t in decision["triggers"] if t["name"] == "daily_loss")
    assert trigger["value"] == pytest.approx(0.0159, abs=5e-4)
    assert trigger["threshold"] == 0.01
    # within one bar: the closing orders went out at the decision bar, flat at the next one
    assert state["rollback_bar"] == "2010-01-06T00:00:00+00:00"
    assert state["flat_at"] == "2010-01-07T00:00:00+00:00"
    assert state["bars_to_flat"] == 1
    assert state["positions"] == {}
    assert canary.ledger.flat
    assert state["released_cash"] > 0.9 * 0.05 * 1_000_000  # back to the policy once flat
    assert canary.ledger.portfolio.cash == 0
    # the sleeve held AAPL only, and its notional stayed within its cap
    sleeve = [o for o in orders if str(o.strategy_id) == "swing-canary"]
    assert {str(o.symbol) for o in sleeve} == {"AAPL"}
    assert sleeve, "the canary traded before the loss"
    assert canary.decision is not None
    decided = canary.decision.timestamp.strftime("%Y%m%dT%H%M%S")
    bars = sorted({str(o.client_order_id).split("-")[1] for o in sleeve})  # tf1-<bar>-<hash>
    assert bars[-1] == decided  # the closing orders carry the decision bar; nothing after it
    assert len(bars) > 1  # it traded on earlier bars
    # the alias is back: canary removed, champion untouched
    assert registry.aliases(MODEL) == {"champion": 1, "shadow": 3, "challenger": 3}
    # exactly one audit event of the rollback kind, and one alert
    audit = open_audit(None, uri)
    try:
        events = audit.entries(kind=ROLLBACK_KIND)
    finally:
        audit.close()
    assert len(events) == 1
    assert events[0].data["action"] == "remove_canary"
    assert events[0].data["from_version"] == 2
    _until(lambda: any(str(b.get("key", "")).startswith("canary_rollback") for _, b in receiver.bodies),
           5.0, "the rollback alert")  # fmt: skip
    time.sleep(0.3)
    keys = [str(b.get("key", "")) for _, b in receiver.bodies]
    assert sum(k.startswith("canary_rollback") for k in keys) == 1
    # the champion's own orders never touched the sleeve: the account is the two ledgers
    champion_fills = [f for f in fills if f.client_order_id not in canary.ledger.cids]
    assert champion_fills
    # the models page shows the canary row; the status shows the sleeve
    rows = {m.alias: m for m in snap.models}
    assert rows["canary"].version == "2"
    assert state["share"] == 0.05
    assert 'alias="canary"' not in metrics  # rolled back: no longer served
    assert 'tradeforge_model_info{alias="shadow",name="swing",version="3"} 1.0' in metrics
    assert state["rollback_ms"] is not None
    assert state["rollback_ms"] < 60_000.0  # the test venue's bar: 60 s on minute bars


def test_the_shadow_decides_writes_its_records_and_sends_no_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    from tradeforge.governance.gates import shadow_gate_from_dir

    uri, _ = _registry(tmp_path)
    config = _config(tmp_path / "svc", uri, receiver.url).model_copy(
        update={"canary": CanaryServeConfig()}  # the canary off: the shadow alone
    )
    service = TradingService(config, numpy_program(), shadow_program=_program("shadow", 2))
    with service:
        _until(lambda: service._ended.is_set(), 90.0, "the replay to end")
        snap = service.snapshot()
    shadow = snap.shadow
    assert shadow is not None
    assert shadow["errors"] == 0
    assert shadow["bars"] > 5
    records = tmp_path / "svc" / "shadow"
    challenger = pd.read_csv(records / "challenger_weights.csv", index_col=0)
    champion = pd.read_csv(records / "champion_weights.csv", index_col=0)
    assert len(challenger) == shadow["bars"] == len(champion)
    assert (challenger["MSFT"] == 1.0).all()
    assert (challenger[["AAPL", "IBM"]] == 0.0).all().all()
    # the champion keeps 10 % cash: its weights sum to 0.9; the shadow's to 1.0
    assert np.allclose(champion.sum(axis=1), 0.9)
    distance = float(np.abs(champion.to_numpy() - challenger.to_numpy()).sum(axis=1).mean())
    assert shadow["action_distance"] == pytest.approx(distance)
    close = bundled_panel().close[:, 0]  # AAPL: real returns as the drawdown band's reference
    gate = shadow_gate_from_dir(records, close[1:500] / close[:499] - 1.0)
    assert gate.evidence["bars"] == shadow["bars"]
    assert {c.name: c.passed for c in gate.checks}["errors"] is True
    # no shadow order reached the venue: every stored order is the champion's
    store = OrderStore.open_sqlite(tmp_path / "svc" / "oms.sqlite")
    try:
        strategies = {str(o.strategy_id) for o in store.load_orders()}
    finally:
        store.close()
    assert strategies == {"swing"}
    assert {m.alias for m in snap.models} >= {"running", "shadow"}


def test_the_sleeve_ramps_after_passing_sessions_and_stays_within_its_cap(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A lax paper gate (one session, no fill minimum, a generous cost budget) passes every
    session once the sleeve has fills; after 2 passing sessions in a row the share steps from
    5 % to 25 % (the last step) and the new cash is allocated; it never goes higher."""
    uri, registry = _registry(tmp_path)
    gate = GateConfig(min_paper_sessions=1, min_paper_fills=0, max_slippage_multiple=100.0)
    loose = CanaryConfig(max_daily_loss=0.5, max_drawdown=0.5, cusum=False)
    config = _config(tmp_path / "svc", uri, receiver.url, monitor=loose, gate=gate,
                     ramp_after_sessions=2, modelled_cost_bps=50.0)  # fmt: skip
    seen: list[tuple[float, float | None, float | None]] = []
    service = TradingService(config, numpy_program(), canary_program=_program("canary", 0),
                             shadow_program=_program("shadow", 2))  # fmt: skip
    with service:
        while not service._ended.is_set():
            state = service.canary_status or {}
            seen.append((state.get("share", 0.0), state.get("notional_cap"),
                         state.get("target_notional")))  # fmt: skip
            time.sleep(0.02)
        state = service.snapshot().canary
    assert state is not None
    assert state["rolled_back"] is False
    log = state["ramp_log"]
    assert [(r["from"], r["to"]) for r in log] == [(0.05, 0.25)]  # one step, to the last
    assert state["share"] == 0.25
    assert state["passing_sessions"] == 0  # at the top the count stops
    assert state["allocation"] == pytest.approx(log[0]["added"] / 0.20 * 0.25, rel=0.05)
    assert {share for share, _, _ in seen} <= {0.05, 0.25}
    assert registry.aliases(MODEL)["canary"] == 2  # nothing rolled back
    # every bar's targets (holdings plus that bar's orders) stayed within that bar's cap
    checked = [(cap, target) for _, cap, target in seen if cap is not None and target is not None]
    assert checked
    assert all(target <= cap for cap, target in checked)
    assert max(target for _, target in checked) > 0.2 * 1_000_000 * 0.9  # it used the new share

"""The canary sleeve's pieces: the notional cap (a property test over random targets and
prices), the champion's view of the account without the sleeve, the ramp and the config."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeforge.core.errors import RiskError
from tradeforge.domain import (
    FillId,
    Instrument,
    OrderFilled,
    OrderSide,
    Portfolio,
    StrategyId,
    Symbol,
)
from tradeforge.execution.ids import client_order_id
from tradeforge.execution.node_sizing import size_orders
from tradeforge.execution.sizing import SizingConfig
from tradeforge.serve.canary import (
    ChampionOms,
    SleeveLedger,
    SleeveRamp,
    capped_targets,
    champion_portfolio,
    gross_notional,
    sleeve_orders,
)
from tradeforge.serve.config import ServeConfig
from tradeforge.sim import SimConfig

SYMBOLS = tuple(Symbol(s) for s in ("AAPL", "IBM", "MSFT"))
T0 = datetime(2010, 1, 4, tzinfo=UTC)
SLEEVE, CHAMPION = StrategyId("swing-canary"), StrategyId("swing")

prices = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("900"), places=2)
quantities = st.decimals(min_value=Decimal(-500), max_value=Decimal(500), places=3)


def _instruments(fractional: bool) -> dict[Symbol, Instrument]:
    return {s: Instrument(symbol=s, fractionable=fractional, shortable=True) for s in SYMBOLS}


def _fill(
    strategy: StrategyId, n: int, symbol: Symbol, qty: Decimal, price: Decimal
) -> OrderFilled:
    cid = client_order_id(strategy, T0, f"{symbol}:{n}")
    side = OrderSide.BUY if qty > 0 else OrderSide.SELL
    return OrderFilled(client_order_id=cid, ts=T0, fill_id=FillId(f"{strategy}-{n}"),
                       symbol=symbol, side=side, quantity=abs(qty), price=price,
                       fee=Decimal("0.5"))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    weights=st.lists(st.one_of(st.floats(-3, 3), st.just(float("nan"))), min_size=3, max_size=3),
    marks=st.lists(prices, min_size=3, max_size=3),
    held=st.lists(quantities, min_size=3, max_size=3),
    cash=st.decimals(min_value=Decimal(-20_000), max_value=Decimal(200_000), places=2),
    cap=st.decimals(min_value=Decimal(0), max_value=Decimal(50_000), places=2),
    fractional=st.booleans(),
    allow_short=st.booleans(),
)
def test_no_sleeve_ever_exceeds_its_notional_cap(
    weights: list[float], marks: list[Decimal], held: list[Decimal], cash: Decimal,
    cap: Decimal, fractional: bool, allow_short: bool,
) -> None:  # fmt: skip
    """Whatever the policy asks for, at whatever prices and holdings (also held above the cap
    after prices moved), the sleeve's gross notional after its orders is at most the cap."""
    mark = dict(zip(SYMBOLS, marks, strict=True))
    if not fractional:
        held = [q.to_integral_value() for q in held]
    ledger = SleeveLedger(SLEEVE, cash)
    for n, (symbol, qty) in enumerate(zip(SYMBOLS, held, strict=True)):
        if qty != 0:
            fill = _fill(SLEEVE, n, symbol, qty, mark[symbol])
            ledger.cids.add(fill.client_order_id)
            assert ledger.apply(fill)
    sim = SimConfig(fractional=fractional, allow_short=allow_short)
    orders = sleeve_orders(np.array(weights), ledger.portfolio, mark, SYMBOLS,
                           _instruments(fractional), sim, cap, SLEEVE, T0)  # fmt: skip
    after = dict(ledger.portfolio.quantities())
    for order in orders:
        assert order.strategy_id == SLEEVE
        sign = 1 if order.side is OrderSide.BUY else -1
        after[order.symbol] = after.get(order.symbol, Decimal(0)) + sign * order.quantity
        if not fractional:
            assert order.quantity == order.quantity.to_integral_value()
    assert gross_notional(after, mark) <= cap
    if not allow_short:  # a long-only sleeve never opens a short
        for symbol, qty in after.items():
            assert qty >= min(Decimal(0), ledger.portfolio.position(symbol).quantity)


def test_capped_targets_scale_toward_zero_and_keep_targets_within_the_cap() -> None:
    mark = {SYMBOLS[0]: Decimal(100), SYMBOLS[1]: Decimal(50)}
    targets = {SYMBOLS[0]: Decimal(30), SYMBOLS[1]: Decimal(-40)}  # gross 5,000
    assert capped_targets(targets, mark, Decimal(6000)) == targets
    capped = capped_targets(targets, mark, Decimal(2500), lot=Decimal(1))
    assert capped == {SYMBOLS[0]: Decimal(15), SYMBOLS[1]: Decimal(-20)}
    odd = capped_targets(targets, mark, Decimal(1000), lot=Decimal(1))  # 6 and -8: 1,000
    assert odd == {SYMBOLS[0]: Decimal(6), SYMBOLS[1]: Decimal(-8)}
    with pytest.raises(RiskError, match="notional cap = -1"):
        capped_targets(targets, mark, Decimal(-1))


@settings(max_examples=200, deadline=None)
@given(
    sleeve=st.lists(st.tuples(st.integers(0, 2), quantities.filter(lambda q: q != 0), prices),
                    max_size=6),
    champion=st.lists(st.tuples(st.integers(0, 2), quantities.filter(lambda q: q != 0), prices),
                      max_size=6),
    weights=st.lists(st.floats(0, 0.3), min_size=3, max_size=3),
    marks=st.lists(prices, min_size=3, max_size=3),
)  # fmt: skip
def test_champion_orders_never_touch_the_sleeve(
    sleeve: list[tuple[int, Decimal, Decimal]], champion: list[tuple[int, Decimal, Decimal]],
    weights: list[float], marks: list[Decimal],
) -> None:  # fmt: skip
    """One account holds both; the champion sees the account minus the sleeve (exactly its own
    fills), so its orders for any target are those it would send without a sleeve, and the
    champion's fills never reach the sleeve's ledger."""
    allocation = Decimal(50_000)
    account = Portfolio(cash=Decimal(1_000_000))
    alone = Portfolio(cash=Decimal(1_000_000) - allocation)
    ledger = SleeveLedger(SLEEVE, allocation)
    fills = [(SLEEVE, n, *f) for n, f in enumerate(sleeve)]
    fills += [(CHAMPION, n, *f) for n, f in enumerate(champion)]
    for strategy, n, j, qty, price in fills:
        fill = _fill(strategy, n, SYMBOLS[j], qty, price)
        if strategy == SLEEVE:
            ledger.cids.add(fill.client_order_id)
        account = account.apply_fill(fill)
        applied = ledger.apply(fill)
        assert applied == (strategy == SLEEVE)
        if strategy == CHAMPION:
            alone = alone.apply_fill(fill)
    view = champion_portfolio(account, ledger.portfolio)
    assert view.cash == alone.cash
    assert view.quantities() == alone.quantities()
    assert view.fees == alone.fees  # (realised P&L is split by difference: the account's
    # average price mixes both books, so only cash, quantities and fees are exact per book)
    mark = dict(zip(SYMBOLS, marks, strict=True))
    sizing: dict[str, Any] = {
        "marks": mark, "symbols": SYMBOLS, "sim": SimConfig(fractional=True, allow_short=True),
        "instruments": _instruments(True), "sizing": SizingConfig(allow_short=True),
        "buying_power": Decimal(10_000_000), "strategy_id": CHAMPION, "bar_time": T0,
    }  # fmt: skip
    ours = size_orders(np.array(weights), portfolio=view, **sizing)
    theirs = size_orders(np.array(weights), portfolio=alone, **sizing)
    assert ours == theirs
    assert all(o.strategy_id == CHAMPION for o in ours)


class FakeOms:
    def __init__(self, events: list[Any], account: Portfolio) -> None:
        self.events, self.portfolio, self.halted = events, account, False

    def process_events(self) -> list[Any]:
        out, self.events = self.events, []
        return out

    def open_orders(self) -> list[Any]:
        return []


def test_the_champion_node_gets_neither_the_sleeves_events_nor_its_holdings() -> None:
    ledger = SleeveLedger(SLEEVE, Decimal(1000))
    mine = _fill(SLEEVE, 0, SYMBOLS[0], Decimal(5), Decimal(100))
    theirs = _fill(CHAMPION, 0, SYMBOLS[0], Decimal(7), Decimal(100))
    ledger.cids.add(mine.client_order_id)
    account = Portfolio(cash=Decimal(100_000)).apply_fill(mine).apply_fill(theirs)
    oms = ChampionOms(FakeOms([mine, theirs], account), ledger)
    assert oms.process_events() == [theirs]  # the node's risk never counts a sleeve fill
    assert ledger.portfolio.quantities() == {SYMBOLS[0]: Decimal(5)}  # applied on the way
    assert oms.portfolio.quantities() == {SYMBOLS[0]: Decimal(7)}
    assert oms.portfolio.cash == Decimal(100_000) - Decimal(1000) - Decimal(700) - Decimal("0.5")
    assert oms.halted is False  # everything else is the manager itself


def test_the_ramp_steps_up_after_n_passing_sessions_in_a_row_and_never_above_the_last() -> None:
    ramp = SleeveRamp((0.01, 0.05, 0.25), after_sessions=3)
    outcomes = [True, True, False, True, True]  # a failure resets the count
    assert [ramp.on_session(p) for p in outcomes] == [None] * 5
    assert ramp.share == 0.01
    assert ramp.on_session(True) == 0.05
    assert ramp.passing == 0
    assert [ramp.on_session(True) for _ in range(3)] == [None, None, 0.25]
    assert [ramp.on_session(True) for _ in range(10)] == [None] * 10
    assert ramp.share == 0.25
    assert ramp.at_top


def test_a_ramp_allocation_adds_units_not_returns() -> None:
    ledger = SleeveLedger(SLEEVE, Decimal(1000))
    mark = {SYMBOLS[0]: Decimal(100)}
    fill = _fill(SLEEVE, 0, SYMBOLS[0], Decimal(5), Decimal(100))
    ledger.cids.add(fill.client_order_id)
    ledger.apply(fill)
    before = ledger.unit_value(mark)
    ledger.allocate(Decimal(4000), mark)
    assert ledger.equity(mark) == Decimal("4999.5")
    assert ledger.unit_value(mark) == pytest.approx(before, rel=1e-12)
    assert ledger.allocation == Decimal(5000)


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ({"enabled": True, "share": 0.02}, "canary.share = 0.02 is not a step of canary.ramp"),
        ({"ramp": [0.05, 0.01], "share": 0.05}, "expected strictly increasing steps"),
        ({"ramp": [0.01, 1.5]}, "canary.ramp = [0.01, 1.5]: [1.5] out of range"),
        ({"monitor": {"cusum": True}}, "canary.monitor.cusum = true but canary.reference_returns"),
        ({"share": 0.0}, "greater than 0"),
        ({"ramp_after_sessions": 0}, "greater than or equal to 1"),
        ({"limits": {"max_gross": -1}}, "greater than 0"),
        ({"shares": 0.01}, "Extra inputs are not permitted"),
    ],
)
def test_the_canary_config_names_the_bad_field(canary: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ServeConfig.model_validate({"policy": "p", "registry": {"model": "m"}, "canary": canary})


def test_a_canary_or_shadow_needs_a_registry_and_defaults_to_one_percent() -> None:
    for section in ("canary", "shadow"):
        with pytest.raises(ValidationError, match=f"{section}.enabled = true but registry"):
            ServeConfig.model_validate({"policy": "p", section: {"enabled": True}})
    config = ServeConfig.model_validate({"policy": "p", "registry": {"model": "m"},
                                         "canary": {"enabled": True}})  # fmt: skip
    assert config.canary.share == 0.01
    assert config.canary.steps == (0.01, 0.05, 0.25)
    assert config.canary.limits.max_gross == 1.0
    assert config.canary.monitor.cusum is False
    late = config.canary.model_copy(update={"share": 0.05})
    assert late.steps == (0.05, 0.25)


def test_a_retired_flat_sleeve_gives_its_cash_back_to_the_policy() -> None:
    ledger = SleeveLedger(SLEEVE, Decimal(1000))
    account = Portfolio(cash=Decimal(100_000))
    assert champion_portfolio(account, ledger.portfolio).cash == Decimal(99_000)
    ledger.release()
    assert ledger.allocation == 0
    assert champion_portfolio(account, ledger.portfolio).cash == Decimal(100_000)


def test_the_yaml_canary_and_shadow_sections_load_with_paths_resolved(tmp_path: Path) -> None:
    from tradeforge.core.errors import ConfigError
    from tradeforge.serve.config import load_serve_config

    path = tmp_path / "serve.yaml"
    path.write_text(
        "serve:\n  policy: artifact\n  registry: {model: swing, uri: 'sqlite:///reg.db'}\n"
        "  canary:\n    enabled: true\n    share: 0.05\n    ramp: [0.01, 0.05, 0.25]\n"
        "    ramp_after_sessions: 5\n    limits: {max_gross: 1.0, max_drawdown: 0.05}\n"
        "    monitor: {max_daily_loss: 0.01, cusum: true}\n    reference_returns: oos.csv\n"
        "  shadow: {enabled: true, dir: shadow-records}\n",
        encoding="utf-8",
    )
    config = load_serve_config(path)
    assert config.canary.steps == (0.05, 0.25)
    assert config.canary.ramp_after_sessions == 5
    assert config.canary.limits.max_drawdown == 0.05
    assert config.canary.monitor.max_daily_loss == 0.01
    assert Path(config.canary.reference_returns or "").is_absolute()
    assert Path(config.shadow.dir or "").name == "shadow-records"
    assert Path(config.shadow.dir or "").is_absolute()
    path.write_text("serve:\n  policy: artifact\n  registry: {model: swing}\n"
                    "  canary: {enabled: true, share: 0.5}\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match=r"canary.share = 0.5 is not a step of canary.ramp"):
        load_serve_config(path)

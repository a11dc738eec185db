"""tradeforge.execution.venue.wire: every JSON shape the venue writes parses with alpaca-py's own
models (the unmodified SDK is the contract), with the values the venue holds."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from venue_helpers import make_engine, market

from tradeforge.data.panel import BarPanel
from tradeforge.execution.venue.wire import num

alpaca_models = pytest.importorskip("alpaca.trading.models")


def test_num_writes_plain_decimals() -> None:
    assert [num(Decimal(x)) for x in ("25", "25.500", "1E+2", "0.000000001", "-0", "0E-9")] == [
        "25", "25.5", "100", "0.000000001", "0", "0"
    ]  # fmt: skip
    assert num(None) is None


def test_every_shape_parses_with_the_sdk_models(equities_panel: BarPanel) -> None:
    from alpaca.data.models import BarSet
    from alpaca.trading.enums import OrderStatus, PositionSide
    from alpaca.trading.models import (
        Asset,
        Calendar,
        Clock,
        Order,
        Position,
        TradeAccount,
        TradeUpdate,
    )

    engine, updates = make_engine(equities_panel)
    try:
        reply = engine.submit(market("AAPL", "10", client_order_id="w1"))
        order = Order(**reply)
        assert (order.status, order.client_order_id, order.qty) == (
            OrderStatus.ACCEPTED,
            "w1",
            "10",
        )
        assert order.id == UUID(reply["id"])
        engine.submit(market("MSFT", qty=None, notional=500.25, client_order_id="w2"))
        engine.advance()
        filled = Order(**engine.order_by_client_id("w1"))
        assert filled.status is OrderStatus.FILLED
        assert filled.filled_at is not None
        notional = Order(**engine.order_by_client_id("w2"))
        assert (notional.qty, notional.notional) == (None, "500.25")
        parsed = [TradeUpdate(**u["data"]) for u in updates]
        assert [u.event for u in parsed] == ["new", "new", "fill", "fill"]
        assert parsed[2].execution_id == UUID(updates[2]["data"]["execution_id"])
        assert parsed[2].price == float(filled.filled_avg_price)  # type: ignore[arg-type]
        account = TradeAccount(**engine.account())
        assert account.account_number == "TFPAPER0001"
        assert Decimal(account.cash or "0") < Decimal(1_000_000)
        positions = [Position(**p) for p in engine.positions()]
        assert [(p.symbol, p.side) for p in positions] == [
            ("AAPL", PositionSide.LONG), ("MSFT", PositionSide.LONG)
        ]  # fmt: skip
        assets = [Asset(**a) for a in engine.assets()]
        assert [a.symbol for a in assets] == ["AAPL", "IBM", "MSFT"]
        assert all(a.fractionable and not a.shortable for a in assets)
        clock = Clock(**engine.clock())
        assert clock.timestamp.isoformat() == "2010-01-05T00:00:00+00:00"
        days = [Calendar(**d) for d in engine.calendar("2010-01-04", "2010-01-05")]
        assert [d.open.isoformat() for d in days] == ["2010-01-04T09:30:00", "2010-01-05T09:30:00"]
        raw = engine.bars("AAPL", "1Day", start="2010-01-04")
        bars = BarSet(raw["bars"])
        assert [b.close for b in bars["AAPL"]] == [b["c"] for b in raw["bars"]["AAPL"]]
    finally:
        engine.close()

"""tradeforge.execution.brokers.alpaca without a network: configuration guards (bad URLs, live
URL with paper keys), Alpaca's 18 statuses, the SDK's retries switched off and timeouts on,
and trade updates (as the venue writes them) turned into domain events once each."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from venue_helpers import make_engine, market

from tradeforge.core.config import validate_config
from tradeforge.core.errors import ConfigError
from tradeforge.data.panel import BarPanel
from tradeforge.domain import OrderSide, OrderStatus, SubmitOrder
from tradeforge.execution import BrokerError

pytest.importorskip("alpaca")  # alpaca-py: the "vendors" extra

from tradeforge.execution.brokers import alpaca
from tradeforge.execution.brokers.alpaca import AlpacaBroker, AlpacaBrokerConfig

LOCAL = "http://127.0.0.1:9"  # never contacted: these tests make no request


def _config(**kw: Any) -> Any:
    raw = {"api_key": "key", "secret_key": "secret", "base_url": LOCAL, "stream": False, **kw}
    return validate_config(AlpacaBrokerConfig, raw, "broker")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"base_url": "http://127.0.0.1:8765/"}, "ends with '/'; expected no trailing slash"),
        ({"base_url": "http://127.0.0.1:8765/v2"}, "has a path ('/v2')"),
        ({"base_url": "127.0.0.1:8765"}, "expected http|https://host[:port]"),
        ({"stream_url": "http://127.0.0.1:8765/stream"}, "expected ws|wss://host[:port]"),
        ({"base_url": "https://api.alpaca.markets"}, "is Alpaca LIVE but paper = True"),
        (
            {"base_url": "https://paper-api.alpaca.markets", "paper": False},
            "is Alpaca paper but paper = False",
        ),
        (
            {"base_url": "https://api.alpaca.markets", "paper": False, "api_key": "PKABC"},
            "is a paper key",
        ),
        ({"read_timeout_s": 0}, "read_timeout_s"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_config_refuses_bad_urls_and_settings(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(**changes)
    assert fragment in str(info.value)


def test_config_derives_urls() -> None:
    assert _config().trade_stream_url == "ws://127.0.0.1:9/stream"
    assert (
        _config(base_url="https://h.example:443").trade_stream_url == "wss://h.example:443/stream"
    )
    paper = _config(base_url=None)
    assert (paper.rest_url, paper.trade_stream_url) == (
        "https://paper-api.alpaca.markets", "wss://paper-api.alpaca.markets/stream"
    )  # fmt: skip
    live = _config(base_url=None, paper=False, api_key="AKXYZ")
    assert live.rest_url == "https://api.alpaca.markets"


def test_all_eighteen_statuses_map() -> None:
    expected = {
        "new": "accepted", "accepted": "accepted", "pending_new": "accepted",
        "accepted_for_bidding": "accepted", "calculated": "accepted", "stopped": "accepted",
        "suspended": "accepted", "held": "accepted", "pending_review": "accepted",
        "partially_filled": "partially_filled", "filled": "filled",
        "pending_cancel": "pending_cancel", "pending_replace": "pending_replace",
        "canceled": "canceled", "expired": "expired", "rejected": "rejected",
        "replaced": "replaced", "done_for_day": "expired",
    }  # fmt: skip
    from alpaca.trading.enums import OrderStatus as SdkStatus

    assert set(expected) == {s.value for s in SdkStatus}
    for status, ours in expected.items():
        assert alpaca.map_status(status, "day", Decimal(0)).value == ours
    assert alpaca.map_status("done_for_day", "gtc", Decimal(0)) is OrderStatus.ACCEPTED
    assert alpaca.map_status("new", "day", Decimal(3)) is OrderStatus.PARTIALLY_FILLED
    with pytest.raises(BrokerError, match="status = 'weird'"):
        alpaca.map_status("weird", "day", Decimal(0))


def test_sdk_retries_are_off_and_every_request_has_a_timeout() -> None:
    broker = AlpacaBroker(_config(connect_timeout_s=0.7, read_timeout_s=1.3))
    try:
        client = broker._client
        assert (client._retry, client._retry_codes, client._use_raw_data) == (0, [], True)
        adapter = client._session.get_adapter("http://127.0.0.1:9/v2/orders")
        seen: dict[str, Any] = {}

        def fake_send(request: Any, **kwargs: Any) -> Any:
            seen.update(kwargs)
            raise RuntimeError("stop here")

        base = type(adapter).__mro__[1]
        original = base.send
        base.send = lambda self, request, **kw: fake_send(request, **kw)  # type: ignore[method-assign]
        try:
            with pytest.raises(RuntimeError, match="stop here"):
                client._session.get("http://127.0.0.1:9/v2/account")
        finally:
            base.send = original  # type: ignore[method-assign]
        assert seen["timeout"] == (0.7, 1.3)
        assert adapter.max_retries.total == 0
    finally:
        broker.close()


def test_quantities_that_a_float_cannot_carry_are_refused_before_sending() -> None:
    broker = AlpacaBroker(_config())
    try:
        command = SubmitOrder(client_order_id="q", strategy_id="s", symbol="AAPL",
                              side=OrderSide.BUY, quantity=Decimal("12345678.123456789"))  # fmt: skip
        with pytest.raises(BrokerError, match="cannot be sent exactly"):
            broker._order_request(command)
        assert broker.http_attempts == 0
    finally:
        broker.close()


def test_trade_updates_become_domain_events_once(equities_panel: BarPanel) -> None:
    engine, updates = make_engine(equities_panel)
    broker = AlpacaBroker(_config())
    try:
        engine.submit(market("AAPL", "10", client_order_id="u1"))
        engine.submit(market("MSFT", "1", type="limit", limit_price=0.5, client_order_id="u2"))
        engine.advance()
        assert [u["data"]["event"] for u in updates] == ["new", "new", "fill", "expired"]
        stream = [*updates, updates[2]]  # the fill arrives twice
        events = [e for msg in stream for e in broker._events_from_update(msg)]
        assert [(e.kind, e.client_order_id) for e in events] == [
            ("accepted", "u1"), ("accepted", "u2"), ("filled", "u1"), ("expired", "u2")
        ]  # fmt: skip
        fill = events[2]
        venue_fill = engine.order_by_client_id("u1")["tf_fills"][0]
        assert (fill.fill_id, str(fill.quantity), str(fill.price), str(fill.fee)) == (
            venue_fill["execution_id"], "10", venue_fill["price"], venue_fill["fee"]
        )  # fmt: skip
        assert fill.fee > 0
        # an update the SDK model refuses is skipped and asks for a REST resync
        bad = {"stream": "trade_updates", "data": {"event": "fill", "order": {"id": "x"}}}
        assert broker._events_from_update(bad) == []
        assert broker._resync_pending is True
    finally:
        broker.close()
        engine.close()

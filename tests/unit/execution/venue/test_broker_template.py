"""tradeforge.execution.brokers._template: the adapter template keeps the Broker protocol's exact
method signatures (so a copy of it starts out conforming), and AlpacaBroker does too."""

from __future__ import annotations

import inspect

import pytest

from tradeforge.execution.broker import Broker
from tradeforge.execution.brokers._template import TemplateBroker, TemplateBrokerConfig

PROTOCOL_METHODS = ("submit", "cancel", "get_order_by_client_id", "list_open_orders",
                    "positions", "account", "drain_events")  # fmt: skip


def _signature(cls: type, name: str) -> inspect.Signature:
    return inspect.signature(getattr(cls, name))


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_template_matches_the_protocol(name: str) -> None:
    assert _signature(TemplateBroker, name) == _signature(Broker, name)


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_alpaca_broker_matches_the_protocol(name: str) -> None:
    alpaca = pytest.importorskip("tradeforge.execution.brokers.alpaca")
    assert _signature(alpaca.AlpacaBroker, name) == _signature(Broker, name)


def test_template_methods_say_what_to_do() -> None:
    broker = TemplateBroker(TemplateBrokerConfig())
    with pytest.raises(NotImplementedError, match="at most once"):
        broker.submit(None)  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="stop the event feed"):
        broker.close()

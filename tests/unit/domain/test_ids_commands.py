"""tradeforge.domain ids and commands: validation at the boundary, errors that name the field,
and the public API."""

from __future__ import annotations

from decimal import Decimal

import pytest

import tradeforge.domain
from tradeforge.core.errors import TradeforgeError
from tradeforge.domain import (
    DomainError,
    Instrument,
    OrderSide,
    OrderType,
    SubmitOrder,
    client_order_id_of,
    strategy_id_of,
    symbol_of,
)


def test_client_order_id_limits() -> None:
    assert client_order_id_of("a" * 48) == "a" * 48
    with pytest.raises(DomainError, match="expected 1 to 48 characters"):
        client_order_id_of("a" * 49)
    with pytest.raises(DomainError, match="'has space'"):
        client_order_id_of("has space")
    assert strategy_id_of("momo_v2.1") == "momo_v2.1"
    with pytest.raises(DomainError, match="strategy_id = ''"):
        strategy_id_of("")
    assert symbol_of("BTC/USD") == "BTC/USD"


def submit(**kw: object) -> SubmitOrder:
    fields: dict[str, object] = {
        "client_order_id": "c1", "strategy_id": "s", "symbol": "AAPL", "side": OrderSide.BUY,
        "quantity": Decimal(3),
    }  # fmt: skip
    fields.update(kw)
    return SubmitOrder(**fields)  # type: ignore[arg-type]


def test_submit_order_price_rules() -> None:
    assert submit().order_type is OrderType.MARKET
    assert submit(side=OrderSide.SELL).signed_quantity == Decimal(-3)
    limit = submit(order_type=OrderType.LIMIT, limit_price=Decimal("101.5"))
    assert limit.limit_price == Decimal("101.5")
    with pytest.raises(DomainError, match="limit_price = None; a limit order needs"):
        submit(order_type=OrderType.LIMIT)
    with pytest.raises(DomainError, match="stop_price = None; a stop_limit order needs"):
        submit(order_type=OrderType.STOP_LIMIT, limit_price=Decimal(1))
    with pytest.raises(DomainError, match="limit_price = 5; expected None for a market order"):
        submit(limit_price=Decimal(5))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", Decimal(0), "quantity = Decimal('0'): Input should be greater than 0"),
        ("quantity", float("nan"), "quantity = nan: Input should be a finite number"),
        ("quantity", Decimal(-1), "quantity = Decimal('-1')"),
        ("client_order_id", "x" * 49, "client_order_id = 'xxxx"),
        ("colour", "red", "colour = 'red': unknown key; allowed keys: client_order_id"),
    ],
)
def test_invalid_fields_raise_domain_error_naming_the_field(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(DomainError) as info:
        submit(**{field: value})
    assert message in str(info.value)
    assert isinstance(info.value, TradeforgeError)


def test_float_quantity_goes_through_its_repr() -> None:
    assert submit(quantity=0.1).quantity == Decimal("0.1")


def test_instrument_defaults() -> None:
    inst = Instrument(symbol="AAPL")
    assert (inst.fractionable, inst.lot_size, inst.price_increment) == (False, 1, Decimal("0.01"))


def test_public_api_is_all() -> None:
    names = set(tradeforge.domain.__all__)
    assert all(hasattr(tradeforge.domain, n) for n in names)
    assert {"Order", "OrderFilled", "SubmitOrder", "Portfolio", "TRANSITIONS"} <= names

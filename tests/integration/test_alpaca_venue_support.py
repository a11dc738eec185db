"""Shared fixtures for the ``test_alpaca_venue_*`` integration tests (no tests here).

Every test gets its own venue (a ``VenueEngine`` on the bundled AAPL/IBM/MSFT bars with every
trading cost on, replaying from 2010-01-04) served on a free 127.0.0.1 port, and the clients
it opens are closed at teardown, so no thread, server or socket outlives a test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alpaca")  # alpaca-py (the "vendors" extra) brings requests too

import requests

from tradeforge.data.panel import BarPanel
from tradeforge.execution.brokers.alpaca import AlpacaBroker, AlpacaBrokerConfig
from tradeforge.execution.venue import VenueConfig, VenueEngine, VenueServer
from tradeforge.sim import SimConfig
from tradeforge.testing.sim import EVERY_COST

COSTS = EVERY_COST.model_copy(
    update={"borrow_bps_annual": 0.0, "cash_rate_annual": 0.0, "margin_spread_annual": 0.0}
)
KEY, SECRET = "tf-key", "tf-secret"


def venue_config(**changes: Any) -> VenueConfig:
    changes.setdefault("sim", SimConfig(costs=COSTS))
    changes.setdefault("replay_start", date(2010, 1, 4))
    changes.setdefault("api_key", KEY)
    changes.setdefault("secret_key", SECRET)
    return VenueConfig(**changes)


def start_venue(panel: BarPanel, state_dir: Path | None = None, **changes: Any) -> VenueServer:
    engine = VenueEngine(venue_config(**changes), panel=panel, state_dir=state_dir)
    return VenueServer(engine).start()


class Admin:
    """The venue's admin endpoints over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def fault(self, **spec: Any) -> int:
        reply = self.http.post(f"{self.url}/admin/faults", json=spec, timeout=5)
        assert reply.status_code == 201, reply.text
        return int(reply.json()["id"])

    def advance(self, bars: int = 1) -> dict[str, Any]:
        reply = self.http.post(f"{self.url}/admin/advance", json={"bars": bars}, timeout=10)
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def state(self) -> dict[str, Any]:
        return dict(self.http.get(f"{self.url}/admin/state", timeout=5).json())

    def disconnect(self) -> int:
        return int(self.http.post(f"{self.url}/admin/disconnect", timeout=5).json()["closed"])

    def order_log(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.url}/admin/requests", timeout=5).json()["orders"])

    def posts(self, path: str = "/v2/orders") -> list[dict[str, Any]]:
        log = self.http.get(f"{self.url}/admin/requests", timeout=5).json()["http"]
        return [e for e in log if e["method"] == "POST" and e["path"] == path]

    def close(self) -> None:
        self.http.close()


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fails a test that leaves a venue server or a trade-updates stream thread running."""
    yield
    names = ("tradeforge-venue", "alpaca-trade-updates")
    left = [t.name for t in threading.enumerate() if t.name.startswith(names) and t.is_alive()]
    assert left == [], f"threads left running: {left}"


@pytest.fixture
def venue(equities_panel: BarPanel) -> Iterator[VenueServer]:
    server = start_venue(equities_panel)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(venue: VenueServer) -> Iterator[Admin]:
    client = Admin(venue.url)
    yield client
    client.close()


def broker_config(venue: VenueServer, **changes: Any) -> AlpacaBrokerConfig:
    raw: dict[str, Any] = {
        "api_key": KEY, "secret_key": SECRET, "base_url": venue.url, "stream": False,
        "connect_timeout_s": 1.0, "read_timeout_s": 1.0, "backoff_s": 0.05,
        "max_backoff_s": 0.2, "stream_ready_timeout_s": 5.0,
    }  # fmt: skip
    raw.update(changes)
    return AlpacaBrokerConfig(**raw)


@pytest.fixture
def make_broker(venue: VenueServer) -> Iterator[Callable[..., AlpacaBroker]]:
    made: list[AlpacaBroker] = []

    def make(**changes: Any) -> AlpacaBroker:
        broker = AlpacaBroker(broker_config(venue, **changes))
        made.append(broker)
        return broker.start()

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def trading_client(venue: VenueServer) -> Iterator[Any]:
    """The unmodified SDK client (its own retries left on, as users get it)."""
    from alpaca.trading.client import TradingClient

    client = TradingClient(KEY, SECRET, paper=True, url_override=venue.url)
    yield client
    client._session.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)

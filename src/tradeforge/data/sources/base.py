"""The source protocol and the factory that builds a source from a :class:`DataConfig`."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from tradeforge.core.errors import SourceError
from tradeforge.data.config import DataConfig

# frequency -> (multiplier, unit) in plain words, used by the vendors' own vocabularies
FREQUENCY_PARTS: dict[str, tuple[int, str]] = {
    "1m": (1, "minute"),
    "5m": (5, "minute"),
    "15m": (15, "minute"),
    "30m": (30, "minute"),
    "1h": (1, "hour"),
    "4h": (4, "hour"),
    "1d": (1, "day"),
    "1w": (1, "week"),
}


@runtime_checkable
class BarSource(Protocol):
    """Anything that returns canonical bars (see ``tradeforge.data.frames``) for one symbol."""

    name: str

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None, end: date | None
    ) -> pd.DataFrame: ...


@runtime_checkable
class ActionSource(Protocol):
    """A source that also knows splits and dividends."""

    def fetch_actions(self, symbol: str) -> pd.DataFrame: ...


@runtime_checkable
class FundamentalSource(Protocol):
    """A source of fundamentals, each row stamped by its publication (filing) date."""

    def fetch_fundamentals(self, symbol: str) -> pd.DataFrame: ...


ACTION_COLUMNS: tuple[str, ...] = ("ex_date", "kind", "value")
"""Corporate actions: ``kind`` is ``split`` (value = new shares per old share) or ``dividend``
(value = cash per share); ``ex_date`` is tz-aware UTC."""


def frequency_parts(frequency: str, vendor: str) -> tuple[int, str]:
    try:
        return FREQUENCY_PARTS[frequency]
    except KeyError:
        raise SourceError(
            f"{vendor}: frequency {frequency!r} is not supported; use one of "
            f"{', '.join(FREQUENCY_PARTS)}"
        ) from None


def make_source(config: DataConfig, **options: Any) -> BarSource:
    """Build the source named by ``config.source``; ``options`` reach its constructor (tests
    pass fake transports or sessions here)."""
    name = config.source
    if name == "bundled":
        from tradeforge.data.sources.bundled_source import BundledSource

        return BundledSource()
    if name in ("csv", "parquet"):
        from tradeforge.data.sources.files import FileSource

        return FileSource.from_config(config)
    if name == "polygon":
        from tradeforge.data.sources.polygon import PolygonSource

        return PolygonSource(adjusted=config.adjusted, **options)
    if name == "alphavantage":
        from tradeforge.data.sources.alphavantage import AlphaVantageSource

        return AlphaVantageSource(adjusted=config.adjusted, **options)
    if name == "alpaca":
        from tradeforge.data.sources.alpaca import AlpacaSource

        return AlpacaSource(
            asset_class=config.asset_class or "equity", adjusted=config.adjusted, **options
        )
    if name == "yfinance":
        from tradeforge.data.sources.yahoo import YahooSource

        return YahooSource(adjusted=config.adjusted, **options)
    if name == "ccxt":
        from tradeforge.data.sources.ccxt_source import CcxtSource

        return CcxtSource(exchange_id=config.exchange or "binance", **options)
    raise SourceError(f"source {name!r} is not known")  # pragma: no cover - Literal guards it


__all__ = [
    "ACTION_COLUMNS",
    "FREQUENCY_PARTS",
    "ActionSource",
    "BarSource",
    "FundamentalSource",
    "frequency_parts",
    "make_source",
]

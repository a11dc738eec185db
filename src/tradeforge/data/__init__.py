"""Market data: sources, validation, calendars, the Parquet/DuckDB store and the bar panel."""

from tradeforge.data.panel import OHLCV, BarPanel

__all__ = ["OHLCV", "BarPanel"]

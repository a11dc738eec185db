"""Market data: sources, validation, calendars, the Parquet/DuckDB store and the bar panel."""

from tradeforge.data.config import DataConfig, ValidationConfig
from tradeforge.data.ingest import IngestResult, ingest, load_panel
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.data.store import CatalogEntry, ParquetStore, Store, default_store

__all__ = [
    "OHLCV",
    "BarPanel",
    "CatalogEntry",
    "DataConfig",
    "IngestResult",
    "ParquetStore",
    "Store",
    "ValidationConfig",
    "default_store",
    "ingest",
    "load_panel",
]

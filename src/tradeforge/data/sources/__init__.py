"""Bar sources: bundled data, local CSV/Parquet dumps and vendor APIs (imported lazily)."""

from tradeforge.data.sources.base import (
    ActionSource,
    BarSource,
    FundamentalSource,
    make_source,
)

__all__ = ["ActionSource", "BarSource", "FundamentalSource", "make_source"]

"""The bundled real-data source (offline; see ``tradeforge.data.bundled``)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from tradeforge.core.errors import UnknownSymbolError
from tradeforge.data.bundled import BUNDLED, bundled_frame
from tradeforge.data.frames import canonical_bars
from tradeforge.data.resample import period, resample_bars


class BundledSource:
    """Bars shipped inside installed packages; coarser frequencies are resampled."""

    name = "bundled"

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        key = symbol.upper()
        if key not in BUNDLED:
            raise UnknownSymbolError(
                f"unknown bundled symbol {symbol!r}; available: {', '.join(sorted(BUNDLED))}"
            )
        native = BUNDLED[key].frequency
        frame = canonical_bars(bundled_frame(key).drop(columns=["symbol"]), f"bundled {key}")
        if frequency != native:
            if period(frequency) < period(native):
                raise UnknownSymbolError(
                    f"bundled {key} has {native!r} bars; {frequency!r} is finer and cannot be "
                    f"made from them; use frequency {native!r} or coarser"
                )
            # stored bars keep the one store-wide convention: stamped at the interval start,
            # usable after it ends; still-forming last windows are not stored
            frame = resample_bars(frame, native, frequency, label="start", complete_only=True)
        return frame

    @staticmethod
    def asset_class(symbol: str) -> str:
        key = symbol.upper()
        return BUNDLED[key].asset_class if key in BUNDLED else "equity"


__all__ = ["BundledSource"]

"""Data configuration: which source, which symbols, which window, and how to validate."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tradeforge.core.config import FrozenConfig

SourceName = Literal[
    "bundled", "csv", "parquet", "yfinance", "alpaca", "alphavantage", "polygon", "ccxt"
]
RuleAction = Literal["error", "repair", "warn", "off"]
FREQUENCIES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


class ValidationConfig(FrozenConfig):
    """What each validation rule does when it fires.

    ``error`` rejects the data (nothing is written), ``repair`` fixes it and records the repair,
    ``warn`` only reports, ``off`` skips the rule. Repairs never use a later bar: bad rows are
    dropped, or forward-filled from the previous bar when ``forward_fill`` is set.
    """

    nan_price: RuleAction = "repair"
    non_positive_price: RuleAction = "repair"
    high_below_low: RuleAction = "repair"
    open_close_outside_range: RuleAction = "repair"
    duplicate_timestamp: RuleAction = "repair"
    unsorted_timestamp: RuleAction = "repair"
    calendar_gap: RuleAction = "warn"
    stale_series: RuleAction = "warn"
    outlier_return: RuleAction = "warn"
    split_jump: RuleAction = "warn"
    forward_fill: bool = False
    calendar: str = "XNYS"
    stale_bars: int = Field(default=10, ge=2)
    outlier_sigma: float = Field(default=12.0, gt=0)
    outlier_min_abs_return: float = Field(default=0.25, gt=0)
    split_tolerance: float = Field(default=0.03, gt=0, lt=0.5)


class DataConfig(FrozenConfig):
    """Where bars come from and which slice of them a run uses (see CONTRACTS.md)."""

    source: SourceName = "bundled"
    symbols: list[str] = Field(min_length=1)
    frequency: str = "1d"
    start: date | None = None
    end: date | None = None
    path: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    date_format: str | None = None
    dataset: str | None = None
    # extras
    symbol_column: str | None = None
    timezone: str = "UTC"
    asset_class: Literal["equity", "crypto", "fx", "index"] | None = None
    exchange: str | None = None
    adjusted: bool = True
    refresh: bool = False
    validation: ValidationConfig = Field(default_factory=ValidationConfig)

    @field_validator("symbols")
    @classmethod
    def _clean_symbols(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip() for s in value]
        if any(not s for s in cleaned):
            raise ValueError("symbols must be non-empty strings")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"symbols contain duplicates: {cleaned}")
        return cleaned

    @field_validator("frequency")
    @classmethod
    def _check_frequency(cls, value: str) -> str:
        if value not in FREQUENCIES:
            raise ValueError(f"frequency {value!r} is not supported; expected one of {FREQUENCIES}")
        return value

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"timestamp", "symbol", "open", "high", "low", "close", "volume", "adj_close"}
        bad = sorted(v for v in value.values() if v not in allowed)
        if bad:
            raise ValueError(
                f"columns maps to unknown fields {bad}; expected fields in {sorted(allowed)}"
            )
        return value

    @model_validator(mode="after")
    def _check_window_and_path(self) -> DataConfig:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.source in ("csv", "parquet") and not self.path:
            raise ValueError(f"source {self.source!r} needs path: a directory or file of bars")
        if self.dataset is not None and not _is_safe_name(self.dataset):
            raise ValueError(f"dataset {self.dataset!r} must be letters, digits, '-', '_' or '.'")
        return self

    @property
    def dataset_name(self) -> str:
        """Store dataset these bars live in (defaults to the source name)."""
        return self.dataset or self.source


def _is_safe_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and not name.startswith(".")


__all__ = ["FREQUENCIES", "DataConfig", "RuleAction", "SourceName", "ValidationConfig"]

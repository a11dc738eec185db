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
FILE_SOURCES: frozenset[str] = frozenset({"csv", "parquet"})
FREQUENCIES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


class ValidationConfig(FrozenConfig):
    """What each validation rule does when it fires.

    ``error`` rejects the data (nothing is written), ``repair`` fixes it and records the repair,
    ``warn`` only reports, ``off`` skips the rule. Repairs never use a later bar: bad rows are
    dropped, or forward-filled from the previous bar when ``forward_fill`` is set.

    ``duplicate_timestamp`` and ``unsorted_timestamp`` left unset (None) mean ``error`` for
    csv/parquet files (such a file is not what its user thinks it is) and ``repair`` for vendor
    and bundled data; :meth:`DataConfig.effective_validation` resolves them.
    """

    nan_price: RuleAction = "repair"
    non_positive_price: RuleAction = "repair"
    high_below_low: RuleAction = "repair"
    open_close_outside_range: RuleAction = "repair"
    duplicate_timestamp: RuleAction | None = None
    unsorted_timestamp: RuleAction | None = None
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
    # csv/parquet: empty means every symbol in the file or directory
    symbols: list[str] = Field(default_factory=list)
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
    # vendor updates re-fetch this many stored bars at each seam and compare their closes
    overlap_bars: int = Field(default=5, ge=1)
    overlap_tolerance: float = Field(default=1e-6, gt=0, lt=0.5)
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
        if self.source in FILE_SOURCES and not self.path:
            raise ValueError(f"source {self.source!r} needs path: a directory or file of bars")
        if self.source not in FILE_SOURCES and not self.symbols:
            raise ValueError(
                f"source {self.source!r} needs symbols (a non-empty list); only csv and parquet "
                "sources read every symbol of their path when symbols is omitted"
            )
        if self.date_format is not None and not self.date_format.strip():
            raise ValueError("date_format is empty; give a strptime format or leave it unset")
        if self.dataset is not None and not _is_safe_name(self.dataset):
            raise ValueError(f"dataset {self.dataset!r} must be letters, digits, '-', '_' or '.'")
        return self

    @property
    def dataset_name(self) -> str:
        """Store dataset these bars live in (defaults to the source name)."""
        return self.dataset or self.source

    @property
    def effective_validation(self) -> ValidationConfig:
        """``validation`` with the source-dependent defaults filled in: out-of-order and
        duplicated timestamps are errors in csv/parquet files, repaired elsewhere."""
        default: RuleAction = "error" if self.source in FILE_SOURCES else "repair"
        update = {
            name: default
            for name in ("duplicate_timestamp", "unsorted_timestamp")
            if getattr(self.validation, name) is None
        }
        return self.validation.model_copy(update=update) if update else self.validation


def _is_safe_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and not name.startswith(".")


__all__ = [
    "FILE_SOURCES",
    "FREQUENCIES",
    "DataConfig",
    "RuleAction",
    "SourceName",
    "ValidationConfig",
]

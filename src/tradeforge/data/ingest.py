"""Ingest bars from a source into the store (validated, atomically) and load panels from it.

Ingest is all-or-nothing per call: every symbol is fetched and validated before anything is
written, so a bad file or a rejected bar leaves the store as it was. Vendor sources are updated
incrementally: only the ranges the store does not cover yet are fetched.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.config import DataConfig
from tradeforge.data.frames import merge_bars
from tradeforge.data.panel import BarPanel
from tradeforge.data.sources.base import ActionSource, BarSource, make_source
from tradeforge.data.store import CatalogEntry, ParquetStore, Store, default_store
from tradeforge.data.validation import ValidationReport, validate_bars

logger = logging.getLogger("tradeforge.data.ingest")

ProgressFn = Callable[[str, int, int], None]
_LOCAL_SOURCES = frozenset({"bundled", "csv", "parquet"})
_NO_CALENDAR = frozenset({"fx", "crypto", "macro"})


@dataclass
class IngestResult:
    """What an ingest did: catalog entries written, validation reports, symbols skipped."""

    entries: list[CatalogEntry] = field(default_factory=list)
    reports: list[ValidationReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "reports": [r.to_dict() for r in self.reports],
            "skipped": list(self.skipped),
        }


def store_symbol(config: DataConfig, symbol: str) -> str:
    """The name a symbol is stored under (bundled names are upper case)."""
    return symbol.upper() if config.source == "bundled" else symbol


def calendar_for(config: DataConfig, symbol: str) -> str | None:
    """The exchange calendar for the gap rule, or None where it does not apply."""
    if config.frequency != "1d" or config.source == "ccxt":
        return None
    asset = config.asset_class
    if config.source == "bundled":
        from tradeforge.data.sources.bundled_source import BundledSource

        asset = BundledSource.asset_class(symbol)  # type: ignore[assignment]
    if asset in _NO_CALENDAR or (config.source == "alpaca" and asset == "crypto"):
        return None
    return config.validation.calendar


def _missing_ranges(
    config: DataConfig, entry: CatalogEntry | None
) -> list[tuple[date | None, date | None]]:
    """Date ranges still to fetch for one symbol (the whole window when nothing is stored)."""
    if entry is None or config.refresh:
        return [(config.start, config.end)]
    if config.source in _LOCAL_SOURCES:
        return []
    first, last = entry.first_ts.date(), entry.last_ts.date()
    ranges: list[tuple[date | None, date | None]] = []
    if config.start is not None and config.start < first:
        ranges.append((config.start, first - timedelta(days=1)))
    if config.end is None or config.end > last:
        # refetch the last stored day too: it may have been a partial bar
        ranges.append((last, config.end))
    return ranges


def ingest(
    config: DataConfig,
    store: Store | None = None,
    *,
    source: BarSource | None = None,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Fetch, validate and store ``config.symbols``; see the module docstring."""
    store = store if store is not None else default_store()
    src = source if source is not None else make_source(config)
    dataset, freq = config.dataset_name, config.frequency
    result = IngestResult()
    pending: list[tuple[str, pd.DataFrame, ValidationReport]] = []
    total = len(config.symbols)
    for i, symbol in enumerate(config.symbols):
        key = store_symbol(config, symbol)
        if progress is not None:
            progress(f"fetch {key}", i, total)
        ranges = _missing_ranges(config, store.entry(dataset, freq, key))
        if not ranges:
            result.skipped.append(key)
            continue
        parts = [src.fetch_bars(symbol, freq, lo, hi) for lo, hi in ranges]
        frames = [p for p in parts if not p.empty]
        if not frames:
            if store.entry(dataset, freq, key) is not None:
                result.skipped.append(key)
                continue
            raise SourceError(
                f"{src.name}: no bars for {symbol!r} at {freq} between {config.start} and "
                f"{config.end}; check the symbol and the date range"
            )
        frame = frames[0] if len(frames) == 1 else merge_bars(frames[0], pd.concat(frames[1:]))
        clean, report = validate_bars(frame, key, config.validation, calendar_for(config, key))
        if clean.empty:
            raise SourceError(f"{src.name}: every bar of {key!r} was rejected by validation")
        pending.append((key, clean, report))
        result.reports.append(report)
    batch = store.batch() if isinstance(store, ParquetStore) else contextlib.nullcontext()
    with batch:
        for i, (key, clean, report) in enumerate(pending):
            if progress is not None:
                progress(f"store {key}", i, len(pending))
            entry = store.write_bars(dataset, freq, key, clean, src.name)
            result.entries.append(entry)
            _save_report(store, dataset, freq, key, report)
            if isinstance(src, ActionSource):
                _store_actions(store, src, dataset, key)
    if progress is not None:
        progress("done", total, total)
    for report in result.reports:
        for finding in report.findings:
            logger.info(
                "%s %s: %s (%d)", finding.symbol, finding.rule, finding.detail, finding.count
            )
    return result


def _save_report(
    store: Store, dataset: str, freq: str, symbol: str, report: ValidationReport
) -> None:
    if isinstance(store, ParquetStore):
        path = store.root / "reports" / dataset / freq / f"{symbol.replace('/', '_')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
        tmp.replace(path)


def load_report(store: ParquetStore, dataset: str, freq: str, symbol: str) -> dict[str, Any] | None:
    """The validation report saved by the last ingest of one partition, if any."""
    path = store.root / "reports" / dataset / freq / f"{symbol.replace('/', '_')}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _store_actions(store: Store, src: ActionSource, dataset: str, symbol: str) -> None:
    if not isinstance(store, ParquetStore):
        return
    actions = src.fetch_actions(symbol)
    if not actions.empty:
        store.write_aux("actions", dataset, symbol, actions)


def _covers(config: DataConfig, entry: CatalogEntry | None) -> bool:
    """Whether a stored partition already covers the config's window (local sources: exists)."""
    if entry is None:
        return False
    if config.source in _LOCAL_SOURCES:
        return True
    if config.start is not None and config.start < entry.first_ts.date():
        return False
    return not (config.end is not None and config.end > entry.last_ts.date())


def load_panel(config: DataConfig, store: Store | None = None) -> BarPanel:
    """The panel for ``config``: ingests what the store lacks, then reads it, cut to
    [start, end] (``end`` is inclusive: the whole end day is kept)."""
    store = store if store is not None else default_store()
    dataset, freq = config.dataset_name, config.frequency
    keys = [store_symbol(config, s) for s in config.symbols]
    need = [
        s
        for s, k in zip(config.symbols, keys, strict=True)
        if config.refresh or not _covers(config, store.entry(dataset, freq, k))
    ]
    if need:
        ingest(config.model_copy(update={"symbols": need}), store)
    start = pd.Timestamp(config.start, tz="UTC") if config.start is not None else None
    end = (
        pd.Timestamp(config.end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        if config.end is not None
        else None
    )
    panel = store.read_panel(dataset, freq, keys, start, end)
    if panel.n_bars == 0:
        raise UnknownSymbolError(
            f"no bars for {keys} between {config.start} and {config.end} in dataset "
            f"{dataset!r}; widen the window or check the symbols"
        )
    return panel


__all__ = ["IngestResult", "calendar_for", "ingest", "load_panel", "load_report", "store_symbol"]

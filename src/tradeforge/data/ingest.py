"""Ingest bars from a source into the store (validated, atomically) and load panels from it.

Ingest is all-or-nothing per call: every symbol is fetched and validated before anything is
written, so a bad file or a rejected bar leaves the store as it was. Each stored series is
written whole and validated whole:

* **Local dumps** (csv, parquet): a series belongs to the path it was read from. Another path
  with the same symbols in the same dataset is an error naming both paths; a file that changed
  on disk is read again and replaces the stored series; an unchanged one is skipped.
* **Vendors**: only the missing head and tail are fetched, each with an overlap of
  ``overlap_bars`` stored bars whose closes must come back unchanged. Where they differ (the
  vendor re-adjusted its history for a split or dividend), or a stored bar is gone, the whole
  series is fetched again and replaces the stored one; it is never spliced. The merged series is
  validated, not only the new fragment.
* **Bundled** data is fixed: stored once.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.config import FILE_SOURCES, DataConfig
from tradeforge.data.frames import merge_bars
from tradeforge.data.panel import BarPanel
from tradeforge.data.sources.base import ActionSource, BarSource, make_source
from tradeforge.data.store import CatalogEntry, ParquetStore, Store, default_store
from tradeforge.data.validation import ValidationReport, validate_bars

logger = logging.getLogger("tradeforge.data.ingest")

ProgressFn = Callable[[str, int, int], None]
Window = tuple[date | None, date | None]
_NO_CALENDAR = frozenset({"fx", "crypto", "macro"})


@runtime_checkable
class LocalSource(BarSource, Protocol):
    """A source that reads files: it names its path and fingerprints the file of a symbol."""

    @property
    def origin(self) -> str: ...

    def symbols(self) -> list[str]: ...

    def fingerprint(self, symbol: str) -> str: ...


@dataclass
class IngestResult:
    """What an ingest did: catalog entries written, validation reports, symbols skipped
    (already stored and unchanged), and stored series replaced whole, with the reason."""

    entries: list[CatalogEntry] = field(default_factory=list)
    reports: list[ValidationReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "reports": [r.to_dict() for r in self.reports],
            "skipped": list(self.skipped),
            "replaced": dict(self.replaced),
        }


@dataclass
class _Update:
    """The whole series to store for one symbol, and why a stored one is replaced."""

    frame: pd.DataFrame
    replaced: str | None = None
    origin: str = ""
    fingerprint: str = ""


def store_symbol(config: DataConfig, symbol: str) -> str:
    """The name a symbol is stored under (bundled names are upper case)."""
    return symbol.upper() if config.source == "bundled" else symbol


def resolve_symbols(config: DataConfig, source: BarSource) -> list[str]:
    """``config.symbols``, or for a file source without symbols every symbol of its path."""
    if config.symbols:
        return list(config.symbols)
    if isinstance(source, LocalSource):
        return source.symbols()
    raise SourceError(f"source {config.source!r} needs symbols; list them in DataConfig.symbols")


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


def ingest(
    config: DataConfig,
    store: Store | None = None,
    *,
    source: BarSource | None = None,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Fetch, validate and store ``config.symbols`` (for a file source without symbols: every
    symbol of its path); see the module docstring."""
    store = store if store is not None else default_store()
    src = source if source is not None else make_source(config)
    dataset, freq = config.dataset_name, config.frequency
    symbols = resolve_symbols(config, src)
    stored = {e.symbol: e for e in store.catalog() if (e.dataset, e.frequency) == (dataset, freq)}
    keys = [store_symbol(config, s) for s in symbols]
    _check_owner(config, src, keys, stored)
    rules = config.effective_validation
    result = IngestResult()
    pending: list[tuple[str, _Update, ValidationReport]] = []
    total = len(symbols)
    for i, (symbol, key) in enumerate(zip(symbols, keys, strict=True)):
        if progress is not None:
            progress(f"fetch {key}", i, total)
        update = _plan(config, src, store, symbol, key, stored.get(key))
        if update is None:
            result.skipped.append(key)
            continue
        clean, report = validate_bars(update.frame, key, rules, calendar_for(config, key))
        if clean.empty:
            raise SourceError(f"{src.name}: every bar of {key!r} was rejected by validation")
        update.frame = clean
        pending.append((key, update, report))
        result.reports.append(report)
        if update.replaced:
            result.replaced[key] = update.replaced
    batch = store.batch() if isinstance(store, ParquetStore) else contextlib.nullcontext()
    with batch:
        for i, (key, update, report) in enumerate(pending):
            if progress is not None:
                progress(f"store {key}", i, len(pending))
            entry = store.write_bars(
                dataset,
                freq,
                key,
                update.frame,
                src.name,
                merge=False,
                origin=update.origin,
                fingerprint=update.fingerprint,
            )
            result.entries.append(entry)
            _save_report(store, dataset, freq, key, report)
            if isinstance(src, ActionSource):
                _store_actions(store, src, dataset, key)
    if progress is not None:
        progress("done", total, total)
    for key, why in result.replaced.items():
        logger.warning("%s: replaced the stored series: %s", key, why)
    for report in result.reports:
        for finding in report.findings:
            logger.info(
                "%s %s: %s (%d)", finding.symbol, finding.rule, finding.detail, finding.count
            )
    return result


def _check_owner(
    config: DataConfig, src: BarSource, keys: list[str], stored: dict[str, CatalogEntry]
) -> None:
    """Refuse to mix series of another source or another path into one dataset."""
    origin = src.origin if isinstance(src, LocalSource) else ""
    clashes: list[tuple[str, str]] = []
    for key in keys:
        entry = stored.get(key)
        if entry is None:
            continue
        if entry.source != src.name:
            clashes.append((key, f"source {entry.source!r}"))
        elif origin and entry.origin and entry.origin != origin:
            clashes.append((key, entry.origin))
    if not clashes or (config.refresh and origin):
        return
    others = sorted({other for _, other in clashes})
    names = ", ".join(k for k, _ in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
    this = origin or f"source {src.name!r}"
    more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
    fix = "use another dataset (DataConfig.dataset, --dataset NAME)"
    if origin:
        fix += ", or pass --refresh (refresh: true) to replace them with this path's series"
    raise SourceError(
        f"dataset {config.dataset_name!r} ({config.frequency}) already holds {len(clashes)} of "
        f"these symbols ({names}) read from {others[0]}{more}; this ingest reads {this}; {fix}"
    )


def _plan(
    config: DataConfig,
    src: BarSource,
    store: Store,
    symbol: str,
    key: str,
    entry: CatalogEntry | None,
) -> _Update | None:
    """The whole series to store for one symbol, or None when the stored one stands."""
    if config.source in FILE_SOURCES and isinstance(src, LocalSource):
        return _local_update(config, src, symbol, entry)
    if entry is not None and config.source == "bundled":
        return _first(config, src, symbol) if config.refresh else None
    have = None
    if entry is not None:
        try:
            have = store.read_bars(config.dataset_name, config.frequency, key)
        except UnknownSymbolError:  # a catalog row without its file: fetch it afresh
            have = None
    if have is None or have.empty:
        return _first(config, src, symbol)
    return _vendor_update(config, src, symbol, have)


def _first(config: DataConfig, src: BarSource, symbol: str) -> _Update:
    frame = src.fetch_bars(symbol, config.frequency, config.start, config.end)
    if frame.empty:
        raise SourceError(
            f"{src.name}: no bars for {symbol!r} at {config.frequency} between {config.start} "
            f"and {config.end}; check the symbol and the date range"
        )
    return _Update(frame)


def _local_update(
    config: DataConfig, src: LocalSource, symbol: str, entry: CatalogEntry | None
) -> _Update | None:
    """The whole series of ``symbol`` from the file, unless the stored one is that file's."""
    origin, fingerprint = src.origin, src.fingerprint(symbol)
    why = None
    if entry is not None:
        same_file = entry.origin == origin and entry.fingerprint == fingerprint
        if same_file and not config.refresh:
            return None
        if entry.origin == origin and not same_file:
            why = f"the file changed on disk since it was stored; read {origin} again"
        elif entry.origin and entry.origin != origin:
            why = f"refresh: the series read from {entry.origin} is replaced by {origin}'s"
        elif not entry.origin:
            why = f"it was stored without its path; read {origin} again"
    bars = src.fetch_bars(symbol, config.frequency, config.start, config.end)
    return _Update(bars, why, origin, fingerprint)


def _vendor_update(
    config: DataConfig, src: BarSource, symbol: str, stored: pd.DataFrame
) -> _Update | None:
    """Stored bars plus the missing head and tail, or the whole series fetched again when the
    vendor's overlap bars disagree with the stored ones."""
    plan = _overlap_plan(config, stored)
    if plan is None:
        return None
    ranges, expected, full = plan
    parts = [src.fetch_bars(symbol, config.frequency, lo, hi) for lo, hi in ranges]
    frames = [p for p in parts if not p.empty]
    if not frames:
        return None  # nothing at all came back: keep what is stored
    fetched = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    change = _history_change(stored, fetched, expected, config.overlap_tolerance)
    if change is None:
        return _Update(merge_bars(stored, fetched))
    why = f"the vendor changed stored history ({change}); fetched the whole series again"
    if ranges != [full]:
        fetched = src.fetch_bars(symbol, config.frequency, *full)
    if fetched.empty:
        raise SourceError(
            f"{src.name}: {symbol!r} history changed ({change}) but fetching it again between "
            f"{full[0]} and {full[1]} returned no bars; try again later"
        )
    return _Update(fetched, why)


def _overlap_plan(
    config: DataConfig, stored: pd.DataFrame
) -> tuple[list[Window], pd.DatetimeIndex, Window] | None:
    """(ranges to fetch, stored stamps they must return unchanged, the whole window), or None
    when the stored series already covers the config's window."""
    stamps = pd.DatetimeIndex(stored["timestamp"])
    n, k = len(stamps), config.overlap_bars
    first, last = stamps[0].date(), stamps[-1].date()
    full: Window = (
        None if config.start is None else min(config.start, first),
        None if config.end is None else max(config.end, last),
    )
    body = stamps[:-1]  # the last stored bar may have been partial: fetched again, not compared
    if config.refresh:
        return [full], body, full
    ranges: list[Window] = []
    expected: list[pd.DatetimeIndex] = []
    if config.start is not None and config.start < first:
        hi = stamps[min(k, n - 1)].date()
        ranges.append((config.start, hi))
        expected.append(body[body.date < hi])
    if config.end is None or config.end > last:
        lo = stamps[max(0, n - 1 - k)].date()
        ranges.append((lo, config.end))
        expected.append(body[body.date >= lo])
    if not ranges:
        return None
    both = expected[0] if len(expected) == 1 else pd.DatetimeIndex(expected[0].append(expected[1]))
    both = both.unique()
    (_, head_end), (tail_start, _) = ranges[0], ranges[-1]
    if len(ranges) == 2 and head_end and tail_start and head_end >= tail_start - timedelta(days=1):
        ranges = [(ranges[0][0], ranges[1][1])]  # the two overlaps meet: one request
    return ranges, both, full


def _history_change(
    stored: pd.DataFrame, fetched: pd.DataFrame, expected: pd.DatetimeIndex, rtol: float
) -> str | None:
    """How the vendor's bars at ``expected`` stored stamps differ from the stored ones (closes
    beyond ``rtol``, or bars gone), or None when they agree."""
    if len(expected) == 0:
        return None
    new = fetched.drop_duplicates("timestamp", keep="last").set_index("timestamp")["close"]
    gone = expected.difference(pd.DatetimeIndex(new.index))
    if len(gone):
        return f"the stored bar of {gone[0].isoformat()} is no longer served"
    old = stored.set_index("timestamp")["close"].reindex(expected).to_numpy(np.float64)
    now = new.reindex(expected).to_numpy(np.float64)
    agree = np.isclose(now, old, rtol=rtol, atol=0.0) | ~np.isfinite(now) | ~np.isfinite(old)
    if agree.all():
        return None
    i = int(np.argmax(~agree))
    return f"close of {expected[i].isoformat()} was {old[i]:.6g}, now {now[i]:.6g}"


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
    """Whether a stored vendor or bundled partition already covers the config's window."""
    if entry is None:
        return False
    if config.source == "bundled":
        return True
    if config.start is not None and config.start < entry.first_ts.date():
        return False
    return not (config.end is not None and config.end > entry.last_ts.date())


def load_panel(config: DataConfig, store: Store | None = None) -> BarPanel:
    """The panel for ``config``: ingests what the store lacks (for local dumps: what is not
    stored from this path as it is now), then reads it, cut to [start, end] (``end`` is
    inclusive: the whole end day is kept). A file source without symbols gives every symbol of
    its path."""
    store = store if store is not None else default_store()
    dataset, freq = config.dataset_name, config.frequency
    if config.source in FILE_SOURCES:
        src = make_source(config)
        config = config.model_copy(update={"symbols": resolve_symbols(config, src)})
        ingest(config, store, source=src)
    else:
        stored = {
            e.symbol: e for e in store.catalog() if (e.dataset, e.frequency) == (dataset, freq)
        }
        need = [
            s
            for s in config.symbols
            if config.refresh or not _covers(config, stored.get(store_symbol(config, s)))
        ]
        if need:
            ingest(config.model_copy(update={"symbols": need}), store)
    keys = [store_symbol(config, s) for s in config.symbols]
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


__all__ = [
    "IngestResult",
    "LocalSource",
    "calendar_for",
    "ingest",
    "load_panel",
    "load_report",
    "resolve_symbols",
    "store_symbol",
]

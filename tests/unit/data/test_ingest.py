"""Ingest: all-or-nothing, incremental vendor updates, idempotent re-ingest, load_panel."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import DataValidationError, SourceError
from tradeforge.data import DataConfig, ParquetStore, ingest, load_panel
from tradeforge.data.bundled import BUNDLED, bundled_frame
from tradeforge.data.config import ValidationConfig
from tradeforge.data.frames import canonical_bars
from tradeforge.data.ingest import load_report

QUIET = ValidationConfig(calendar_gap="off")


class RecordingSource:
    """A vendor stand-in serving real IBM bars and recording every requested range."""

    name = "polygon"

    def __init__(self, bad_symbol: str | None = None) -> None:
        full = canonical_bars(bundled_frame("IBM").drop(columns=["symbol"]), "IBM")
        self.pool = full[full["timestamp"] >= pd.Timestamp("2010-01-01", tz="UTC")]
        self.calls: list[tuple[str, date | None, date | None]] = []
        self.bad_symbol = bad_symbol

    def fetch_bars(self, symbol: str, frequency: str, start, end) -> pd.DataFrame:
        self.calls.append((symbol, start, end))
        stamps = self.pool["timestamp"]
        keep = np.ones(len(self.pool), dtype=bool)
        if start is not None:
            keep &= stamps >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            keep &= stamps <= pd.Timestamp(end, tz="UTC")
        out = self.pool.loc[keep].reset_index(drop=True)
        if symbol == self.bad_symbol:
            out.loc[3, "close"] = np.nan
        return out

    def fetch_actions(self, symbol: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ex_date": pd.to_datetime(["2010-02-08"], utc=True),
                "kind": ["dividend"],
                "value": [0.55],
            }
        )


def vendor_config(**kw) -> DataConfig:
    base = {"source": "polygon", "symbols": ["IBM"], "validation": QUIET}
    return DataConfig(**{**base, **kw})


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


def test_incremental_update_fetches_only_missing_ranges(store: ParquetStore) -> None:
    src = RecordingSource()
    ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 3, 31)), store, source=src)
    assert src.calls == [("IBM", date(2010, 1, 4), date(2010, 3, 31))]
    entry = store.entry("polygon", "1d", "IBM")
    assert entry is not None
    assert entry.last_ts == pd.Timestamp("2010-03-31", tz="UTC")

    src.calls.clear()
    result = ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 6, 30)), store, source=src)
    # only the tail, with an overlap of 5 stored bars (2010-03-24 .. 03-30) to compare and the
    # last stored day (it may have been a partial bar)
    assert src.calls == [("IBM", date(2010, 3, 24), date(2010, 6, 30))]
    assert result.entries[0].last_ts == pd.Timestamp("2010-06-30", tz="UTC")

    src.calls.clear()
    ingest(vendor_config(start=date(2010, 1, 1), end=date(2010, 6, 30)), store, source=src)
    # only the head, up to the 6th stored bar: the 5 stored bars of 2010-01-04 .. 01-08 are
    # compared; the stored tail already reaches the window's end
    assert src.calls == [("IBM", date(2010, 1, 1), date(2010, 1, 11))]

    stored = store.read_bars("polygon", "1d", "IBM")
    expected = src.fetch_bars("IBM", "1d", date(2010, 1, 1), date(2010, 6, 30))
    pd.testing.assert_frame_equal(stored, expected)  # no gaps, no duplicates at the seams


def test_refresh_refetches_everything(store: ParquetStore) -> None:
    src = RecordingSource()
    cfg = vendor_config(start=date(2010, 1, 4), end=date(2010, 1, 29))
    first = ingest(cfg, store, source=src).entries[0]
    src.calls.clear()
    again = ingest(cfg.model_copy(update={"refresh": True}), store, source=src).entries[0]
    assert src.calls == [("IBM", date(2010, 1, 4), date(2010, 1, 29))]
    assert again.checksum == first.checksum
    assert again.rows == first.rows


def test_actions_are_stored_for_vendors_that_know_them(store: ParquetStore) -> None:
    ingest(
        vendor_config(start=date(2010, 1, 4), end=date(2010, 2, 26)),
        store,
        source=RecordingSource(),
    )
    actions = store.read_aux("actions", "polygon", "IBM")
    assert actions["kind"].tolist() == ["dividend"]
    assert actions["value"].tolist() == [0.55]


def test_rejected_symbol_writes_nothing_at_all(store: ParquetStore) -> None:
    strict = ValidationConfig(calendar_gap="off", nan_price="error")
    cfg = vendor_config(
        symbols=["IBM", "BAD"], start=date(2010, 1, 4), end=date(2010, 1, 29), validation=strict
    )
    with pytest.raises(DataValidationError, match="rejected BAD at 2010-01-07"):
        ingest(cfg, store, source=RecordingSource(bad_symbol="BAD"))
    assert store.catalog() == []  # IBM, fetched before BAD, was not written either
    assert not (store.root / "bars").exists()


def test_repairs_are_recorded_in_the_saved_report(store: ParquetStore) -> None:
    cfg = vendor_config(symbols=["BAD"], start=date(2010, 1, 4), end=date(2010, 1, 29))
    result = ingest(cfg, store, source=RecordingSource(bad_symbol="BAD"))
    (report,) = result.reports
    assert report.rows_out == report.rows_in - 1
    saved = load_report(store, "polygon", "1d", "BAD")
    assert saved is not None
    assert saved["findings"][0]["rule"] == "nan_price"
    assert saved["findings"][0]["timestamps"] == ["2010-01-07T00:00:00+00:00"]


def test_no_bars_is_an_error_naming_symbol_and_window(store: ParquetStore) -> None:
    cfg = vendor_config(start=date(1990, 1, 1), end=date(1990, 2, 1))
    with pytest.raises(
        SourceError, match="no bars for 'IBM' at 1d between 1990-01-01 and 1990-02-01"
    ):
        ingest(cfg, store, source=RecordingSource())


def test_bundled_ingest_is_idempotent_and_real(store: ParquetStore) -> None:
    cfg = DataConfig(symbols=["aapl", "SP500"])
    first = ingest(cfg, store)
    assert [e.symbol for e in first.entries] == ["AAPL", "SP500"]
    again = ingest(cfg, store)
    assert again.entries == []
    assert again.skipped == ["AAPL", "SP500"]
    refreshed = ingest(cfg.model_copy(update={"refresh": True}), store)
    assert [e.checksum for e in refreshed.entries] == [e.checksum for e in first.entries]
    aapl = store.entry("bundled", "1d", "AAPL")
    assert aapl is not None
    assert aapl.first_ts == pd.Timestamp("2000-03-01", tz="UTC")
    assert aapl.last_ts == pd.Timestamp("2013-03-01", tz="UTC")


def test_load_panel_ingests_on_demand_and_cuts_inclusively(store: ParquetStore) -> None:
    cfg = DataConfig(symbols=["IBM", "MSFT"], start=date(2010, 1, 4), end=date(2010, 1, 8))
    panel = load_panel(cfg, store)
    assert panel.symbols == ("IBM", "MSFT")
    assert list(panel.index.strftime("%Y-%m-%d")) == [
        "2010-01-04",
        "2010-01-05",
        "2010-01-06",
        "2010-01-07",
        "2010-01-08",
    ]
    ibm = bundled_frame("IBM")
    jan4 = ibm[ibm["timestamp"] == pd.Timestamp("2010-01-04", tz="UTC")]
    assert panel.close[0, 0] == pytest.approx(jan4["close"].iloc[0])
    assert {e.symbol for e in store.catalog()} == {"IBM", "MSFT"}


def test_bundled_resampled_to_weekly(store: ParquetStore) -> None:
    cfg = DataConfig(
        symbols=["SP500"], frequency="1w", start=date(2018, 1, 1), end=date(2018, 3, 31)
    )
    panel = load_panel(cfg, store)
    assert (panel.index.dayofweek == 0).all()
    assert panel.n_bars == 13


def test_every_bundled_instrument_is_listed() -> None:
    assert set(BUNDLED) == {
        "SP500",
        "NASDAQ",
        "VIX",
        "WTI",
        "AAPL",
        "IBM",
        "MSFT",
        "GOOG",
        "GOOGL",
        "EURUSD",
    }


# vendor history that changes under the store ---------------------------------------------------


def rescale(pool: pd.DataFrame, factor: float, before: str | None = None) -> pd.DataFrame:
    """The vendor's history re-adjusted: prices x factor, volume / factor (all bars, or those
    before ``before``)."""
    out = pool.copy()
    rows = np.ones(len(out), dtype=bool)
    if before is not None:
        rows = (out["timestamp"] < pd.Timestamp(before, tz="UTC")).to_numpy()
    for name in ("open", "high", "low", "close"):
        out.loc[rows, name] = out.loc[rows, name] * factor
    out.loc[rows, "volume"] = out.loc[rows, "volume"] / factor
    return out


def test_re_adjusted_vendor_history_is_replaced_never_spliced(store: ParquetStore) -> None:
    """A 2:1 split after the first ingest: the vendor now serves every earlier bar halved. The
    update must not splice the new half-price bars onto the stored full-price ones."""
    src = RecordingSource()
    ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 3, 31)), store, source=src)
    before = store.read_bars("polygon", "1d", "IBM")
    src.pool = rescale(src.pool, 0.5)
    src.calls.clear()
    cfg = vendor_config(start=date(2010, 1, 4), end=date(2010, 6, 30))
    result = ingest(cfg, store, source=src)
    # the overlap came back changed, so the whole window was fetched again
    assert src.calls == [
        ("IBM", date(2010, 3, 24), date(2010, 6, 30)),
        ("IBM", date(2010, 1, 4), date(2010, 6, 30)),
    ]
    old = before["close"].iloc[-6]
    assert result.replaced["IBM"].startswith(
        f"the vendor changed stored history (close of 2010-03-24T00:00:00+00:00 was {old:.6g}, "
        f"now {old / 2:.6g})"
    )
    stored = store.read_bars("polygon", "1d", "IBM")
    pd.testing.assert_frame_equal(stored, src.fetch_bars("IBM", "1d", date(2010, 1, 4), cfg.end))
    jumps = np.abs(np.diff(np.log(stored["close"].to_numpy())))
    assert jumps.max() < 0.1  # IBM's largest real daily move here; a spliced split is 0.69
    assert stored["close"].iloc[0] == pytest.approx(before["close"].iloc[0] / 2)


def test_a_dividend_re_adjustment_replaces_the_history(store: ParquetStore) -> None:
    src = RecordingSource()
    ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 3, 31)), store, source=src)
    src.pool = rescale(src.pool, 1 - 0.0065, before="2010-03-29")  # a 0.65 % dividend
    result = ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 4, 30)), store, source=src)
    assert "IBM" in result.replaced
    stored = store.read_bars("polygon", "1d", "IBM")
    vendor = src.fetch_bars("IBM", "1d", date(2010, 1, 4), date(2010, 4, 30))
    assert stored["close"].tolist() == pytest.approx(vendor["close"].tolist(), rel=1e-12)


def test_an_unchanged_overlap_merges_without_refetching(store: ParquetStore) -> None:
    src = RecordingSource()
    ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 3, 31)), store, source=src)
    src.calls.clear()
    result = ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 4, 30)), store, source=src)
    assert len(src.calls) == 1
    assert result.replaced == {}


def test_validation_runs_on_the_merged_series(store: ParquetStore) -> None:
    """An unadjusted feed with a 2:1 split on 2010-03-01: prepending the older (double-price)
    head creates the jump at the seam, which only validation of the merged series can see."""
    src = RecordingSource()
    src.pool = rescale(src.pool, 2.0, before="2010-03-01")
    ingest(vendor_config(start=date(2010, 3, 1), end=date(2010, 4, 30)), store, source=src)
    result = ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 4, 30)), store, source=src)
    (report,) = result.reports
    jumps = [f for f in report.findings if f.rule == "split_jump"]
    assert [f.timestamps for f in jumps] == [("2010-03-01T00:00:00+00:00",)]
    assert report.rows_in == len(store.read_bars("polygon", "1d", "IBM"))
    strict = QUIET.model_copy(update={"split_jump": "error"})
    store2 = ParquetStore(store.root.parent / "strict")
    ingest(vendor_config(start=date(2010, 3, 1), end=date(2010, 4, 30)), store2, source=src)
    with pytest.raises(DataValidationError, match=r"split_jump.*2010-03-01"):
        ingest(
            vendor_config(start=date(2010, 1, 4), end=date(2010, 4, 30), validation=strict),
            store2,
            source=src,
        )


def test_a_stored_bar_the_vendor_no_longer_serves_triggers_a_full_refetch(
    store: ParquetStore,
) -> None:
    src = RecordingSource()
    ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 3, 31)), store, source=src)
    src.pool = src.pool[src.pool["timestamp"] != pd.Timestamp("2010-03-26", tz="UTC")]
    result = ingest(vendor_config(start=date(2010, 1, 4), end=date(2010, 4, 30)), store, source=src)
    assert "2010-03-26" in result.replaced["IBM"]
    stored = store.read_bars("polygon", "1d", "IBM")
    assert pd.Timestamp("2010-03-26", tz="UTC") not in set(stored["timestamp"])


def test_another_source_in_the_same_dataset_is_an_error(store: ParquetStore) -> None:
    ingest(
        vendor_config(start=date(2010, 1, 4), end=date(2010, 1, 29)),
        store,
        source=RecordingSource(),
    )
    with pytest.raises(
        SourceError, match=r"already holds 1 of these symbols \(IBM\) read from source 'polygon'"
    ):
        ingest(DataConfig(symbols=["IBM"], dataset="polygon"), store)

"""CSV/Parquet dumps: per-ticker files or long format, column mapping, date formats, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from vendor_fakes import FIXTURES

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data import DataConfig, ParquetStore, ValidationConfig, ingest, load_panel
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.sources import make_source
from tradeforge.data.sources.files import FileSource

PER_TICKER = FIXTURES / "files" / "per_ticker"
LONG = FIXTURES / "files" / "long_custom.csv"
LONG_COLUMNS = {
    "day": "timestamp",
    "px_open": "open",
    "px_high": "high",
    "px_low": "low",
    "px_last": "close",
    "qty": "volume",
}


def test_per_ticker_directory_adjusts_by_adj_close() -> None:
    src = FileSource(PER_TICKER, "csv")
    assert src.symbols() == ["AAPL", "MSFT"]
    bars = src.fetch_bars("aapl", "1d")
    raw = pd.read_csv(PER_TICKER / "AAPL.csv")
    factor = raw["Adj Close"] / raw["Close"]
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2010-01-04", tz="UTC")
    assert bars["close"].tolist() == pytest.approx(raw["Adj Close"].tolist())
    assert bars["open"].tolist() == pytest.approx((raw["Open"] * factor).tolist())
    assert bars["volume"].tolist() == pytest.approx((raw["Volume"] / factor).tolist())
    unadjusted = FileSource(PER_TICKER, "csv", adjusted=False).fetch_bars("AAPL", "1d")
    assert unadjusted["close"].tolist() == pytest.approx(raw["Close"].tolist())


def test_long_format_with_column_mapping_and_date_format() -> None:
    src = FileSource(LONG, "csv", columns=LONG_COLUMNS, symbol_column="sym", date_format="%d/%m/%Y")
    assert src.symbols() == ["AAPL", "IBM"]
    ibm = src.fetch_bars("IBM", "1d")
    raw = pd.read_csv(LONG)
    raw_ibm = raw[raw["sym"] == "IBM"]
    assert len(ibm) == len(raw_ibm)
    assert ibm["timestamp"].iloc[1] == pd.Timestamp("2010-01-05", tz="UTC")
    assert ibm["close"].tolist() == pytest.approx(raw_ibm["px_last"].tolist())
    assert ibm["volume"].tolist() == pytest.approx(raw_ibm["qty"].tolist())


def test_wrong_date_format_names_the_setting() -> None:
    src = FileSource(LONG, "csv", columns=LONG_COLUMNS, symbol_column="sym", date_format="%Y-%m-%d")
    with pytest.raises(
        SourceError, match=r"date_format '%Y-%m-%d'.*DataConfig.date_format"
    ) as info:
        src.fetch_bars("IBM", "1d")
    assert "\n" not in str(info.value)


def test_parquet_directory_and_epoch_timestamps(tmp_path: Path) -> None:
    raw = pd.read_csv(PER_TICKER / "MSFT.csv")
    raw["Date"] = pd.to_datetime(raw["Date"], utc=True).astype("int64") // 10**6  # epoch ms
    raw.to_parquet(tmp_path / "MSFT.parquet")
    bars = FileSource(tmp_path, "parquet", adjusted=False).fetch_bars("MSFT", "1d")
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2010-01-04", tz="UTC")
    assert bars["close"].tolist() == pytest.approx(raw["Close"].tolist())


def test_local_timezone_is_converted_to_utc(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "Datetime": ["2024-03-04 09:30", "2024-03-04 09:31"],
            "Open": [1.0, 1.1],
            "High": [1.2, 1.2],
            "Low": [0.9, 1.0],
            "Close": [1.1, 1.15],
            "Volume": [10, 12],
        }
    )
    frame.to_csv(tmp_path / "XYZ.csv", index=False)
    bars = FileSource(tmp_path, "csv", timezone="America/New_York").fetch_bars("XYZ", "1m")
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2024-03-04 14:30", tz="UTC")


def test_unknown_symbol_lists_what_is_there() -> None:
    with pytest.raises(UnknownSymbolError, match=r"no csv file for symbol 'TSLA'.*AAPL, MSFT"):
        FileSource(PER_TICKER, "csv").fetch_bars("TSLA", "1d")
    src = FileSource(LONG, "csv", columns=LONG_COLUMNS, symbol_column="sym", date_format="%d/%m/%Y")
    with pytest.raises(UnknownSymbolError, match=r"'TSLA' is not in .*AAPL, IBM"):
        src.fetch_bars("TSLA", "1d")


def test_missing_columns_suggest_a_mapping(tmp_path: Path) -> None:
    pd.DataFrame({"when": ["2024-01-02"], "price": [1.0]}).to_csv(tmp_path / "X.csv", index=False)
    with pytest.raises(
        SourceError, match=r"no column for \['timestamp', 'open'.*DataConfig.columns"
    ):
        FileSource(tmp_path, "csv").fetch_bars("X", "1d")


def test_non_numeric_price_is_named(tmp_path: Path) -> None:
    frame = pd.read_csv(PER_TICKER / "MSFT.csv").drop(columns=["Adj Close"])
    frame["Close"] = frame["Close"].astype(str)
    frame.loc[2, "Close"] = "n/a*"
    frame.to_csv(tmp_path / "MSFT.csv", index=False)
    with pytest.raises(SourceError, match="column 'close' has non-numeric value 'n/a\\*'"):
        FileSource(tmp_path, "csv").fetch_bars("MSFT", "1d")


def test_empty_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "EMPTY.csv").write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match="the file is empty"):
        FileSource(tmp_path, "csv").fetch_bars("EMPTY", "1d")
    with pytest.raises(SourceError, match=r"does not exist; give a directory.*DataConfig.path"):
        FileSource(tmp_path / "nowhere", "csv")


def test_config_builds_the_source_and_ingests(tmp_path: Path) -> None:
    cfg = DataConfig(
        source="csv",
        path=str(LONG),
        symbols=["AAPL", "IBM"],
        columns=LONG_COLUMNS,
        symbol_column="sym",
        date_format="%d/%m/%Y",
        dataset="mydump",
    )
    assert isinstance(make_source(cfg), FileSource)
    store = ParquetStore(tmp_path / "store")
    result = ingest(cfg, store)
    assert [e.symbol for e in result.entries] == ["AAPL", "IBM"]
    assert {e.dataset for e in store.catalog()} == {"mydump"}
    assert {e.source for e in store.catalog()} == {"csv"}
    again = ingest(cfg, store)
    assert again.skipped == ["AAPL", "IBM"]


def test_config_requires_a_path() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs path"):
        DataConfig(source="csv", symbols=["AAPL"])


# whole dumps, path ownership, changed files -----------------------------------------------------


def real_per_ticker(directory: Path, symbol: str, rows: slice) -> Path:
    """A Kaggle-style per-ticker file of real bundled bars."""
    directory.mkdir(parents=True, exist_ok=True)
    bars = bundled_frame(symbol).iloc[rows].drop(columns=["symbol"])
    bars["timestamp"] = bars["timestamp"].dt.strftime("%Y-%m-%d")
    path = directory / f"{symbol}.csv"
    bars.rename(columns={"timestamp": "Date"}).to_csv(path, index=False)
    return path


def test_omitted_symbols_mean_every_symbol_of_the_path(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "store")
    result = ingest(DataConfig(source="csv", path=str(PER_TICKER)), store)
    assert [e.symbol for e in result.entries] == ["AAPL", "MSFT"]
    cfg = DataConfig(
        source="csv",
        path=str(LONG),
        columns=LONG_COLUMNS,
        symbol_column="sym",
        date_format="%d/%m/%Y",
        dataset="long",
    )
    panel = load_panel(cfg, store)
    assert panel.symbols == ("AAPL", "IBM")
    raw = pd.read_csv(LONG)
    assert panel.close[:, 1].tolist() == pytest.approx(raw[raw["sym"] == "IBM"]["px_last"].tolist())


def test_symbols_are_still_required_for_vendors() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="source 'polygon' needs symbols"):
        DataConfig(source="polygon")


def test_another_path_with_the_same_symbols_is_an_error_naming_both(tmp_path: Path) -> None:
    """Two dumps share AAPL: the second must not be silently served the first one's series."""
    store = ParquetStore(tmp_path / "store")
    first = DataConfig(source="csv", path=str(PER_TICKER))
    ingest(first, store)
    other = tmp_path / "other_dump"
    real_per_ticker(other, "AAPL", slice(0, 300))  # 2000-03-01 .. : another price history
    real_per_ticker(other, "IBM", slice(0, 300))
    second = DataConfig(source="csv", path=str(other))
    with pytest.raises(SourceError) as info:
        ingest(second, store)
    message = str(info.value)
    assert "dataset 'csv' (1d) already holds 1 of these symbols (AAPL)" in message
    assert f"read from {PER_TICKER.resolve()}" in message
    assert f"this ingest reads {other.resolve()}" in message
    assert "--dataset" in message
    with pytest.raises(SourceError, match="already holds"):
        load_panel(second.model_copy(update={"symbols": ["AAPL"]}), store)
    assert [e.symbol for e in store.catalog()] == ["AAPL", "MSFT"]  # nothing written
    # in a dataset of its own, the second dump serves its own series
    own = load_panel(second.model_copy(update={"dataset": "other"}), store)
    assert own.index[0] == pd.Timestamp("2000-03-01", tz="UTC")
    assert own.symbols == ("AAPL", "IBM")
    # refresh replaces the stored series with the new path's, and says so
    replaced = ingest(second.model_copy(update={"refresh": True}), store)
    assert "AAPL" in replaced.replaced
    entry = store.entry("csv", "1d", "AAPL")
    assert entry is not None
    assert (entry.origin, entry.rows) == (str(other.resolve()), 300)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    real_per_ticker(dump, "IBM", slice(0, 100))
    real_per_ticker(dump, "MSFT", slice(0, 100))
    store = ParquetStore(tmp_path / "store")
    cfg = DataConfig(source="csv", path=str(dump))
    ingest(cfg, store)
    assert ingest(cfg, store).skipped == ["IBM", "MSFT"]
    real_per_ticker(dump, "IBM", slice(0, 150))  # the user extended the file
    again = ingest(cfg, store)
    assert [e.symbol for e in again.entries] == ["IBM"]
    assert again.skipped == ["MSFT"]
    assert "changed on disk" in again.replaced["IBM"]
    panel = load_panel(cfg.model_copy(update={"symbols": ["IBM"]}), store)
    assert panel.n_bars == 150
    assert panel.index[-1] == bundled_frame("IBM")["timestamp"].iloc[149]
    # a shorter file replaces the stored series too: rows it dropped do not linger
    real_per_ticker(dump, "IBM", slice(10, 50))
    ingest(cfg, store)
    stored = store.read_bars("csv", "1d", "IBM")
    assert len(stored) == 40
    assert stored["timestamp"].iloc[0] == bundled_frame("IBM")["timestamp"].iloc[10]


def test_out_of_order_rows_in_a_file_are_an_error_by_default(tmp_path: Path) -> None:
    path = real_per_ticker(tmp_path / "d", "IBM", slice(0, 30))
    lines = path.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]  # rows 5 and 6 after the header
    path.write_text("\n".join(lines) + "\n")
    cfg = DataConfig(source="csv", path=str(path.parent))
    store = ParquetStore(tmp_path / "store")
    with pytest.raises(SourceError) as info:
        ingest(cfg, store)
    message = str(info.value)
    assert message.startswith(f"{path}: row 6 (Date '2000-03-07') is earlier than the row above")
    assert "validation.unsorted_timestamp: repair" in message
    assert store.catalog() == []
    repair = cfg.model_copy(update={"validation": ValidationConfig(unsorted_timestamp="repair")})
    result = ingest(repair, store)
    assert result.reports[0].findings[0].rule == "unsorted_timestamp"
    stored = store.read_bars("csv", "1d", "IBM")
    assert stored["timestamp"].is_monotonic_increasing
    assert len(stored) == 30


def test_duplicated_rows_in_a_file_are_an_error_by_default(tmp_path: Path) -> None:
    path = real_per_ticker(tmp_path / "d", "IBM", slice(0, 30))
    lines = path.read_text().splitlines()
    lines.insert(11, lines[10])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError) as info:
        FileSource(path.parent, "csv").fetch_bars("IBM", "1d")
    message = str(info.value)
    assert "row 11 (Date '2000-03-14') repeats the timestamp of row 10" in message
    assert "validation.duplicate_timestamp: repair" in message
    cfg = DataConfig(
        source="csv",
        path=str(path.parent),
        validation=ValidationConfig(duplicate_timestamp="repair", calendar_gap="off"),
    )
    result = ingest(cfg, ParquetStore(tmp_path / "store"))
    assert result.entries[0].rows == 30
    assert result.reports[0].findings[0].rule == "duplicate_timestamp"


def test_newest_first_files_are_read_in_time_order(tmp_path: Path) -> None:
    path = real_per_ticker(tmp_path / "d", "IBM", slice(0, 30))
    frame = pd.read_csv(path)
    frame.iloc[::-1].to_csv(path, index=False)
    bars = FileSource(path.parent, "csv").fetch_bars("IBM", "1d")
    expected = bundled_frame("IBM").iloc[:30]
    assert bars["timestamp"].tolist() == expected["timestamp"].tolist()
    assert bars["close"].tolist() == pytest.approx(expected["close"].tolist())


def test_leading_zero_tickers_stay_text(tmp_path: Path) -> None:
    bars = bundled_frame("IBM").iloc[:10]
    frame = pd.DataFrame(
        {
            "code": "000001",
            "date": bars["timestamp"].dt.strftime("%Y-%m-%d"),
            "open": bars["open"],
            "high": bars["high"],
            "low": bars["low"],
            "close": bars["close"],
        }
    )
    frame.to_csv(tmp_path / "cn.csv", index=False)
    src = FileSource(tmp_path / "cn.csv", "csv", symbol_column="code")
    assert src.symbols() == ["000001"]
    assert len(src.fetch_bars("000001", "1d")) == 10

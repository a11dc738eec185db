"""CSV/Parquet dumps: per-ticker files or long format, column mapping, date formats, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from vendor_fakes import FIXTURES

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data import DataConfig, ParquetStore, ingest
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
    src = FileSource(LONG, "csv", columns=LONG_COLUMNS, symbol_column="sym")
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
    with pytest.raises(SourceError, match=r"does not exist; set DataConfig.path"):
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

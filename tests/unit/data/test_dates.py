"""Timestamps of local dumps: one inferred format per column, ambiguity and misfits are errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import SourceError
from tradeforge.data import DataConfig, ParquetStore, ingest, load_panel
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.dates import parse_timestamps
from tradeforge.data.sources.files import FileSource

SYMBOLS = ("AAPL", "IBM", "MSFT")


def real(symbol: str, rows: slice = slice(2000, 2060)) -> pd.DataFrame:
    return bundled_frame(symbol).iloc[rows].reset_index(drop=True)


def long_dump(path: Path, dates, symbols=SYMBOLS, rows: slice = slice(2000, 2060)) -> Path:
    """Real bars of several tickers in one long file, date column written by ``dates``."""
    parts = []
    for symbol in symbols:
        bars = real(symbol, rows)
        parts.append(
            pd.DataFrame(
                {
                    "ticker": symbol,
                    "date": dates(bars["timestamp"]),
                    "open": bars["open"],
                    "high": bars["high"],
                    "low": bars["low"],
                    "close": bars["close"],
                    "volume": bars["volume"],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def yyyymmdd(stamps: pd.Series) -> pd.Series:
    return stamps.dt.strftime("%Y%m%d").astype(int)


def test_integer_yyyymmdd_long_dump_lands_with_its_real_dates(tmp_path: Path) -> None:
    """The headline: a many-ticker dump with 20090821-style integer dates (read by pandas as
    int64) is stored with its real dates, not as seconds of 1970."""
    dump = long_dump(tmp_path / "prices.csv", yyyymmdd)
    assert pd.read_csv(dump)["date"].dtype == np.int64
    store = ParquetStore(tmp_path / "store")
    result = ingest(DataConfig(source="csv", path=str(dump)), store)  # no symbols: all of them
    assert [e.symbol for e in result.entries] == sorted(SYMBOLS)
    for symbol in SYMBOLS:
        stored = store.read_bars("csv", "1d", symbol)
        bars = real(symbol)
        assert stored["timestamp"].tolist() == bars["timestamp"].tolist()
        assert stored["close"].tolist() == pytest.approx(bars["close"].tolist())
    entry = store.entry("csv", "1d", "IBM")
    assert entry is not None
    assert entry.first_ts == pd.Timestamp("2008-02-14", tz="UTC")
    panel = load_panel(DataConfig(source="csv", path=str(dump)), store)
    assert panel.symbols == tuple(sorted(SYMBOLS))
    assert panel.n_bars == 60


def test_integer_yyyymmdd_in_parquet_and_per_ticker_files(tmp_path: Path) -> None:
    dump = long_dump(tmp_path / "prices.parquet", yyyymmdd)
    bars = FileSource(dump, "parquet").fetch_bars("MSFT", "1d")
    assert bars["timestamp"].tolist() == real("MSFT")["timestamp"].tolist()
    one = tmp_path / "dir"
    one.mkdir()
    frame = real("AAPL")
    frame.assign(timestamp=yyyymmdd(frame["timestamp"])).drop(columns=["symbol"]).to_csv(
        one / "AAPL.csv", index=False
    )
    assert FileSource(one, "csv").fetch_bars("AAPL", "1d")["timestamp"].iloc[0] == pd.Timestamp(
        "2008-02-14", tz="UTC"
    )


def test_day_month_ambiguity_is_an_error_unless_date_format_is_given(tmp_path: Path) -> None:
    # the first 8 sessions of 2010: every day <= 12, so 04/01/2010 reads either way
    rows = slice(2475, 2482)
    assert real("IBM", rows)["timestamp"].dt.day.max() <= 12
    dump = long_dump(tmp_path / "p.csv", lambda s: s.dt.strftime("%d/%m/%Y"), rows=rows)
    with pytest.raises(SourceError) as info:
        FileSource(dump, "csv").fetch_bars("IBM", "1d")
    message = str(info.value)
    assert str(dump) in message
    assert "'%m/%d/%Y' and '%d/%m/%Y'" in message
    assert "set DataConfig.date_format" in message
    bars = FileSource(dump, "csv", date_format="%d/%m/%Y").fetch_bars("IBM", "1d")
    assert bars["timestamp"].tolist() == real("IBM", rows)["timestamp"].tolist()


def test_one_unambiguous_row_settles_the_whole_column(tmp_path: Path) -> None:
    """Day-first dates where some day exceeds 12: only %d/%m/%Y fits every row, so it is used
    for every row (including 04/01/2010, which alone would read as April 1st)."""
    rows = slice(2475, 2495)
    dump = long_dump(tmp_path / "p.csv", lambda s: s.dt.strftime("%d/%m/%Y"), rows=rows)
    bars = FileSource(dump, "csv").fetch_bars("AAPL", "1d")
    assert bars["timestamp"].tolist() == real("AAPL", rows)["timestamp"].tolist()
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2010-01-04", tz="UTC")


def test_a_row_in_another_format_is_named_never_parsed_on_its_own(tmp_path: Path) -> None:
    frame = real("IBM").drop(columns=["symbol"])
    text = frame["timestamp"].dt.strftime("%Y-%m-%d").astype(object)
    text.iloc[7] = frame["timestamp"].iloc[7].strftime("%m/%d/%Y")
    frame.assign(timestamp=text).rename(columns={"timestamp": "Date"}).to_csv(
        tmp_path / "IBM.csv", index=False
    )
    with pytest.raises(SourceError, match=r"IBM.csv: row 8 \(Date '02/26/2008'\) does not match "):
        FileSource(tmp_path, "csv").fetch_bars("IBM", "1d")


def test_eight_digit_numbers_that_are_not_dates_are_named(tmp_path: Path) -> None:
    values = pd.Series([20090821, 20090824, 20091340], index=[0, 1, 2])
    with pytest.raises(SourceError, match=r"row 3 \(date '20091340'\) is not a calendar date"):
        parse_timestamps(values, date_format=None, timezone="UTC", origin="x.csv", column="date")


@pytest.mark.parametrize(
    ("unit", "scale"), [("s", 10**6), ("ms", 10**3), ("us", 1), ("ns", 10**-3)]
)
def test_epoch_numbers_by_magnitude(unit: str, scale: float) -> None:
    stamps = real("IBM")["timestamp"]
    values = pd.Series((stamps.astype("int64") // 1) / scale).astype("int64")
    parsed = parse_timestamps(values, date_format=None, timezone="UTC", origin="x", column="t")
    assert parsed.utc.tolist() == stamps.tolist()
    assert parsed.how == f"epoch_{unit}"


def test_mixed_epoch_magnitudes_are_an_error() -> None:
    values = pd.Series([1_262_563_200, 1_262_649_600_000])
    with pytest.raises(SourceError, match=r"mixes epoch magnitudes: row 1 .* epoch s, row 2"):
        parse_timestamps(values, date_format=None, timezone="UTC", origin="x", column="t")


def test_epoch_date_format_overrides_inference() -> None:
    values = pd.Series([20_090_821, 20_090_822])  # epoch seconds in 1970, said so explicitly
    parsed = parse_timestamps(values, date_format="epoch_s", timezone="UTC", origin="x", column="t")
    assert parsed.utc[0] == pd.Timestamp(20_090_821, unit="s", tz="UTC")


def test_offset_stamps_of_daily_bars_keep_their_date(tmp_path: Path) -> None:
    """yfinance-style exports: New York midnight with -05:00/-04:00 offsets -> the date."""
    frame = real("IBM", slice(2000, 2030)).drop(columns=["symbol"])  # 2008-02-14 .. 03-27
    local = frame["timestamp"].dt.tz_localize(None).dt.tz_localize("America/New_York")
    frame["timestamp"] = local.map(lambda t: t.isoformat(sep=" "))
    assert frame["timestamp"].str.endswith("-05:00").any()
    assert frame["timestamp"].str.endswith("-04:00").any()
    frame.rename(columns={"timestamp": "Date"}).to_csv(tmp_path / "IBM.csv", index=False)
    bars = FileSource(tmp_path, "csv").fetch_bars("IBM", "1d")
    assert bars["timestamp"].tolist() == real("IBM", slice(2000, 2030))["timestamp"].tolist()


def test_daily_bars_read_in_a_timezone_keep_their_date(tmp_path: Path) -> None:
    frame = real("IBM").drop(columns=["symbol"])
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "IBM.csv", index=False)
    bars = FileSource(tmp_path, "csv", timezone="America/New_York").fetch_bars("IBM", "1d")
    assert bars["timestamp"].tolist() == real("IBM")["timestamp"].tolist()


# stamps that do not fit the frequency ---------------------------------------------------------


def test_intraday_stamps_in_a_daily_dataset_name_file_row_and_setting(tmp_path: Path) -> None:
    """YYYYMMDD integers forced to epoch seconds give 60 bars inside one day of 1970: the time
    of day in a 1d dataset is an error naming the file, the row and the settings."""
    dump = long_dump(tmp_path / "prices.csv", yyyymmdd)
    src = FileSource(dump, "csv", date_format="epoch_s")
    with pytest.raises(SourceError) as info:
        src.fetch_bars("IBM", "1d")
    message = str(info.value)
    assert message.startswith(f"{dump}: row 61 (IBM, date '20080214') is 1970-08-21 09:50:14")
    assert "a time of day, but frequency is '1d'" in message
    assert "DataConfig.date_format" in message
    assert "set frequency" in message
    store = ParquetStore(tmp_path / "store")
    with pytest.raises(SourceError, match="a time of day"):
        ingest(DataConfig(source="csv", path=str(dump), date_format="epoch_s"), store)
    assert store.catalog() == []


def test_every_bar_on_one_day_is_an_error_for_daily_bars(tmp_path: Path) -> None:
    frame = real("IBM", slice(2000, 2010)).drop(columns=["symbol"])
    frame["timestamp"] = "2008-02-14"
    frame.to_csv(tmp_path / "IBM.csv", index=False)
    with pytest.raises(SourceError, match=r"all 10 rows of the file fall on 2008-02-14"):
        FileSource(tmp_path, "csv").fetch_bars("IBM", "1d")


def test_bars_closer_than_the_frequency_are_an_error(tmp_path: Path) -> None:
    eurusd = bundled_frame("EURUSD").iloc[:50].drop(columns=["symbol"])
    eurusd.to_csv(tmp_path / "EURUSD.csv", index=False)
    src = FileSource(tmp_path, "csv")
    assert len(src.fetch_bars("EURUSD", "1h")) == 50
    with pytest.raises(
        SourceError, match=r"row 1 .* and row 2 .* are 0 days 01:00:00 apart, close"
    ):
        src.fetch_bars("EURUSD", "4h")
    with pytest.raises(SourceError, match=r"a time of day, but frequency is '1d'"):
        src.fetch_bars("EURUSD", "1d")


def test_daily_bars_in_an_intraday_dataset_are_an_error(tmp_path: Path) -> None:
    real("IBM").drop(columns=["symbol"]).to_csv(tmp_path / "IBM.csv", index=False)
    with pytest.raises(SourceError, match=r"a date without a time of day .* set frequency: '1d'"):
        FileSource(tmp_path, "csv").fetch_bars("IBM", "1h")


def test_daily_bars_in_a_weekly_dataset_are_an_error(tmp_path: Path) -> None:
    real("IBM").drop(columns=["symbol"]).to_csv(tmp_path / "IBM.csv", index=False)
    with pytest.raises(SourceError, match=r"row 1 .* and row 2 .* fall in the same week"):
        FileSource(tmp_path, "csv").fetch_bars("IBM", "1w")

"""The Parquet store: atomic writes, idempotence, the DuckDB catalog and panel reads."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tradeforge.core.errors import StoreError, UnknownSymbolError
from tradeforge.data import ParquetStore, default_store
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.frames import canonical_bars, frame_checksum
from tradeforge.data.store import symbol_from_filename


def real_bars(symbol: str = "IBM", n: int = 60, skip: int = 0) -> pd.DataFrame:
    frame = bundled_frame(symbol).drop(columns=["symbol"]).iloc[skip : skip + n]
    return canonical_bars(frame, symbol)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


def test_default_store_lives_under_tradeforge_home(tf_home: Path) -> None:
    assert default_store().root == tf_home


def test_write_read_roundtrip_and_catalog(store: ParquetStore) -> None:
    frame = real_bars()
    entry = store.write_bars("bundled", "1d", "IBM", frame, "bundled")
    back = store.read_bars("bundled", "1d", "IBM")
    pd.testing.assert_frame_equal(back, frame)
    assert str(back["timestamp"].dt.tz) == "UTC"
    (row,) = store.catalog()
    assert row == entry
    assert (row.dataset, row.frequency, row.symbol, row.source) == (
        "bundled",
        "1d",
        "IBM",
        "bundled",
    )
    assert row.rows == 60
    assert row.first_ts == frame["timestamp"].iloc[0]
    assert row.last_ts == frame["timestamp"].iloc[-1]
    assert row.checksum == frame_checksum(frame)
    assert store.entry("bundled", "1d", "IBM") == row
    assert store.entry("bundled", "1h", "IBM") is None


def test_rewrite_is_idempotent(store: ParquetStore) -> None:
    frame = real_bars()
    first = store.write_bars("bundled", "1d", "IBM", frame, "bundled")
    second = store.write_bars("bundled", "1d", "IBM", frame, "bundled")
    assert second.checksum == first.checksum
    assert second.rows == first.rows == 60
    assert len(store.catalog()) == 1


def test_new_bars_merge_and_overlap_prefers_new(store: ParquetStore) -> None:
    store.write_bars("bundled", "1d", "IBM", real_bars(n=40), "bundled")
    newer = real_bars(n=40, skip=30)
    newer.loc[0, "close"] = newer.loc[0, "close"] + 0.5  # a corrected bar in the overlap
    entry = store.write_bars("bundled", "1d", "IBM", newer, "bundled")
    assert entry.rows == 70
    back = store.read_bars("bundled", "1d", "IBM")
    assert back["timestamp"].is_monotonic_increasing
    assert back.loc[30, "close"] == newer.loc[0, "close"]


def test_crash_in_rename_keeps_old_partition_and_leaves_no_temp_files(
    store: ParquetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = real_bars(n=40)
    before = store.write_bars("bundled", "1d", "IBM", old, "bundled")
    path = store.bar_path("bundled", "1d", "IBM")
    old_bytes = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr("tradeforge.data.store.os.replace", crash)
    with pytest.raises(StoreError, match=r"cannot write .*IBM.parquet: disk vanished"):
        store.write_bars("bundled", "1d", "IBM", real_bars(n=40, skip=40), "bundled")
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    pd.testing.assert_frame_equal(store.read_bars("bundled", "1d", "IBM"), old)
    assert store.entry("bundled", "1d", "IBM") == before  # catalog untouched
    assert temp_files(store.root) == []


def test_crash_mid_write_and_interrupt_keep_old_partition(
    store: ParquetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = real_bars(n=40)
    store.write_bars("bundled", "1d", "IBM", old, "bundled")
    real_write = pq.write_table

    def half_write(table, where, **kwargs):
        where.write(b"PAR1 partial bytes")  # some bytes reach the temp file, then it dies
        raise KeyboardInterrupt

    monkeypatch.setattr("tradeforge.data.store.pq.write_table", half_write)
    with pytest.raises(KeyboardInterrupt):
        store.write_bars("bundled", "1d", "IBM", real_bars(n=40, skip=40), "bundled")
    monkeypatch.setattr("tradeforge.data.store.pq.write_table", real_write)
    pd.testing.assert_frame_equal(store.read_bars("bundled", "1d", "IBM"), old)
    assert temp_files(store.root) == []


def test_first_write_crash_leaves_nothing(store: ParquetStore, monkeypatch) -> None:
    monkeypatch.setattr(
        "tradeforge.data.store.os.replace", lambda a, b: (_ for _ in ()).throw(OSError("full"))
    )
    with pytest.raises(StoreError):
        store.write_bars("bundled", "1d", "IBM", real_bars(), "bundled")
    assert not store.bar_path("bundled", "1d", "IBM").exists()
    assert store.catalog() == []
    assert temp_files(store.root) == []


def test_panel_read_aligns_symbols_with_nan_where_absent(store: ParquetStore) -> None:
    ibm = real_bars("IBM", n=50)
    sp = real_bars("SP500", n=50, skip=300)  # SP500 starts 1999, IBM 2000-03-01
    store.write_bars("bundled", "1d", "IBM", ibm, "bundled")
    store.write_bars("bundled", "1d", "SP500", sp, "bundled")
    panel = store.read_panel("bundled", "1d", ["SP500", "IBM"])
    assert panel.symbols == ("SP500", "IBM")
    index = pd.DatetimeIndex(pd.concat([ibm["timestamp"], sp["timestamp"]])).unique().sort_values()
    assert panel.index.equals(index)
    assert panel.close.shape == (len(index), 2)
    assert panel.close.dtype == np.float64
    ibm_rows = panel.index.get_indexer(pd.DatetimeIndex(ibm["timestamp"]))
    np.testing.assert_array_equal(panel.close[ibm_rows, 1], ibm["close"].to_numpy())
    absent = np.setdiff1d(np.arange(len(index)), ibm_rows)
    assert np.isnan(panel.close[absent, 1]).all()
    start, end = ibm["timestamp"].iloc[10], ibm["timestamp"].iloc[19]
    cut = store.read_panel("bundled", "1d", ["IBM"], start, end)
    assert cut.n_bars == 10
    assert cut.index[0] == start
    assert cut.index[-1] == end


def test_missing_partition_names_the_fix(store: ParquetStore) -> None:
    with pytest.raises(UnknownSymbolError, match=r"no stored bars for symbol 'NOPE'.*data ingest"):
        store.read_panel("bundled", "1d", ["NOPE"])
    with pytest.raises(UnknownSymbolError, match="read_panel needs at least one symbol"):
        store.read_panel("bundled", "1d", [])


def test_corrupt_partition_is_a_store_error(store: ParquetStore) -> None:
    store.write_bars("bundled", "1d", "IBM", real_bars(), "bundled")
    store.bar_path("bundled", "1d", "IBM").write_bytes(b"not parquet at all")
    with pytest.raises(StoreError, match=r"cannot read .*delete it and re-run"):
        store.read_bars("bundled", "1d", "IBM")


def test_awkward_symbols_are_stored_reversibly(store: ParquetStore) -> None:
    frame = real_bars(n=5)
    for symbol in ("BTC/USD", ".hidden", "X:BTCUSD", "BRK.B"):
        store.write_bars("ccxt", "1h", symbol, frame, "ccxt")
        path = store.bar_path("ccxt", "1h", symbol)
        assert path.parent == store.root / "bars" / "ccxt" / "1h"
        assert not path.name.startswith(".")
        assert symbol_from_filename(path.name) == symbol
        assert len(store.read_bars("ccxt", "1h", symbol)) == 5
    assert sorted(e.symbol for e in store.catalog()) == [".hidden", "BRK.B", "BTC/USD", "X:BTCUSD"]


def test_empty_partition_refused(store: ParquetStore) -> None:
    with pytest.raises(StoreError, match="empty partition for 'IBM'"):
        store.write_bars("bundled", "1d", "IBM", real_bars().iloc[:0], "bundled")


def test_aux_tables_roundtrip_atomically(store: ParquetStore) -> None:
    actions = pd.DataFrame(
        {
            "ex_date": pd.to_datetime(["2020-08-31"], utc=True),
            "kind": ["split"],
            "value": [4.0],
        }
    )
    store.write_aux("actions", "polygon", "AAPL", actions)
    pd.testing.assert_frame_equal(store.read_aux("actions", "polygon", "AAPL"), actions)
    assert temp_files(store.root) == []
    with pytest.raises(UnknownSymbolError, match="no stored actions for 'MSFT'"):
        store.read_aux("actions", "polygon", "MSFT")


def test_catalog_is_shared_across_store_objects(store: ParquetStore) -> None:
    store.write_bars("bundled", "1d", "IBM", real_bars(), "bundled")
    again = ParquetStore(store.root)
    assert [e.symbol for e in again.catalog()] == ["IBM"]
    assert (store.root / "catalog.duckdb").is_file()
    assert os.listdir(store.root / "bars" / "bundled" / "1d") == ["IBM.parquet"]


def test_batch_upserts_catalog_rows_at_the_end_even_after_an_error(store: ParquetStore) -> None:
    frame = real_bars()

    def write_two_then_fail() -> None:
        with store.batch():
            store.write_bars("bundled", "1d", "IBM", frame, "bundled")
            store.write_bars("bundled", "1d", "MSFT", real_bars("MSFT"), "bundled")
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        write_two_then_fail()
    assert [e.symbol for e in store.catalog()] == ["IBM", "MSFT"]  # describes what is on disk
    with store.batch():
        entry = store.write_bars("bundled", "1d", "IBM", frame, "bundled")  # idempotent upsert
    (ibm,) = [e for e in store.catalog() if e.symbol == "IBM"]
    assert ibm.checksum == entry.checksum
    assert len(store.catalog()) == 2


def test_a_catalog_from_before_origins_is_read_and_migrated(store: ParquetStore) -> None:
    """Catalogs written before the origin/fingerprint columns existed still read (empty
    origin), and gain the columns on the next write."""
    import duckdb

    store.root.mkdir(parents=True)
    con = duckdb.connect(str(store.root / "catalog.duckdb"))
    con.execute(
        "CREATE TABLE catalog (dataset VARCHAR, frequency VARCHAR, symbol VARCHAR, "
        "first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, rows BIGINT, source VARCHAR, "
        "ingested_at TIMESTAMPTZ, checksum VARCHAR, PRIMARY KEY (dataset, frequency, symbol))"
    )
    con.execute(
        "INSERT INTO catalog VALUES ('csv', '1d', 'IBM', '2000-03-01', '2000-05-23', 60, 'csv', "
        "'2024-01-01', 'abc')"
    )
    con.close()
    (old,) = store.catalog()
    assert (old.symbol, old.rows, old.origin, old.fingerprint) == ("IBM", 60, "", "")
    entry = store.write_bars(
        "csv", "1d", "MSFT", real_bars("MSFT"), "csv", origin="/dumps/x", fingerprint="f00"
    )
    assert store.entry("csv", "1d", "MSFT") == entry
    assert (entry.origin, entry.fingerprint) == ("/dumps/x", "f00")
    assert store.entry("csv", "1d", "IBM") == old


def test_write_without_merge_replaces_the_partition(store: ParquetStore) -> None:
    store.write_bars("bundled", "1d", "IBM", real_bars(n=60), "bundled")
    entry = store.write_bars(
        "bundled", "1d", "IBM", real_bars(n=20, skip=5), "bundled", merge=False
    )
    assert entry.rows == 20
    pd.testing.assert_frame_equal(store.read_bars("bundled", "1d", "IBM"), real_bars(n=20, skip=5))

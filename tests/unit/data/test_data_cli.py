"""``tradeforge data ingest|list|show|validate`` through typer's CliRunner, JSON parsed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner
from vendor_fakes import FIXTURES

from tradeforge.cli.app import app, main
from tradeforge.core.errors import UnknownSymbolError
from tradeforge.data.bundled import bundled_frame

EXPECTED = {
    "SP500": ("1999-01-04", "2018-12-31", 5031),
    "NASDAQ": ("1999-01-04", "2018-12-31", 5031),
    "VIX": ("2014-01-03", "2019-01-03", 1259),
    "WTI": ("1986-01-02", "2019-01-03", 8321),
    "AAPL": ("2000-03-01", "2013-03-01", 3270),
    "IBM": ("2000-03-01", "2013-03-01", 3270),
    "MSFT": ("2000-03-01", "2013-03-01", 3270),
    "GOOG": ("2004-08-19", "2013-03-01", 2148),
    "GOOGL": ("2009-05-22", "2018-08-29", 2335),
    "EURUSD": ("2017-01-01", "2017-12-29", 6225),
}


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def run_json(*args: str):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh-machine ``tradeforge data ingest`` (no config) shared by the listing tests."""
    root = tmp_path_factory.mktemp("tf_cli") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("TRADEFORGE_HOME", str(root))
    try:
        result = run("data", "ingest", "--json")
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["store"] == str(root)
        stored = {e["symbol"] for r in payload["results"] for e in r["entries"]}
        assert stored == set(EXPECTED)
    finally:
        mp.undo()
    return root


def test_fresh_ingest_then_list_shows_every_bundled_instrument(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEFORGE_HOME", str(ingested))
    rows = run_json("data", "list")
    by_symbol = {r["symbol"]: r for r in rows}
    assert set(by_symbol) == set(EXPECTED)
    for symbol, (first, last, count) in EXPECTED.items():
        row = by_symbol[symbol]
        assert row["first_ts"][:10] == first, symbol
        assert row["last_ts"][:10] == last, symbol
        assert row["rows"] == count, symbol
        assert row["dataset"] == "bundled"
        assert row["source"] == "bundled"
        assert len(row["checksum"]) == 64
    assert by_symbol["EURUSD"]["frequency"] == "1h"
    table = run("data", "list")
    assert table.exit_code == 0
    for symbol in EXPECTED:
        assert symbol in table.stdout
    assert "1999-01-04" in table.stdout
    assert "2013-03-01" in table.stdout


def test_second_ingest_skips_and_refresh_keeps_checksums(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEFORGE_HOME", str(ingested))
    before = {r["symbol"]: r["checksum"] for r in run_json("data", "list")}
    again = run_json("data", "ingest", "-s", "IBM", "-s", "VIX")
    assert again["results"][0]["skipped"] == ["IBM", "VIX"]
    refreshed = run_json("data", "ingest", "-s", "IBM", "--refresh")
    (entry,) = refreshed["results"][0]["entries"]
    assert entry["checksum"] == before["IBM"]


def test_show_json_has_real_values_and_ingest_findings(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEFORGE_HOME", str(ingested))
    shown = run_json("data", "show", "aapl", "-n", "2")
    assert shown["symbol"] == "AAPL"
    assert shown["stats"]["rows"] == 3270
    assert shown["stats"]["first"].startswith("2000-03-01")
    assert len(shown["bars"]) == 4
    assert shown["bars"][0]["timestamp"].startswith("2000-03-01")
    assert shown["bars"][-1]["close"] == pytest.approx(shown["stats"]["close_last"])
    rules = {f["rule"] for f in shown["validation"]["findings"]}
    assert "open_close_outside_range" in rules  # repaired at ingest and recorded
    hourly = run_json("data", "show", "EURUSD", "-f", "1h", "-n", "1")
    assert hourly["stats"]["rows"] == 6225
    text = run("data", "show", "IBM")
    assert text.exit_code == 0
    assert "close_last" in text.stdout


def test_show_unknown_symbol_is_one_line_error_with_fix(
    ingested: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEFORGE_HOME", str(ingested))
    result = run("data", "show", "TSLA")
    assert isinstance(result.exception, UnknownSymbolError)
    monkeypatch.setattr(sys, "argv", ["tradeforge", "data", "show", "TSLA"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no stored bars for symbol 'TSLA'")
    assert "run: tradeforge data ingest" in err
    assert "\n" not in err


def test_validate_reports_without_storing(tf_home: Path) -> None:
    report = run_json("data", "validate", "-s", "AAPL", "-s", "WTI")
    assert report["ok"] is True
    by_symbol = {r["symbol"]: r for r in report["reports"]}
    assert by_symbol["AAPL"]["rows_in"] == 3270
    aapl_rules = {f["rule"]: f for f in by_symbol["AAPL"]["findings"]}
    assert aapl_rules["open_close_outside_range"]["count"] == 10
    assert aapl_rules["open_close_outside_range"]["action"] == "repaired"
    assert not tf_home.exists() or not list(tf_home.rglob("*.parquet"))


def test_validate_with_strict_config_fails_naming_the_bar(tmp_path: Path, tf_home: Path) -> None:
    cfg = tmp_path / "data.yaml"
    cfg.write_text(
        "source: bundled\nsymbols: [AAPL]\nvalidation:\n  open_close_outside_range: error\n",
        encoding="utf-8",
    )
    result = run("data", "validate", "--config", str(cfg))
    assert result.exit_code == 2
    message = result.stderr
    assert "rule 'open_close_outside_range' rejected AAPL at 20" in message
    assert "field 'open'" in message or "field 'close'" in message


def test_csv_ingest_from_config_file(tmp_path: Path, tf_home: Path) -> None:
    cfg = tmp_path / "dump.yaml"
    cfg.write_text(
        f"source: csv\npath: {FIXTURES / 'files' / 'per_ticker'}\nsymbols: [AAPL, MSFT]\n"
        "dataset: kaggle\n",
        encoding="utf-8",
    )
    payload = run_json("data", "ingest", "--config", str(cfg))
    entries = payload["results"][0]["entries"]
    assert [(e["symbol"], e["rows"]) for e in entries] == [("AAPL", 8), ("MSFT", 8)]
    shown = run_json("data", "show", "MSFT")  # dataset found from the catalog
    raw = pd.read_csv(FIXTURES / "files" / "per_ticker" / "MSFT.csv")
    assert shown["stats"]["close_last"] == pytest.approx(raw["Adj Close"].iloc[-1])


def one_line_error(result) -> str:
    """The command failed with exit code 2 and one ``error:`` line on stderr; that line."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_bad_options_are_one_line_errors(tf_home: Path) -> None:
    assert "needs symbols; pass --symbols" in one_line_error(
        run("data", "ingest", "--source", "polygon")
    )
    assert "frequency" in one_line_error(run("data", "ingest", "-s", "AAPL", "-f", "2h"))


def test_path_without_source_or_with_a_bad_path_is_one_line_and_exit_2(
    tmp_path: Path, tf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    dump = FIXTURES / "files" / "per_ticker"
    line = one_line_error(run("data", "ingest", "--path", str(dump)))
    assert "--path needs --source csv or --source parquet" in line
    assert str(dump) in line
    missing = tmp_path / "nowhere.csv"
    line = one_line_error(run("data", "ingest", "--source", "csv", "--path", str(missing)))
    assert f"csv path '{missing}' does not exist" in line
    assert "--path" in line
    assert "--source csv needs --path" in one_line_error(run("data", "ingest", "--source", "csv"))
    assert "--path needs --source" in one_line_error(
        run("data", "ingest", "--source", "polygon", "--path", str(dump), "-s", "IBM")
    )
    # through the installed entry point too: exit code 2, one line
    monkeypatch.setattr(sys, "argv", ["tradeforge", "data", "ingest", "--path", str(dump)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --path needs --source")
    assert "\n" not in err
    assert not tf_home.exists() or not list(tf_home.rglob("*.parquet"))


def test_csv_dump_ingests_without_a_config_file(tmp_path: Path, tf_home: Path) -> None:
    """``--source csv --path FILE`` alone: every ticker of a long file with YYYYMMDD dates."""
    dump = tmp_path / "prices.csv"
    parts = []
    for symbol in ("IBM", "AAPL", "MSFT"):
        bars = bundled_frame(symbol).iloc[1000:1040]
        parts.append(
            pd.DataFrame(
                {
                    "ticker": symbol,
                    "date": bars["timestamp"].dt.strftime("%Y%m%d").astype(int),
                    "open": bars["open"],
                    "high": bars["high"],
                    "low": bars["low"],
                    "close": bars["close"],
                    "volume": bars["volume"],
                }
            )
        )
    pd.concat(parts).sort_values(["date", "ticker"]).to_csv(dump, index=False)
    payload = run_json("data", "ingest", "--source", "csv", "--path", str(dump))
    entries = {e["symbol"]: e for e in payload["results"][0]["entries"]}
    assert sorted(entries) == ["AAPL", "IBM", "MSFT"]
    ibm = bundled_frame("IBM").iloc[1000:1040]
    for entry in entries.values():
        assert entry["rows"] == 40
        assert entry["first_ts"] == ibm["timestamp"].iloc[0].isoformat()
        assert entry["last_ts"] == ibm["timestamp"].iloc[-1].isoformat()
        assert entry["origin"] == str(dump.resolve())
        assert entry["dataset"] == "csv"
    shown = run_json("data", "show", "MSFT", "-n", "20")  # head 20 + tail 20
    msft = bundled_frame("MSFT").iloc[1000:1040]
    assert [b["close"] for b in shown["bars"]] == pytest.approx(msft["close"].tolist())
    text = run("data", "ingest", "--source", "csv", "--path", str(dump))
    assert text.exit_code == 0
    assert "skipped IBM: already stored" in text.stdout


def test_list_on_empty_store(tf_home: Path) -> None:
    assert run_json("data", "list") == []
    text = run("data", "list")
    assert "is empty; run: tradeforge data ingest" in text.stdout

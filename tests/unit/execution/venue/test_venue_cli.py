"""``tradeforge venue serve|advance|state`` through the real entry point: options become the
VenueConfig, the data comes from the store via load_panel, errors are one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from venue_helpers import make_engine, market

from tradeforge.cli import venue_cmd
from tradeforge.data.panel import BarPanel
from tradeforge.execution.venue import VenueServer
from tradeforge.testing.cli import run_cli as run


def test_serve_builds_the_venue_from_options(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tf_home: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    served: dict[str, Any] = {}

    def fake_serve(engine: Any, host: str, port: int) -> None:
        served.update(engine=engine, host=host, port=port)
        engine.close()

    monkeypatch.setattr(venue_cmd, "serve_forever", fake_serve)
    code, _, err = run(capsys, "venue", "serve", "--port", "8799", "--state", str(tmp_path / "st"),
                       "--symbols", "AAPL,MSFT", "--start", "2009-06-01", "--end", "2010-06-30",
                       "--replay-start", "2010-01-04", "--api-key", "k", "--secret-key", "s")  # fmt: skip
    assert code == 0, err
    engine = served["engine"]
    assert (served["host"], served["port"]) == ("127.0.0.1", 8799)
    assert engine.symbols == ("AAPL", "MSFT")
    assert str(engine.now.date()) == "2010-01-04"
    assert engine.panel.index[-1].date().isoformat() == "2010-06-30"
    assert (engine.config.api_key, engine.config.secret_key) == ("k", "s")
    assert (tmp_path / "st" / "venue.sqlite").is_file()
    assert "replay clock at bar" in err
    assert "http://127.0.0.1:8799" in err


def test_serve_rejects_a_bad_date_in_one_line(
    capsys: pytest.CaptureFixture[str], tf_home: Path
) -> None:
    code, _, err = run(capsys, "venue", "serve", "--replay-start", "04/01/2010")
    assert code == 2
    assert "--replay-start = '04/01/2010'; expected a date YYYY-MM-DD" in err
    assert len(err.strip().splitlines()) == 1


def test_advance_and_state_talk_to_a_running_venue(
    capsys: pytest.CaptureFixture[str], equities_panel: BarPanel
) -> None:
    engine, _ = make_engine(equities_panel)
    engine.submit(market(time_in_force="gtc", type="limit", limit_price=0.01))
    with VenueServer(engine) as server:
        code, out, _ = run(capsys, "venue", "advance", "--bars", "2", "--url", server.url, "--json")
        assert code == 0
        assert json.loads(out)["bar"] == engine.bar
        assert engine.now.date().isoformat() == "2010-01-06"
        code, out, _ = run(capsys, "venue", "state", "--url", server.url)
        assert code == 0
        assert "1 orders, 1 open" in out
        url = server.url
    code, _, err = run(capsys, "venue", "state", "--url", url)
    assert code == 2
    assert f"venue at {url}" in err

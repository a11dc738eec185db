"""Shared fixtures: bundled real data panels (cached per session) and an isolated data home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def sp500_panel():
    from tradeforge.data.bundled import load_bundled_panel

    return load_bundled_panel(["SP500"])


@pytest.fixture(scope="session")
def equities_panel():
    from tradeforge.data.bundled import load_bundled_panel

    return load_bundled_panel(["AAPL", "IBM", "MSFT"])


@pytest.fixture
def tf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated TRADEFORGE_HOME so tests never touch the user's store."""
    home = tmp_path / "tf_home"
    monkeypatch.setenv("TRADEFORGE_HOME", str(home))
    return home

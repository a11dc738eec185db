"""tradeforge.testing.postgres: the env URL wins, a clear reason when there is no server, a
fresh database per call that is gone afterwards."""

from __future__ import annotations

import psycopg
import pytest

from tradeforge.testing import postgres as pg


def test_the_env_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pg.ENV_URL, "postgresql://u@h:1/db")
    assert pg.postgres_url() == "postgresql://u@h:1/db"


def test_no_server_is_a_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pg.ENV_URL, raising=False)
    monkeypatch.setattr(pg, "_cluster", None)
    monkeypatch.setattr(pg, "_failure", None)
    monkeypatch.setattr(pg, "find_bin_dir", lambda: None)
    with pytest.raises(pg.PostgresUnavailable, match=f"{pg.ENV_URL} is not set and no initdb"):
        pg.postgres_url()
    with pytest.raises(pg.PostgresUnavailable, match="no initdb"):  # remembered, not retried
        pg.postgres_url()


def test_with_database_replaces_only_the_name() -> None:
    url = "postgresql://u:p@127.0.0.1:5/old?sslmode=disable"
    assert pg.with_database(url, "new") == "postgresql://u:p@127.0.0.1:5/new?sslmode=disable"


def test_fresh_database_is_empty_and_dropped_afterwards() -> None:
    server = pg.require_postgres()
    with pg.fresh_database(server) as url, psycopg.connect(url) as conn:
        name = url.rsplit("/", 1)[1]
        assert name.startswith("tf_test_")
        row = conn.execute("SELECT current_database(), count(*) FROM pg_tables "
                           "WHERE schemaname = 'public'").fetchone()  # fmt: skip
        assert row == (name, 0)
    with psycopg.connect(server) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert found is None

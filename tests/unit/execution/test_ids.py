"""tradeforge.execution.ids: deterministic client order ids, stable across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tradeforge.domain import client_order_id_of
from tradeforge.execution import ExecutionError, client_order_id

BAR = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
# Pinned: a change of scheme must be deliberate (and bump SCHEME), never accidental.
GOLDEN = "tf1-20240102T143000-0219e096a26e2fc3a85b"


def test_golden_value_and_format() -> None:
    cid = client_order_id("momo", BAR, "AAPL")
    assert cid == GOLDEN
    assert len(cid) == 40 <= 48
    assert client_order_id_of(cid) == cid  # a valid ClientOrderId


def test_same_inputs_same_id_any_timezone() -> None:
    other_tz = BAR.astimezone(timezone(timedelta(hours=-5)))
    assert client_order_id("momo", other_tz, "AAPL") == GOLDEN


@pytest.mark.parametrize(
    "changed",
    [
        ("momo2", BAR, "AAPL", 0),
        ("momo", BAR + timedelta(microseconds=1), "AAPL", 0),
        ("momo", BAR, "MSFT", 0),
        ("momo", BAR, "AAPL", 1),
    ],
)
def test_every_input_changes_the_id(changed: tuple[str, datetime, str, int]) -> None:
    assert client_order_id(*changed) != GOLDEN


def test_no_collisions_over_many_bars_and_legs() -> None:
    ids = {
        client_order_id(f"s{s}", BAR + timedelta(days=d), f"L{leg}")
        for s in range(3)
        for d in range(300)
        for leg in range(10)
    }
    assert len(ids) == 3 * 300 * 10


def test_stable_across_processes_with_different_hash_seeds() -> None:
    code = (
        "from datetime import datetime, UTC;"
        "from tradeforge.execution.ids import client_order_id;"
        "print(client_order_id('momo', datetime(2024, 1, 2, 14, 30, tzinfo=UTC), 'AAPL'))"
    )
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)  # fmt: skip
        assert out.stdout.strip() == GOLDEN


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", BAR, "AAPL"), "strategy = ''"),
        (("momo", datetime(2024, 1, 2), "AAPL"), "timezone-aware"),
        (("momo", BAR, ""), "leg = ''"),
        (("momo", BAR, "AAPL", -1), "revision = -1"),
    ],
)
def test_bad_inputs(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ExecutionError, match=match):
        client_order_id(*args)  # type: ignore[arg-type]

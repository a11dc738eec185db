"""tradeforge.execution.venue.faults and .stream: faults match, count down and are used once;
the stream hub drops, duplicates, reorders and disconnects as told."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tradeforge.execution.venue import FaultPlan, VenueError, parse_fault
from tradeforge.execution.venue.faults import HttpErrorFault
from tradeforge.execution.venue.stream import StreamHub


def test_parse_fault_names_the_bad_field() -> None:
    with pytest.raises(VenueError, match=r"fault kind = 'explode'; expected one of \['http_error'"):
        parse_fault({"kind": "explode"})
    with pytest.raises(VenueError, match="status = 200"):
        parse_fault({"kind": "http_error", "status": 200})
    with pytest.raises(VenueError, match="seconds"):
        parse_fault({"kind": "delay"})
    fault = parse_fault({"kind": "http_error", "status": 504, "phase": "after", "count": 2})
    assert fault == HttpErrorFault(status=504, phase="after", count=2)


def test_http_faults_match_method_and_path_and_count_down() -> None:
    plan = FaultPlan()
    plan.add(parse_fault({"kind": "http_error", "status": 500, "count": 2}))
    plan.add(parse_fault({"kind": "delay", "seconds": 1, "method": "GET", "path": "/v2/orders*"}))
    assert plan.take_http("GET", "/v2/account") is None
    assert plan.take_http("POST", "/v2/orders/abc") is None  # exact path for the first
    got = plan.take_http("GET", "/v2/orders:by_client_order_id")
    assert got is not None and got.kind == "delay"  # noqa: PT018
    assert [p["left"] for p in plan.pending()] == [2]
    assert plan.take_http("POST", "/v2/orders").status == 500  # type: ignore[union-attr]
    assert plan.take_http("POST", "/v2/orders").status == 500  # type: ignore[union-attr]
    assert plan.take_http("POST", "/v2/orders") is None
    assert plan.pending() == []
    assert plan.fired == {"delay": 1, "http_error": 2}


def test_engine_faults_are_taken_by_kind() -> None:
    plan = FaultPlan()
    plan.add(parse_fault({"kind": "reject", "symbol": "MSFT", "reason": "halt"}))
    plan.add(parse_fault({"kind": "partial_fill", "participation_cap": 0.01}))
    assert plan.take_reject("AAPL") is None
    assert plan.take_reject("MSFT") == "halt"
    assert plan.take_reject("MSFT") is None
    assert plan.take_partial_fill() == 0.01
    assert plan.take_partial_fill() is None
    assert plan.take_stream_auth() is False


def _run_hub(
    faults: list[dict[str, Any]], events: list[str], disconnect: bool = False
) -> list[Any]:
    plan = FaultPlan()
    for raw in faults:
        plan.add(parse_fault(raw))
    hub = StreamHub(plan)

    async def main() -> list[Any]:
        sub = hub.subscribe()
        for name in events:
            hub.publish({"stream": "trade_updates", "data": {"event": name}})
        if disconnect:
            assert hub.disconnect_all() == 1
        await asyncio.sleep(0)  # let the scheduled deliveries run
        out = []
        while not sub.queue.empty():
            msg = sub.queue.get_nowait()
            out.append(None if msg is None else msg["data"]["event"])
        hub.unsubscribe(sub)
        return out

    return asyncio.run(main())


def test_stream_hub_faults() -> None:
    assert _run_hub([], ["new", "fill"]) == ["new", "fill"]
    assert _run_hub([{"kind": "drop_events", "events": ["new"]}], ["new", "new", "fill"]) == [
        "new", "fill"
    ]  # fmt: skip
    assert _run_hub([{"kind": "duplicate_events", "count": 2}], ["new", "fill", "canceled"]) == [
        "new", "new", "fill", "fill", "canceled"
    ]  # fmt: skip
    assert _run_hub([{"kind": "reorder_events", "window": 2}], ["new", "fill", "canceled"]) == [
        "fill", "new", "canceled"
    ]  # fmt: skip
    assert _run_hub([], ["new"], disconnect=True) == ["new", None]


def test_nobody_listening_means_the_update_is_gone() -> None:
    hub = StreamHub(FaultPlan())
    hub.publish({"stream": "trade_updates", "data": {"event": "fill"}})
    assert hub.stats()["published"] == 1
    assert hub.stats()["delivered"] == 0

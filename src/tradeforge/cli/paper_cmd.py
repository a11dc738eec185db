"""``tradeforge paper``: trade a saved policy through the trading node on a venue.

``tradeforge paper CONFIG --policy ARTIFACT [--venue local|alpaca|sim] [--venue-url URL]
[--start DATE --end DATE] [--state DIR] [--json]``. CONFIG is a ``PaperConfig`` YAML (node,
risk and Alpaca settings; top level or under ``paper:``); it may be omitted for the defaults.
``--venue local`` starts the local Alpaca-compatible venue in this process and replays
``[start, end]`` (default: the artifact's test window) through alpaca-py, or joins the venue at
``--venue-url``; ``--venue alpaca`` trades Alpaca paper with ``APCA_API_KEY_ID`` /
``APCA_API_SECRET_KEY``. All logic lives in :func:`tradeforge.experiment.paper.paper_trade`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from tradeforge.cli._format import num
from tradeforge.cli.output import console, emit_json
from tradeforge.core.errors import ConfigError

_HEADLINE = ("total_return", "annual_return", "sharpe", "max_drawdown", "n_orders", "n_fills")


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"{option} = {value!r}; expected a date YYYY-MM-DD") from None
    return value


def paper_cmd(
    config: Path | None = typer.Argument(
        None, help="PaperConfig YAML (node, risk, alpaca); omit for the defaults."
    ),
    policy: Path = typer.Option(
        ..., "--policy", "-p", help="A saved policy or ensemble directory."
    ),
    venue: str = typer.Option("local", "--venue", help="local | alpaca | sim."),
    venue_url: str | None = typer.Option(
        None, "--venue-url", help="Join a running local venue (tradeforge venue serve) instead."
    ),
    start: str | None = typer.Option(None, help="First decision date (replay venues)."),
    end: str | None = typer.Option(None, help="Last decision date (replay venues)."),
    state: Path | None = typer.Option(
        None, "--state", help="Keep the node's journal, orders and risk state here (restartable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """Paper trade a policy: bar -> features -> policy -> risk -> orders, on the local venue,
    Alpaca paper or the in-process simulator."""
    from tradeforge.experiment.paper import paper_trade

    if venue not in ("local", "alpaca", "sim"):
        raise ConfigError(f"--venue = {venue!r}; expected local, alpaca or sim")
    result = paper_trade(
        config, policy, venue=venue, venue_url=venue_url,  # type: ignore[arg-type]
        start=_date(start, "--start"), end=_date(end, "--end"), state_dir=state,
    )  # fmt: skip
    summary = result.summary()
    if as_json:
        emit_json(summary)
        return
    window = " .. ".join("-" if t is None else str(t.date()) for t in (result.start, result.end))
    table = Table(title=f"paper {result.strategy_id} on {venue}: {window}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in _HEADLINE:
        if key in result.metrics:
            table.add_row(key, num(result.metrics[key], ".6g"))
    table.add_row("final equity", f"{result.final_equity:,.2f}")
    table.add_row("risk denials", str(len(result.denied)))
    table.add_row("bars without a decision", str(len(result.skipped)))
    shortfall = result.node.shortfall_summary() if result.node is not None else None
    if shortfall and shortfall.get("weighted_bps") is not None:
        table.add_row("shortfall vs arrival (bps)", num(shortfall["weighted_bps"], ".2f"))
        table.add_row("shortfall + fees", num(shortfall["cost"], ",.2f"))
    console.print(table)
    if result.halted:
        console.print(f"HALTED: {result.reconciliations[-1] if result.reconciliations else ''}")
    if result.state_dir is not None:
        console.print(f"state in {result.state_dir}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge paper`` to the root app."""
    app.command("paper")(paper_cmd)


__all__ = ["paper_cmd", "register"]

"""``tradeforge venue``: serve the local Alpaca-compatible paper venue, and drive its replay clock.

``tradeforge venue serve --port 8765 [--state DIR]`` serves Alpaca's REST subset, the
trade-updates websocket and the admin endpoints (``docs/venue.md``) on 127.0.0.1 until
interrupted; with ``--state`` the venue's journal survives restarts. ``tradeforge venue advance``
and ``tradeforge venue state`` talk to a running venue's admin endpoints.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from tradeforge.cli.output import console, emit_json, err_console
from tradeforge.core.config import load_yaml_config, validate_config
from tradeforge.core.errors import ConfigError

venue_app = typer.Typer(
    help="The local Alpaca-compatible paper venue: serve it, advance its replay clock.",
    no_args_is_help=True,
)

URL_OPTION = typer.Option("http://127.0.0.1:8765", "--url", help="The running venue's base URL.")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"{option} = {value!r}; expected a date YYYY-MM-DD") from None


def _venue_config(
    config: Path | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
    replay_start: str | None,
    api_key: str | None,
    secret_key: str | None,
) -> Any:
    from tradeforge.execution.venue import VenueConfig

    base = load_yaml_config(config, VenueConfig) if config is not None else VenueConfig()
    raw = base.model_dump(mode="json")
    data = raw["data"]
    if symbols is not None:
        data["symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
    if start is not None:
        data["start"] = _day(start, "--start")
    if end is not None:
        data["end"] = _day(end, "--end")
    if replay_start is not None:
        raw["replay_start"] = _day(replay_start, "--replay-start")
    if api_key is not None:
        raw["api_key"] = api_key
    if secret_key is not None:
        raw["secret_key"] = secret_key
    return validate_config(VenueConfig, raw, str(config) if config else "venue options")


def serve_forever(engine: Any, host: str, port: int) -> None:
    """Serve until interrupted (a seam for tests)."""
    from tradeforge.execution.venue import serve_forever as serve

    serve(engine, host=host, port=port)


@venue_app.command("serve")
def serve_cmd(
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind (loopback by default)."
    ),
    state: Path | None = typer.Option(
        None, "--state", help="Folder for the venue's journal (SQLite); omitted: nothing persists."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="A VenueConfig YAML (data, sim, replay_start, api_key, ...)."
    ),
    symbols: str | None = typer.Option(None, "--symbols", help="Comma-separated symbols."),
    start: str | None = typer.Option(None, "--start", help="First stored bar to load (history)."),
    end: str | None = typer.Option(None, "--end", help="Last stored bar to replay."),
    replay_start: str | None = typer.Option(
        None, "--replay-start", help="First decision bar: the first bar on or after this date."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="TRADEFORGE_VENUE_KEY", help="Key clients must send."
    ),
    secret_key: str | None = typer.Option(
        None, "--secret-key", envvar="TRADEFORGE_VENUE_SECRET", help="Secret clients must send."
    ),
) -> None:
    """Serve the venue: Alpaca's REST subset, trade updates and admin endpoints."""
    from tradeforge.execution.venue import VenueEngine

    cfg = _venue_config(config, symbols, start, end, replay_start, api_key, secret_key)
    engine = VenueEngine(cfg, state_dir=state)
    err_console.print(
        f"venue: {', '.join(engine.symbols)} ({engine.panel.frequency}), replay clock at bar "
        f"{engine.bar} ({engine.now.date()}), state {state or 'in memory'}; serving "
        f"http://{host}:{port} and ws://{host}:{port}/stream (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    serve_forever(engine, host, port)


def _admin(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    from tradeforge.execution.venue import VenueError

    try:
        reply = httpx.request(method, f"{url.rstrip('/')}{path}", json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise VenueError(
            f"venue at {url}: {exc}; expected `tradeforge venue serve` running"
        ) from None
    if reply.status_code >= 400:
        raise VenueError(f"venue at {url} answered {reply.status_code}: {reply.text}")
    return reply.json()


@venue_app.command("advance")
def advance_cmd(
    bars: int = typer.Option(1, "--bars", min=1, help="How many bars to move the replay clock."),
    url: str = URL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Move a running venue's replay clock: fill and expire orders on each bar."""
    state = _admin(url, "POST", "/admin/advance", {"bars": bars})
    if as_json:
        emit_json(state)
        return
    console.print(f"bar {state['bar']} ({state['timestamp']}), {state['open_orders']} open orders")


@venue_app.command("state")
def state_cmd(
    url: str = URL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Show a running venue's clock, orders, stream and pending faults."""
    state = _admin(url, "GET", "/admin/state")
    if as_json:
        emit_json(state)
        return
    console.print(
        f"bar {state['bar']} of {state['n_bars']} ({state['timestamp']}); "
        f"{state['orders']} orders, {state['open_orders']} open; "
        f"{state['stream']['listeners']} stream listener(s); {len(state['faults'])} pending fault(s)"
    )


def register(app: typer.Typer) -> None:
    """Add ``tradeforge venue`` to the main app."""
    app.add_typer(venue_app, name="venue")


__all__ = ["register", "venue_app"]

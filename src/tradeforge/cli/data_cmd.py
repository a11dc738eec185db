"""``tradeforge data``: ingest, list, show and validate stored market data."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from tradeforge.cli.output import console, emit_json, err_console
from tradeforge.core.config import load_yaml_config
from tradeforge.core.errors import ConfigError, TradeforgeError
from tradeforge.data.config import FILE_SOURCES, DataConfig
from tradeforge.data.ingest import ingest, load_report, resolve_symbols, store_symbol
from tradeforge.data.sources.keys import install_log_redaction
from tradeforge.data.store import ParquetStore, default_store

data_app = typer.Typer(help="Ingest, list, inspect and validate market data.", no_args_is_help=True)
logger = logging.getLogger("tradeforge.cli.data")


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """A tradeforge error ends the command with one line on stderr and exit code 2."""
    try:
        yield
    except TradeforgeError as exc:
        logger.debug("data command failed", exc_info=True)
        text = " ".join(str(exc).split())
        err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _store(root: Path | None) -> ParquetStore:
    return ParquetStore(root) if root is not None else default_store()


def _config(
    config: Path | None,
    source: str | None,
    symbols: list[str] | None,
    frequency: str | None,
    refresh: bool = False,
    files: dict[str, Any] | None = None,
) -> list[DataConfig]:
    """Configs to run: a YAML DataConfig, else options, else every bundled instrument.

    ``files`` holds the file-dump options (path, dataset, date_format) that were given.
    """
    from tradeforge.core.config import validate_config

    given = {k: v for k, v in (files or {}).items() if v is not None}
    if config is not None:
        cfg = load_yaml_config(config, DataConfig)
        update: dict[str, Any] = dict(given)
        if symbols:
            update["symbols"] = symbols
        if frequency:
            update["frequency"] = frequency
        if refresh:
            update["refresh"] = True
        if not update:
            return [cfg]
        merged = {**cfg.model_dump(), **update}
        return [validate_config(DataConfig, merged, source=str(config))]
    if "path" in given and source not in FILE_SOURCES:
        raise ConfigError(
            f"--path needs --source csv or --source parquet (the format of the files at "
            f"{given['path']}), got {'no --source' if source is None else repr(source)}"
        )
    if source in FILE_SOURCES and "path" not in given:
        raise ConfigError(f"--source {source} needs --path FILE_OR_DIR (a dump of {source} files)")
    src = source or "bundled"
    if symbols or src in FILE_SOURCES:
        raw = {
            "source": src,
            "symbols": symbols or [],
            "frequency": frequency or "1d",
            "refresh": refresh,
            **given,
        }
        return [validate_config(DataConfig, raw, source="options")]
    if given:
        raise ConfigError(
            f"--dataset and --date-format go with --source csv/parquet --path, or with "
            f"--symbols; got {', '.join('--' + k.replace('_', '-') for k in given)} alone"
        )
    if src != "bundled":
        raise ConfigError(
            f"source {src!r} needs symbols; pass --symbols SYMBOL (repeatable) or --config "
            "with a symbols list"
        )
    from tradeforge.data.bundled import BUNDLED

    by_freq: dict[str, list[str]] = {}
    for name, series in BUNDLED.items():
        if frequency is None or series.frequency == frequency:
            by_freq.setdefault(series.frequency, []).append(name)
    if not by_freq:
        raise ConfigError(
            f"no bundled instrument has frequency {frequency!r}; bundled frequencies are "
            f"{sorted({s.frequency for s in BUNDLED.values()})}"
        )
    return [
        DataConfig(symbols=names, frequency=freq, refresh=refresh)
        for freq, names in sorted(by_freq.items())
    ]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=err_console,
        transient=True,
    )


_PATH_HELP = "A csv/parquet file or directory of per-ticker files (with --source csv|parquet)."
_DATASET_HELP = "Store dataset (default: the source name)."
_DATE_HELP = "strptime format of the date column, or epoch_s/epoch_ms (default: inferred)."


@data_app.command("ingest")
def ingest_cmd(
    config: Path | None = typer.Option(None, "--config", "-c", help="DataConfig YAML file."),
    source: str | None = typer.Option(None, help="Source name (default: bundled)."),
    symbols: list[str] | None = typer.Option(None, "--symbols", "-s", help="Symbols (repeat)."),
    frequency: str | None = typer.Option(None, "--frequency", "-f", help="Bar frequency."),
    path: str | None = typer.Option(None, "--path", "-p", help=_PATH_HELP),
    dataset: str | None = typer.Option(None, "--dataset", help=_DATASET_HELP),
    date_format: str | None = typer.Option(None, "--date-format", help=_DATE_HELP),
    refresh: bool = typer.Option(False, "--refresh", help="Re-fetch what is already stored."),
    root: Path | None = typer.Option(None, help="Store root (default $TRADEFORGE_HOME)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Fetch, validate and store bars (default: every bundled instrument; with --source csv
    --path FILE_OR_DIR every symbol of a local dump)."""
    install_log_redaction()
    files = {"path": path, "dataset": dataset, "date_format": date_format}
    results = []
    with _one_line_errors():
        store = _store(root)
        configs = _config(config, source, symbols, frequency, refresh, files)
        with _progress() as progress:
            for cfg in configs:
                task = progress.add_task(f"{cfg.source} {cfg.frequency}", total=len(cfg.symbols))

                def step(label: str, done: int, total: int, task: Any = task) -> None:
                    progress.update(task, description=label, completed=done, total=total)

                results.append(ingest(cfg, store, progress=step))
    if as_json:
        emit_json({"store": str(store.root), "results": [r.to_dict() for r in results]})
        return
    for result in results:
        for sym, why in result.replaced.items():
            console.print(escape(f"replaced {sym}: {why}"), soft_wrap=True)
        for entry in result.entries:
            first, last = _stamp(entry.first_ts), _stamp(entry.last_ts)
            console.print(
                f"stored {entry.symbol} {entry.frequency}: {entry.rows} bars, {first} .. {last}"
            )
        for report in result.reports:
            for f in report.findings:
                console.print(escape(f"  {f.symbol} {f.rule} ({f.action}, {f.count}): {f.detail}"))
        for sym in result.skipped:
            console.print(f"skipped {sym}: already stored (use --refresh to fetch again)")


@data_app.command("list")
def list_cmd(
    root: Path | None = typer.Option(None, help="Store root (default $TRADEFORGE_HOME)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """The catalog: one row per stored symbol and frequency."""
    store = _store(root)
    entries = store.catalog()
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    if not entries:
        console.print(
            f"the store at {store.root} is empty; run: tradeforge data ingest", soft_wrap=True
        )
        return
    table = Table(title=f"tradeforge store {store.root}")
    for col in (
        "dataset",
        "symbol",
        "freq",
        "first",
        "last",
        "rows",
        "source",
        "ingested",
        "checksum",
    ):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for e in entries:
        table.add_row(
            e.dataset,
            e.symbol,
            e.frequency,
            _stamp(e.first_ts),
            _stamp(e.last_ts),
            str(e.rows),
            e.source,
            e.ingested_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.checksum[:12],
        )
    _wide().print(table)


@data_app.command("show")
def show_cmd(
    symbol: str = typer.Argument(..., help="Stored symbol."),
    dataset: str | None = typer.Option(
        None, help="Dataset (default: the one holding SYMBOL, else bundled)."
    ),
    frequency: str = typer.Option("1d", "--frequency", "-f", help="Bar frequency."),
    rows: int = typer.Option(5, "--rows", "-n", min=0, help="Rows of head and tail."),
    root: Path | None = typer.Option(None, help="Store root (default $TRADEFORGE_HOME)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Head and tail of one stored series, with summary statistics."""
    store = _store(root)
    dataset, key = _locate(store, symbol, dataset, frequency)
    frame = store.read_bars(dataset, frequency, key)
    close = frame["close"]
    returns = close.pct_change().dropna()
    stats = {
        "rows": len(frame),
        "first": frame["timestamp"].iloc[0],
        "last": frame["timestamp"].iloc[-1],
        "close_min": float(close.min()),
        "close_max": float(close.max()),
        "close_last": float(close.iloc[-1]),
        "mean_return": float(returns.mean()) if len(returns) else float("nan"),
        "std_return": float(returns.std()) if len(returns) > 1 else float("nan"),
        "missing_volume": int(frame["volume"].isna().sum()),
    }
    report = load_report(store, dataset, frequency, key)
    if as_json:
        records = [*frame.head(rows).to_dict("records"), *frame.tail(rows).to_dict("records")]
        emit_json({"symbol": key, "stats": stats, "bars": records, "validation": report})
        return
    table = Table(title=f"{key} {frequency} ({dataset})")
    for col in frame.columns:
        table.add_column(col)
    parts = [frame.head(rows), frame.tail(rows)] if len(frame) > 2 * rows else [frame]
    for k, part in enumerate(parts):
        if k:
            table.add_row(*["..."] * len(frame.columns))
        for rec in part.itertuples(index=False):
            table.add_row(*[_fmt(v) for v in rec])
    _wide().print(table)
    for name, value in stats.items():
        console.print(f"{name:>15}: {_fmt(value)}")
    if report and report["findings"]:
        console.print("validation findings at ingest:")
        for f in report["findings"]:
            console.print(escape(f"  {f['rule']} ({f['action']}, {f['count']}): {f['detail']}"))


@data_app.command("validate")
def validate_cmd(
    config: Path | None = typer.Option(None, "--config", "-c", help="DataConfig YAML file."),
    source: str | None = typer.Option(None, help="Source name (default: bundled)."),
    symbols: list[str] | None = typer.Option(None, "--symbols", "-s", help="Symbols (repeat)."),
    frequency: str | None = typer.Option(None, "--frequency", "-f", help="Bar frequency."),
    path: str | None = typer.Option(None, "--path", "-p", help=_PATH_HELP),
    date_format: str | None = typer.Option(None, "--date-format", help=_DATE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Fetch and validate without storing anything; report what every rule found."""
    from tradeforge.data.ingest import calendar_for
    from tradeforge.data.sources import make_source
    from tradeforge.data.validation import validate_bars

    install_log_redaction()
    reports = []
    files = {"path": path, "date_format": date_format}
    with _one_line_errors():
        for cfg in _config(config, source, symbols, frequency, files=files):
            src = make_source(cfg)
            rules = cfg.effective_validation
            for symbol in resolve_symbols(cfg, src):
                key = store_symbol(cfg, symbol)
                frame = src.fetch_bars(symbol, cfg.frequency, cfg.start, cfg.end)
                _, report = validate_bars(frame, key, rules, calendar_for(cfg, key))
                reports.append(report)
    if as_json:
        emit_json({"ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports]})
        return
    table = Table(title="validation report")
    for col in ("symbol", "rule", "action", "count", "first at", "detail"):
        table.add_column(col)
    for r in reports:
        if not r.findings:
            table.add_row(r.symbol, "-", "clean", "0", "", f"{r.rows_in} bars, no findings")
        for f in r.findings:
            first = f.timestamps[0][:19] if f.timestamps else ""
            table.add_row(r.symbol, f.rule, f.action, str(f.count), first, escape(f.detail))
    _wide().print(table)


def _locate(
    store: ParquetStore, symbol: str, dataset: str | None, frequency: str
) -> tuple[str, str]:
    """The (dataset, stored symbol) for ``symbol``: a unique catalog match when no dataset is
    given (symbols match case-insensitively), else bundled naming."""
    if dataset is None:
        hits = [
            e
            for e in store.catalog()
            if e.frequency == frequency and e.symbol.upper() == symbol.upper()
        ]
        exact = [e for e in hits if e.symbol == symbol] or hits
        if len({e.dataset for e in exact}) == 1:
            return exact[0].dataset, exact[0].symbol
        if len(exact) > 1:
            names = ", ".join(sorted({e.dataset for e in exact}))
            raise ConfigError(
                f"symbol {symbol!r} is stored in several datasets ({names}); pick one with "
                "--dataset"
            )
        dataset = "bundled"
    return dataset, symbol.upper() if dataset == "bundled" else symbol


def _wide() -> Console:
    """The normal console on a terminal; a wide one when piped, so tables are not squeezed."""
    return console if console.is_terminal else Console(width=160)


def _stamp(ts: Any) -> str:
    text: str = ts.strftime("%Y-%m-%d %H:%M")
    return text.removesuffix(" 00:00")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge data ...`` to the root app."""
    app.add_typer(data_app, name="data")


__all__ = ["data_app", "register"]

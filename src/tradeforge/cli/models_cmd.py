"""``tradeforge models``: list, show, promote and roll back policies in the model registry.

Thin wiring of :class:`tradeforge.agents.registry.PolicyRegistry` (an MLflow model registry):
``promote NAME VERSION`` moves the ``champion`` alias (the replaced champion becomes
``previous_champion``), ``rollback NAME`` restores ``previous_champion``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from tradeforge.agents.registry import (
    CHAMPION,
    REGISTRY_URI_ENV,
    ModelVersionInfo,
    PolicyRegistry,
)
from tradeforge.cli.output import console, emit_json

models_app = typer.Typer(
    help="List, inspect, promote and roll back registered policies (MLflow model registry).",
    no_args_is_help=True,
)

REGISTRY_URI_OPTION = typer.Option(
    None,
    "--registry-uri",
    help=(
        f"MLflow registry store (default ${REGISTRY_URI_ENV}, else "
        "sqlite:///$TRADEFORGE_HOME/registry/mlflow.db)."
    ),
)
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")
_SHOWN_TAGS = ("algo", "validation.sharpe")


def _registry(uri: str | None) -> PolicyRegistry:
    return PolicyRegistry(uri, create=False)


def _record(info: ModelVersionInfo) -> dict[str, Any]:
    return asdict(info)


def _when(info: ModelVersionInfo) -> str:
    return info.created_at.strftime("%Y-%m-%d %H:%M") if info.created_at else ""


@models_app.command("list")
def list_cmd(
    name: str | None = typer.Argument(None, help="A registered model: list its versions."),
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Registered models with their aliases, or every version of NAME."""
    registry = _registry(registry_uri)
    if name is None:
        aliases = {n: registry.aliases(n) for n in registry.names()}
        counts = {n: len(registry.versions(n)) for n in aliases}
        if as_json:
            models = [{"name": n, "versions": counts[n], "aliases": a} for n, a in aliases.items()]
            emit_json({"registry_uri": registry.registry_uri, "models": models})
            return
        table = Table(title=f"registered models ({escape(registry.registry_uri)})")
        for col in ("name", "versions", "aliases"):
            table.add_column(col)
        for n, found in aliases.items():
            shown = ", ".join(f"{k}=v{v}" for k, v in sorted(found.items()))
            table.add_row(escape(n), str(counts[n]), shown)
        console.print(table if aliases else "no registered models")
        return
    versions = registry.versions(name)
    if as_json:
        emit_json({"name": name, "versions": [_record(v) for v in versions]})
        return
    table = Table(title=f"{escape(name)} ({escape(registry.registry_uri)})")
    for col in ("version", "aliases", "created", *_SHOWN_TAGS, "run"):
        table.add_column(col)
    for v in versions:
        tags = [escape(v.tags.get(t, "")) for t in _SHOWN_TAGS]
        table.add_row(str(v.version), ", ".join(v.aliases), _when(v), *tags, escape(v.run_id or ""))
    console.print(table)


@models_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    ref: str = typer.Argument(CHAMPION, help="Version number or alias."),
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One version of NAME (default: the champion): aliases, source, run and tags."""
    info = _registry(registry_uri).get(name, ref)
    if as_json:
        emit_json(_record(info))
        return
    console.print(f"[bold]{escape(info.name)}[/] v{info.version}")
    rows = {
        "aliases": ", ".join(info.aliases) or "-",
        "created": _when(info) or "-",
        "run": info.run_id or "-",
        "source": info.source,
    }
    for key, value in {**rows, **dict(sorted(info.tags.items()))}.items():
        console.print(f"{key:>20}: {escape(value)}")


@models_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number (or an alias, e.g. challenger)."),
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Make VERSION the champion; the champion it replaces becomes previous_champion."""
    registry = _registry(registry_uri)
    before = registry.aliases(name).get(CHAMPION)
    info = registry.promote(name, version)
    previous = before if before != info.version else None
    if as_json:
        emit_json({"name": name, "champion": info.version, "previous_champion": previous})
        return
    was = f" (was v{before}; previous_champion = v{previous})" if previous is not None else ""
    console.print(f"{escape(name)}: champion = v{info.version}{was}")


@models_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Restore previous_champion as the champion (one step back)."""
    registry = _registry(registry_uri)
    before = registry.aliases(name).get(CHAMPION)
    info = registry.rollback(name)
    if as_json:
        emit_json({"name": name, "champion": info.version, "replaced": before})
        return
    was = f" (was v{before})" if before is not None else ""
    console.print(f"{escape(name)}: champion = v{info.version}{was}")


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge models ...`` to the root app."""
    app.add_typer(models_app, name="models")


__all__ = ["models_app", "register"]

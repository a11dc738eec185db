"""``tradeforge models``: list, show, gate, promote and roll back policies in the registry.

Thin wiring of :class:`tradeforge.agents.registry.PolicyRegistry` (an MLflow model registry)
and :mod:`tradeforge.governance`: ``gate NAME VERSION --offline RUN_DIR | --shadow DIR |
--paper STATE_DIR`` records a gate result on the version; ``promote NAME VERSION [--to ALIAS]``
moves ``champion`` (default; the replaced champion becomes ``previous_champion``) or
``shadow``/``canary``/``challenger`` through the governance guard (a version that failed or
lacks a required gate needs ``--approver``, someone other than the actor and the trainer);
``rollback NAME`` restores ``previous_champion``; ``history NAME`` lists the audited moves;
``card NAME VERSION [--out FILE.md]`` writes the version's model card.
Every move is written to the audit log (``--audit``, default ``audit.db`` next to a sqlite
registry store, else ``$TRADEFORGE_HOME/registry/audit.db``).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from tradeforge.agents.registry import (
    CHAMPION,
    PREVIOUS_CHAMPION,
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
AUDIT_OPTION = typer.Option(
    None,
    "--audit",
    help="Audit log of alias moves (default: audit.db next to a sqlite registry store, else "
    "$TRADEFORGE_HOME/registry/audit.db).",
)
ACTOR_OPTION = typer.Option(
    None, "--actor", help="Who acts (default $TRADEFORGE_ACTOR, else the login name)."
)
APPROVER_OPTION = typer.Option(
    None,
    "--approver",
    help="Second approver, required when a gate the alias needs failed or is missing; must "
    "differ from the actor and from who registered the version.",
)
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


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    env = os.environ.get("TRADEFORGE_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _audit(path: Path | None, registry: PolicyRegistry) -> Any:
    from tradeforge.governance.lifecycle import open_audit

    return open_audit(path, registry.registry_uri)


@models_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number (or an alias, e.g. challenger)."),
    to: str = typer.Option(
        CHAMPION, "--to", help="Alias to move: champion (default), canary, shadow, challenger."
    ),
    approver: str | None = APPROVER_OPTION,
    actor: str | None = ACTOR_OPTION,
    audit_path: Path | None = AUDIT_OPTION,
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Move an alias (default champion) to VERSION through the gates; audited."""
    from tradeforge.governance.lifecycle import gate_status, promote

    registry = _registry(registry_uri)
    before = registry.aliases(name)
    registry.get(name, version)  # a missing version or alias is named before anything else
    with _audit(audit_path, registry) as audit:
        info = promote(registry, name, version, to, actor=_actor(actor), audit=audit,
                       approver=approver)  # fmt: skip
    if to == CHAMPION:
        champion_before = before.get(CHAMPION)
        previous = champion_before if champion_before != info.version else None
        if as_json:
            emit_json({"name": name, "champion": info.version, "previous_champion": previous})
            return
        was = (
            f" (was v{champion_before}; previous_champion = v{previous})"
            if previous is not None
            else ""
        )
        console.print(f"{escape(name)}: champion = v{info.version}{was}")
        return
    if as_json:
        emit_json({"name": name, "alias": to, "version": info.version,
                   "previous": before.get(to), "gates": gate_status(info)})  # fmt: skip
        return
    console.print(f"{escape(name)}: {escape(to)} = v{info.version}")


@models_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    approver: str | None = APPROVER_OPTION,
    actor: str | None = ACTOR_OPTION,
    audit_path: Path | None = AUDIT_OPTION,
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Restore previous_champion as the champion (one step back); audited."""
    from tradeforge.governance.lifecycle import rollback_champion

    registry = _registry(registry_uri)
    before = registry.aliases(name).get(CHAMPION)
    if PREVIOUS_CHAMPION not in registry.aliases(name):
        registry.rollback(name)  # the registry's one-line error naming the aliases
    with _audit(audit_path, registry) as audit:
        info = rollback_champion(registry, name, actor=_actor(actor), audit=audit,
                                 approver=approver)  # fmt: skip
    if as_json:
        emit_json({"name": name, "champion": info.version, "replaced": before})
        return
    was = f" (was v{before})" if before is not None else ""
    console.print(f"{escape(name)}: champion = v{info.version}{was}")


@models_app.command("gate")
def gate_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number or alias."),
    offline: Path | None = typer.Option(
        None, "--offline", help="Walk-forward run directory (summary.json, oos_returns.csv)."
    ),
    shadow: Path | None = typer.Option(
        None,
        "--shadow",
        help="Shadow directory: champion_weights.csv, challenger_weights.csv, "
        "challenger_returns.csv, optional shadow.json (needs --reference).",
    ),
    paper: Path | None = typer.Option(
        None, "--paper", help="Paper run state directory (node.sqlite, oms.sqlite)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Run directory whose oos_returns.csv sets the drawdown band."
    ),
    modelled_cost_bps: float | None = typer.Option(
        None, "--modelled-cost-bps", help="Paper: the simulator's cost per traded notional."
    ),
    config_path: Path | None = typer.Option(
        None, "--config", help="YAML file with GateConfig thresholds."
    ),
    actor: str | None = ACTOR_OPTION,
    audit_path: Path | None = AUDIT_OPTION,
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate one gate and record it on the version (tags gate.<name>, gate.<name>.json).
    Exits 1 when the gate failed."""
    from tradeforge.core.errors import ConfigError
    from tradeforge.governance import gates
    from tradeforge.governance.lifecycle import record_gate

    chosen = [g for g, v in (("offline", offline), ("shadow", shadow), ("paper", paper)) if v]
    if len(chosen) != 1:
        raise ConfigError(
            f"gate options given: {chosen or 'none'}; expected exactly one of --offline, "
            "--shadow, --paper"
        )
    config = _gate_config(config_path)
    registry = _registry(registry_uri)
    registry.get(name, version)
    ref = gates.read_oos_returns(reference) if reference is not None else None
    if shadow is not None and ref is None:
        raise ConfigError("--shadow needs --reference RUN_DIR (the champion's backtest)")
    if paper is not None and modelled_cost_bps is None:
        raise ConfigError("--paper needs --modelled-cost-bps (the simulator's cost in bps)")
    if shadow is not None and ref is not None:
        result = gates.shadow_gate_from_dir(shadow, ref, config)
    elif paper is not None and modelled_cost_bps is not None:
        result = gates.paper_gate(paper, modelled_cost_bps=modelled_cost_bps,
                                  reference_returns=ref, config=config)  # fmt: skip
    else:
        result = gates.offline_gate_from_run(offline or Path(), config)
    with _audit(audit_path, registry) as audit:
        info = record_gate(registry, name, version, result, actor=_actor(actor), audit=audit)
    if as_json:
        emit_json({"name": name, "version": info.version, "aliases": list(info.aliases),
                   **result.model_dump(mode="json")})  # fmt: skip
    else:
        table = Table(title=f"{escape(name)} v{info.version}: {result.gate} gate "
                      f"{'PASSED' if result.passed else 'FAILED'}")  # fmt: skip
        for col in ("check", "value", "threshold", "passed", "detail"):
            table.add_column(col)
        for c in result.checks:
            table.add_row(c.name, _num(c.value), _num(c.threshold), "yes" if c.passed else "NO",
                          escape(c.detail))  # fmt: skip
        console.print(table)
    if not result.passed:
        raise typer.Exit(1)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _gate_config(path: Path | None) -> Any:
    from tradeforge.governance.gates import GateConfig

    if path is None:
        return GateConfig()
    import yaml

    from tradeforge.core.config import validate_config

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return validate_config(GateConfig, raw, source=str(path))


@models_app.command("history")
def history_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    audit_path: Path | None = AUDIT_OPTION,
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The audited alias moves of NAME, oldest first."""
    from tradeforge.governance.lifecycle import alias_history

    registry = _registry(registry_uri)
    registry.aliases(name)
    with _audit(audit_path, registry) as audit:
        moves = alias_history(audit, name)
    if as_json:
        emit_json({"name": name, "moves": moves})
        return
    table = Table(title=f"{escape(name)}: alias moves")
    for col in ("seq", "time", "action", "alias", "from", "to", "actor", "approver"):
        table.add_column(col)
    for m in moves:
        table.add_row(str(m["seq"]), m["ts"], m.get("action", ""), m.get("alias", ""),
                      _v(m.get("from_version")), _v(m.get("to_version")),
                      escape(str(m.get("actor") or "")), escape(str(m.get("approver") or "")))  # fmt: skip
    console.print(table if moves else "no audited moves")


def _v(version: Any) -> str:
    return "-" if version is None else f"v{version}"


@models_app.command("card")
def card_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number or alias."),
    out: Path | None = typer.Option(None, "--out", help="Write the Markdown card to this file."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="The run directory (default: the version's run_dir tag)."
    ),
    registry_uri: str | None = REGISTRY_URI_OPTION,
) -> None:
    """The model card of VERSION (Markdown): data, features, training, walk-forward results
    per fold and against baselines, gates with their values, known limits."""
    from tradeforge.governance.model_card import card_for_version

    text = card_for_version(_registry(registry_uri), name, version, run_dir=run_dir)
    if out is None:
        console.out(text, highlight=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"model card: {escape(str(out))}")


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge models ...`` to the root app."""
    app.add_typer(models_app, name="models")


__all__ = ["models_app", "register"]

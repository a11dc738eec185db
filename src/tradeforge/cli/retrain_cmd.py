"""``tradeforge retrain CONFIG``: the walk-forward on the latest stored data, then a challenger
(and the ``shadow`` alias) only when the offline gate passes; exits 1 when it is refused.

Thin wiring of :func:`tradeforge.experiment.retrain.retrain`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from tradeforge.cli.models_cmd import (
    ACTOR_OPTION,
    AUDIT_OPTION,
    JSON_OPTION,
    REGISTRY_URI_OPTION,
    _actor,
    _audit,
    _gate_config,
)
from tradeforge.cli.output import console, emit_json


def retrain_cmd(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
    end: str | None = typer.Option(
        None, "--end", help="Last date of data to use (YYYY-MM-DD; default: all stored bars)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Registered model name (default tracking.model_name, else name)."
    ),
    approver: str | None = typer.Option(
        None,
        "--approver",
        help="Second approver: registers and moves shadow even when the offline gate failed "
        "(audited override); must differ from the actor.",
    ),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: runs/NAME-UTC)."),
    gates_path: Path | None = typer.Option(
        None, "--gates", help="YAML file with GateConfig thresholds."
    ),
    actor: str | None = ACTOR_OPTION,
    audit_path: Path | None = AUDIT_OPTION,
    registry_uri: str | None = REGISTRY_URI_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Retrain walk-forward; register the last fold's policy as challenger and move shadow to
    it only through the offline gate (or a second --approver). Exits 1 when refused."""
    from tradeforge.agents.registry import PolicyRegistry
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.retrain import retrain

    cfg = load_experiment(config)
    tracking = cfg.tracking
    registry = PolicyRegistry(registry_uri or (tracking.registry_uri if tracking else None))
    with _audit(audit_path, registry) as audit:
        result = retrain(cfg, actor=_actor(actor), end=end, model=model, registry=registry,
                         audit=audit, approver=approver, gate_config=_gate_config(gates_path),
                         out_dir=out)  # fmt: skip
    if as_json:
        emit_json(result.to_dict())
    elif result.registered:
        override = (
            f" (offline gate FAILED; approved by {result.approver})" if result.approver else ""
        )
        console.print(
            f"{escape(result.model)} v{result.version}: {', '.join(result.aliases)}{override}; "
            f"run {escape(str(result.run_dir))}; model card {escape(str(result.card))}"
        )
    else:
        console.print(f"retrain refused, nothing registered: {escape(result.refused or '')}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)


__all__ = ["register", "retrain_cmd"]

"""Helpers shared by the experiment commands (features, train, tune, run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tradeforge.cli.output import err_console

ALGO_OPTION = typer.Option(
    None,
    "--algo",
    help="Override agent.algo (ppo, a2c, ddpg, td3, sac) with its default hyperparameters.",
)
TIMESTEPS_OPTION = typer.Option(None, "--timesteps", help="Override agent.timesteps.")
SEED_OPTION = typer.Option(None, "--seed", help="Override the experiment seed.")
OUT_OPTION = typer.Option(None, "--out", help="Directory for the run (default: output_dir).")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable summary on stdout.")


def overrides(algo: str | None, timesteps: int | None, seed: int | None) -> dict[str, Any]:
    """Dotted-key overrides for ``load_experiment`` from the common command-line knobs."""
    return {"agent.algo": algo, "agent.timesteps": timesteps, "seed": seed}


def stamp() -> str:
    """A sortable UTC timestamp for run directory names."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def progress_bar() -> Progress:
    """A rich progress display on stderr (stdout stays clean for ``--json``)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
    )


def resolve_out(out: Path | None, default_root: str, name: str) -> Path:
    """``out`` itself when given, else ``<default_root>/<name>-<stamp>``."""
    if out is not None:
        return out
    return Path(default_root) / f"{name}-{stamp()}"

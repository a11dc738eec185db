"""``tradeforge drift report``: features, actions and returns against a policy's reference profile.

Two sources of bars:

* ``--policy ARTIFACT [--start DATE] [--end DATE]``: the stored bars of the artifact's data,
  replayed through its feature pipeline and policy (default range: the artifact's test window);
* ``--state DIR [--start] [--end]``: a trading node's ``drift/history.jsonl``; the profile comes
  from ``--policy`` when given, else from ``DIR/reference_profile.json``.

The report prints as tables, as JSON with ``--json`` and as HTML with ``--html FILE``;
``--fail-on-rollback`` exits 1 when a rollback trigger fired (for schedulers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from tradeforge.cli._common import JSON_OPTION
from tradeforge.cli._format import footnote, num
from tradeforge.cli.output import console, emit_json
from tradeforge.core.errors import ConfigError, FeatureError

drift_app = typer.Typer(
    help="Drift of features, actions and returns against a policy's reference profile.",
    no_args_is_help=True,
)


def _from_policy(policy: Path, start: str | None, end: str | None) -> dict[str, Any]:
    """drift_report inputs from the artifact's stored bars (features, weights, bar returns)."""
    from tradeforge.agents.policy import load_policy
    from tradeforge.experiment.replay import replay_policy
    from tradeforge.monitor import ReferenceProfile

    profile = ReferenceProfile.load(policy)
    pipeline = getattr(load_policy(policy), "pipeline", None)
    replay = replay_policy(policy, start, end)
    if pipeline is None:  # replay_policy already refuses this; kept for a clear message
        raise FeatureError(f"{policy}: the artifact holds no fitted feature pipeline")
    if tuple(pipeline.names) != profile.feature_names:
        raise FeatureError(
            f"{policy}: reference_profile.json features {list(profile.feature_names)} differ "
            f"from the artifact's pipeline features {list(pipeline.names)}"
        )
    panel = replay.panel
    first = int(panel.index.searchsorted(replay.start))
    last = int(panel.index.searchsorted(replay.end))
    rows = slice(first, last + 1)
    features = pipeline.transform(panel).values[rows]
    index = panel.index[rows]
    returns = replay.result.returns.reindex(index).to_numpy(dtype=np.float64)
    return {
        "profile": profile,
        "features": features if profile.n_symbols > 1 else features[:, 0, :],
        "actions": replay.weights[rows] if profile.actions else None,
        "returns": returns if profile.returns is not None else None,
        "values": None,
        "index": list(index),
        "metadata": {"policy": str(policy), "source": "stored bars"},
    }


def _from_state(
    state: Path, policy: Path | None, start: str | None, end: str | None
) -> dict[str, Any]:
    from tradeforge.monitor import ReferenceProfile, read_history

    profile = ReferenceProfile.load(policy if policy is not None else state)
    history = read_history(state).between(start, end)
    if not history.timestamps:
        raise ConfigError(f"--start {start} / --end {end}: no bars of {state} in that range")
    features = history.features if profile.n_symbols > 1 else history.features[:, 0, :]
    return {
        "profile": profile,
        "features": features,
        "actions": history.actions,
        "returns": history.returns,
        "values": history.values,
        "index": list(history.timestamps),
        "metadata": {"state": str(state), "source": "trading node history"},
    }


@drift_app.command("report")
def report(
    policy: Path | None = typer.Option(
        None, "--policy", "-p", help="Policy artifact directory (holds reference_profile.json)."
    ),
    start: str | None = typer.Option(None, help="First bar (default: the test window / all)."),
    end: str | None = typer.Option(None, help="Last bar (default: the test window / all)."),
    state: Path | None = typer.Option(
        None, "--state", help="A trading node's state directory (drift/history.jsonl)."
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    fail_on_rollback: bool = typer.Option(
        False, "--fail-on-rollback", help="Exit 1 when a rollback trigger fired."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare bars with the reference profile: PSI/KS per feature, online detectors, CUSUM."""
    from tradeforge.monitor import drift_report

    if state is not None:
        inputs = _from_state(state, policy, start, end)
    elif policy is not None:
        inputs = _from_policy(policy, start, end)
    else:
        raise ConfigError("pass --policy ARTIFACT (stored bars) or --state DIR (a node's history)")
    result = drift_report(
        inputs["profile"],
        inputs["features"],
        inputs["actions"],
        inputs["returns"],
        inputs["values"],
        index=inputs["index"],
        metadata=inputs["metadata"],
    )
    if html is not None:
        result.write_html(html)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print(result, html)
    if fail_on_rollback and result.rollback:
        raise typer.Exit(1)


def _print(result: Any, html: Path | None) -> None:
    table = Table(title=f"drift over {result.n_bars} bars, {result.start} .. {result.end}")
    for col in ("channel", "status", "PSI", "KS p", "mean shift (sd)"):
        table.add_column(col, justify="left" if col in ("channel", "status") else "right")
    cells: list[str] = []
    for c in (*result.features, *result.actions, result.values, result.returns):
        if c is None:
            continue
        row = [num(c.psi, ".3f"), num(c.ks_pvalue, ".2g"), num(c.mean_shift, "+.2f")]
        cells.extend(row)
        table.add_row(escape(c.name), c.status, *row)
    console.print(table)
    detectors = Table(title="online detectors")
    for col in ("detector", "alarms", "first alarm", "rollback trigger"):
        detectors.add_column(col)
    for d in result.detectors:
        first = d.alarm_times[0] if d.alarm_times else "-"
        detectors.add_row(d.name, str(d.n_alarms), str(first), "yes" if d.rollback else "no")
    console.print(detectors)
    note = footnote(cells)
    if note:
        console.print(escape(note))
    if result.rollback:
        for reason in result.rollback_reasons:
            console.print(f"[bold red]rollback trigger[/]: {escape(reason)}")
    else:
        console.print("no rollback trigger fired")
    if html is not None:
        console.print(f"wrote {html}")


def register(app: typer.Typer) -> None:
    app.add_typer(drift_app, name="drift")

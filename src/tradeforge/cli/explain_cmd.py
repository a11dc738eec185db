"""``tradeforge explain``: why a policy artifact acts as it does over a stretch of stored bars.

The artifact's stored bars are replayed through its feature pipeline and policy (as ``tradeforge
drift report --policy`` does; default range: the artifact's test window) and every decision is
explained (``--method ig``, ``permutation`` or ``kernel_shap``). The terminal shows the global
importance per feature and per observation entry and the last decision's top attributions;
``--json`` prints the report, ``--html FILE`` writes a self-contained page with bar charts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from tradeforge.cli._common import JSON_OPTION
from tradeforge.cli._format import num
from tradeforge.cli.output import console, emit_json
from tradeforge.core.errors import ConfigError


def explain_cmd(
    policy: Path = typer.Option(..., "--policy", "-p", help="Policy artifact directory."),
    start: str | None = typer.Option(None, help="First decision bar (default: the test window)."),
    end: str | None = typer.Option(None, help="Last decision bar (default: the test window)."),
    method: str = typer.Option("ig", "--method", help="ig, permutation or kernel_shap."),
    top: int = typer.Option(5, "--top", min=1, help="Entries per table."),
    last: int | None = typer.Option(
        None, "--last", min=1, help="Explain only the last N decisions (ig, kernel_shap)."
    ),
    n_steps: int = typer.Option(
        50, "--n-steps", min=2, help="IG quadrature points (ReLU actors converge slowly: 1000)."
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML page here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Attribute the policy's actions to its observation: global importance, last decision."""
    from tradeforge.experiment.explain import METHODS, explain_policy

    if method not in METHODS:
        raise ConfigError(f"--method {method!r}; expected one of {', '.join(METHODS)}")
    report = explain_policy(policy, start, end, method, last=last, n_steps=n_steps)  # type: ignore[arg-type]
    if html is not None:
        report.write_html(html, top)
    if as_json:
        emit_json(report.to_dict(top))
        return
    _print(report, top, html)


def _print(report: Any, top: int, html: Path | None) -> None:
    n_explained = max((getattr(ex.result, "n", 0) for ex in report.explained), default=0)
    console.print(
        f"{escape(report.method)}: {len(report.index)} decisions, "
        f"{report.index[0].date()} .. {report.index[-1].date()}"
        + (f" (explained: the last {n_explained})" if 0 < n_explained < len(report.index) else "")
    )
    console.print(f"baseline: {escape(report.baseline_source)}")
    features = report.grouped_importance("feature")
    entries = report.global_importance(top)
    for (member, output), group in entries.groupby(["member", "output"], sort=False):
        table = Table(title=f"{member} {output}: by entry")
        for col in ("rank", "entry", "importance"):
            table.add_column(col, justify="left" if col == "entry" else "right")
        for row in group.itertuples(index=False):
            table.add_row(str(row.rank), escape(row.entry), num(row.importance, ".3g"))
        mine = features[(features.member == member) & (features.output == output)]
        summed = Table(title=f"{member} {output}: by feature")
        summed.add_column("feature")
        summed.add_column("importance", justify="right")
        for row in mine.itertuples(index=False):
            summed.add_row(escape(str(row.feature)), num(row.importance, ".3g"))
        console.print(table)
        console.print(summed)
    decisions = report.decisions(top, last=1)
    for (member, output), group in decisions.groupby(["member", "output"], sort=False):
        first = group.iloc[0]
        table = Table(
            title=f"last decision {first['time'].date()}, {member} {output} = "
            f"{num(first['value'], '+.4f')} (baseline {num(first['baseline_value'], '+.4f')})"
        )
        for col in ("rank", "entry", "observed", "attribution"):
            table.add_column(col, justify="left" if col == "entry" else "right")
        for row in group.itertuples(index=False):
            table.add_row(
                str(row.rank),
                escape(row.entry),
                num(row.observed, ".4g"),
                num(row.attribution, "+.3g"),
            )
        console.print(table)
    if len(decisions):
        worst = report.completeness()["max_abs_error"].max()
        console.print(f"completeness: max |sum(attributions) - (f(x) - f(baseline))| = {worst:.2g}")
    for note in report.notes:
        console.print(f"note: {escape(note)}")
    if html is not None:
        console.print(f"wrote {html}")


def register(app: typer.Typer) -> None:
    """Attach ``tradeforge explain`` to the root app."""
    app.command("explain")(explain_cmd)


__all__ = ["explain_cmd", "register"]

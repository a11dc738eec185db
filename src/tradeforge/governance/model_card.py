"""Model cards: one Markdown page per registered version, from what the registry and the run
recorded about it.

Sections (each value read, never typed by hand):

* **Version**: name, number, aliases, who registered it, commits, registration time;
* **Data**: source, symbols, frequency, the requested range, the train / validation / test
  ranges of the registered policy, the out-of-sample range, ``data_checksum`` and
  ``data_config_checksum``;
* **Features**: the feature names, the scaler, the fitted pipeline's hash;
* **Training**: algorithm, timesteps, seeds, environments, hyper-parameters, configurations
  tried;
* **Walk-forward results**: one row per fold (test range, OOS Sharpe, total return, max
  drawdown, validation Sharpe), the whole OOS record, and the baselines over the same bars;
* **Gates**: each gate's status and, when recorded, every check with value and threshold;
  approvals (second approvers) when a failed gate was overridden;
* **Known limits**: what the evidence does not cover (derived from the values above).

:func:`model_card` renders it; :func:`card_for_version` gathers the inputs from the registry
(the version's tags, its artifact, the run directory in its ``run_dir`` tag when that still
exists); :func:`attach_model_card` logs it as an MLflow artifact of the version's run
(``model_card/<name>-v<version>.md``) and tags the version ``model_card`` with that path.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tradeforge.agents.registry import ModelVersionInfo, PolicyRegistry
from tradeforge.governance.gates import GATES

CARD_DIR = "model_card"
CARD_TAG = "model_card"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        v = float(value)
        if not math.isfinite(v):
            return "n/a"
        return format(v, spec)
    return str(value)


def _pct(value: Any) -> str:
    return _fmt(None if value is None else float(value) * 100.0, ".2f") + (
        " %" if value is not None and math.isfinite(float(value)) else ""
    )


def _day(text: Any) -> str:
    if not text:
        return "n/a"
    try:
        return pd.Timestamp(str(text)).date().isoformat()
    except ValueError:
        return str(text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return out


def fold_results(run_dir: Path) -> list[dict[str, Any]]:
    """Per fold of a run: its test range (from each fold artifact's ``data.json``), the OOS
    Sharpe, total return and max drawdown of ``oos_returns.csv`` over that range, and the
    fold's validation Sharpe (``folds/fold_N/summary.json``)."""
    from tradeforge.backtest.metrics import compute_metrics

    summary = _read_json(run_dir / "summary.json") or {}
    path = run_dir / "oos_returns.csv"
    if not path.is_file():
        return []
    returns = pd.read_csv(path, index_col=0, parse_dates=True)["returns"].astype(float)
    ppy = int(summary.get("periods_per_year", 252))
    out = []
    for number, artifact in enumerate(summary.get("artifacts") or []):
        ranges = _read_json(Path(artifact) / "data.json") or {}
        start, end = ranges.get("test_start"), ranges.get("test_end")
        if not start or not end:
            continue
        part = returns.loc[pd.Timestamp(start) : pd.Timestamp(end)]
        folder = Path(artifact).parent.name  # folds/fold_<number>/policy
        if folder.startswith("fold_") and folder[5:].isdigit():
            number = int(folder[5:])
        fold_summary = _read_json(Path(artifact).parent / "summary.json") or {}
        validation = (fold_summary.get("validation") or {}).get("sharpe")
        row: dict[str, Any] = {"fold": number, "test_start": start, "test_end": end,
                               "bars": len(part), "validation_sharpe": validation}  # fmt: skip
        if len(part) >= 2:
            m = compute_metrics(part, periods_per_year=ppy)
            row.update(sharpe=m.get("sharpe"), total_return=m.get("total_return"),
                       max_drawdown=m.get("max_drawdown"))  # fmt: skip
        out.append(row)
    return out


def _gate_section(tags: Mapping[str, str]) -> list[str]:
    lines = ["## Gates", ""]
    for gate in GATES:
        status = tags.get(f"gate.{gate}", "missing")
        lines.append(f"- **{gate}**: {status}")
        raw = tags.get(f"gate.{gate}.json")
        result = None
        if raw:
            try:
                result = json.loads(raw)
            except ValueError:
                result = None
        if result:
            lines.append("")
            rows = [
                [c["name"], _fmt(c.get("value"), ".6g"), _fmt(c.get("threshold"), ".6g"),
                 "passed" if c.get("passed") else "FAILED", c.get("detail", "")]
                for c in result.get("checks", [])
            ]  # fmt: skip
            lines += ["  " + r for r in _table(["check", "value", "threshold", "", "detail"], rows)]
            lines.append("")
    approvals = {k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("approval.")}
    if approvals:
        lines.append("")
        lines.append(
            "Approved by a second person despite a failed or missing gate: "
            + ", ".join(f"`{alias}` by {who}" for alias, who in sorted(approvals.items()))
        )
    lines.append("")
    return lines


def _limits(
    info: ModelVersionInfo,
    summary: Mapping[str, Any],
    folds: Sequence[Mapping[str, Any]],
    symbols: Sequence[str],
    oos: tuple[str, str],
) -> list[str]:
    tags = info.tags
    out = [
        f"Trained and tested only on {', '.join(symbols) or 'unknown symbols'} between "
        f"{oos[0]} and {oos[1]} (out of sample); behaviour in other markets or regimes is not "
        "measured.",
        "`data_checksum` names the data by its request (source, symbols, ranges), not by the "
        "bytes of the bars: a vendor revision of past bars does not change it.",
    ]
    missing = [g for g in GATES if tags.get(f"gate.{g}", "missing") != "passed"]
    if missing:
        states = ", ".join(f"{g}: {tags.get('gate.' + g, 'missing')}" for g in missing)
        out.append(
            f"Gates not passed ({states}): no evidence yet of behaviour on live bars or in "
            "paper trading."
        )
    metrics = summary.get("metrics") or {}
    sharpe = metrics.get("sharpe")
    for base, values in sorted((summary.get("baselines") or {}).items()):
        other = (values or {}).get("sharpe")
        if sharpe is not None and other is not None and float(other) > float(sharpe):
            out.append(
                f"Out-of-sample Sharpe {_fmt(sharpe, '.3f')} is below the {base} baseline's "
                f"{_fmt(other, '.3f')} over the same bars."
            )
    bars = int(metrics.get("n_periods") or 0)
    if bars:
        out.append(
            f"The out-of-sample record is {bars} bars; a paper run of a few weeks cannot "
            "confirm the Sharpe ratio (see MinTRL in the offline gate)."
        )
    tried = summary.get("configurations_tried") or tags.get("configurations_tried")
    if tried is not None:
        out.append(f"{tried} configuration(s) were tried; the deflated Sharpe counts all of them.")
    if len(folds) < 3:
        out.append(f"Only {len(folds)} walk-forward fold(s): the spread across periods is barely "
                   "measured.")  # fmt: skip
    return out


def model_card(
    info: ModelVersionInfo,
    *,
    run_dir: Path | None = None,
    artifact: Path | None = None,
) -> str:
    """The Markdown card of one version (module docstring)."""
    tags = info.tags
    summary: dict[str, Any] = {}
    run_config: dict[str, Any] = {}
    if run_dir is not None and (Path(run_dir) / "summary.json").is_file():
        summary = _read_json(Path(run_dir) / "summary.json") or {}
        cfg_path = Path(run_dir) / "config.yaml"
        if cfg_path.is_file():
            run_config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    spec: dict[str, Any] = {}
    art_config: dict[str, Any] = {}
    ranges: dict[str, Any] = {}
    if artifact is not None:
        spec = _read_json(Path(artifact) / "spec.json") or {}
        art_config = _read_json(Path(artifact) / "config.json") or {}
        ranges = _read_json(Path(artifact) / "data.json") or {}
    data = run_config.get("data") or art_config.get("data") or {}
    agent = art_config.get("agent") or run_config.get("agent") or {}
    features = run_config.get("features") or {}
    symbols = [str(s) for s in (summary.get("symbols") or data.get("symbols") or [])]
    oos = (_day(summary.get("oos_start") or tags.get("oos_start")),
           _day(summary.get("oos_end") or tags.get("oos_end")))  # fmt: skip
    folds = fold_results(Path(run_dir)) if run_dir is not None else []
    metrics = summary.get("metrics") or {}

    lines = [f"# Model card: {info.name} v{info.version}", ""]
    lines += [
        f"- aliases: {', '.join(info.aliases) or 'none'}",
        f"- registered by: {tags.get('registered_by', 'unknown')}",
        f"- registered at: {info.created_at.isoformat() if info.created_at else 'n/a'}",
        f"- git commit (registration): {tags.get('git_commit', 'unknown')}; at training: "
        f"{tags.get('artifact_git_commit', 'unknown')}",
        f"- source: {info.source}",
        f"- run directory: {tags.get('run_dir') or (str(run_dir) if run_dir else 'n/a')}",
        "",
        "## Data",
        "",
        f"- source: {data.get('source', 'n/a')}; frequency: {data.get('frequency', 'n/a')}",
        f"- symbols: {', '.join(symbols) or 'n/a'}",
        f"- requested range: {data.get('start') or 'first stored bar'} to "
        f"{data.get('end') or 'last stored bar'}",
        f"- train: {_day(ranges.get('train_start'))} to {_day(ranges.get('train_end'))}; "
        f"validation: {_day(ranges.get('val_start'))} to {_day(ranges.get('val_end'))}; "
        f"test: {_day(ranges.get('test_start'))} to {_day(ranges.get('test_end'))}",
        f"- walk-forward out of sample: {oos[0]} to {oos[1]} "
        f"({_fmt(metrics.get('n_periods'), '.0f')} bars)",
        f"- data checksum: `{tags.get('data_checksum', 'n/a')}`",
        f"- data config checksum: `{tags.get('data_config_checksum', 'n/a')}`",
        "",
        "## Features",
        "",
        f"- features: {', '.join(spec.get('feature_names') or []) or 'n/a'}",
        f"- scaler: {features.get('scaler', 'n/a')}; clip: {features.get('clip', 'n/a')}",
        f"- pipeline hash: `{tags.get('feature_pipeline_hash') or spec.get('feature_hash') or 'n/a'}`",
        "",
        "## Training",
        "",
        f"- algorithm: {agent.get('algo') or tags.get('algo', 'n/a')}",
        f"- timesteps: {agent.get('timesteps', 'n/a')}; environments: {agent.get('n_envs', 'n/a')}",
        f"- seeds: {agent.get('seeds', 'n/a')} (seed of this policy: {agent.get('seed', 'n/a')})",
        f"- hyper-parameters: {json.dumps(agent.get('hyperparams') or {}, sort_keys=True)}",
        f"- configurations tried: {tags.get('configurations_tried') or summary.get('configurations_tried') or 'n/a'}",
        "",
        "## Walk-forward results",
        "",
    ]  # fmt: skip
    if folds:
        rows = [
            [str(f["fold"]), f"{_day(f['test_start'])} to {_day(f['test_end'])}", str(f["bars"]),
             _fmt(f.get("sharpe"), ".3f"), _pct(f.get("total_return")),
             _pct(f.get("max_drawdown")), _fmt(f.get("validation_sharpe"), ".3f")]
            for f in folds
        ]  # fmt: skip
        lines += _table(["fold", "test", "bars", "OOS Sharpe", "total return", "max drawdown",
                         "validation Sharpe"], rows)  # fmt: skip
        lines.append("")
    else:
        lines += ["No run directory: per-fold results are not available.", ""]
    compare = [["policy", _fmt(metrics.get("sharpe"), ".3f"), _pct(metrics.get("total_return")),
                _pct(metrics.get("max_drawdown")),
                _fmt(metrics.get("deflated_sharpe") or tags.get("deflated_sharpe"), ".4f")]]  # fmt: skip
    for base, values in sorted((summary.get("baselines") or {}).items()):
        values = values or {}
        compare.append([base, _fmt(values.get("sharpe"), ".3f"),
                        _pct(values.get("total_return")), _pct(values.get("max_drawdown")), ""])  # fmt: skip
    if metrics:
        lines += ["Whole out-of-sample record against the baselines (same bars, same costs):", ""]
        lines += _table(["", "Sharpe", "total return", "max drawdown", "deflated Sharpe"], compare)
        lines.append("")
    lines += _gate_section(tags)
    lines += ["## Known limits", ""]
    lines += [f"- {text}" for text in _limits(info, summary, folds, symbols, oos)]
    lines.append("")
    return "\n".join(lines)


def card_for_version(
    registry: PolicyRegistry,
    name: str,
    version: int | str,
    *,
    run_dir: Path | None = None,
    artifact: Path | None = None,
) -> str:
    """:func:`model_card` of a registered version: its artifact downloaded when not given, its
    run directory from the ``run_dir`` tag when not given and still on disk."""
    info = registry.get(name, version)
    if run_dir is None and info.tags.get("run_dir"):
        candidate = Path(info.tags["run_dir"])
        run_dir = candidate if (candidate / "summary.json").is_file() else None
    if artifact is not None:
        return model_card(info, run_dir=run_dir, artifact=artifact)
    with tempfile.TemporaryDirectory(prefix="tradeforge-card-") as tmp:
        try:
            local: Path | None = registry.download(name, info.version, Path(tmp))
        except Exception:  # a card without the artifact still shows the registry's tags
            local = None
        return model_card(info, run_dir=run_dir, artifact=local)


def attach_model_card(
    registry: PolicyRegistry,
    name: str,
    version: int,
    *,
    run_dir: Path | None = None,
    artifact: Path | None = None,
) -> str | None:
    """Log the card as ``model_card/<name>-v<version>.md`` of the version's MLflow run and tag
    the version ``model_card`` with that path; returns the path (None when the version has no
    run to hold artifacts)."""
    info = registry.get(name, version)
    if not info.run_id:
        return None
    text = card_for_version(registry, name, version, run_dir=run_dir, artifact=artifact)
    path = f"{CARD_DIR}/{name}-v{info.version}.md"
    registry.client.log_text(info.run_id, text, path)
    registry.set_tags(name, info.version, {CARD_TAG: path})
    return path


__all__ = [
    "CARD_DIR",
    "CARD_TAG",
    "attach_model_card",
    "card_for_version",
    "fold_results",
    "model_card",
]

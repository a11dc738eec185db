"""Which features drive the policy, per walk-forward fold: permutation importance in the run.

For every fold's artifact the fold's test window is replayed (exactly as ``tradeforge
explain`` does, :func:`tradeforge.experiment.explain.explain_policy`) and each observation
entry is shuffled across the decisions (:func:`tradeforge.monitor.explain.permutation_importance`,
``n_repeats`` shuffles, seeded): the importance of an entry is the mean absolute change of the
policy's output. Entries are summed per feature (over symbols and lags; the account state as
``weight``, ``cash_fraction``, ``unrealized_pnl``) and averaged over the members and outputs
of an ensemble. ``share`` is the feature's fraction of the fold's total, so folds compare.

* :func:`write_importance` writes ``<run_dir>/importance.json``;
* :func:`importance_tables` turns it into the report's tables (``ReportData.extra_tables``):
  one row per feature, one column per fold (share), sorted by the mean share.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tradeforge.core.errors import TradeforgeError

logger = logging.getLogger(__name__)

IMPORTANCE_FILE = "importance.json"
TABLE_TITLE = "Feature importance per fold (permutation, share of the fold's total)"


def _fold_number(artifact: Path, default: int) -> int:
    folder = Path(artifact).parent.name  # folds/fold_<number>/policy
    if folder.startswith("fold_") and folder[5:].isdigit():
        return int(folder[5:])
    return default


def fold_importance(artifact: Path, *, n_repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Permutation importance of one fold's policy over its test window (module docstring)."""
    from tradeforge.experiment.explain import explain_policy

    began = time.perf_counter()
    report = explain_policy(Path(artifact), method="permutation", n_repeats=n_repeats, seed=seed)
    grouped = report.grouped_importance("feature")
    per_feature = grouped.groupby("feature", sort=False)["importance"].mean()
    total = float(per_feature.sum())
    ranked = per_feature.sort_values(ascending=False, kind="stable")
    return {
        "artifact": str(artifact),
        "start": report.index[0].isoformat(),
        "end": report.index[-1].isoformat(),
        "n_decisions": len(report.index),
        "outputs": sorted({f"{e.member}:{e.output}" for e in report.explained}),
        "seconds": time.perf_counter() - began,
        "features": [
            {
                "feature": str(name),
                "importance": float(value),
                "share": float(value) / total if total > 0 else 0.0,
            }
            for name, value in ranked.items()
        ],
        "notes": list(report.notes),
    }


def compute_importance(
    artifacts: Sequence[Path], *, n_repeats: int = 5, seed: int = 0
) -> dict[str, Any]:
    """:func:`fold_importance` of every fold artifact; a fold that cannot be explained is
    listed with its error instead (the run's report is not lost for it)."""
    folds = []
    for i, artifact in enumerate(artifacts):
        number = _fold_number(Path(artifact), i)
        try:
            folds.append({"fold": number, **fold_importance(artifact, n_repeats=n_repeats,
                                                            seed=seed)})  # fmt: skip
        except TradeforgeError as exc:
            logger.warning("fold %d: no permutation importance: %s", number, exc)
            folds.append({"fold": number, "artifact": str(artifact), "error": str(exc)})
    return {"method": "permutation", "n_repeats": n_repeats, "seed": seed, "folds": folds}


def write_importance(
    run_dir: Path,
    artifacts: Sequence[Path] | None = None,
    *,
    n_repeats: int = 5,
    seed: int = 0,
) -> Path:
    """Compute the per-fold importance and write ``<run_dir>/importance.json``; ``artifacts``
    default to the folds of ``summary.json`` (else ``folds/fold_*/policy``)."""
    run_dir = Path(run_dir)
    if artifacts is None:
        summary_path = run_dir / "summary.json"
        if summary_path.is_file():
            listed = json.loads(summary_path.read_text(encoding="utf-8")).get("artifacts") or []
            artifacts = [Path(a) for a in listed]
        else:
            found = sorted((run_dir / "folds").glob("fold_*/policy"),
                           key=lambda p: _fold_number(p, 0))  # fmt: skip
            artifacts = found
    data = compute_importance(list(artifacts), n_repeats=n_repeats, seed=seed)
    path = run_dir / IMPORTANCE_FILE
    path.write_text(json.dumps(data, indent=2, allow_nan=False), encoding="utf-8")
    return path


def read_importance(run_dir: Path) -> dict[str, Any] | None:
    """``importance.json`` of a run, or None when the run has none."""
    path = Path(run_dir) / IMPORTANCE_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def importance_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Features x folds (``fold N`` columns, the share of each fold's total) plus ``mean``,
    sorted by the mean share, largest first."""
    columns: dict[str, dict[str, float]] = {}
    for fold in data.get("folds", []):
        if "features" not in fold:
            continue
        columns[f"fold {fold['fold']}"] = {f["feature"]: f["share"] for f in fold["features"]}
    if not columns:
        return pd.DataFrame()
    frame = pd.DataFrame(columns).fillna(0.0)
    frame["mean"] = frame.mean(axis=1)
    frame = frame.sort_values("mean", ascending=False, kind="stable")
    frame.index.name = "feature"
    return frame


def importance_tables(run_dir: Path, digits: int = 3) -> dict[str, pd.DataFrame]:
    """The report's extra table from ``importance.json`` (empty when the run has none)."""
    data = read_importance(run_dir)
    if data is None:
        return {}
    frame = importance_frame(data)
    if frame.empty:
        return {}
    return {TABLE_TITLE: frame.round(digits).reset_index()}


__all__ = [
    "IMPORTANCE_FILE",
    "TABLE_TITLE",
    "compute_importance",
    "fold_importance",
    "importance_frame",
    "importance_tables",
    "read_importance",
    "write_importance",
]

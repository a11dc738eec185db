"""Per-fold permutation importance of a real tiny walk-forward (bundled S&P 500 bars):
``importance.json`` in the run directory and the report's table built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeforge.experiment.explain import explain_policy
from tradeforge.experiment.report_importance import (
    IMPORTANCE_FILE,
    TABLE_TITLE,
    importance_tables,
    write_importance,
)
from tradeforge.testing.tiny_runs import run_tiny_experiment

FEATURES = {"logret_1", "logret_5", "rsi_14", "vol_20", "weight", "cash_fraction",
            "unrealized_pnl"}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("importance")
    result = run_tiny_experiment(root, ("cash",)).result
    write_importance(result.run_dir, n_repeats=3, seed=7)
    return result


def test_importance_json_holds_each_folds_permutation_importance(run):
    data = json.loads((run.run_dir / IMPORTANCE_FILE).read_text(encoding="utf-8"))
    assert data["method"] == "permutation"
    assert data["n_repeats"] == 3
    assert [f["fold"] for f in data["folds"]] == [o.fold.number for o in run.folds]
    for fold, outcome in zip(data["folds"], run.folds, strict=True):
        assert fold["n_decisions"] == outcome.fold.test.stop - outcome.fold.test.start
        assert {f["feature"] for f in fold["features"]} == FEATURES
        assert sum(f["share"] for f in fold["features"]) == pytest.approx(1.0)
        values = [f["importance"] for f in fold["features"]]
        assert values == sorted(values, reverse=True)
        # the same numbers as `tradeforge explain --method permutation` on that fold
        direct = explain_policy(outcome.artifact, method="permutation", n_repeats=3, seed=7)
        grouped = direct.grouped_importance("feature").set_index("feature")["importance"]
        for f in fold["features"]:
            assert f["importance"] == pytest.approx(float(grouped[f["feature"]]), rel=1e-12)


def test_the_report_table_has_one_column_per_fold_and_their_mean(run):
    tables = importance_tables(run.run_dir)
    frame = tables[TABLE_TITLE]
    assert list(frame.columns) == ["feature", "fold 0", "fold 1", "mean"]
    assert set(frame["feature"]) == FEATURES
    data = json.loads((run.run_dir / IMPORTANCE_FILE).read_text(encoding="utf-8"))
    shares = {f["feature"]: f["share"] for f in data["folds"][1]["features"]}
    top = frame.iloc[0]
    assert top["fold 1"] == pytest.approx(round(shares[top["feature"]], 3))
    assert top["mean"] == pytest.approx(round((top["fold 0"] + top["fold 1"]) / 2, 3), abs=1e-3)
    assert list(frame["mean"]) == sorted(frame["mean"], reverse=True)


def test_a_fold_that_cannot_be_explained_is_listed_with_its_error(tmp_path: Path):
    path = write_importance(tmp_path, [tmp_path / "folds" / "fold_4" / "policy"])
    (fold,) = json.loads(path.read_text(encoding="utf-8"))["folds"]
    assert fold["fold"] == 4
    assert "error" in fold
    assert importance_tables(tmp_path) == {}
    assert importance_tables(tmp_path / "nothing") == {}

"""The suite file and its plan: which config runs on which market, with which overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.suite import load_suite, plan_suite

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _suite(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "unit",
        "seeds": 2,
        "min_test_years": 0,
        "markets": {
            "sp500": {"symbols": ["SP500"], "overrides": {"walkforward.n_folds": 2}},
            "sp500_weekly": {
                "symbols": ["SP500"],
                "frequency": "1w",
                "overrides": {"env.episode_length": 100},
            },
            "stocks": {"symbols": ["AAPL", "IBM", "MSFT", "GOOG"], "start": "2004-09-01"},
        },
        "experiments": [
            {"config": str(CONFIGS / "quickstart.yaml"), "overrides": {"agent.timesteps": 1000}},
            {"config": str(CONFIGS / "portfolio.yaml"), "label": "pf"},
        ],
    }
    raw.update(changes)
    return raw


def test_plan_runs_each_config_on_every_market_of_its_kind(tmp_path: Path, tf_home: Path):
    suite = load_suite(_write(tmp_path, _suite()))
    plan = plan_suite(suite, tmp_path / "out")
    got = {(p.experiment, p.market, p.seed) for p in plan}
    assert got == {
        ("quickstart", "sp500", 0), ("quickstart", "sp500", 1),
        ("quickstart", "sp500_weekly", 0), ("quickstart", "sp500_weekly", 1),
        ("pf", "stocks", 0), ("pf", "stocks", 1),
    }  # fmt: skip
    by_key = {(p.experiment, p.market, p.seed): p for p in plan}
    weekly = by_key[("quickstart", "sp500_weekly", 1)]
    assert weekly.config.seed == 1
    assert weekly.config.data.symbols == ["SP500"]
    assert weekly.config.data.frequency == "1w"
    assert weekly.config.env.episode_length == 100  # the market's own override
    assert weekly.config.agent.timesteps == 1000  # the experiment's override
    assert weekly.folds == 3
    assert weekly.test_years == pytest.approx(3.0, abs=0.05)
    daily = by_key[("quickstart", "sp500", 0)]
    assert daily.folds == 2
    assert daily.config.env.episode_length == 250
    assert daily.run_dir == tmp_path / "out" / "runs" / "quickstart" / "sp500" / "seed_0"
    # every run reports buy-and-hold and equal weight (the best-of candidates) and the rules
    for p in plan:
        assert {"buy_and_hold", "equal_weight", "ma_crossover", "momentum"} <= set(
            p.config.report.baselines
        )
    stocks = by_key[("pf", "stocks", 0)]
    assert stocks.config.data.symbols == ["AAPL", "IBM", "MSFT", "GOOG"]
    assert stocks.config.agent.timesteps == 40000  # untouched by the other experiment


def test_plan_counts_test_years_against_the_minimum(tmp_path: Path, tf_home: Path):
    suite = load_suite(_write(tmp_path, _suite(min_test_years=50)))
    with pytest.raises(ConfigError, match=r"min_test_years = 50\.0"):
        plan_suite(suite, tmp_path / "out")


def test_an_experiment_named_on_a_market_of_the_other_kind_is_an_error(
    tmp_path: Path, tf_home: Path
):
    raw = _suite()
    raw["experiments"][1]["markets"] = ["sp500"]
    with pytest.raises(ConfigError, match="'sp500' is a single market; pf is a portfolio config"):
        plan_suite(load_suite(_write(tmp_path, raw)), tmp_path / "out")


def test_seeds_as_a_count_or_a_list_and_the_command_line_count(tmp_path: Path):
    assert load_suite(_write(tmp_path, _suite(seeds=3))).seeds == [0, 1, 2]
    assert load_suite(_write(tmp_path, _suite(seeds=[4, 7]))).seeds == [4, 7]
    assert load_suite(_write(tmp_path, _suite()), seeds=1).seeds == [0]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"seeds": [1, 1]}, "distinct seeds"),
        ({"seeds": 0}, "seeds = 0"),
        ({"best_of": ["buy_and_hold", "oracle"]}, "unknown baselines \\['oracle'\\]"),
        ({"benchmark": "oracle"}, "benchmark = 'oracle'"),
        ({"bootstrap_samples": 10}, "bootstrap_samples"),
        ({"name": "my suite"}, "name 'my suite'"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_suite_files_name_the_key(tmp_path: Path, changes: dict[str, Any], match: str):
    with pytest.raises(ConfigError, match=match):
        load_suite(_write(tmp_path, _suite(**changes)))


def test_unknown_markets_and_missing_configs_are_named(tmp_path: Path):
    raw = _suite()
    raw["experiments"][0]["markets"] = ["nasdaq"]
    with pytest.raises(ConfigError, match=r"experiments\[0\] names markets \['nasdaq'\]"):
        load_suite(_write(tmp_path, raw))
    raw = _suite()
    raw["experiments"][1]["config"] = "nope.yaml"
    with pytest.raises(ConfigError, match=r"experiments\[1\]\.config = 'nope.yaml': no such file"):
        load_suite(_write(tmp_path, raw))


def test_config_paths_resolve_against_the_suite_file(tmp_path: Path):
    (tmp_path / "exp.yaml").write_text(
        (CONFIGS / "quickstart.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    raw = _suite(experiments=[{"config": "exp.yaml"}])
    suite = load_suite(_write(tmp_path, raw))
    assert Path(suite.experiments[0].config) == tmp_path / "exp.yaml"


def test_two_experiments_with_one_label_are_an_error(tmp_path: Path, tf_home: Path):
    raw = _suite()
    raw["experiments"][1]["label"] = "quickstart"
    with pytest.raises(ConfigError, match="label 'quickstart' is used twice"):
        plan_suite(load_suite(_write(tmp_path, raw)), tmp_path / "out")


def test_the_shipped_suite_plans_20_test_years_on_every_bundled_market(
    tf_home: Path, tmp_path: Path
):
    suite = load_suite(CONFIGS / "suite.yaml")
    plan = plan_suite(suite, tmp_path / "out")
    first = [p for p in plan if p.seed == suite.seeds[0]]
    markets = {p.experiment: set() for p in first}
    for p in first:
        markets[p.experiment].add(p.market)
    assert markets == {
        "quickstart": {"sp500", "nasdaq", "googl", "nasdaq_weekly", "eurusd_hourly"},
        "portfolio": {"stocks", "stocks_weekly"},
    }
    assert len(plan) == 14
    assert len(suite.seeds) == 2
    assert sum(p.test_years for p in first) >= 20
    years = {(p.experiment, p.market): p.test_years for p in first}
    assert years[("quickstart", "sp500")] == pytest.approx(6.0)
    # hourly EURUSD annualises on the FX calendar: 2,400 test hours of 6,240 a year
    fx = next(p for p in first if p.market == "eurusd_hourly")
    assert fx.config.periods_per_year() == 6240
    assert years[("quickstart", "eurusd_hourly")] == pytest.approx(2400 / 6240)

"""The Pareto front of return against drawdown, the reward grid and the plot
(``tradeforge.experiment.pareto``), on synthetic points."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.config import load_experiment
from tradeforge.experiment.pareto import (
    ParetoPoint,
    default_grid,
    grid_points,
    pareto_front,
    parse_grid,
    write_pareto_plot,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_front_keeps_exactly_the_non_dominated_points():
    # (annual return, max drawdown): higher return and shallower drawdown are better
    returns = [0.10, 0.08, 0.12, 0.05, 0.12, 0.09]
    drawdowns = [-0.20, -0.10, -0.30, -0.05, -0.35, -0.25]
    # 4: same return as 2, deeper drawdown -> dominated; 5: worse than 0 on both -> dominated
    assert pareto_front(returns, drawdowns) == [True, True, True, True, False, False]


def test_front_ties_nan_and_single_point():
    assert pareto_front([0.1, 0.1], [-0.2, -0.2]) == [True, True]  # equal points both stay
    assert pareto_front([0.1, math.nan, 0.0], [-0.2, -0.1, -0.1]) == [True, False, True]
    assert pareto_front([0.3], [-0.5]) == [True]
    assert pareto_front([0.1, 0.2], [-0.1, -0.1]) == [False, True]  # same drawdown, more return
    with pytest.raises(ValueError, match="same length"):
        pareto_front([0.1, 0.2], [-0.1])


def test_parse_grid_and_combinations():
    grid = parse_grid(["env.reward.drawdown=0, 0.1", "env.reward.turnover=0,0.01,0.1"])
    assert grid == {"env.reward.drawdown": [0.0, 0.1], "env.reward.turnover": [0.0, 0.01, 0.1]}
    combos = grid_points(grid)
    assert len(combos) == 6
    assert combos[0] == {"env.reward.drawdown": 0.0, "env.reward.turnover": 0.0}
    assert combos[-1] == {"env.reward.drawdown": 0.1, "env.reward.turnover": 0.1}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("agent.timesteps=1,2", "env.reward"),
        ("env.reward.drawdown", "env.reward"),
        ("env.reward.drawdown=a,b", "not comma-separated numbers"),
        ("env.reward.drawdown=", "at least one finite"),
        ("env.reward.drawdown=nan", "at least one finite"),
    ],
)
def test_parse_grid_rejects_bad_items(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_grid([spec])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["env.reward.turnover=0", "env.reward.turnover=1"])
    with pytest.raises(ConfigError, match="empty"):
        grid_points({})


def test_default_grid_follows_the_reward_kind():
    plain = load_experiment(CONFIGS / "quickstart_discrete.yaml")
    tilt = load_experiment(CONFIGS / "quickstart_tilt.yaml")
    assert default_grid(plain) == {
        "env.reward.drawdown": [0.0, 0.2],
        "env.reward.turnover": [0.0, 0.01],
    }
    assert default_grid(tilt) == {
        "env.reward.excess_drawdown": [0.0, 0.2],
        "env.reward.turnover": [0.0, 0.01],
    }


def test_plot_is_written(tmp_path: Path):
    points = [
        ParetoPoint("a", "agent", 0.1, -0.2, 0.8, 0.01, on_front=True),
        ParetoPoint("b", "agent", 0.05, -0.05, 0.6, 0.02, on_front=True),
        ParetoPoint("c", "agent", 0.02, -0.3, 0.1, 0.05),
        ParetoPoint("nan", "agent", math.nan, -0.3, math.nan, None),
    ]
    base = [ParetoPoint("buy_and_hold", "baseline", 0.12, -0.34, 0.7, None)]
    out = write_pareto_plot(points, base, tmp_path / "sub" / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_a_bad_grid_key_fails_before_any_training(tmp_path: Path, monkeypatch):
    import tradeforge.experiment.run as run_module
    from tradeforge.experiment.pareto import run_pareto

    def no_training(*args, **kwargs):
        raise AssertionError("run_experiment must not be called")

    monkeypatch.setattr(run_module, "run_experiment", no_training)
    with pytest.raises(ConfigError, match="nope"):
        run_pareto(
            CONFIGS / "quickstart.yaml",
            {"env.reward.turnover": [0.0], "env.reward.nope": [1.0]},
            out_dir=tmp_path,
        )
    with pytest.raises(ConfigError, match="turnover"):
        run_pareto(CONFIGS / "quickstart.yaml", {"env.reward.turnover": [-1.0]}, out_dir=tmp_path)

"""The experiment YAML: sections validated by their owners, key paths in errors, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.config import ExperimentConfig, load_experiment

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _minimal() -> dict:
    return {
        "data": {"symbols": ["SP500"]},
        "walkforward": {"unit": "years", "train": 3, "val": 1, "test": 1},
    }


@pytest.mark.parametrize("name", ["quickstart.yaml", "portfolio.yaml", "portfolio_tilt.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_experiment(ROOT / "configs" / name)
    assert cfg.walkforward.test > 0
    assert cfg.features.columns()  # every indicator name resolves
    if cfg.ensemble is not None:
        assert cfg.ensemble_config() is not None


def test_indicator_names_as_strings(tmp_path: Path) -> None:
    raw = _minimal() | {"features": {"indicators": ["rsi_14", "macd_hist_12_26_9", "logret_5"]}}
    cfg = load_experiment(_write(tmp_path, raw))
    assert cfg.features.columns() == ("rsi_14", "macd_hist_12_26_9", "logret_5")


def test_unknown_indicator_names_the_allowed_values(tmp_path: Path) -> None:
    raw = _minimal() | {"features": {"indicators": ["rsii_14"]}}
    with pytest.raises(ConfigError, match=r"rsii_14.*allowed indicators: atr"):
        load_experiment(_write(tmp_path, raw))


def test_unknown_nested_key_is_reported_with_its_path(tmp_path: Path) -> None:
    raw = _minimal() | {"env": {"sim": {"costs": {"comission_bps": 1.0}}}}
    with pytest.raises(ConfigError, match=r"env\.sim\.costs\.comission_bps"):
        load_experiment(_write(tmp_path, raw))


def test_negative_cost_is_rejected_with_its_path(tmp_path: Path) -> None:
    raw = _minimal() | {"env": {"sim": {"costs": {"commission_bps": -1.0}}}}
    with pytest.raises(ConfigError, match=r"env\.sim\.costs\.commission_bps = -1\.0"):
        load_experiment(_write(tmp_path, raw))


def test_unknown_baseline_is_rejected(tmp_path: Path) -> None:
    raw = _minimal() | {"report": {"baselines": ["buy_and_hodl"]}}
    with pytest.raises(ConfigError, match="buy_and_hodl"):
        load_experiment(_write(tmp_path, raw))


def test_overrides_replace_values_and_are_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal())
    cfg = load_experiment(path, {"agent.algo": "a2c", "agent.timesteps": 512, "seed": 7})
    assert (cfg.agent.algo, cfg.agent.timesteps, cfg.seed) == ("a2c", 512, 7)
    assert load_experiment(path, {"agent.algo": None}).agent.algo == "ppo"
    with pytest.raises(ConfigError, match=r"agent\.algo"):
        load_experiment(path, {"agent.algo": "dqn"})


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_experiment(_write(tmp_path, _minimal()))
    assert isinstance(cfg, ExperimentConfig)
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]


def test_switching_algorithm_drops_the_other_algorithms_hyperparameters(tmp_path: Path) -> None:
    raw = _minimal() | {"agent": {"algo": "ppo", "hyperparams": {"n_steps": 64, "batch_size": 32}}}
    path = _write(tmp_path, raw)
    assert load_experiment(path, {"agent.algo": "sac"}).agent.hyperparams == {}
    kept = load_experiment(path, {"agent.algo": "ppo", "agent.timesteps": 10})
    assert kept.agent.hyperparams == {"n_steps": 64, "batch_size": 32}


def test_behaviour_note_flags_cash_and_static_allocations() -> None:
    import numpy as np
    import pandas as pd

    from tradeforge.experiment.report import behaviour

    index = pd.date_range("2020-01-01", periods=50, tz="UTC")
    cash = pd.DataFrame(np.zeros((50, 2)), index=index, columns=["A", "B"])
    assert "stayed in cash" in (behaviour(cash) or "")
    static = cash.add(pd.Series({"A": 0.5, "B": 0.3}), axis=1)
    note = behaviour(static) or ""
    assert "static allocation (A 50%, B 30%)" in note
    trading = static.copy()
    trading.iloc[10:20, 0] = 0.0
    assert behaviour(trading) is None


@pytest.mark.parametrize(
    ("section", "value", "key"),
    [
        ("ensemble", {"members": ["ppo"], "mdoe": "soft"}, "mdoe"),
        ("tune", {"n_trails": 3}, "n_trails"),
        ("warm_start", {"expert": "ma_crossover", "fsat": 5}, "fsat"),
        ("risk", {"max_postion": 0.5}, "max_postion"),
        ("risk", {"max_position": 0.5, "lagrangian": {"targt": 0.1}}, "targt"),
    ],
)
def test_optional_sections_are_validated_when_the_file_loads(
    tmp_path: Path, section: str, value: dict, key: str
) -> None:
    path = _write(tmp_path, _minimal() | {section: value})
    with pytest.raises(ConfigError, match=rf"exp\.yaml: .*{key}.*allowed keys"):
        load_experiment(path)


def test_risk_lagrangian_and_tracking_register_are_reachable_from_yaml(tmp_path: Path) -> None:
    raw = _minimal() | {
        "risk": {"max_position": 0.5, "lagrangian": {"constraint": "drawdown", "target": 0.1}},
        "tracking": {"register": True, "model_name": "spx"},
    }
    cfg = load_experiment(_write(tmp_path, raw))
    assert cfg.risk_limits().max_position == 0.5
    assert cfg.lagrangian_config().target == 0.1
    assert cfg.tracking is not None
    assert cfg.tracking.register_policy is True
    # the dumped config (config.yaml of a run) loads again with the user's key names
    assert cfg.model_dump(mode="json")["tracking"]["register"] is True
    again = ExperimentConfig.model_validate(cfg.model_dump(mode="json"))
    assert again.tracking == cfg.tracking


def test_lagrangian_alone_gives_no_projection_limits(tmp_path: Path) -> None:
    raw = _minimal() | {"risk": {"lagrangian": {"target": 0.2}}}
    cfg = load_experiment(_write(tmp_path, raw))
    assert cfg.risk_limits() is None
    assert cfg.lagrangian_config().target == 0.2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"symbols": ["SP500"]}, 252),
        ({"symbols": ["EURUSD"], "frequency": "1h"}, None),
        ({"source": "ccxt", "symbols": ["BTC/USDT"], "frequency": "1d"}, 365),
    ],
)
def test_periods_per_year_follows_frequency_and_market(
    tmp_path: Path, data: dict, expected: int | None
) -> None:
    from tradeforge.sim.annualization import periods_per_year

    cfg = load_experiment(_write(tmp_path, _minimal() | {"data": data}))
    want = expected if expected is not None else periods_per_year("1h", "fx")
    assert cfg.periods_per_year() == want
    if expected is None:  # hourly FX: every hour of roughly 260 trading days, not 252
        assert 6000 < want < 6500
    pinned = _minimal() | {"data": data, "env": {"sim": {"periods_per_year": 100}}}
    assert load_experiment(_write(tmp_path, pinned)).periods_per_year() == 100


def test_overrides_keep_the_calendar_inferred_from_the_data(tmp_path: Path) -> None:
    # hourly EURUSD is FX (260 x 24 bars a year), also after a command-line override
    path = _write(tmp_path, _minimal() | {"data": {"symbols": ["EURUSD"], "frequency": "1h"}})
    assert load_experiment(path).periods_per_year() == 6240
    assert load_experiment(path, {"seed": 4}).periods_per_year() == 6240

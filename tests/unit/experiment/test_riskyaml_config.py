"""The experiment YAML's ``risk:`` section as a ``RiskConfig``: projection keys keep their
meaning, engine keys reach every env (``ExperimentConfig.run_env``), unknown keys and a second
place for the engine fail when the file loads; the fold warm start matches subclasses."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stable_baselines3 as sb3
import yaml

from tradeforge.cli.backtest_cmd import _risk_config
from tradeforge.core.errors import ConfigError
from tradeforge.experiment.compose import FoldWarmStart, model_algo, run_env_config
from tradeforge.experiment.config import load_experiment
from tradeforge.risk import RiskConfig, RiskLimits


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _raw(**sections: Any) -> dict[str, Any]:
    return {
        "data": {"symbols": ["SP500"]},
        "walkforward": {"unit": "years", "train": 3, "val": 1, "test": 1},
        **sections,
    }


def test_engine_keys_under_risk_reach_the_run_env(tmp_path: Path) -> None:
    risk = {"max_position": 0.5, "stop_loss": 0.02, "max_order_notional": 250000,
            "lagrangian": {"target": 0.1}}  # fmt: skip
    cfg = load_experiment(_write(tmp_path, _raw(risk=risk)))
    expected = RiskConfig(max_position=0.5, stop_loss=0.02, max_order_notional=Decimal(250000))
    assert cfg.risk_config() == expected
    assert cfg.risk_limits() == RiskLimits(max_position=0.5)
    assert cfg.lagrangian_config().target == 0.1
    assert cfg.env.risk is None  # the config itself is unchanged ...
    env = run_env_config(cfg)  # ... every env of the run gets the engine
    assert env.risk == expected
    assert env.model_copy(update={"risk": None}) == cfg.env


def test_projection_keys_alone_leave_the_env_as_configured(tmp_path: Path) -> None:
    cfg = load_experiment(_write(tmp_path, _raw(risk={"max_gross": 1.0, "long_only": True})))
    assert cfg.risk_limits() == RiskLimits(max_gross=1.0, long_only=True)
    assert cfg.risk_config() == RiskConfig(max_gross=1.0, long_only=True)
    assert run_env_config(cfg) is cfg.env


def test_engine_keys_only_give_no_projection(tmp_path: Path) -> None:
    cfg = load_experiment(_write(tmp_path, _raw(risk={"trailing_stop": 0.05})))
    assert cfg.risk_limits() is None
    assert run_env_config(cfg).risk == RiskConfig(trailing_stop=0.05)


def test_env_risk_alone_still_works(tmp_path: Path) -> None:
    raw = _raw(env={"risk": {"stop_loss": 0.03}}, risk={"max_position": 0.4})
    cfg = load_experiment(_write(tmp_path, raw))
    assert run_env_config(cfg).risk == RiskConfig(stop_loss=0.03)
    assert cfg.risk_limits() == RiskLimits(max_position=0.4)


def test_an_unknown_risk_key_fails_when_the_file_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exp\.yaml: .*stop_los.*allowed keys"):
        load_experiment(_write(tmp_path, _raw(risk={"stop_los": 0.02})))


def test_a_bad_risk_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exp\.yaml: .*risk.*max_drawdown"):
        load_experiment(_write(tmp_path, _raw(risk={"max_drawdown": 1.5})))


def test_engine_keys_in_both_places_fail_naming_both(tmp_path: Path) -> None:
    raw = _raw(env={"risk": {"stop_loss": 0.03}}, risk={"max_daily_loss": 0.02})
    with pytest.raises(
        ConfigError, match=r"exp\.yaml: risk .*max_daily_loss.*env\.risk .*stop_loss"
    ):
        load_experiment(_write(tmp_path, raw))


def test_backtest_risk_option_reads_an_experiment_yaml_with_lagrangian(tmp_path: Path) -> None:
    risk = {"stop_loss": 0.02, "lagrangian": {"target": 0.1}}
    assert _risk_config(_write(tmp_path, _raw(risk=risk))) == RiskConfig(stop_loss=0.02)
    paper = tmp_path / "paper.yaml"  # a paper config has no lagrangian: the key stays an error
    paper.write_text(yaml.safe_dump({"risk": risk}), encoding="utf-8")
    with pytest.raises(ConfigError, match="lagrangian"):
        _risk_config(paper)


class _Recording:
    """set_parameters recorded instead of loading a zip."""

    loaded_from: list[str]

    def set_parameters(self, path: str, exact_match: bool, device: str) -> None:
        self.loaded_from.append(Path(path).parent.name)


class _SubPPO(_Recording, sb3.PPO):  # like agents.fastppo.FastPPO: a subclass of SB3's PPO
    pass


class _DDPG(_Recording, sb3.DDPG):  # SB3's DDPG subclasses TD3
    pass


def _bare(cls: type[_Recording]) -> Any:
    model = cls.__new__(cls)
    model.loaded_from = []
    return model


def _ensemble_artifact(root: Path, algos: list[str]) -> Path:
    for algo in algos:
        member = root / "members" / algo
        member.mkdir(parents=True)
        (member / "model.zip").write_bytes(b"")
        (member / "spec.json").write_text(json.dumps({"algo": algo}), encoding="utf-8")
    return root


def test_fold_warm_start_loads_a_subclass_of_the_algorithm(tmp_path: Path) -> None:
    warm = FoldWarmStart(_ensemble_artifact(tmp_path, ["ppo", "td3"]))
    sub = _bare(_SubPPO)
    assert model_algo(sub) == "ppo"
    warm(sub, None)
    assert sub.loaded_from == ["ppo"]
    assert warm.loaded == ["ppo"]


def test_fold_warm_start_keeps_ddpg_apart_from_td3(tmp_path: Path) -> None:
    warm = FoldWarmStart(_ensemble_artifact(tmp_path, ["td3"]))
    ddpg = _bare(_DDPG)
    assert model_algo(ddpg) == "ddpg"
    assert model_algo(object()) is None
    warm(ddpg, None)
    assert ddpg.loaded_from == []
    assert warm.loaded == []

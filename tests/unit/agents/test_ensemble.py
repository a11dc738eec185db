"""Ensembles on real S&P 500 data: the meta-controller's choices, online re-scoring, persistence."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tradeforge.agents import (
    AgentConfig,
    AlphaMemberConfig,
    EnsembleConfig,
    EnsemblePolicy,
    rollout_weights,
    train_ensemble,
)
from tradeforge.agents.ensemble import (
    fit_alpha_member,
    load_ensemble,
    member_weights,
    score_members,
)
from tradeforge.core.errors import AgentError, ArtifactError, ConfigError

BULL = (1107, 1256)  # 2003-06 .. 2003-12: the index rose ~15%
BEAR = (2262, 2514)  # 2008: the index fell ~38%
TRAIN = (300, 1100)
VAL = (1100, 1260)


@dataclass(frozen=True)
class Features:
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    names: tuple[str, ...]
    values: np.ndarray


def price_features(panel) -> Features:
    close = pd.DataFrame(panel.close)
    logret = np.log(close).diff()
    gap = close.rolling(10).mean() / close.rolling(50).mean() - 1.0
    values = np.stack([logret.to_numpy() * 100, gap.to_numpy() * 100], axis=-1)
    return Features(panel.index, tuple(panel.symbols), ("logret", "ma_gap"), values)


ENV = {"action": "discrete", "window": 2, "sim": {"allow_short": True}}


def _env(panel, features, start, end, **changes):
    from tradeforge.envs import TradingEnv

    return TradingEnv(panel, features, {**ENV, **changes}, start, end)


class Constant:
    """Always the same level (-1 short, 0 flat, +1 long) in a short/flat/long discrete env."""

    def __init__(self, level: int) -> None:
        self.level = level

    def decide(self, observation):
        return np.array([float(self.level)]), self.level + 1

    def act(self, observation):
        return self.decide(observation)[0]


@pytest.fixture(scope="module")
def features(sp500_panel):
    return price_features(sp500_panel)


def test_select_picks_the_best_validation_member_and_soft_weights_favour_it(
    sp500_panel, features, tmp_path
):
    members = {"short": Constant(-1), "flat": Constant(0), "long": Constant(1)}
    stats = score_members(members, lambda: _env(sp500_panel, features, *BULL), 63, 252)
    scores = {n: s["score"] for n, s in stats.items()}
    assert scores["long"] > 1.0 > scores["flat"] == 0.0 > scores["short"]
    assert stats["long"]["total_return"] > 0.1
    assert stats["long"]["steps"] == BULL[1] - BULL[0] - 1  # decisions start..end-2

    select = EnsemblePolicy(members, scores, mode="select")
    assert select.weights == {"short": 0.0, "flat": 0.0, "long": 1.0}
    assert select.active == "long"
    obs, _ = _env(sp500_panel, features, *BULL).reset()
    assert select.env_action(obs) == 2
    np.testing.assert_array_equal(select.act(obs), [1.0])

    soft = EnsemblePolicy(members, scores, mode="soft", temperature=1.0)
    weights = soft.weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["long"] > weights["flat"] > weights["short"]
    expected = np.exp([scores["short"], scores["flat"], scores["long"]])
    assert weights["long"] == pytest.approx(expected[2] / expected.sum())
    hot = EnsemblePolicy(members, scores, mode="soft", temperature=0.1).weights
    cold = EnsemblePolicy(members, scores, mode="soft", temperature=100.0).weights
    assert hot["long"] > weights["long"] > cold["long"] > 1 / 3
    np.testing.assert_allclose(soft.act(obs), [weights["long"] - weights["short"]])
    assert soft.env_action(obs) == 2  # the weighted vote
    with pytest.raises(AgentError, match="no saved artifact"):
        soft.save(tmp_path / "ensemble")


def test_member_weights_edge_cases():
    assert member_weights({"a": 1.0, "b": 1.0}, "select") == {"a": 1.0, "b": 0.0}
    assert member_weights({"a": float("nan"), "b": -3.0}, "soft") == {"a": 0.0, "b": 1.0}
    with pytest.raises(AgentError, match="at least one"):
        member_weights({}, "select")


def test_online_rescoring_switches_members_when_the_market_turns(sp500_panel, features):
    members = {"long": Constant(1), "short": Constant(-1)}
    stats = score_members(members, lambda: _env(sp500_panel, features, *BULL), 21, 252)
    policy = EnsemblePolicy(
        members,
        {n: s["score"] for n, s in stats.items()},
        mode="select",
        window=21,
        buffers={n: s["returns"] for n, s in stats.items()},
    )
    policy.bind_prices(sp500_panel.close)
    weights = rollout_weights(policy, _env(sp500_panel, features, *BEAR))[:, 0]
    decided = weights[np.isfinite(weights)]
    assert np.all(decided[:21] == 1.0)  # validation chose long for the first window
    assert policy.switches
    assert policy.switches[0][0] == 21
    assert policy.switches[0][1]["short"] == 1.0  # January 2008 fell: switch to short
    assert np.mean(decided == -1.0) > 0.5
    # without prices (or online = False) the validation choice stays
    static = EnsemblePolicy(members, {n: s["score"] for n, s in stats.items()}, online=False)
    static.bind_prices(sp500_panel.close)
    kept = rollout_weights(static, _env(sp500_panel, features, *BEAR))[:, 0]
    assert np.all(kept[np.isfinite(kept)] == 1.0)


def test_alpha_member_sees_only_the_training_window(sp500_panel, features):
    from tradeforge.envs import EnvConfig

    env_config = EnvConfig.model_validate(ENV)
    config = AlphaMemberConfig(n_estimators=20)
    alpha = fit_alpha_member(config, sp500_panel, features, env_config, TRAIN)
    shocked_values = features.values.copy()
    shocked_values[TRAIN[1] :] *= -5.0
    shocked_close = sp500_panel.close.copy()
    shocked_close[TRAIN[1] :] *= 0.5

    @dataclass
    class Closes:
        close: np.ndarray

    shocked = Features(features.index, features.symbols, features.names, shocked_values)
    again = fit_alpha_member(config, Closes(shocked_close), shocked, env_config, TRAIN)
    env = _env(sp500_panel, features, *VAL)
    obs, _ = env.reset()
    preds, levels = [], []
    for _ in range(50):
        p = alpha.predict(obs)
        np.testing.assert_array_equal(p, again.predict(obs))
        preds.append(p[0])
        target, action = alpha.decide(obs)
        assert action == int(np.sign(p[0]) + 1)
        assert target[0] == np.sign(p[0])
        levels.append(target[0])
        obs, *_ = env.step(action)
    assert np.std(preds) > 0  # it reacts to the features
    assert set(levels) <= {-1.0, 1.0}
    # its input is the decision bar's features, read from the observation
    np.testing.assert_allclose(alpha.last_features(obs), features.values[env.bar], rtol=1e-6)


def test_config_parses_names_and_agent_configs():
    config = EnsembleConfig.model_validate(
        {"members": ["ppo", {"algo": "ppo", "timesteps": 5}, "a2c"], "mode": "soft"}
    )
    base = AgentConfig(algo="ppo", timesteps=7, hyperparams={"n_steps": 32})
    named = config.member_configs(base)
    assert [n for n, _ in named] == ["ppo", "ppo_2", "a2c"]
    assert named[0][1].hyperparams == {"n_steps": 32}
    assert named[0][1].timesteps == 7
    assert named[1][1].timesteps == 5
    assert named[2][1].algo == "a2c"
    assert named[2][1].hyperparams == {}
    with pytest.raises((ConfigError, ValueError), match="not an algorithm"):
        EnsembleConfig.model_validate({"members": ["dqn"]})


def test_train_ensemble_saves_and_reloads_a_working_policy(sp500_panel, features, tmp_path):
    from tradeforge.envs import EnvConfig

    tiny = {
        "timesteps": 64,
        "policy_kwargs": {"net_arch": [16]},
        "eval": {"freq": 64, "patience": 0},
        "tracking": {"learning_curve": False},
    }
    config = EnsembleConfig.model_validate(
        {
            "members": [
                {**tiny, "algo": "ppo", "hyperparams": {"n_steps": 32, "batch_size": 32}},
                {**tiny, "algo": "a2c", "hyperparams": {"n_steps": 8}},
            ],
            "alpha": {"n_estimators": 20},
            "mode": "select",
            "window": 40,
        }
    )
    result = train_ensemble(
        config,
        lambda: _env(sp500_panel, features, *TRAIN),
        lambda: _env(sp500_panel, features, *VAL),
        tmp_path / "run",
        panel=sp500_panel,
        features=features,
        env_config=EnvConfig.model_validate(ENV),
        train_range=TRAIN,
        data_ranges={"train": list(TRAIN), "validation": list(VAL)},
    )
    scores = {n: v["score"] for n, v in result.validation.items()}
    assert list(scores) == ["ppo", "a2c", "alpha"]
    assert result.selected == max(scores, key=lambda n: scores[n])
    assert result.weights[result.selected] == 1.0
    assert sum(result.weights.values()) == 1.0
    summary = json.loads((tmp_path / "run" / "ensemble_summary.json").read_text())
    assert summary["selected"] == result.selected

    loaded = load_ensemble(result.path)
    assert loaded.weights == result.policy.weights
    assert loaded.names == ["ppo", "a2c", "alpha"]
    assert {p.name for p in (result.path / "members").iterdir()} == {"ppo", "a2c", "alpha"}
    first = rollout_weights(result.policy, _env(sp500_panel, features, *VAL))
    second = rollout_weights(loaded, _env(sp500_panel, features, *VAL))
    np.testing.assert_array_equal(first, second)
    decided = first[np.isfinite(first[:, 0])]
    assert decided.shape[0] == VAL[1] - VAL[0] - 1
    assert set(np.unique(decided)) <= {-1.0, 0.0, 1.0}

    with pytest.raises(AgentError, match="not an ensemble directory"):
        loaded.save(tmp_path / "run" / "members")
    again = loaded.save(tmp_path / "copy")  # a loaded ensemble saves and reloads too
    assert load_ensemble(again).scores == loaded.scores
    from tradeforge.agents.policy import load_policy

    via_generic = load_policy(again)  # the one loader the backtester and CLI use
    assert type(via_generic).__name__ == "EnsemblePolicy"
    assert via_generic.weights == loaded.weights

    (result.path / "members" / "alpha" / "model.txt").write_text("tampered")
    with pytest.raises(ArtifactError, match="corrupted"):
        load_ensemble(result.path)
    with pytest.raises(ArtifactError, match="not a tradeforge ensemble"):
        load_ensemble(tmp_path)

from __future__ import annotations

import pytest
from agent_helpers import ARTradingEnv
from stable_baselines3.common.vec_env import DummyVecEnv

from tradeforge.agents import AgentConfig
from tradeforge.agents.factory import (
    DEFAULT_HYPERPARAMS,
    allowed_hyperparams,
    build_model,
    validate_hyperparams,
)
from tradeforge.core.errors import AgentError, ConfigError


def _venv(**kwargs):
    return DummyVecEnv([lambda: ARTradingEnv(**kwargs)])


def test_unknown_hyperparam_names_key_and_allowed_set():
    with pytest.raises(AgentError) as info:
        validate_hyperparams("ppo", {"n_stepz": 64})
    message = str(info.value)
    assert "n_stepz" in message
    assert "n_steps" in message
    assert "batch_size" in message


def test_wrong_type_names_key_value_and_expected_type():
    with pytest.raises(AgentError, match=r"hyperparams\.n_steps = '64'.*expected int"):
        validate_hyperparams("ppo", {"n_steps": "64"})
    with pytest.raises(AgentError, match="gamma"):
        validate_hyperparams("sac", {"gamma": "high"})
    with pytest.raises(AgentError, match="n_epochs"):
        validate_hyperparams("ppo", {"n_epochs": 2.5})
    with pytest.raises(AgentError, match="use_sde"):
        validate_hyperparams("a2c", {"use_sde": 1})


def test_managed_arguments_are_not_hyperparameters():
    for algo in DEFAULT_HYPERPARAMS:
        allowed = allowed_hyperparams(algo)
        assert not {"seed", "env", "policy_kwargs"} & set(allowed)
    with pytest.raises(AgentError, match="seed"):
        validate_hyperparams("ppo", {"seed": 3})


def test_defaults_merge_and_yaml_spellings():
    params = validate_hyperparams("td3", {"train_freq": [4, "step"], "action_noise": 0.2})
    assert params["train_freq"] == (4, "step")
    assert params["action_noise"] == ("normal", 0.2)
    assert params["batch_size"] == DEFAULT_HYPERPARAMS["td3"]["batch_size"]
    assert validate_hyperparams("ppo", {"learning_rate": 1})["learning_rate"] == 1


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_continuous_only_algos_reject_discrete_actions(algo):
    config = AgentConfig(algo=algo)
    with pytest.raises(AgentError) as info:
        build_model(config, _venv(action="discrete"))
    message = str(info.value)
    assert algo in message
    assert "ppo" in message
    assert "maskable_ppo" in message


def test_maskable_rejects_continuous_and_needs_masks():
    with pytest.raises(AgentError, match="discrete"):
        build_model(AgentConfig(algo="maskable_ppo"), _venv(action="continuous"))


def test_build_model_uses_small_default_net_and_cpu():
    model = build_model(AgentConfig(algo="ppo"), _venv())
    assert model.n_steps == DEFAULT_HYPERPARAMS["ppo"]["n_steps"]
    assert str(model.device) == "cpu"
    sizes = [
        layer.out_features
        for layer in model.policy.mlp_extractor.policy_net
        if hasattr(layer, "out_features")
    ]
    assert sizes == [64, 64]
    action_noise = build_model(
        AgentConfig(algo="td3", hyperparams={"action_noise": 0.1}), _venv(action="continuous")
    ).action_noise
    assert action_noise is not None


def test_config_rejects_unknown_keys_and_bad_algo():
    with pytest.raises(ValueError, match="algo"):
        AgentConfig.model_validate({"algo": "dqn"})
    with pytest.raises(ValueError, match="timestep"):
        AgentConfig.model_validate({"timestep": 10})
    with pytest.raises((ConfigError, ValueError), match="net_arch"):
        AgentConfig(policy_kwargs={"net_arch": 64})


def test_public_names_resolve_lazily():
    import tradeforge.agents as agents

    assert sorted(agents._EXPORTS) == agents.__all__
    owned = {"config", "training", "policy", "rollout", "registry", "tuning", "masks", "artifact"}
    for name, module in agents._EXPORTS.items():
        if module in owned:
            assert getattr(agents, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = agents.nope

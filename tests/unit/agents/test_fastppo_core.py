"""FastPPO (``agent.backend: fast``): config and dispatch, the maths against SB3's own code, the
artifact round trip, determinism and time-limit bootstrapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from agent_helpers import (
    VAL,
    ARTradingEnv,
    make_env_factory,
    model_params,
    tiny_config,
    val_observations,
)
from pydantic import ValidationError

from tradeforge.agents import AgentConfig, load_policy, train_agent
from tradeforge.agents.factory import build_model, model_class, validate_hyperparams
from tradeforge.agents.fastppo import FAST_HYPERPARAMS, FastPPO
from tradeforge.agents.vecenv import make_vec_env


def _venv(action: str = "discrete", n_envs: int = 4, episode_length: int | None = 16) -> object:
    return make_vec_env(
        make_env_factory(action=action, episode_length=episode_length), n_envs, seed=3
    )


# -- config and dispatch ---------------------------------------------------------------------------
def test_backend_defaults_to_sb3_and_rejects_unknown_names():
    assert AgentConfig().backend == "sb3"
    with pytest.raises(ValidationError, match="backend"):
        AgentConfig.model_validate({"backend": "jax"})


def test_fast_backend_builds_fastppo_with_fast_defaults_and_user_overrides():
    venv = _venv()
    model = build_model(tiny_config(backend="fast", hyperparams={"n_epochs": 3}), venv)
    assert type(model) is FastPPO
    assert (model.n_steps, model.batch_size, model.n_epochs) == (256, 512, 3)
    assert validate_hyperparams("ppo", {}, "fast")["batch_size"] == FAST_HYPERPARAMS["batch_size"]
    assert validate_hyperparams("ppo", {})["batch_size"] == 64  # SB3 backend unchanged
    sb3 = build_model(tiny_config(), venv)
    assert type(sb3).__name__ == "PPO"


def test_fast_backend_applies_to_ppo_only():
    # ensembles derive members from the base agent config: a2c keeps SB3
    cfg = tiny_config(backend="fast", algo="a2c", hyperparams={})
    assert model_class(cfg).__name__ == "A2C"
    assert model_class(tiny_config(backend="fast")) is FastPPO


def test_fastppo_rejects_gsde():
    from tradeforge.core.errors import AgentError

    with pytest.raises(AgentError, match="use_sde"):
        build_model(tiny_config(backend="fast", hyperparams={"use_sde": True}), _venv("continuous"))


# -- the maths, against SB3's own distribution and buffer code -------------------------------------
@pytest.mark.parametrize("action", ["discrete", "continuous"])
@pytest.mark.parametrize(
    "net_arch", [[16, 16], {"pi": [8], "vf": [16]}, {"pi": [8], "vf": [16, 16]}, []]
)
def test_heads_log_probs_and_entropy_equal_sb3(action, net_arch):
    venv = _venv(action)
    model = build_model(tiny_config(backend="fast", policy_kwargs={"net_arch": net_arch}), venv)
    obs = torch.randn(7, 4)
    if action == "discrete":
        actions = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    else:
        actions = torch.rand(7, 1) * 2 - 1
    with torch.no_grad():
        values, log_prob, entropy = model.policy.evaluate_actions(obs, actions)
        for layers in (model._fused_layers(), None):
            head, v = model._heads(obs, layers)
            lp, ent = model._log_prob_entropy(head, actions.float())
            np.testing.assert_allclose(v.numpy(), values.flatten().numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(lp.numpy(), log_prob.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(ent.numpy(), entropy.numpy(), rtol=1e-5, atol=1e-6)
    # towers of different depths cannot be fused: the modules are called one by one
    assert (model._fused_layers() is None) == (net_arch == {"pi": [8], "vf": [16, 16]})


@pytest.mark.parametrize("action", ["discrete", "continuous"])
def test_rollout_matches_policy_values_log_probs_and_sb3_gae(action):
    from stable_baselines3.common.buffers import RolloutBuffer

    venv = _venv(action)
    model = build_model(tiny_config(backend="fast", hyperparams={"gae_lambda": 0.9}), venv)
    model._setup_learn(64, None)
    model.collect_rollouts(venv, _NoCallback(model), None, n_rollout_steps=32)
    batch = model._batch
    assert batch is not None
    acts = batch["actions"]
    with torch.no_grad():
        values, log_prob, _ = model.policy.evaluate_actions(batch["obs"], acts)
    np.testing.assert_allclose(batch["log_prob"].numpy(), log_prob.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["values"].numpy(), values.flatten().numpy(), atol=1e-5)
    if action == "continuous":  # sampled from N(mean, std): not all equal to the mean
        assert float(batch["actions"].std()) > 0.0
    # SB3's own GAE on the same rewards / episode starts gives the same advantages
    rewards, dones = model._debug_rewards, model._debug_dones
    assert dones.sum() >= 4  # episodes of 16 steps: truncations inside the rollout
    buf = RolloutBuffer(32, venv.observation_space, venv.action_space, gamma=model.gamma,
                        gae_lambda=0.9, n_envs=4)  # fmt: skip
    buf.values = batch["values"].numpy().reshape(32, 4).copy()
    buf.rewards = rewards
    starts = np.zeros((32, 4), dtype=np.float32)
    starts[1:] = dones[:-1]
    buf.episode_starts = starts
    with torch.no_grad():
        last = model.policy.predict_values(torch.as_tensor(model._last_obs)).flatten()
    buf.compute_returns_and_advantage(last, dones[-1])
    np.testing.assert_allclose(
        batch["advantages"].numpy().reshape(32, 4), buf.advantages, rtol=1e-5, atol=1e-5
    )


class _NoCallback:
    """The callback surface collect_rollouts uses, recording rewards and dones for the test."""

    def __init__(self, model: FastPPO) -> None:
        self.model = model
        model._debug_rewards = np.zeros((32, 4), dtype=np.float32)
        model._debug_dones = np.zeros((32, 4), dtype=np.float32)
        self.step = 0

    def on_rollout_start(self) -> None: ...

    def on_rollout_end(self) -> None: ...

    def update_locals(self, values: dict) -> None:
        self.values = values

    def on_step(self) -> bool:
        """Record rewards with SB3's time-limit bootstrap: + gamma * V(terminal observation)."""
        if "rewards" in self.values:
            rewards = np.asarray(self.values["rewards"], dtype=np.float32).copy()
            for i, info in enumerate(self.values["infos"]):
                if info.get("TimeLimit.truncated"):
                    final = torch.as_tensor(info["terminal_observation"][None])
                    with torch.no_grad():
                        value = float(self.model.policy.predict_values(final)[0, 0])
                    rewards[i] += self.model.gamma * value
            self.model._debug_rewards[self.step] = rewards
            self.model._debug_dones[self.step] = self.values["dones"]
            self.step += 1
        return True


def test_truncated_rows_get_the_discounted_value_of_their_last_observation():
    venv = _venv(episode_length=None)
    model = build_model(tiny_config(backend="fast"), venv)
    rewards = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    dones = np.array([True, True, False, False])
    final = np.full(4, 0.5, dtype=np.float32)
    infos = [
        {"TimeLimit.truncated": True, "terminal_observation": final},
        {"TimeLimit.truncated": False, "terminal_observation": final},
        {},
        {},
    ]
    model._bootstrap_truncated(rewards, dones, infos, 0.9, None)
    with torch.no_grad():
        value = float(model.policy.predict_values(torch.as_tensor(final[None]))[0, 0])
    np.testing.assert_allclose(rewards, [1.0 + 0.9 * value, 2.0, 3.0, 4.0], rtol=1e-5)


# -- training, artifact, determinism ---------------------------------------------------------------
def _train(tmp_path, name: str, **changes):
    cfg = tiny_config(backend="fast", **{"timesteps": 256, **changes})
    return train_agent(
        cfg,
        make_env_factory(episode_length=32),
        make_env_factory(start=VAL[0], end=VAL[1]),
        tmp_path / name,
    )


def test_fast_training_is_deterministic_and_changes_the_weights(tmp_path):
    a = _train(tmp_path, "a")
    b = _train(tmp_path, "b")
    pa, pb = load_policy(a.artifact_path), load_policy(b.artifact_path)
    for key, value in model_params(pa.model).items():
        np.testing.assert_array_equal(value, model_params(pb.model)[key])
    fresh = build_model(tiny_config(backend="fast"), _venv())
    changed = [
        not np.array_equal(v, model_params(pa.model)[k]) for k, v in model_params(fresh).items()
    ]
    assert any(changed)


@pytest.mark.parametrize("action", ["discrete", "continuous"])
def test_fast_artifact_loads_with_the_existing_loader_and_acts_like_the_trained_model(
    tmp_path, action
):
    cfg = tiny_config(backend="fast", timesteps=128)
    result = train_agent(
        cfg,
        make_env_factory(episode_length=32, action=action),
        make_env_factory(start=VAL[0], end=VAL[1], action=action),
        tmp_path / "run",
    )
    policy = load_policy(result.artifact_path)
    assert policy.algo == "ppo"
    assert type(policy.model).__name__ == "PPO"
    assert policy.metadata["config"]["agent"]["backend"] == "fast"
    # the in-memory best checkpoint, with the frozen normalizer applied by hand
    from stable_baselines3 import PPO

    best = PPO.load(result.seeds[0].checkpoint_dir / "model.zip", device="cpu")
    stats = policy.normalizer
    assert stats is not None
    mean = np.asarray(stats["obs_rms"]["mean"])
    var = np.asarray(stats["obs_rms"]["var"])
    env = ARTradingEnv(*VAL, action=action)
    for obs in val_observations(12):
        norm = np.clip((obs - mean) / np.sqrt(var + stats["epsilon"]), -10, 10)
        expected, _ = best.predict(norm.astype(np.float32), deterministic=True)
        got = policy.env_action(obs)
        np.testing.assert_allclose(np.asarray(got).reshape(-1), np.asarray(expected).reshape(-1))
    assert env.action_space.contains(policy.env_action(val_observations(1)[0]))


def test_env_step_through_vecnormalize_equals_vecnormalize_step():
    from tradeforge.agents.vecenv import wrap_normalizer

    def normalized():
        venv = make_vec_env(make_env_factory(episode_length=5), 3, seed=11)
        return wrap_normalizer(venv, obs=True, reward=False, clip_obs=10.0, gamma=0.99)

    ours, reference = normalized(), normalized()
    ours.reset()
    reference.reset()
    rng = np.random.default_rng(0)
    truncations = 0
    for _ in range(12):
        actions = rng.integers(0, 3, size=3)
        got = FastPPO._env_step(ours, actions)
        want = reference.step(actions)
        for a, b in zip(got[:3], want[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        for info_a, info_b in zip(got[3], want[3], strict=True):
            if "terminal_observation" in info_b:
                truncations += 1
                np.testing.assert_array_equal(
                    info_a["terminal_observation"], info_b["terminal_observation"]
                )
        np.testing.assert_array_equal(ours.obs_rms.mean, reference.obs_rms.mean)
        np.testing.assert_array_equal(ours.obs_rms.var, reference.obs_rms.var)
        assert ours.obs_rms.count == reference.obs_rms.count
    assert truncations == 6  # two episode ends of 3 rows within 12 steps


def test_resume_of_a_fast_run_continues_with_the_fast_loop(tmp_path, monkeypatch):
    first = _train(tmp_path, "a", timesteps=64)
    last = first.run_dir / "seed_0" / "checkpoints" / "last"
    calls: list[int] = []
    original = FastPPO.train

    def counting(self: FastPPO) -> None:
        calls.append(self.num_timesteps)
        original(self)

    monkeypatch.setattr(FastPPO, "train", counting)
    resumed = train_agent(
        tiny_config(backend="fast", timesteps=128),
        make_env_factory(episode_length=32),
        make_env_factory(start=VAL[0], end=VAL[1]),
        tmp_path / "b",
        resume_from=last,
    )
    assert resumed.seeds[0].timesteps == 128
    assert calls  # the resumed part trained with FastPPO ...
    assert min(calls) > 64  # ... and only after the checkpoint's 64 steps

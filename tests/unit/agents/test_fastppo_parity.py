"""Learning parity of FastPPO with SB3's PPO on CartPole-v1 (slow: about a minute per seed pair
on an idle core; run with ``-m slow``)."""

from __future__ import annotations

import pytest

#: One budget and one set of hyperparameters for both loops (8 envs x 128 steps, batch 256).
STEPS = 50_000
HYPER = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 10,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "ent_coef": 0.0,
    "learning_rate": 1e-3,
}


def _cartpole_return(cls: type, seed: int) -> float:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = cls("MlpPolicy", env, seed=seed, device="cpu", **HYPER)
    model.learn(STEPS)
    test_env = make_vec_env("CartPole-v1", n_envs=1, seed=1000 + seed)
    mean, _ = evaluate_policy(model, test_env, n_eval_episodes=10, deterministic=True)
    return float(mean)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_fastppo_solves_cartpole_like_sb3_ppo(seed):
    from stable_baselines3 import PPO

    from tradeforge.agents.fastppo import FastPPO

    fast = _cartpole_return(FastPPO, seed)
    reference = _cartpole_return(PPO, seed)
    assert reference >= 195.0  # the reference solves it with this budget ...
    assert fast >= 195.0  # ... and so does the fast loop

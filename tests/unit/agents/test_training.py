from __future__ import annotations

import json

import numpy as np
import pytest
from agent_helpers import VAL, ARTradingEnv, StandInPipeline, make_env_factory, model_params

from tradeforge.agents import AgentConfig, TrackingConfig, load_policy, train_agent
from tradeforge.agents.factory import algo_class
from tradeforge.core.errors import AgentError

TINY = {
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "a2c": {"n_steps": 8},
    "ddpg": {"learning_starts": 32, "batch_size": 32, "buffer_size": 1000},
    "td3": {"learning_starts": 32, "batch_size": 32, "buffer_size": 1000},
    "sac": {"learning_starts": 32, "batch_size": 32, "buffer_size": 1000},
    "recurrent_ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
    "maskable_ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
}
CONTINUOUS = {"ddpg", "td3", "sac"}


def _config(algo: str, timesteps: int = 96, **changes) -> AgentConfig:
    base = {
        "algo": algo,
        "timesteps": timesteps,
        "hyperparams": TINY[algo],
        "policy_kwargs": {"net_arch": [16]},
        "eval": {"freq": 48, "patience": 0},
        "tracking": {"learning_curve": False},
    }
    base.update(changes)
    return AgentConfig.model_validate(base)


def _factories(algo: str, **kwargs):
    action = "continuous" if algo in CONTINUOUS else "discrete"
    train = make_env_factory(episode_length=32, action=action, **kwargs)
    val = make_env_factory(start=VAL[0], end=VAL[1], action=action, **kwargs)
    return train, val


def _observations(n: int = 20) -> list[np.ndarray]:
    env = ARTradingEnv(*VAL)
    obs, _ = env.reset()
    out = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(1)
        out.append(obs)
    return out


@pytest.mark.parametrize("algo", sorted(TINY))
def test_every_algorithm_trains_and_reloads_bit_identically(algo, tmp_path):
    train, val = _factories(algo)
    result = train_agent(_config(algo), train, val, tmp_path / "run")
    policy = load_policy(result.artifact_path)
    best = algo_class(algo).load(result.seeds[0].checkpoint_dir / "model.zip", device="cpu")
    loaded, saved = model_params(policy.model), model_params(best)
    assert loaded.keys() == saved.keys()
    for key in saved:
        np.testing.assert_array_equal(loaded[key], saved[key])
    obs = _observations()
    first = [policy.act(o) for o in obs]
    policy.reset()
    again = (
        [load_policy(result.artifact_path).act(o) for o in obs]
        if algo != "recurrent_ppo"
        else [policy.act(o) for o in obs]
    )
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert result.metrics["steps"] == VAL[1] - VAL[0] - 2
    assert np.isfinite(result.metrics["sharpe"])


def test_same_seed_gives_bit_identical_weights(tmp_path):
    train, val = _factories("ppo")
    config = _config("ppo", timesteps=128)
    first = train_agent(config, train, val, tmp_path / "a")
    second = train_agent(config, train, val, tmp_path / "b")
    a = model_params(load_policy(first.artifact_path).model)
    b = model_params(load_policy(second.artifact_path).model)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert first.metrics == second.metrics
    other = train_agent(config.with_updates(seed=5), train, val, tmp_path / "c")
    c = model_params(load_policy(other.artifact_path).model)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_normalizer_is_fitted_on_train_and_frozen_in_artifact(tmp_path):
    train, val = _factories("ppo")
    result = train_agent(_config("ppo"), train, val, tmp_path / "run")
    stats = json.loads((result.artifact_path / "normalizer.json").read_text())
    mean = np.asarray(stats["obs_rms"]["mean"])
    assert mean.shape == (4,)
    assert stats["obs_rms"]["count"] > 1
    # The saved statistics are those of the checkpoint, unchanged by validation or loading.
    best = json.loads((result.seeds[0].checkpoint_dir / "normalizer.json").read_text())
    assert best == stats
    policy = load_policy(result.artifact_path)
    for obs in _observations(5):
        policy.act(obs)
    assert policy.normalizer == stats


def test_seeds_report_spread_and_keep_best_on_validation(tmp_path):
    train, val = _factories("a2c")
    result = train_agent(_config("a2c", timesteps=64, seeds=3), train, val, tmp_path / "run")
    assert [s.seed for s in result.seeds] == [0, 1, 2]
    sharpes = [m["sharpe"] for m in result.seed_metrics]
    assert result.metrics["sharpe"] == max(sharpes)
    assert result.best_seed == result.seeds[int(np.argmax(sharpes))].seed
    summary = result.summary()
    assert summary["spread"]["sharpe"]["mean"] == pytest.approx(np.mean(sharpes))
    assert summary["spread"]["sharpe"]["std"] == pytest.approx(np.std(sharpes, ddof=1))
    assert (
        json.loads((tmp_path / "run" / "summary.json").read_text())["best_seed"] == result.best_seed
    )
    json.dumps(summary)


def test_early_stopping_stops_without_improvement(tmp_path):
    train, val = _factories("ppo")
    config = _config("ppo", timesteps=2048, eval={"freq": 32, "patience": 1, "min_evals": 1})
    result = train_agent(config, train, val, tmp_path / "run")
    seed = result.seeds[0]
    assert seed.stopped_early
    assert seed.timesteps < 2048
    scores = [h["score"] for h in seed.history]
    assert scores[-1] <= max(scores[:-1])
    assert result.metrics["sharpe"] == pytest.approx(max(scores))


def test_resume_continues_from_checkpoint(tmp_path):
    train, val = _factories("ppo")
    first = train_agent(_config("ppo", timesteps=64), train, val, tmp_path / "a")
    last = first.run_dir / "seed_0" / "checkpoints" / "last"
    resumed = train_agent(
        _config("ppo", timesteps=128), train, val, tmp_path / "b", True, resume_from=last
    )
    assert resumed.seeds[0].timesteps == 128
    # the best checkpoint so far comes along, so the best of both parts is kept
    best_before = max(h["score"] for h in first.seeds[0].history)
    assert resumed.metrics["sharpe"] >= best_before
    assert resumed.metrics["sharpe"] == pytest.approx(
        max(h["score"] for h in resumed.seeds[0].history)
    )
    # validation history carries over from the first run and grows
    assert len(resumed.seeds[0].history) > len(first.seeds[0].history)
    with pytest.raises(AgentError, match="cannot be loaded as sac"):
        train_agent(_config("sac"), *_factories("sac"), tmp_path / "d", resume_from=last)
    with pytest.raises(AgentError, match=r"model\.zip"):
        train_agent(_config("ppo"), train, val, tmp_path / "c", resume_from=tmp_path)


def test_artifact_contents_curve_tensorboard_and_mlflow(tmp_path, mlflow_uri):
    train, val = _factories("ppo")
    tracking = TrackingConfig(
        mlflow=True, mlflow_uri=mlflow_uri, tensorboard=True, learning_curve=True
    )
    config = _config("ppo", tracking=tracking.model_dump())
    result = train_agent(
        config,
        train,
        val,
        tmp_path / "run",
        pipeline=StandInPipeline(),
        data_ranges={"train": ["2000-01-03", "2010-12-31"]},
        extra_config={"env": {"window": 4}},
    )
    files = {p.name for p in result.artifact_path.iterdir()}
    assert {"model.zip", "normalizer.json", "spec.json", "config.json", "data.json"} <= files
    assert {"version.json", "metrics.json", "manifest.json", "features"} <= files
    version = json.loads((result.artifact_path / "version.json").read_text())
    assert version["tradeforge"]
    assert json.loads((result.artifact_path / "config.json").read_text())["env"] == {"window": 4}
    assert result.learning_curve is not None
    assert result.learning_curve.read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "run" / "seed_0" / "tensorboard").rglob("events.out.tfevents*"))
    assert result.mlflow_run_id
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["agent.algo"] == "ppo"
    assert run.data.metrics["final.sharpe"] == pytest.approx(result.metrics["sharpe"])
    assert run.data.metrics["final.seeds_mean.sharpe"] == pytest.approx(result.metrics["sharpe"])
    assert run.data.metrics["final.seeds_std.sharpe"] == 0.0
    history = client.get_metric_history(result.mlflow_run_id, "seed_0.validation_score")
    assert len(history) == len(result.seeds[0].history)
    artifacts = [a.path for a in client.list_artifacts(result.mlflow_run_id, "policy")]
    assert "policy/manifest.json" in artifacts


def test_validation_env_must_match_training_spaces(tmp_path):
    train, _ = _factories("ppo")
    bad_val = make_env_factory(start=VAL[0], end=VAL[1], window=6)
    with pytest.raises(AgentError, match="observation space"):
        train_agent(_config("ppo"), train, bad_val, tmp_path / "run")


def test_maskable_ppo_never_takes_masked_actions(tmp_path):
    train, val = _factories("maskable_ppo", allow_short=False)
    result = train_agent(_config("maskable_ppo"), train, val, tmp_path / "run")
    policy = load_policy(result.artifact_path)
    env = ARTradingEnv(*VAL, allow_short=False)
    for obs in _observations(40):
        assert policy.env_action(obs, action_masks=env.action_masks()) != 0

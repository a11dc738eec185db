"""explain_policy end to end on the session's tiny PPO artifacts (trained once on bundled data)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import gymnasium as gym
import numpy as np
import pytest
import torch

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.explain import PolicyOutput, explain_policy


def _paper_support() -> ModuleType:
    """tests/integration/test_paper_support.py (one module, so its artifact cache is shared)."""
    name = "test_paper_support"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "integration" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _paper_support().trained_artifact("single", tmp_path_factory)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _paper_support().trained_artifact("portfolio", tmp_path_factory)


def test_ig_on_a_trained_ppo_is_complete_and_matches_the_policy(single: Path) -> None:
    from tradeforge.agents.policy import load_policy

    report = explain_policy(single, method="ig")
    assert report.method == "ig"
    assert report.layout.symbols == ("SP500",)
    assert report.layout.window == 5
    assert report.layout.features == ("logret_1", "logret_5", "rsi_14", "vol_20")
    assert report.observations.shape == (len(report.index), 5 * 4 + 3)
    assert report.baseline_source.startswith("mean observation")  # train_fold keeps no profile
    np.testing.assert_allclose(report.baseline, report.observations.mean(axis=0))
    [ex] = report.explained
    assert ex.output == "action[SP500]"
    # the explained output is the policy's own deterministic action, before clipping
    policy = load_policy(single)
    for row in (0, len(report.index) - 1):
        obs = report.observations[row].astype(np.float32)
        action = float(np.asarray(policy.env_action(obs)).reshape(-1)[0])
        assert float(np.clip(ex.result.outputs[row], -1, 1)) == pytest.approx(action, abs=1e-5)
    assert report.completeness()["max_abs_error"].max() < 1e-4
    top = report.decisions(top=5)
    last = top[top.time == report.index[-1]]
    assert list(last["rank"]) == [1, 2, 3, 4, 5]
    assert np.all(np.diff(np.abs(last["attribution"].to_numpy())) <= 0)
    by_feature = report.grouped_importance("feature")
    per_entry = report.global_importance()
    assert by_feature["importance"].sum() == pytest.approx(per_entry["importance"].sum())
    payload = json.loads(report.to_json())
    assert payload["n_decisions"] == len(report.index)
    assert len(payload["global_importance"]) == 5


def test_baseline_from_the_reference_profile(single: Path, tmp_path: Path) -> None:
    from tradeforge.agents.artifact import write_manifest
    from tradeforge.agents.policy import load_policy
    from tradeforge.data.bundled import load_bundled_panel
    from tradeforge.monitor import build_reference_profile

    artifact = shutil.copytree(single, tmp_path / "policy")
    pipeline = load_policy(artifact).pipeline
    train = pipeline.transform(load_bundled_panel(["SP500"])).values[:300]
    build_reference_profile(train, pipeline.names).save(artifact)
    write_manifest(artifact)
    report = explain_policy(artifact, method="ig", last=2)
    assert report.baseline_source.startswith("training feature means from reference_profile.json")
    means = np.nanmean(train.reshape(-1, 4), axis=0)
    for offset in range(5):
        rsi = report.layout.position("rsi_14", "SP500", offset=offset)
        assert report.baseline[rsi] == pytest.approx(means[2])
    tail = report.layout.position("cash_fraction", "")
    assert report.baseline[tail] == pytest.approx(report.observations[:, tail].mean())
    assert report.completeness()["max_abs_error"].max() < 1e-4


def test_explicit_range_and_last_decisions(single: Path) -> None:
    full = explain_policy(single, "2010-06-01", "2010-07-30", method="ig", last=3)
    assert str(full.index[0].date()) >= "2010-06-01"
    assert str(full.index[-1].date()) <= "2010-07-30"
    assert full.explained[0].result.n == 3
    assert set(full.decisions(top=2)["time"]) == set(full.index[-3:])


def test_model_agnostic_methods_agree_with_ig_on_the_top_entry(portfolio: Path) -> None:
    ig = explain_policy(portfolio, method="ig", last=8)
    shap = explain_policy(portfolio, method="kernel_shap", last=8, nsamples=2048)
    perm = explain_policy(portfolio, method="permutation", n_repeats=2)
    outputs = [ex.output for ex in ig.explained]
    assert (
        outputs == ["action[AAPL]", "action[IBM]", "action[MSFT]", "action[cash]"][: len(outputs)]
    )
    assert [ex.output for ex in shap.explained] == outputs
    assert perm.decisions().empty  # global only
    assert len(perm.global_importance()) == len(outputs) * ig.layout.size
    for a, b in zip(ig.explained, shap.explained, strict=True):
        # same baseline, same function: both satisfy completeness on the same difference
        np.testing.assert_allclose(a.result.outputs, b.result.outputs, atol=1e-5)
        np.testing.assert_allclose(
            a.result.values.sum(axis=1), b.result.values.sum(axis=1), atol=1e-4
        )
        rho = np.corrcoef(a.result.importance(), b.result.importance())[0, 1]
        assert rho > 0.8


def test_html_page_is_self_contained(single: Path, tmp_path: Path) -> None:
    report = explain_policy(single, method="ig", last=4)
    page = report.write_html(tmp_path / "why.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert "<script" not in page
    assert "last decision" in page


def test_bad_method_is_refused(single: Path) -> None:
    with pytest.raises(ConfigError, match="method"):
        explain_policy(single, method="lime")  # type: ignore[arg-type]


def test_policy_output_applies_the_normalizer() -> None:
    from tradeforge.monitor.explain import ObservationLayout

    layout = ObservationLayout(window=1, symbols=("A",), features=("f",))

    class Echo(torch.nn.Module):
        def _predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
            return obs

    stats = {
        "norm_obs": True, "clip_obs": 2.0, "epsilon": 0.0,
        "obs_rms": {"mean": [1.0, 0.0, 0.0, 0.0], "var": [4.0, 1.0, 1.0, 1.0]},
    }  # fmt: skip
    out = PolicyOutput(Echo(), stats, layout, False, "action")
    x = torch.tensor([[3.0, 0.5, 1.0, 9.0]], dtype=torch.float64)
    assert out(x).tolist() == [[1.0, 0.5, 1.0, 2.0]]


def _cli(*argv: str):
    import typer
    from typer.testing import CliRunner

    from tradeforge.cli.explain_cmd import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """tradeforge (test app)."""

    register(app)
    return CliRunner().invoke(app, ["explain", *argv])


def test_cli_tables_json_and_html(single: Path, tmp_path: Path) -> None:
    page = tmp_path / "why.html"
    result = _cli("--policy", str(single), "--top", "3", "--last", "5", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert "ppo action[SP500]: by entry" in result.output
    assert "by feature" in result.output
    assert "last decision 2011-" in result.output
    assert "explained: the last 5" in result.output
    assert "completeness" in result.output
    assert page.is_file()
    as_json = _cli("--policy", str(single), "--method", "permutation", "--json")
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output)
    assert payload["method"] == "permutation"
    assert payload["decisions"] == []
    assert [r["rank"] for r in payload["global_importance"]] == [1, 2, 3, 4, 5]
    bad = _cli("--policy", str(single), "--method", "lime")
    assert isinstance(bad.exception, ConfigError)


class _SpacesEnv(gym.Env):
    """Only the spaces SB3 needs to build a policy (reset/step never used by these tests)."""

    def __init__(self, size: int, n_actions: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_actions,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, dtype=np.float32), {}

    def step(self, action):
        return self.reset()[0], 0.0, True, False, {}


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_actor_and_q_are_explained(algo: str) -> None:
    """SAC / TD3: the actor's deterministic action and Q(s, pi(s)), both complete under IG."""
    from types import SimpleNamespace

    from stable_baselines3 import SAC, TD3

    from tradeforge.experiment.explain import _Decisions, _explain_member
    from tradeforge.monitor.explain import ObservationLayout

    layout = ObservationLayout(window=2, symbols=("A", "B"), features=("f", "g"))
    cls = SAC if algo == "sac" else TD3
    model = cls("MlpPolicy", _SpacesEnv(layout.size, 2), policy_kwargs={"net_arch": [8]}, seed=0)
    member = SimpleNamespace(model=model, normalizer=None, action_space=model.action_space)
    X = np.random.default_rng(0).normal(size=(6, layout.size))
    decisions = _Decisions(member, X, tuple(range(6)), layout, False)
    options = {"last": None, "n_steps": 50, "n_repeats": 2, "nsamples": 64, "seed": 0,
               "q_values": True}  # fmt: skip
    found = _explain_member(algo, member, decisions, X.mean(axis=0), "ig", options, [])
    assert [e.output for e in found] == ["action[A]", "action[B]", "Q(s, pi(s))"]
    predicted, _ = model.predict(X.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(found[0].result.outputs, predicted[:, 0], atol=1e-5)
    np.testing.assert_allclose(found[1].result.outputs, predicted[:, 1], atol=1e-5)
    with torch.no_grad():
        obs = torch.as_tensor(X, dtype=torch.float32)
        action = torch.as_tensor(predicted)
        q = model.policy.critic.q1_forward(obs, action)[:, 0].numpy()
    np.testing.assert_allclose(found[2].result.outputs, q, atol=1e-5)
    # SB3's off-policy nets use ReLU: the gradient along the IG path is piecewise constant, so
    # quadrature converges like 1/n_steps (about 1 % of f(x) - f(baseline) at 50 steps)
    for ex in found:
        gap = np.abs(ex.result.outputs - ex.result.baseline_outputs).max()
        assert ex.result.completeness_error < 0.03 * gap
    fine = _explain_member(algo, member, decisions, X.mean(axis=0), "ig", options | {"n_steps": 1000}, [])  # fmt: skip
    for coarse, ex in zip(found, fine, strict=True):
        assert ex.result.completeness_error < min(3e-4, coarse.result.completeness_error / 3)
    perm = _explain_member(algo, member, decisions, X.mean(axis=0), "permutation", options, [])
    assert [e.output for e in perm] == ["action[A]", "action[B]", "Q(s, pi(s))"]
    assert all(e.result.values.max() > 0 for e in perm)


def test_ensemble_members_are_explained_one_by_one(single: Path, tmp_path: Path) -> None:
    from tradeforge.agents.ensemble import EnsemblePolicy
    from tradeforge.agents.policy import load_policy

    members = {"ppo": load_policy(single), "ppo_2": load_policy(single)}
    ensemble = EnsemblePolicy(
        members, {"ppo": 1.0, "ppo_2": 0.5}, sources={"ppo": single, "ppo_2": single}
    )
    directory = ensemble.save(tmp_path / "ensemble")
    report = explain_policy(directory, method="ig", last=3)
    assert [(e.member, e.output) for e in report.explained] == [
        ("ppo", "action[SP500]"),
        ("ppo_2", "action[SP500]"),
    ]
    a, b = (e.result for e in report.explained)
    np.testing.assert_array_equal(a.values, b.values)  # same weights, same attributions
    alone = explain_policy(single, method="ig", last=3).explained[0].result
    np.testing.assert_allclose(a.values, alone.values, atol=1e-12)


def test_discrete_policy_explains_the_probability_of_the_action_taken() -> None:
    from types import SimpleNamespace

    from stable_baselines3 import PPO

    from tradeforge.experiment.explain import _Decisions, _explain_member
    from tradeforge.monitor.explain import ObservationLayout

    layout = ObservationLayout(window=2, symbols=("A",), features=("f", "g"))
    env = _SpacesEnv(layout.size, 1)
    env.action_space = gym.spaces.Discrete(3)
    model = PPO("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, n_steps=64)
    member = SimpleNamespace(model=model, normalizer=None, action_space=model.action_space)
    X = np.random.default_rng(1).normal(size=(5, layout.size))
    decisions = _Decisions(member, X, tuple(range(5)), layout, False)
    options = {"last": None, "n_steps": 50, "n_repeats": 2, "nsamples": 64, "seed": 0,
               "q_values": True}  # fmt: skip
    [ex] = _explain_member("ppo", member, decisions, X.mean(axis=0), "ig", options, [])
    assert ex.output == "p(action taken)"
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(X, dtype=torch.float32))
        probs = dist.distribution.probs.numpy()
    taken, _ = model.predict(X.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(ex.result.outputs, probs[np.arange(5), taken], atol=1e-6)
    assert ex.result.completeness_error < 1e-4


def test_dict_observations_are_split_like_the_env_does() -> None:
    from stable_baselines3 import PPO

    from tradeforge.envs.observations import WindowObservations
    from tradeforge.monitor.explain import ObservationLayout

    layout = ObservationLayout(window=3, symbols=("A", "B"), features=("f", "g"))
    values = np.random.default_rng(2).normal(size=(8, 2, 2))
    windows = WindowObservations(values, 3, dict_obs=True)
    env = _SpacesEnv(layout.size, 2)
    env.observation_space = windows.space
    model = PPO("MultiInputPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, n_steps=64)
    obs = windows.observe(np.array([5]), np.array([[0.2, 0.3]]), np.array([0.5]), np.array([0.0]))
    flat = np.concatenate([obs["features"].reshape(-1), obs["account"].reshape(-1)])
    forward = PolicyOutput(model.policy, None, layout, True, "action")
    with torch.no_grad():
        mean = forward(torch.as_tensor(flat[None], dtype=torch.float32)).numpy()
    action, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(np.clip(mean, -1, 1), action, atol=1e-6)

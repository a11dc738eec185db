"""Attribution methods of tradeforge.monitor.explain: completeness, ranking, sanity, layout."""

from __future__ import annotations

import copy
import itertools
import json
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from tradeforge.core.errors import ConfigError, FeatureError
from tradeforge.monitor.explain import (
    ObservationLayout,
    aggregate,
    explain_decision,
    integrated_gradients,
    kernel_shap,
    numpy_forward,
    permutation_importance,
    top_k,
)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks: threads only contend (and the timings mean one core, as in live.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


LAYOUT = ObservationLayout(window=3, symbols=("AAA", "BBB"), features=("ret", "rsi", "vol"))


def mlp(n_in: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
        torch.nn.Linear(64, 1),
    )  # fmt: skip
    return net.eval()


class OnlyOne(torch.nn.Module):
    """A toy policy: tanh(2 * x[k] - 0.3); every other entry is ignored."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.scale = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.scale * x[:, self.k] - 0.3)


def shapley_brute(f, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact Shapley values of v(S) = f(x on S, b elsewhere) by enumerating subsets."""
    size = x.size
    phi = np.zeros(size)
    for j in range(size):
        others = [i for i in range(size) if i != j]
        for s in range(size):
            for subset in itertools.combinations(others, s):
                z = np.zeros(size)
                z[list(subset)] = 1.0
                w = math.factorial(s) * math.factorial(size - s - 1) / math.factorial(size)
                with_j = z.copy()
                with_j[j] = 1.0
                phi[j] += w * (f(with_j * x + (1 - with_j) * b) - f(z * x + (1 - z) * b))
    return phi


# -- integrated gradients -------------------------------------------------------------------------
def test_ig_completeness_on_a_tanh_mlp() -> None:
    net = mlp(32, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 32))
    base = rng.normal(size=32) * 0.1
    result = integrated_gradients(net, x, base, n_steps=50)
    with torch.no_grad():
        fx = net(torch.as_tensor(x, dtype=torch.float32))[:, 0].numpy()
        fb = net(torch.as_tensor(base[None], dtype=torch.float32))[0, 0].item()
    gap = np.abs(result.values.sum(axis=1) - (fx - fb))
    assert gap.max() < 1e-4
    assert result.completeness_error == pytest.approx(gap.max(), abs=1e-6)
    np.testing.assert_allclose(result.outputs, fx, rtol=0, atol=1e-6)
    assert result.values.shape == (64, 32)
    assert result.ms_per_observation > 0.0


def test_ig_of_a_linear_map_is_weight_times_displacement() -> None:
    w = np.array([1.5, -2.0, 0.0, 0.25])
    lin = torch.nn.Linear(4, 1, bias=True).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(w[None]))
        lin.bias.fill_(0.7)
    x = np.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]])
    base = np.array([0.5, 0.5, 0.5, 0.5])
    result = integrated_gradients(lin, x, base, n_steps=8)
    np.testing.assert_allclose(result.values, w * (x - base), atol=1e-12)


def test_ig_with_several_outputs_needs_a_target() -> None:
    two = torch.nn.Linear(3, 2).double()
    x = np.ones((2, 3))
    with pytest.raises(ConfigError, match="target"):
        integrated_gradients(two, x, np.zeros(3))
    one = integrated_gradients(two, x, np.zeros(3), target=1)
    expected = (two.weight[1].detach().numpy() * x)[0]
    np.testing.assert_allclose(one.values[0], expected, atol=1e-12)
    per_row = integrated_gradients(two, x, np.zeros(3), target=[0, 1])
    np.testing.assert_allclose(per_row.values[0], two.weight[0].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(per_row.values[1], two.weight[1].detach().numpy(), atol=1e-12)


def test_ig_per_decision_cost_for_a_32_feature_mlp() -> None:
    net = mlp(32, seed=0)
    x = np.random.default_rng(0).normal(size=(1, 32))
    integrated_gradients(net, x, np.zeros(32))  # warm-up (captum import, autograd)
    times = []
    for _ in range(20):
        began = time.perf_counter()
        integrated_gradients(net, x, np.zeros(32), n_steps=50)
        times.append(time.perf_counter() - began)
    # research/live.md measured 5.7 ms on one idle core; CI machines are shared, so the best of
    # 20 runs is compared with a loose bound: a regression to per-step Python loops costs more
    assert min(times) * 1000 < 50.0


# -- one informative feature ----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ig", "kernel_shap", "permutation"])
def test_a_policy_that_reads_one_entry_ranks_it_first(method: str) -> None:
    k = LAYOUT.position("rsi", "BBB", offset=1)
    net = OnlyOne(k)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, LAYOUT.size))
    base = X.mean(axis=0)
    if method == "ig":
        result = integrated_gradients(net, X, base)
        values = result.importance()
    elif method == "kernel_shap":
        result = kernel_shap(numpy_forward(net), X[:5], base, nsamples=256, seed=0)
        values = result.importance()
        assert result.completeness_error < 1e-9
        others = np.delete(result.values, k, axis=1)
        assert np.abs(others).max() < 1e-9  # exactly linear in z_k: no other entry gets credit
    else:
        values = permutation_importance(numpy_forward(net), X, n_repeats=3, seed=0).values
        assert np.count_nonzero(values) == 1
    best = top_k(values, LAYOUT.names, k=3)
    assert best[0][0] == "rsi[BBB]@t-1"
    assert abs(best[0][1]) > 0.05


def test_permutation_importance_of_a_numpy_policy() -> None:
    def act(x: np.ndarray) -> np.ndarray:
        return np.stack([3.0 * x[:, 0], 0.5 * x[:, 2]], axis=1)

    X = np.random.default_rng(0).normal(size=(200, 4))
    imp = permutation_importance(act, X, n_repeats=4, seed=1)
    assert imp.values[1] == 0.0
    assert imp.values[3] == 0.0
    assert imp.values[0] > 4 * imp.values[2] > 0.0
    # E|x - x'| = 2/sqrt(pi) for independent standard normals; averaged over 2 action dims
    assert imp.values[0] == pytest.approx(3.0 * 2 / math.sqrt(math.pi) / 2, rel=0.15)
    only_second = permutation_importance(act, X, n_repeats=2, seed=1, target=1)
    assert only_second.values[0] == 0.0
    assert only_second.values[2] > 0.0


# -- kernel SHAP ----------------------------------------------------------------------------------
def test_kernel_shap_exact_mode_equals_brute_force_shapley_values() -> None:
    def f(v: np.ndarray) -> float:
        return float(v[0] * v[1] + np.sin(v[2]) - 0.5 * v[3] * v[0])

    def act(x: np.ndarray) -> np.ndarray:
        return np.array([f(row) for row in x])

    x = np.array([1.0, 2.0, 0.5, -1.5])
    b = np.array([0.2, -0.3, 0.0, 1.0])
    result = kernel_shap(act, x, b, nsamples=100)
    np.testing.assert_allclose(result.values[0], shapley_brute(f, x, b), atol=1e-10)
    assert result.completeness_error < 1e-10


def test_kernel_shap_sampled_mode_is_close_to_exact() -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(size=12)

    def act(x: np.ndarray) -> np.ndarray:
        return x @ w + 0.8 * x[:, 0] * x[:, 1] - 0.5 * x[:, 4] * x[:, 7] * x[:, 9]

    x = rng.normal(size=(1, 12))
    bg = rng.normal(size=(3, 12))
    exact = kernel_shap(act, x, bg, nsamples=5000).values[0]
    sampled = kernel_shap(act, x, bg, nsamples=1024, seed=2)
    assert sampled.completeness_error < 1e-9
    assert np.abs(sampled.values[0] - exact).max() < 0.05 * np.abs(exact).max()


# -- Adebayo et al. 2018 model randomisation ------------------------------------------------------
def test_attributions_of_a_reinitialised_network_do_not_resemble_the_trained_ones() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 32))
    y = 2.0 * X[:, 3] - 1.5 * X[:, 7] + X[:, 11] * X[:, 12] + 0.5 * np.tanh(X[:, 20])
    net = mlp(32, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    for _ in range(300):
        opt.zero_grad()
        loss = ((net(xt)[:, 0] - yt) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * float(np.var(y))  # it learned the structure
    net.eval()
    probe = X[:64]
    trained = integrated_gradients(net, probe, np.zeros(32)).importance()
    assert {n for n, _ in top_k(trained, [str(i) for i in range(32)], k=2)} == {"3", "7"}
    random_net = copy.deepcopy(net)
    torch.manual_seed(123)
    for layer in random_net.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    randomised = integrated_gradients(random_net, probe, np.zeros(32)).importance()
    rho = spearmanr(trained, randomised).statistic
    assert rho < 0.5


# -- layout ---------------------------------------------------------------------------------------
def test_layout_names_round_trip_every_position() -> None:
    assert LAYOUT.size == 3 * 2 * 3 + 2 + 2
    names = LAYOUT.names
    assert len(set(names)) == LAYOUT.size
    for p, e in enumerate(LAYOUT.entries):
        assert LAYOUT.lookup(e.name).position == p
        assert LAYOUT.position(e.feature, e.symbol, e.offset) == p
    assert names[0] == "ret[AAA]@t-2"
    assert names[17] == "vol[BBB]@t"
    assert names[18:] == ("weight[AAA]", "weight[BBB]", "cash_fraction", "unrealized_pnl")
    with pytest.raises(FeatureError, match="offset"):
        LAYOUT.position("ret", "AAA", offset=3)


def test_layout_matches_the_env_window_observation() -> None:
    from tradeforge.envs.observations import WindowObservations

    t_bars, n, f = 10, len(LAYOUT.symbols), len(LAYOUT.features)
    values = np.zeros((t_bars, n, f))
    for t, i, j in itertools.product(range(t_bars), range(n), range(f)):
        values[t, i, j] = t * 100 + i * 10 + j
    obs = WindowObservations(values, LAYOUT.window, dict_obs=False)
    t = 6
    row = obs.observe(np.array([t]), np.array([[0.25, -0.5]]), np.array([0.75]), np.array([0.01]))
    row = np.asarray(row)[0]
    assert row.shape == (LAYOUT.size,)
    for e in LAYOUT.entries:
        if e.kind == "feature":
            i, j = LAYOUT.symbols.index(e.symbol), LAYOUT.features.index(e.feature)
            assert row[e.position] == (t - e.offset) * 100 + i * 10 + j
    assert row[LAYOUT.position("weight", "BBB")] == -0.5
    assert row[LAYOUT.position("cash_fraction", "")] == 0.75
    assert row[LAYOUT.position("unrealized_pnl", "")] == pytest.approx(0.01)


def test_aggregate_and_tile() -> None:
    values = np.zeros(LAYOUT.size)
    values[LAYOUT.position("rsi", "AAA", 0)] = 1.0
    values[LAYOUT.position("rsi", "BBB", 2)] = -2.0
    values[LAYOUT.position("vol", "BBB", 1)] = 0.5
    values[LAYOUT.position("weight", "BBB")] = 0.25
    values[LAYOUT.position("cash_fraction", "")] = -0.125
    by_feature = aggregate(values, LAYOUT, "feature")
    assert by_feature.to_dict() == {
        "ret": 0.0, "rsi": 3.0, "vol": 0.5, "weight": 0.25, "cash_fraction": 0.125,
        "unrealized_pnl": 0.0,
    }  # fmt: skip
    assert aggregate(values, LAYOUT, "feature", absolute=False)["rsi"] == -1.0
    by_symbol = aggregate(values, LAYOUT, "symbol")
    assert by_symbol.to_dict() == {"AAA": 1.0, "BBB": 2.75, "(account)": 0.125}
    by_offset = aggregate(np.stack([values, values]), LAYOUT, "offset")
    assert list(by_offset.columns) == ["t-2", "t-1", "t-0", "account"]
    assert by_offset.iloc[1].tolist() == [2.0, 0.5, 1.0, 0.375]
    tiled = LAYOUT.tile(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0, 0.0]))
    assert tiled[LAYOUT.position("vol", "AAA", 2)] == 3.0
    assert tiled[LAYOUT.position("cash_fraction", "")] == 1.0
    with pytest.raises(FeatureError, match="feature_values"):
        LAYOUT.tile(np.ones(2), np.zeros(4))


def test_top_k_orders_by_magnitude_and_checks_names() -> None:
    assert top_k(np.array([0.1, -3.0, 2.0]), ["a", "b", "c"], k=2) == [("b", -3.0), ("c", 2.0)]
    with pytest.raises(FeatureError, match="names"):
        top_k(np.ones(3), ["a", "b"])


def test_explain_decision_is_a_json_ready_top_k() -> None:
    k = LAYOUT.position("vol", "AAA", offset=0)
    x = np.random.default_rng(4).normal(size=LAYOUT.size)
    base = np.zeros(LAYOUT.size)
    event = explain_decision(OnlyOne(k), x, base, LAYOUT, k=3)
    assert json.loads(json.dumps(event)) == event
    assert event["top"][0]["entry"] == "vol[AAA]@t"
    assert event["top"][0]["observed"] == x[k]
    assert event["top"][0]["attribution"] == pytest.approx(
        event["output"] - event["baseline_output"]
    )
    assert event["output"] == pytest.approx(math.tanh(2 * x[k] - 0.3))
    assert event["completeness_error"] < 1e-6
    assert len(event["top"]) == 3
    with pytest.raises(FeatureError, match="entries"):
        explain_decision(OnlyOne(k), x[:-1], base, LAYOUT)

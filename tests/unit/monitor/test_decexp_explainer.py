"""Per-decision Integrated Gradients (``DecisionExplainer``): the same numbers as captum's
``integrated_gradients``, completeness, a toy policy that reads one feature, the outputs that
moved most, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tradeforge.core.errors import ConfigError, FeatureError
from tradeforge.monitor.explain import DecisionExplainer, ObservationLayout, integrated_gradients

LAYOUT = ObservationLayout(window=3, symbols=("AAA", "BBB"), features=("f0", "f1", "f2"))


def _mlp(seed: int = 0, outputs: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(LAYOUT.size, 16), torch.nn.Tanh(), torch.nn.Linear(16, outputs)
    ).double()
    return net.eval()


def _obs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=LAYOUT.size)


def test_it_matches_captums_integrated_gradients_and_is_complete():
    net = _mlp()
    base = np.zeros(LAYOUT.size)
    explainer = DecisionExplainer(net, LAYOUT, base, n_steps=16, targets=[0, 1, 2])
    x = _obs(1)
    chosen, values, fx, fb = explainer.attributions(x)
    assert chosen == [0, 1, 2]
    for row, target in enumerate(chosen):
        ref = integrated_gradients(net, x, base, n_steps=16, target=target)
        np.testing.assert_allclose(values[row], ref.values[0], rtol=1e-7, atol=1e-10)
        assert fx[row] == pytest.approx(float(ref.outputs[0]), abs=1e-12)
        assert fb[row] == pytest.approx(float(ref.baseline_outputs[0]), abs=1e-12)
        assert abs(values[row].sum() - (fx[row] - fb[row])) < 1e-4  # completeness
    out = explainer(x)
    assert out["method"] == "integrated_gradients"
    assert [o["output"] for o in out["outputs"]] == ["output[0]", "output[1]", "output[2]"]
    assert all(o["completeness_error"] < 1e-4 for o in out["outputs"])
    top = out["outputs"][0]["top"]
    assert len(top) == 5
    order = np.argsort(-np.abs(values[0]), kind="stable")[:5]
    assert [t["entry"] for t in top] == [LAYOUT.names[i] for i in order]
    assert top[0]["observed"] == x[order[0]]
    assert top[0]["attribution"] == pytest.approx(values[0, order[0]])


def test_a_policy_that_reads_only_one_entry_ranks_it_first():
    k = LAYOUT.position("f1", "BBB", 0)

    def forward(t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(3.0 * t[:, k : k + 1])

    explainer = DecisionExplainer(forward, LAYOUT, np.zeros(LAYOUT.size), k=3)
    out = explainer(_obs(2))
    (only,) = out["outputs"]
    assert only["output"] == "output"
    assert only["top"][0]["entry"] == "f1[BBB]@t"
    assert [t["attribution"] for t in only["top"][1:]] == [0.0, 0.0]


def test_by_default_the_outputs_that_moved_most_are_explained():
    net = _mlp(outputs=6)
    base = np.zeros(LAYOUT.size)
    x = _obs(3)
    names = [f"action[{i}]" for i in range(6)]
    explainer = DecisionExplainer(net, LAYOUT, base, max_outputs=2, outputs=names)
    assert len(DecisionExplainer(net, LAYOUT, base, outputs=names)(x)["outputs"]) == 1
    with torch.no_grad():
        moved = (net(torch.as_tensor(x[None])) - net(torch.as_tensor(base[None])))[0].abs()
    expected = [names[i] for i in np.argsort(-moved.numpy(), kind="stable")[:2]]
    assert [o["output"] for o in explainer(x)["outputs"]] == expected


def test_a_dict_observation_is_flattened_in_layout_order():
    net = _mlp()
    x = _obs(4)
    feats, account = x[: LAYOUT.feature_size], x[LAYOUT.feature_size :]
    explainer = DecisionExplainer(net, LAYOUT, np.zeros(LAYOUT.size), targets=[1])
    as_dict = {"features": feats.reshape(3, 2, 3), "account": account}
    assert explainer(as_dict)["outputs"][0]["top"] == explainer(x)["outputs"][0]["top"]


def test_bad_inputs_are_refused_with_the_value():
    net = _mlp()
    with pytest.raises(FeatureError, match="baseline has 3 entries; the layout has 22"):
        DecisionExplainer(net, LAYOUT, np.zeros(3))
    with pytest.raises(ConfigError, match=r"targets \[7\] out of range; the forward has 3"):
        DecisionExplainer(net, LAYOUT, np.zeros(LAYOUT.size), targets=[7])
    with pytest.raises(ConfigError, match="k = 0"):
        DecisionExplainer(net, LAYOUT, np.zeros(LAYOUT.size), k=0)
    explainer = DecisionExplainer(net, LAYOUT, np.zeros(LAYOUT.size))
    with pytest.raises(FeatureError, match="observation has 4 entries"):
        explainer(np.zeros(4))
    with pytest.raises(FeatureError, match="non-finite"):
        explainer(np.full(LAYOUT.size, np.nan))

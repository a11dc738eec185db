"""The default feature set's remaining fast paths equal the numpy graph to the last bit: the
compiled twins of the log-ratio, RSI gain/loss and Bollinger band maps, the mean and standard
deviation of the same windows computed in one pass, and the two-pass seeded recursion; on real
bundled data, on NaN gaps, flat prices and one bar, and continued from a saved state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.features import FeaturePipeline, FeatureSpec, kernels
from tradeforge.features import graph as graph_mod
from tradeforge.features.builder import Builder
from tradeforge.features.graph import Context, Recursive

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def _same(a: np.ndarray, b: np.ndarray, msg: str = "") -> None:
    assert a.shape == b.shape, msg
    np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=msg)


def _values(seed: int, shape: tuple[int, int] = (40, 30)) -> np.ndarray:
    """Normal values with NaN, +-0.0, +-inf and exact ties sprinkled in."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=shape)
    v[rng.random(shape) < 0.1] = np.nan
    v[rng.random(shape) < 0.08] = 0.0
    v[rng.random(shape) < 0.08] = -0.0
    v[rng.random(shape) < 0.03] = np.inf
    v[rng.random(shape) < 0.03] = -np.inf
    v[:, 0] = -0.0  # a whole column of negative zeros (the numpy loops' tails too)
    v[:, 1] = 0.0
    return v


def test_more_map_twins_equal_numpy() -> None:
    a, b = _values(0), _values(1)
    pa, pb = np.abs(a) + 0.5, np.abs(b) + 0.5  # positive prices, and a few zero/negative ratios
    pb[::5, 3] = 0.0
    pa[::7, 4] = -1.0
    k = 2.0
    with np.errstate(all="ignore"):
        expected = {
            "log_ratio": (np.log(pa / pb), [pa, pb], ()),
            "pos": (np.maximum(a, 0.0), [a], ()),
            "neg": (np.maximum(-a, 0.0), [a], ()),
            "add_scaled": (a + k * b, [a, b], (k,)),
            "sub_scaled": (a - k * b, [a, b], (k,)),
        }
    assert set(expected) == set(kernels.MORE_MAP_KERNELS)
    saw_inf = 0
    for name, (want, xs, params) in expected.items():
        got = kernels.run_map(name, xs, params=params)
        assert got is not None, name
        _same(got, want, name)
        clean = kernels.run_map(name, xs, inf_as_nan=True, params=params)
        assert clean is not None
        _same(clean, np.where(np.isinf(want), np.nan, want), name)
        saw_inf += int(np.isinf(want).sum())
    assert saw_inf > 20  # the inputs did produce infinities
    # numpy's maximum gives +0.0 for -0.0 (and keeps NaN's sign): the twins do too
    pos = kernels.run_map("pos", [np.array([[-0.0, 0.0, -np.nan, 3.0]])])
    assert pos is not None
    assert not np.signbit(pos[0, :2]).any()
    assert kernels.run_map("add_scaled", [a, b]) is None  # a missing constant: numpy runs


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("w", [2, 5, 20])
def test_window_mean_std_equals_two_reductions(ddof: int, w: int) -> None:
    rng = np.random.default_rng(w)
    x = 100.0 + rng.normal(size=(60, 9)).cumsum(axis=0)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 2] = 7.5  # flat: zero deviations
    for init in (np.full((w - 1, 9), np.nan), x[:w - 1] * 1.01):  # fmt: skip
        mean, sd = kernels.window_mean_std(init, x, w, ddof)
        _same(mean, kernels.window_reduce(init, x, w, kernels.MEAN))
        _same(sd, kernels.window_reduce(init, x, w, kernels.STD, ddof))
        assert np.isfinite(sd).any()


@pytest.mark.parametrize("w", [1, 2, 3, 4, 5, 8, 9, 20, 23])
def test_window_reduce_four_rows_per_pass_equals_the_numpy_reducers(w: int) -> None:
    """The compiled windows add four rows per pass once the window is inside the block: the
    same bits as the numpy reducers (graph.window_sum, builder's std) for every remainder."""
    from tradeforge.features.builder import _std
    from tradeforge.features.graph import _windows, window_mean, window_sum

    rng = np.random.default_rng(w)
    x = 100.0 + rng.normal(size=(70, 11)).cumsum(axis=0)
    x[rng.random(x.shape) < 0.04] = np.nan
    x[:, 3] = 0.125
    init = 100.0 + rng.normal(size=(w - 1, 11))
    views = _windows(np.concatenate([init, x]), w)
    with np.errstate(all="ignore"):
        want = {
            kernels.SUM: window_sum(views),
            kernels.MEAN: window_mean(views),
            kernels.STD: _std(1)(views),
        }
    for kind, ref in want.items():
        _same(kernels.window_reduce(init, x, w, kind, 1), ref, f"kind {kind}")
    mean, sd = kernels.window_mean_std(init, x, w, 1)
    _same(mean, want[kernels.MEAN])
    _same(sd, want[kernels.STD])


def _panel(close: np.ndarray, volume: np.ndarray | None = None) -> BarPanel:
    index = pd.date_range("2019-01-01", periods=close.shape[0], freq="B", tz="UTC")
    return BarPanel(
        index=index,
        symbols=tuple(f"S{j}" for j in range(close.shape[1])),
        open=close,
        high=close * 1.01,
        low=close * 0.99,
        close=close,
        volume=np.full_like(close, 1000.0) if volume is None else volume,
    )


def _edge(case: str) -> BarPanel:
    rng = np.random.default_rng(8)
    if case == "one_bar":
        return _panel(np.array([[100.0, 50.0, 3.0]]))
    close = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, size=(90, 3)), axis=0)
    volume = rng.uniform(500.0, 1500.0, size=close.shape)
    if case == "nan":
        close[10:14, 0] = np.nan
        close[40, 1] = np.nan
        volume[50:53, 2] = np.nan
    elif case == "flat":
        close[:, 1] = 42.0
        volume[:, 2] = 1000.0
    return _panel(close, volume)


def _numpy_raw(spec: FeatureSpec, panel: BarPanel, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(kernels, "available", lambda: False)
        values, _ = FeaturePipeline(spec).raw(panel)
    return values


@pytest.mark.parametrize("case", ["real", "nan", "flat", "one_bar"])
def test_default_set_equals_the_numpy_graph(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = FeatureSpec.default().model_copy(update={"scaler": "none"})
    panel = load_bundled_panel(["SP500", "AAPL", "WTI"]) if case == "real" else _edge(case)
    got = FeaturePipeline(spec).transform(panel).values
    _same(got, _numpy_raw(spec, panel, monkeypatch), case)
    if case == "real":  # WTI (negative prices in 2020, no volume) has NaN features throughout
        complete = np.asarray(np.isfinite(got).all(axis=2).any(axis=0))
        assert complete[:2].all()
        assert np.isfinite(got).mean() > 0.5


def test_mean_std_pairs_of_the_default_set_and_their_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = FeatureSpec.default().model_copy(update={"scaler": "none"})
    pipe = FeaturePipeline(spec)
    pairs = graph_mod._mean_std_pairs(pipe._graph.nodes)
    assert pairs == {
        "mean(src(close);20)": "std0(src(close);20)",
        "mean(src(volume);20)": "std0(src(volume);20)",
    }
    panel = load_bundled_panel(["IBM", "MSFT"])
    head, state = pipe.raw(panel.iloc(slice(0, 3000)))
    tail, _ = pipe.raw(panel.iloc(slice(3000, None)), state)
    whole, _ = pipe.raw(panel)
    _same(np.concatenate([head, tail]), whole)
    with monkeypatch.context() as m:  # every window on its own
        m.setattr(graph_mod, "_mean_std_pairs", lambda nodes: {})
        alone = FeaturePipeline(spec)
        a_head, a_state = alone.raw(panel.iloc(slice(0, 3000)))
        a_tail, _ = alone.raw(panel.iloc(slice(3000, None)), a_state)
    _same(a_head, head)
    _same(a_tail, tail)
    for key, node_state in state.items():
        for name, arr in node_state.items():
            _same(arr, a_state[key][name], f"{key} {name}")


def test_pair_with_the_std_first_and_differing_states() -> None:
    b = Builder()
    c = b.close()
    sd = b.std(c, 6, ddof=1)  # before its mean
    mean = b.mean(c, 6)
    lone = b.mean(b.src("volume"), 6)  # no partner
    assert graph_mod._mean_std_pairs(b.graph.nodes) == {sd: mean}
    rng = np.random.default_rng(4)
    x = 50.0 + rng.normal(size=(40, 4)).cumsum(axis=0)
    ctx = Context({"close": x, "volume": x * 10.0}, None)
    got, state = b.graph.run(ctx, [sd, mean, lone])
    want = [
        kernels.window_reduce(np.full((5, 4), np.nan), x, 6, kernels.STD, 1),
        kernels.window_reduce(np.full((5, 4), np.nan), x, 6, kernels.MEAN),
        kernels.window_reduce(np.full((5, 4), np.nan), x * 10.0, 6, kernels.MEAN),
    ]
    for g, w in zip(got, want, strict=True):
        _same(g, w)
    # states that disagree (never produced by the graph itself): each node runs on its own
    odd = {k: {f: a.copy() for f, a in st.items()} for k, st in state.items()}
    odd[mean]["buf0"][0, 0] += 1.0
    more, _ = b.graph.run(ctx, [sd, mean], odd)
    _same(more[0], kernels.window_reduce(state[sd]["buf0"], x, 6, kernels.STD, 1))
    _same(more[1], kernels.window_reduce(odd[mean]["buf0"], x, 6, kernels.MEAN))


def test_recursion_equals_the_numpy_recursion_with_runs_and_state() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 12))
    x[rng.random(x.shape) < 0.04] = np.nan  # runs broken anywhere
    x[100:140, 3] = np.nan  # a long gap
    x[:, 5] = 2.0  # flat
    x[::2, 7] = np.nan  # runs too short to seed
    op = Recursive(9, 1.0 / 9.0)
    ctx = Context({}, None)
    got, state = op.run([x[:150]], None, ctx)
    got2, state2 = op.run([x[150:]], state, ctx)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(graph_mod, "_kernels_available", lambda: False)
        ref, ref_state = op.run([x[:150]], None, ctx)
        ref2, ref_state2 = op.run([x[150:]], ref_state, ctx)
    _same(got, ref)
    _same(got2, ref2)
    for name in ("seed", "y", "run"):
        _same(state2[name], ref_state2[name], name)
    assert np.isfinite(got2).mean() > 0.4
    assert np.isnan(got[:, 7]).all()

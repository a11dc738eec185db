"""The default feature set's fast path (compiled stack, no copy without a scaler) equals the
reference: the graph's columns stacked by numpy, on real bundled data and on edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.features import FeaturePipeline, FeatureSpec
from tradeforge.features.graph import Context


def _reference(pipe: FeaturePipeline, panel: BarPanel) -> np.ndarray:
    fields = {name: panel.field(name) for name in OHLCV}
    cols, _ = pipe._graph.run(Context.of(fields, panel.index), pipe._outputs)
    return np.stack(cols, axis=-1)


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.float64
    np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


def _spec(scaler: str = "none") -> FeatureSpec:
    return FeatureSpec.default().model_copy(update={"scaler": scaler})


def test_transform_equals_stacked_graph_columns_on_real_data() -> None:
    panel = load_bundled_panel(["SP500", "AAPL", "MSFT"])
    pipe = FeaturePipeline(_spec())
    got = pipe.transform(panel).values
    ref = _reference(pipe, panel)
    _same_bits(got, ref)
    assert got.flags.c_contiguous
    # warm-up is NaN, later rows are finite: the comparison is not between two NaN arrays
    assert np.isnan(got[0]).all()
    assert np.isfinite(got).all(axis=2).any(axis=0).all()  # every symbol has complete rows


def test_raw_and_zscore_transform_match_reference() -> None:
    panel = load_bundled_panel(["SP500", "IBM"])
    pipe = FeaturePipeline(_spec("zscore")).fit(panel, None, panel.index[2000])
    raw, _ = pipe.raw(panel)
    ref = _reference(pipe, panel)
    _same_bits(raw, ref)
    scaled = pipe.transform(panel).values
    _same_bits(scaled, pipe.scale(ref))
    assert not np.shares_memory(scaled, raw)


def _synthetic(close: np.ndarray) -> BarPanel:
    t = close.shape[0]
    index = pd.date_range("2020-01-01", periods=t, freq="B", tz="UTC")
    frame = {
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": np.full_like(close, 1000.0),
    }
    return BarPanel(index=index, symbols=tuple(f"S{j}" for j in range(close.shape[1])), **frame)


@pytest.mark.parametrize("case", ["nan", "flat", "one_bar"])
def test_edge_cases_match_reference(case: str) -> None:
    rng = np.random.default_rng(3)
    if case == "one_bar":
        close = np.array([[100.0, 50.0]])
    else:
        close = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, size=(80, 2)), axis=0)
        if case == "nan":
            close[10:14, 0] = np.nan
            close[40, 1] = np.nan
        else:
            close[:, 1] = 42.0
    panel = _synthetic(close)
    pipe = FeaturePipeline(_spec())
    got = pipe.transform(panel).values
    _same_bits(got, _reference(pipe, panel))
    assert got.shape == (close.shape[0], 2, len(pipe.names))


def test_maps_write_infinities_as_nan_only_when_asked() -> None:
    from tradeforge.features import kernels

    if not kernels.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(5)
    a = rng.normal(size=(30, 12))
    b = np.roll(a, 1, axis=1)
    b[rng.random(b.shape) < 0.3] = 0.0  # divisions by zero: +-inf
    a[rng.random(a.shape) < 0.1] = np.nan
    c = np.abs(np.roll(a, 2, axis=0))
    inputs = {
        "sub": (a, b),
        "div": (a, b),
        "pct": (a, b),
        "valid_if": (a, b),
        "rsi": (a, c),
        "pctb": (a, b, c),
        "z": (a, c, b),
        "true_range": (a, b, c),
    }
    assert set(inputs) == set(kernels.MAP_KERNELS)
    saw_inf = 0
    for name, xs in inputs.items():
        raw = kernels.run_map(name, list(xs))
        clean = kernels.run_map(name, list(xs), inf_as_nan=True)
        assert raw is not None
        assert clean is not None
        saw_inf += int(np.isinf(raw).sum())
        want = np.where(np.isinf(raw), np.nan, raw)
        np.testing.assert_array_equal(clean.view(np.int64), want.view(np.int64), err_msg=name)
    assert saw_inf > 50  # the inputs did produce infinities


def test_graph_with_kernels_equals_the_numpy_graph_with_infinities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tradeforge.features import graph, kernels

    if not kernels.available():
        pytest.skip("numba is not installed")
    panel = load_bundled_panel(["SP500", "WTI"])
    close = panel.close.copy()
    close[100:103, 1] = 0.0  # zero prices: infinite ratios the graph turns into NaN
    close[400:410, 0] = np.nan
    edited = BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=panel.open,
        high=panel.high,
        low=panel.low,
        close=close,
        volume=panel.volume,
    )
    pipe = FeaturePipeline(_spec())
    fast, _ = pipe.raw(edited)
    monkeypatch.setattr(graph, "_kernels_available", lambda: False)
    slow, _ = FeaturePipeline(_spec()).raw(edited)
    _same_bits(fast, slow)
    assert not np.isinf(fast).any()

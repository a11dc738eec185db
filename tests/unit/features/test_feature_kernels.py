"""Indicator kernels against TA-Lib (where it has them) and against plain pandas references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from tradeforge.data.panel import BarPanel
from tradeforge.features import FeaturePipeline, FeatureSpec, compute

TALIB_CASES: dict[str, object] = {
    "sma_20": lambda o, h, lo, c, v: talib.SMA(c, 20),
    "sma_5": lambda o, h, lo, c, v: talib.SMA(c, 5),
    "ema_20": lambda o, h, lo, c, v: talib.EMA(c, 20),
    "ema_50": lambda o, h, lo, c, v: talib.EMA(c, 50),
    "rsi_14": lambda o, h, lo, c, v: talib.RSI(c, 14),
    "rsi_7": lambda o, h, lo, c, v: talib.RSI(c, 7),
    "macd_12_26_9": lambda o, h, lo, c, v: talib.MACD(c, 12, 26, 9)[0],
    "macd_signal_12_26_9": lambda o, h, lo, c, v: talib.MACD(c, 12, 26, 9)[1],
    "macd_hist_12_26_9": lambda o, h, lo, c, v: talib.MACD(c, 12, 26, 9)[2],
    "macd_hist_5_35_5": lambda o, h, lo, c, v: talib.MACD(c, 5, 35, 5)[2],
    "bb_upper_20_2": lambda o, h, lo, c, v: talib.BBANDS(c, 20, 2, 2)[0],
    "bb_middle_20_2": lambda o, h, lo, c, v: talib.BBANDS(c, 20, 2, 2)[1],
    "bb_lower_20_2": lambda o, h, lo, c, v: talib.BBANDS(c, 20, 2, 2)[2],
    "bb_lower_10_1.5": lambda o, h, lo, c, v: talib.BBANDS(c, 10, 1.5, 1.5)[2],
    "atr_14": lambda o, h, lo, c, v: talib.ATR(h, lo, c, 14),
    "natr_14": lambda o, h, lo, c, v: talib.NATR(h, lo, c, 14),
    "obv": lambda o, h, lo, c, v: talib.OBV(c, v),
    "ret_5": lambda o, h, lo, c, v: talib.ROCR(c, 5) - 1.0,
}


def _ohlcv(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume"))


@pytest.mark.parametrize("symbol", ["SP500", "AAPL"])
def test_matches_talib_on_bundled_series(
    symbol: str, sp500_panel: BarPanel, equities_panel: BarPanel
) -> None:
    panel = sp500_panel if symbol == "SP500" else equities_panel.select([symbol])
    frame = panel.to_frame().set_index("timestamp")
    out = compute(frame, list(TALIB_CASES))
    arrays = _ohlcv(frame)
    for name, ref_fn in TALIB_CASES.items():
        ref = np.asarray(ref_fn(*arrays))  # type: ignore[operator]
        ours = out[name].to_numpy()
        first_ours, first_ref = (
            np.flatnonzero(~np.isnan(ours))[0],
            np.flatnonzero(~np.isnan(ref))[0],
        )
        if name.startswith("macd_1") or name.startswith("macd_5"):
            # TA-Lib emits the MACD line only once the signal exists; ours starts at slow - 1
            assert first_ours <= first_ref, name
        else:
            assert first_ours == first_ref, name
        both = ~np.isnan(ref)
        assert np.isnan(ours[both]).sum() == 0, name
        np.testing.assert_allclose(ours[both], ref[both], rtol=1e-9, atol=1e-9, err_msg=name)


def test_pipeline_equals_compute_per_symbol(equities_panel: BarPanel) -> None:
    names = ["rsi_14", "macd_hist_12_26_9", "bb_pctb_20_2", "atr_14", "vwap_dist_20"]
    raw = FeaturePipeline(FeatureSpec.from_names(names, scaler="none")).transform(equities_panel)
    for j, symbol in enumerate(equities_panel.symbols):
        frame = equities_panel.select([symbol]).to_frame().set_index("timestamp")
        one = compute(frame, names)
        rows = equities_panel.index.get_indexer(frame.index)
        np.testing.assert_allclose(raw.values[rows, j, :], one.to_numpy(), rtol=1e-12, atol=0)


def _frame(sp500_panel: BarPanel) -> pd.DataFrame:
    return sp500_panel.iloc(slice(0, 600)).to_frame().set_index("timestamp")


def test_returns_and_volatility_against_pandas(sp500_panel: BarPanel) -> None:
    f = _frame(sp500_panel)
    names = ["ret_1", "logret_5", "vol_20", "parkinson_10", "garman_klass_10", "zscore_20"]
    out = compute(f, names)
    c, h, lo, o = f["close"], f["high"], f["low"], f["open"]
    lr = np.log(c / c.shift(1))
    gk = 0.5 * np.log(h / lo) ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    ref = {
        "ret_1": c.pct_change(fill_method=None),
        "logret_5": np.log(c / c.shift(5)),
        "vol_20": lr.rolling(20).std(ddof=1),
        "parkinson_10": np.sqrt((np.log(h / lo) ** 2).rolling(10).mean() / (4 * np.log(2))),
        "garman_klass_10": np.sqrt(gk.rolling(10).mean()),
        "zscore_20": (c - c.rolling(20).mean()) / c.rolling(20).std(ddof=0),
    }
    for name in names:
        pd.testing.assert_series_equal(out[name], ref[name], check_names=False, rtol=1e-9)


def test_volume_features_against_pandas(sp500_panel: BarPanel) -> None:
    f = _frame(sp500_panel)
    out = compute(f, ["volume_z_20", "vwap_dist_10", "volume_below_10"])
    v, c = f["volume"], f["close"]
    tp = (f["high"] + f["low"] + c) / 3.0
    vz = (v - v.rolling(20).mean()) / v.rolling(20).std(ddof=0)
    vwap = (tp * v).rolling(10).sum() / v.rolling(10).sum()
    pd.testing.assert_series_equal(out["volume_z_20"], vz, check_names=False, rtol=1e-9)
    pd.testing.assert_series_equal(out["vwap_dist_10"], c / vwap - 1, check_names=False, rtol=1e-9)
    # volume profile: share of the last 10 bars' volume whose typical price is <= today's close
    t = 100
    window = slice(t - 9, t + 1)
    share = v.iloc[window][tp.iloc[window] <= c.iloc[t]].sum() / v.iloc[window].sum()
    assert out["volume_below_10"].iloc[t] == pytest.approx(share, rel=1e-12)
    assert out["volume_below_10"].iloc[:9].isna().all()
    assert out["volume_below_10"].between(0, 1).iloc[9:].all()


def test_calendar_features(sp500_panel: BarPanel) -> None:
    f = _frame(sp500_panel)
    out = compute(f, ["dow_sin", "dow_cos", "month_sin", "month_cos"])
    dow = f.index.day_of_week.to_numpy()
    month = f.index.month.to_numpy() - 1
    np.testing.assert_allclose(out["dow_sin"], np.sin(2 * np.pi * dow / 7))
    np.testing.assert_allclose(out["month_cos"], np.cos(2 * np.pi * month / 12))


def test_compute_without_timestamps_leaves_calendar_nan(sp500_panel: BarPanel) -> None:
    frame = _frame(sp500_panel).reset_index(drop=True)
    out = compute(frame, ["dow_sin", "sma_5"])
    assert out["dow_sin"].isna().all()
    assert out["sma_5"].iloc[4] == pytest.approx(frame["close"].iloc[:5].mean())


def test_cross_sectional_rank(equities_panel: BarPanel) -> None:
    spec = FeatureSpec.from_names(["ret_5", "xrank_ret_5"], scaler="none")
    fp = FeaturePipeline(spec).transform(equities_panel)
    ret, rank = fp.feature("ret_5"), fp.feature("xrank_ret_5")
    ref = pd.DataFrame(ret).rank(axis=1)
    count = pd.DataFrame(ret).notna().sum(axis=1).to_numpy()[:, None]
    expected = np.where(count > 1, (ref.to_numpy() - 1) / np.maximum(count - 1, 1), 0.5)
    expected[np.isnan(ret)] = np.nan
    np.testing.assert_allclose(rank, expected, equal_nan=True)
    assert np.nanmin(rank) == 0.0
    assert np.nanmax(rank) == 1.0
    assert fp.names == ("ret_5", "xrank_ret_5")


def test_nan_holes_stay_nan_and_recover() -> None:
    """A missing input bar makes windowed features NaN for the window; nothing is filled."""
    idx = pd.date_range("2020-01-01", periods=80, freq="D", tz="UTC")
    close = 100 + np.cumsum(np.sin(np.arange(80)))
    frame = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1e6},
        index=idx,
    )
    frame.iloc[40, frame.columns.get_loc("close")] = np.nan
    out = compute(frame, ["sma_5", "ema_5", "rsi_5", "ret_1", "obv"])
    assert out["sma_5"].iloc[40:45].isna().all()
    assert out["sma_5"].iloc[45:].notna().all()
    # the EMA restarts from a fresh SMA seed after the hole
    assert out["ema_5"].iloc[40:45].isna().all()
    assert out["ema_5"].iloc[45] == pytest.approx(frame["close"].iloc[41:46].mean())
    assert out["ret_1"].iloc[[40, 41]].isna().all()
    assert out["ret_1"].iloc[42:].notna().all()
    assert np.isnan(out["obv"].iloc[40])
    assert out["obv"].iloc[41] == 1e6
    assert out["rsi_5"].iloc[46:].notna().all()
    assert out["rsi_5"].iloc[40:46].isna().all()


# -- the compiled kernels (features.kernels) against the numpy graph operations ---------------
def _holey_panel() -> BarPanel:
    """Real bundled series with holes: late starts, a WTI without volume, gaps, a zero range."""
    from tradeforge.data.bundled import load_bundled_panel

    panel = load_bundled_panel(["AAPL", "IBM", "MSFT", "WTI", "SP500"])
    close = panel.close.copy()
    close[3000:3004, 0] = np.nan  # a gap inside a run: the recursions restart with a new seed
    close[5000, 4] = np.nan
    high, low = panel.high.copy(), panel.low.copy()
    high[6000, 1] = low[6000, 1] = close[6000, 1]  # zero range and an unchanged close
    close[6001, 1] = close[6000, 1]
    return BarPanel(panel.index, panel.symbols, panel.open, high, low, close, panel.volume.copy())


def _bits(a: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a), 0.0, a).view(np.int64)


def test_compiled_graph_equals_the_numpy_graph_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registered price indicator (windows, recursions and the maps with a compiled twin)
    gives the same bits with the kernels as with the numpy operations, in one block and
    continued from a saved state, and the same NaN pattern."""
    from tradeforge.features import kernels
    from tradeforge.features.registry import REGISTRY

    if not kernels.available():
        pytest.skip("numba is not installed")
    names = [n for n in sorted(REGISTRY) if n not in ("xrank", "news_sentiment", "news_count")]
    names += ["ema_3", "vol_2", "sma_2", "rsi_2", "vwap_dist_7", "macd_hist_pct_5_35_5"]
    spec = FeatureSpec.from_names(names, scaler="none")
    panel = _holey_panel()
    fast_pipe = FeaturePipeline(spec)
    fast = fast_pipe.transform(panel).values
    head, state = fast_pipe.raw(panel.iloc(slice(0, 4000)))
    tail, _ = fast_pipe.raw(panel.iloc(slice(4000, None)), state)

    monkeypatch.setattr(kernels, "available", lambda: False)
    slow_pipe = FeaturePipeline(spec)
    slow = slow_pipe.transform(panel).values
    s_head, s_state = slow_pipe.raw(panel.iloc(slice(0, 4000)))
    s_tail, _ = slow_pipe.raw(panel.iloc(slice(4000, None)), s_state)

    assert np.isfinite(fast).mean() > 0.5
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_array_equal(_bits(fast), _bits(slow))
    np.testing.assert_array_equal(_bits(np.concatenate([head, tail])), _bits(fast))
    np.testing.assert_array_equal(_bits(s_head), _bits(head))
    np.testing.assert_array_equal(_bits(s_tail), _bits(tail))
    for key, node_state in state.items():  # the saved states are the same numbers too
        for name, arr in node_state.items():
            np.testing.assert_array_equal(arr, s_state[key][name], err_msg=f"{key} {name}")


def test_compiled_maps_follow_numpys_nan_rules() -> None:
    """Each compiled map twin equals its numpy expression on values with NaN, zeros, ties and
    signs (``np.where`` selects, ``np.maximum`` propagating NaN)."""
    from tradeforge.features import kernels

    if not kernels.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(40, 30))
    vals[rng.random(vals.shape) < 0.15] = np.nan
    vals[rng.random(vals.shape) < 0.1] = 0.0
    a, b, c = vals, np.roll(vals, 1, axis=1), np.abs(np.roll(vals, 2, axis=0))
    with np.errstate(all="ignore"):
        expected = {
            "sub": (np.subtract(a, b), (a, b)),
            "div": (a / b, (a, b)),
            "pct": (100.0 * a / c, (a, c)),
            "valid_if": (np.where(np.isnan(b), np.nan, a), (a, b)),
            "rsi": (
                np.where(a + c > 0, 100.0 * a / (a + c), np.where(np.isnan(a + c), np.nan, 0.0)),
                (a, c),
            ),
            "pctb": ((a - c) / (b - c), (a, b, c)),
            "z": (np.where(c > 0, (a - b) / c, np.where(np.isnan(c), np.nan, 0.0)), (a, b, c)),
            "true_range": (
                np.maximum(a - b, np.maximum(np.abs(a - c), np.abs(b - c))),
                (a, b, c),
            ),
        }
        assert set(expected) == set(kernels.MAP_KERNELS)
        for name, (want, inputs) in expected.items():
            got = kernels.run_map(name, list(inputs))
            assert got is not None
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert kernels.run_map("z", [a, b, c[:, :5]]) is None  # other shapes: the numpy map runs


def test_stack_last_is_np_stack() -> None:
    from tradeforge.features import kernels

    rng = np.random.default_rng(1)
    cols = [rng.normal(size=(50, 7)) for _ in range(4)]
    cols[2][3, 1] = np.nan
    np.testing.assert_array_equal(kernels.stack_last(cols), np.stack(cols, axis=-1))
    odd = [cols[0], cols[1][:, :3]]
    with pytest.raises(ValueError, match="same shape"):
        kernels.stack_last(odd)  # falls back to np.stack, which names the problem

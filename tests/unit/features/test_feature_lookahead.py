"""No-lookahead proof: perturbing every input after a time t never changes a value at or before t.

The harness covers every registered indicator (each at its default parameters and at a short
window), every scaler (fitted on a window ending at or before t), the macro as-of join (macro
values published after t are perturbed too) and the news fields.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge.data.panel import OHLCV, BarPanel
from tradeforge.features import FeaturePipeline, FeatureSpec, IndicatorSpec
from tradeforge.features.macro import asof_values, load_macro
from tradeforge.features.registry import REGISTRY

N_BARS = 260


def _all_indicators() -> list[IndicatorSpec]:
    specs: list[IndicatorSpec] = []
    for name, ind in sorted(REGISTRY.items()):
        if name == "xrank":
            specs += [IndicatorSpec(name=name, params={"of": "ret_5"}),
                      IndicatorSpec(name=name, params={"of": "rsi_14"})]  # fmt: skip
            continue
        specs.append(IndicatorSpec(name=name))
        short = {p.name: (3 if p.kind is int else 1.5) for p in ind.params if p.default is not None}
        if short and any(short[k] != p.default for p in ind.params for k in [p.name]):
            specs.append(IndicatorSpec(name=name, params=short))
    return specs


INDICATORS = _all_indicators()


@lru_cache(maxsize=1)
def _base_panel() -> BarPanel:
    """260 bars from 2015 (inside the VIX and WTI histories) of three bundled series plus
    synthetic news fields."""
    from tradeforge.data.bundled import load_bundled_panel

    full = load_bundled_panel(["SP500", "NASDAQ", "GOOGL"]).slice_time("2015-01-01", None)
    part = full.iloc(slice(0, N_BARS))
    rng = np.random.default_rng(7)
    count = rng.poisson(0.7, size=part.close.shape).astype(np.float64)
    score = np.round(rng.uniform(-1, 1, size=part.close.shape) * count, 3)
    return replace(part, extra={"news_score": score, "news_count": count})


@pytest.fixture
def base_panel() -> BarPanel:
    return _base_panel()


def _perturb(panel: BarPanel, t: int, kind: str, seed: int) -> BarPanel:
    rng = np.random.default_rng(seed)
    after = slice(t + 1, None)
    fields = {name: panel.field(name).copy() for name in (*OHLCV, *panel.extra)}
    shape = fields["close"][after].shape
    if kind == "scale":
        factor = rng.uniform(0.5, 2.0, size=shape)
        for name in ("open", "high", "low", "close"):
            fields[name][after] *= factor
        fields["volume"][after] *= rng.uniform(0.1, 10.0, size=shape)
    elif kind == "noise":
        for name in fields:
            fields[name][after] += rng.normal(0, 5.0, size=shape)
    elif kind == "holes":
        mask = rng.random(shape) < 0.3
        mask[0, rng.integers(shape[1])] = True  # at least one hole
        for name in fields:
            fields[name][after] = np.where(mask, np.nan, fields[name][after])
    elif kind == "extreme":
        for name in fields:
            fields[name][after] = 1e9
    else:  # reverse the future (and lift it, so a single future bar changes too)
        for name in fields:
            fields[name][after] = fields[name][after][::-1] * 1.1
    extra = {k: fields[k] for k in panel.extra}
    return replace(panel, **{k: fields[k] for k in OHLCV}, extra=extra)


def _perturbed_macro(cut: pd.Timestamp, delay_days: int, seed: int) -> dict[str, pd.Series]:
    """Bundled macro series with every value published after ``cut`` replaced by noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("VIX", "WTI"):
        s = load_macro(name).copy()
        late = s.index + pd.Timedelta(days=delay_days) > cut
        s[late] = rng.uniform(1, 500, size=int(late.sum()))
        out[name] = s
    return out


@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(min_value=40, max_value=N_BARS - 2),
    fit_gap=st.integers(min_value=0, max_value=30),
    kind=st.sampled_from(["scale", "noise", "holes", "extreme", "reverse"]),
    scaler=st.sampled_from(["none", "zscore", "robust", "rank"]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_no_value_at_or_before_t_depends_on_later_data(
    t: int, fit_gap: int, kind: str, scaler: str, seed: int
) -> None:
    base_panel = _base_panel()
    spec = FeatureSpec(indicators=INDICATORS, scaler=scaler, macro=["VIX", "WTI"])  # type: ignore[arg-type]
    cut = base_panel.index[t]
    fit_end = base_panel.index[max(t - fit_gap, 35)]
    changed = _perturb(base_panel, t, kind, seed)
    assert not np.array_equal(changed.close[t + 1 :], base_panel.close[t + 1 :], equal_nan=True)

    clean = FeaturePipeline(spec).fit(base_panel, None, fit_end)
    dirty = FeaturePipeline(spec, macro_series=_perturbed_macro(cut, 1, seed)).fit(
        changed, None, fit_end
    )
    assert dirty.content_hash == clean.content_hash  # the fit never saw data after fit_end <= t
    a = clean.transform(base_panel).values[: t + 1]
    b = dirty.transform(changed).values[: t + 1]
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a[t]).sum() > 0.8 * a[t].size  # the comparison is not vacuous


def test_harness_covers_every_indicator() -> None:
    covered = {ind.name for ind in INDICATORS}
    assert covered == set(REGISTRY)
    cols = FeatureSpec(indicators=INDICATORS, macro=["VIX", "WTI"]).columns()
    assert "macro_vix" in cols
    assert "rsi_3" in cols
    assert "bb_upper_3_1.5" in cols


def test_harness_detects_a_leak(base_panel: BarPanel) -> None:
    """The harness would catch a feature that reads one bar ahead (a centred window)."""
    close = pd.DataFrame(base_panel.close)
    leaky = close.rolling(3, center=True).mean().to_numpy()
    changed = _perturb(base_panel, 100, "scale", 1)
    leaky_changed = pd.DataFrame(changed.close).rolling(3, center=True).mean().to_numpy()
    assert not np.array_equal(leaky[:101], leaky_changed[:101], equal_nan=True)


def test_macro_asof_uses_only_published_values() -> None:
    s = pd.Series(
        [10.0, 11.0, np.nan, 13.0],
        index=pd.DatetimeIndex(["2020-01-06", "2020-01-07", "2020-01-08", "2020-01-09"], tz="UTC"),
        name="X",
    )
    bars = pd.DatetimeIndex(
        ["2020-01-05", "2020-01-06", "2020-01-07", "2020-01-08", "2020-01-10"], tz="UTC"
    )
    same_day = asof_values(s, bars)
    np.testing.assert_array_equal(same_day, [np.nan, 10.0, 11.0, 11.0, 13.0])
    next_day = asof_values(s, bars, pd.Timedelta(days=1))  # the default: stamped d, known d + 1
    np.testing.assert_array_equal(next_day, [np.nan, np.nan, 10.0, 11.0, 13.0])


def test_pipeline_macro_column_is_lagged_by_the_delay(sp500_panel: BarPanel) -> None:
    part = sp500_panel.slice_time("2015-01-01", "2015-03-31")
    vix = load_macro("VIX")
    fp = FeaturePipeline(FeatureSpec(macro=["VIX"], scaler="none")).transform(part)
    col = fp.feature("macro_vix")[:, 0]
    for i in (5, 20, 40):
        day = part.index[i]
        earlier = vix[vix.index < day]  # published (stamp + 1 day) at or before the bar
        assert col[i] == earlier.iloc[-1]
    same_day = FeaturePipeline(FeatureSpec(macro=["VIX"], scaler="none", macro_delay_days=0))
    assert same_day.transform(part).feature("macro_vix")[20, 0] == vix[part.index[20]]

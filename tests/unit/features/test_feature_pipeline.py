"""FeaturePipeline: fit window, scalers, batch == online, versioned save/load, panel reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import FeatureError, PipelineMismatchError
from tradeforge.data.panel import BarPanel
from tradeforge.features import (
    FeaturePanel,
    FeaturePipeline,
    FeatureSpec,
    build_features,
    panel_bar,
)
from tradeforge.features.registry import REGISTRY

ALL_PRICE_FEATURES = [
    *(n for n in sorted(REGISTRY) if n not in ("xrank", "news_sentiment", "news_count")),
    "xrank_logret_5",
    "ret_20",
    "logret_20",
]


def _online(pipe: FeaturePipeline, panel: BarPanel, start: int = 0) -> np.ndarray:
    return np.stack([pipe.update(panel_bar(panel, i)) for i in range(start, panel.n_bars)])


def test_batch_equals_online_sp500_every_bar(sp500_panel: BarPanel) -> None:
    spec = FeatureSpec.from_names(
        ["logret_1", "rsi_14", "macd_hist_12_26_9", "bb_pctb_20_2", "atr_14", "obv", "dow_sin"],
        macro=["VIX", "WTI"],
    )
    pipe = FeaturePipeline(spec).fit(sp500_panel, "2014-06-01", "2016-12-31")  # VIX: 2014-
    batch = pipe.transform(sp500_panel).values
    online = _online(pipe, sp500_panel)
    assert online.shape == batch.shape
    np.testing.assert_array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-9, equal_nan=True)
    assert np.isfinite(batch[-1]).all()


def test_batch_equals_online_equities_every_bar(equities_panel: BarPanel) -> None:
    """One indicator per kernel kind (window, recursion, running sum, lag, rank, calendar)."""
    names = ["rsi_14", "macd_hist_12_26_9", "bb_pctb_20_2", "obv", "volume_below_20",
             "xrank_logret_5", "month_sin"]  # fmt: skip
    pipe = FeaturePipeline(FeatureSpec.from_names(names, scaler="robust")).fit(equities_panel)
    batch = pipe.transform(equities_panel).values
    online = _online(pipe, equities_panel)
    np.testing.assert_array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-9, equal_nan=True)
    assert np.isfinite(batch[-1]).all()


def test_batch_equals_online_every_feature_with_holes(equities_panel: BarPanel) -> None:
    """Every registered price indicator on 600 bars with staggered starts and NaN holes."""
    part = equities_panel.iloc(slice(0, 600))
    close, high = part.close.copy(), part.high.copy()
    close[:90, 1] = np.nan  # IBM starts late
    close[300:304, 2] = np.nan  # a 4-bar hole in MSFT
    high[450, 0] = np.nan  # one missing high in AAPL
    panel = replace(part, close=close, high=high)
    pipe = FeaturePipeline(FeatureSpec.from_names(ALL_PRICE_FEATURES, scaler="none"))
    batch = pipe.transform(panel).values
    online = _online(pipe, panel)
    np.testing.assert_array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online, batch, rtol=1e-12, atol=1e-9, equal_nan=True)
    assert np.isfinite(batch[-1]).all()
    assert np.isnan(batch[300:304, 2, :]).all(axis=0).sum() >= len(ALL_PRICE_FEATURES) - 6


def test_warm_start_then_update_continues(equities_panel: BarPanel) -> None:
    pipe = FeaturePipeline(FeatureSpec.default()).fit(equities_panel, end="2006-12-31")
    full = pipe.transform(equities_panel).values
    head = equities_panel.iloc(slice(0, 2000))
    warm = pipe.warm_start(head)
    np.testing.assert_array_equal(warm.values, full[:2000])
    rest = _online(pipe, equities_panel, start=2000)
    np.testing.assert_allclose(rest, full[2000:], rtol=0, atol=1e-9, equal_nan=True)
    with pytest.raises(FeatureError, match="is not after the previous bar"):
        pipe.update(panel_bar(equities_panel, 10))
    one = panel_bar(equities_panel.select(["AAPL"]), equities_panel.n_bars - 1)
    with pytest.raises(FeatureError, match="one value per symbol"):
        pipe.update({**one, "timestamp": one["timestamp"] + pd.Timedelta(days=1)})
    with pytest.raises(FeatureError, match="expected 'timestamp'"):
        pipe.update({"close": [1.0, 2.0, 3.0]})
    pipe.reset()
    assert np.isnan(pipe.update(panel_bar(equities_panel, 10))).all()  # fresh warm-up


def test_warmup_property(sp500_panel: BarPanel) -> None:
    pipe = FeaturePipeline(
        FeatureSpec.from_names(["rsi_14", "sma_50", "macd_12_26_9"], scaler="none")
    )
    assert pipe.warmup == 49
    values = pipe.transform(sp500_panel).values
    assert np.isnan(values[: pipe.warmup]).any(axis=(1, 2)).all()
    assert np.isfinite(values[pipe.warmup :]).all()


def test_fit_uses_only_the_window(sp500_panel: BarPanel) -> None:
    spec = FeatureSpec.from_names(["logret_1", "rsi_14", "vol_20"], scaler="zscore", clip=None)
    start, end = "2004-01-01", "2008-12-31"
    pipe = FeaturePipeline(spec).fit(sp500_panel, start, end)
    raw = FeaturePipeline(spec.model_copy(update={"scaler": "none"})).transform(sp500_panel)
    inside = (raw.index >= pd.Timestamp(start, tz="UTC")) & (
        raw.index <= pd.Timestamp(end, tz="UTC")
    )
    window = raw.values[inside, 0, :]
    np.testing.assert_allclose(pipe.stats["center"], window.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pipe.stats["scale"], window.std(axis=0), rtol=1e-12)
    # data after `end` is never read: changing it leaves the fitted pipeline identical
    after = sp500_panel.index > pd.Timestamp(end, tz="UTC")
    noisy = replace(
        sp500_panel, close=np.where(after[:, None], sp500_panel.close * 3.0, sp500_panel.close)
    )
    again = FeaturePipeline(spec).fit(noisy, start, end)
    assert again.content_hash == pipe.content_hash
    scaled = pipe.transform(sp500_panel).feature("rsi_14")[inside]
    assert abs(np.mean(scaled)) < 1e-9
    assert np.std(scaled) == pytest.approx(1.0)
    assert pipe.fit_window == ("2004-01-01T00:00:00+00:00", "2008-12-31T00:00:00+00:00")


def test_robust_and_rank_scalers(sp500_panel: BarPanel) -> None:
    names = ["logret_1", "rsi_14"]
    raw = FeaturePipeline(FeatureSpec.from_names(names, scaler="none")).transform(sp500_panel)
    x = raw.values[:, 0, :]
    robust = FeaturePipeline(FeatureSpec.from_names(names, scaler="robust", clip=None)).fit(
        sp500_panel
    )
    q25, q50, q75 = np.nanpercentile(x, [25, 50, 75], axis=0)
    np.testing.assert_allclose(robust.stats["center"], q50)
    np.testing.assert_allclose(robust.stats["scale"], (q75 - q25) / 1.349)
    rank = FeaturePipeline(FeatureSpec.from_names(names, scaler="rank")).fit(sp500_panel)
    r = rank.transform(sp500_panel).values[:, 0, :]
    valid = ~np.isnan(x)
    assert np.array_equal(valid, ~np.isnan(r))
    assert r[valid].min() >= -1.0
    assert r[valid].max() <= 1.0
    # the rank scaler is monotone and centred: the median maps to ~0
    col = x[:, 1][valid[:, 1]]
    mapped = r[:, 1][valid[:, 1]]
    order = np.argsort(col)
    assert (np.diff(mapped[order]) >= -1e-12).all()
    assert abs(np.median(mapped)) < 0.02
    clipped = FeaturePipeline(FeatureSpec.from_names(names, scaler="zscore", clip=2.0)).fit(
        sp500_panel
    )
    assert np.nanmax(np.abs(clipped.transform(sp500_panel).values)) == 2.0


def test_fit_errors(sp500_panel: BarPanel) -> None:
    pipe = FeaturePipeline(FeatureSpec.from_names(["rsi_14"]))
    with pytest.raises(FeatureError, match="not fitted; call fit"):
        pipe.transform(sp500_panel)
    with pytest.raises(FeatureError, match="contains no bars"):
        pipe.fit(sp500_panel, "2030-01-01", "2031-01-01")
    with pytest.raises(FeatureError, match=r"features \['rsi_14'\] have fewer than 2 valid values"):
        pipe.fit(sp500_panel, None, "1999-01-10")


def test_save_load_is_versioned_and_pickle_free(tmp_path: Path, equities_panel: BarPanel) -> None:
    spec = FeatureSpec.from_names(["rsi_14", "bb_width_20_2"], scaler="rank", macro=["WTI"])
    pipe = FeaturePipeline(spec).fit(equities_panel, "2001-01-01", "2010-12-31")
    pipe.save(tmp_path / "fp")
    files = sorted(p.name for p in (tmp_path / "fp").iterdir())
    assert files == ["pipeline.json", "scaler.npz"]
    meta = json.loads((tmp_path / "fp" / "pipeline.json").read_text())
    assert meta["content_hash"] == pipe.content_hash
    assert meta["names"] == [
        "rsi_14",
        "bb_width_20_2",
        "macro_wti",
    ]
    with np.load(tmp_path / "fp" / "scaler.npz", allow_pickle=False) as z:
        assert z["quantiles"].shape == (3, 201)
    loaded = FeaturePipeline.load(tmp_path / "fp")
    assert loaded.content_hash == pipe.content_hash
    loaded.check_compatible(pipe.content_hash)
    np.testing.assert_array_equal(
        loaded.transform(equities_panel).values, pipe.transform(equities_panel).values
    )
    # a different fit window is a different pipeline
    other = FeaturePipeline(spec).fit(equities_panel, "2001-01-01", "2009-12-31")
    with pytest.raises(PipelineMismatchError) as err:
        other.check_compatible(pipe.content_hash)
    assert pipe.content_hash in str(err.value)
    assert other.content_hash in str(err.value)
    # tampered arrays are detected on load
    with np.load(tmp_path / "fp" / "scaler.npz") as z:
        q = z["quantiles"] * 1.01
    np.savez(tmp_path / "fp" / "scaler.npz", quantiles=q)
    with pytest.raises(FeatureError, match="does not match the content read"):
        FeaturePipeline.load(tmp_path / "fp")
    with pytest.raises(FeatureError, match=r"pipeline\.json missing"):
        FeaturePipeline.load(tmp_path / "nothing")


def test_save_with_live_state_resumes(tmp_path: Path, sp500_panel: BarPanel) -> None:
    pipe = FeaturePipeline(FeatureSpec.default()).fit(sp500_panel, end="2010-12-31")
    full = pipe.transform(sp500_panel).values
    pipe.warm_start(sp500_panel.iloc(slice(0, 3000)))
    pipe.save(tmp_path / "live", include_state=True)
    live = FeaturePipeline.load(tmp_path / "live")
    rows = np.stack([live.update(panel_bar(sp500_panel, i)) for i in range(3000, 3050)])
    np.testing.assert_allclose(rows, full[3000:3050], atol=1e-9)


def test_build_features_and_panel_report(equities_panel: BarPanel) -> None:
    holed = equities_panel.close.copy()
    holed[2000:2003, 1] = np.nan  # three missing IBM closes
    panel = replace(equities_panel, close=holed)
    _pipe, fp = build_features(
        panel, FeatureSpec.from_names(["logret_1", "sma_5"]), None, "2005-12-31"
    )
    assert isinstance(fp, FeaturePanel)
    assert fp.names == ("logret_1", "sma_5")
    sma = fp.feature("sma_5")
    assert np.isnan(sma[2000:2007, 1]).all()
    assert not np.isnan(sma[2007, 1])
    assert not np.isnan(sma[2000:2007, 0]).any()  # other symbols unaffected
    summary = fp.summary()
    json.dumps(summary)  # JSON-able
    assert summary["rows"] == panel.n_bars
    assert summary["symbols"] == ["AAPL", "IBM", "MSFT"]
    assert summary["features"] == ["logret_1", "sma_5"]
    assert summary["start"] == "2000-03-01T00:00:00+00:00"
    holes = summary["per_feature"]["sma_5"]["holes"]
    assert holes == [
        {
            "symbol": "IBM",
            "start": panel.index[2000].isoformat(),
            "end": panel.index[2006].isoformat(),
            "bars": 7,
        }
    ]
    assert summary["per_feature"]["logret_1"]["n_holes"] == 1
    assert summary["n_holes"] == 2
    assert summary["nan_count"] == int(np.isnan(fp.values).sum())
    frame = fp.to_frame()
    assert list(frame.columns) == ["timestamp", "symbol", "logret_1", "sma_5"]
    assert len(frame) == panel.n_bars * 3
    row = frame[(frame["symbol"] == "MSFT") & (frame["timestamp"] == panel.index[100])]
    assert row["sma_5"].item() == fp.feature("sma_5")[100, 2]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    with pytest.raises(FeatureError, match="not in this panel"):
        fp.feature("rsi_14")


def test_symbol_blocks_give_identical_values(equities_panel: BarPanel) -> None:
    """Many symbols run in column groups; the values equal one whole-panel evaluation."""
    from tradeforge.features.graph import SYMBOL_BLOCK, Context

    part = equities_panel.iloc(slice(0, 400))
    copies = 3 * (SYMBOL_BLOCK // 3 + 3)
    arrays = {
        f: np.tile(part.field(f), copies // 3) * (1 + 0.01 * np.arange(copies))
        for f in ("open", "high", "low", "close", "volume")
    }
    arrays["close"][:50, 5] = np.nan  # a late start
    arrays["close"][200:203, SYMBOL_BLOCK + 2] = np.nan  # a hole in the second group
    panel = BarPanel(part.index, tuple(f"S{i}" for i in range(copies)), **arrays)
    pipe = FeaturePipeline(FeatureSpec.from_names(ALL_PRICE_FEATURES[:-3], scaler="none"))
    grouped = pipe.transform(panel).values
    fields = {f: panel.field(f) for f in ("open", "high", "low", "close", "volume")}
    whole, _ = pipe._graph._run(Context.of(fields, panel.index), pipe._outputs, None)
    np.testing.assert_array_equal(grouped, np.stack(whole, axis=-1))
    head, state = pipe.raw(panel.iloc(slice(0, 150)))
    tail, _ = pipe.raw(panel.iloc(slice(150, None)), state)
    np.testing.assert_array_equal(np.concatenate([head, tail]), grouped)

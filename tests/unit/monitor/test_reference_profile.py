"""The reference profile: what it records, its exact JSON round trip, save/load and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tradeforge.core.errors import ArtifactError, ConfigError, FeatureError
from tradeforge.monitor import PROFILE_FILE, ReferenceProfile, build_reference_profile
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.profile import DEFAULT_QUANTILES, pool


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((2000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    feats[:20, 1] = np.nan  # warm-up
    return build_reference_profile(
        feats,
        ["logret_1", "rsi_14", "vol_20"],
        actions=rng.uniform(0, 1, (2000, 2)),
        values=rng.standard_normal(2000),
        oos_returns=0.0004 + 0.01 * rng.standard_normal(500),
        cusum=CusumConfig(n_paths=200),
        metadata={"feature_hash": "abc123", "n_trials": 4},
    )


def test_profile_records_quantiles_bins_and_moments(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((2000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    rsi = profile.features[1]
    assert rsi.name == "rsi_14"
    assert rsi.n == 1980
    assert rsi.nan_fraction == pytest.approx(0.01)
    np.testing.assert_allclose(
        rsi.quantiles, np.quantile(feats[20:, 1], DEFAULT_QUANTILES), rtol=0, atol=0
    )
    assert rsi.mean == pytest.approx(feats[20:, 1].mean(), rel=1e-12)
    assert len(rsi.psi_edges) == 9
    np.testing.assert_allclose(rsi.psi_fractions, 0.1, atol=1e-3)
    np.testing.assert_allclose(profile.feature_means, feats[20:].mean(axis=0), atol=0.1)
    assert profile.action_kind == "continuous"
    assert len(profile.actions) == 2
    assert profile.metadata == {"feature_hash": "abc123", "n_trials": "4"}


def test_profile_calibrates_the_cusum_on_the_oos_returns(profile: ReferenceProfile) -> None:
    cal = profile.cusum
    assert cal is not None
    assert profile.return_stream is not None
    rng = np.random.default_rng(0)
    rng.standard_normal((2000, 3)), rng.uniform(0, 1, (2000, 2)), rng.standard_normal(2000)
    returns = 0.0004 + 0.01 * rng.standard_normal(500)
    assert cal.mean == pytest.approx(returns.mean(), rel=1e-12)
    assert cal.std == pytest.approx(returns.std(ddof=1), rel=1e-12)
    assert cal.k == 0.5
    assert 3.0 < cal.h < 8.0
    assert cal.arl0_bootstrap >= 250
    assert profile.return_stream.mean == pytest.approx(returns.mean(), rel=1e-12)


def test_json_round_trip_is_exact(profile: ReferenceProfile, tmp_path: Path) -> None:
    assert ReferenceProfile.from_json(profile.to_json()) == profile
    path = profile.save(tmp_path / "artifact")
    assert path == tmp_path / "artifact" / PROFILE_FILE
    loaded = ReferenceProfile.load(tmp_path / "artifact")
    assert loaded == profile
    assert loaded.features[0].quantiles == profile.features[0].quantiles  # bit-exact floats
    assert ReferenceProfile.load(path) == profile


def test_a_panel_is_pooled_over_symbols_time_major() -> None:
    rng = np.random.default_rng(1)
    panel = rng.standard_normal((300, 4, 2))
    prof = build_reference_profile(panel, ["a", "b"])
    assert prof.n_symbols == 4
    assert prof.features[0].n == 1200
    np.testing.assert_array_equal(pool(panel)[4], panel[1, 0])
    flat = build_reference_profile(panel.reshape(-1, 2), ["a", "b"])
    assert prof.features[0].quantiles == flat.features[0].quantiles


def test_integer_actions_are_categories() -> None:
    actions = np.array([0, 1, 2, 2, 1, 0, 2, 2] * 50)
    prof = build_reference_profile(np.zeros((400, 1)), ["x"], actions=actions)
    assert prof.action_kind == "discrete"
    act = prof.actions[0]
    assert act.discrete
    assert act.psi_edges == (0.5, 1.5)
    np.testing.assert_allclose(act.psi_fractions, [0.25, 0.25, 0.5])


def test_a_constant_or_empty_feature_still_builds() -> None:
    x = np.c_[np.ones(100), np.full(100, np.nan)]
    prof = build_reference_profile(x, ["one", "none"])
    one = prof.features[0]
    # one edge at the value: anything below it lands in a bin the reference never used
    assert one.std == 0.0
    assert one.psi_edges == (1.0,)
    assert one.psi_fractions == (0.0, 1.0)
    assert prof.features[1].n == 0
    assert prof.features[1].mean is None
    assert ReferenceProfile.from_json(prof.to_json()) == prof


def test_builder_errors_name_the_problem() -> None:
    with pytest.raises(FeatureError, match="features have 2 columns; expected 3"):
        build_reference_profile(np.zeros((10, 2)), ["a", "b", "c"])
    with pytest.raises(FeatureError, match="repeat"):
        build_reference_profile(np.zeros((10, 2)), ["a", "a"])
    with pytest.raises(ConfigError, match="quantiles"):
        build_reference_profile(np.zeros((10, 1)), ["a"], quantiles=[0.1, 0.5, 0.9])
    with pytest.raises(ConfigError, match="psi_bins = 1"):
        build_reference_profile(np.zeros((10, 1)), ["a"], psi_bins=1)


def test_load_errors_are_artifact_errors(profile: ReferenceProfile, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="has no reference profile"):
        ReferenceProfile.load(tmp_path)
    (tmp_path / PROFILE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        ReferenceProfile.load(tmp_path)
    raw = json.loads(profile.to_json())
    raw["format"] = 99
    with pytest.raises(ArtifactError, match="format = 99; expected 1"):
        ReferenceProfile.from_json(json.dumps(raw))
    raw["format"] = 1
    raw["features"][0]["n"] = "many"
    with pytest.raises(ArtifactError, match=r"features\.0\.n"):
        ReferenceProfile.from_json(json.dumps(raw))

"""drift_report: batch statuses, rollback reasons, the online replay, JSON and HTML, metrics."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tradeforge.core.errors import FeatureError
from tradeforge.monitor import (
    DriftConfig,
    DriftMonitor,
    build_reference_profile,
    drift_metrics,
    drift_report,
    monitor_metrics,
    render_prometheus,
)
from tradeforge.monitor.config import CusumConfig
from tradeforge.monitor.profile import ReferenceProfile

NAMES = ["a", "b", "c", "d<script>"]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(7)
    return build_reference_profile(
        rng.standard_normal((3000, 4)),
        NAMES,
        actions=rng.uniform(-1, 1, (3000, 2)),
        oos_returns=0.0005 + 0.01 * rng.standard_normal(500),
        cusum=CusumConfig(n_paths=200),
    )


def _live(shift: dict[int, float], n: int = 600, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 4))
    for j, size in shift.items():
        x[:, j] += size
    return x


def test_two_drifting_features_warn_three_roll_back(profile: ReferenceProfile) -> None:
    two = drift_report(profile, _live({0: 1.0, 1: 1.0}))
    assert two.drifted_features == ("a", "b")
    assert not any(r.startswith("features:") for r in two.rollback_reasons)
    three = drift_report(profile, _live({0: 1.0, 1: 1.0, 2: -1.0}))
    assert three.drifted_features == ("a", "b", "c")
    assert three.rollback_reasons[0] == "features: 3 features drifted (>= 3): a, b, c"
    assert three.rollback
    quiet = drift_report(profile, _live({}))
    assert quiet.drifted_features == ()
    assert not quiet.rollback
    assert {c.status for c in quiet.features} <= {"ok", "warn"}
    a = three.features[0]
    assert a.mean_shift == pytest.approx(1.0, abs=0.15)
    assert a.std_ratio == pytest.approx(1, abs=0.1)


def test_an_action_shift_and_a_cusum_alarm_roll_back(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, (600, 2))
    actions[:, 1] = np.clip(actions[:, 1] + 0.8, -1, 1)
    returns = 0.0005 + 0.01 * rng.standard_normal(600)
    returns[300:] -= 0.02  # a 2-sigma fall
    report = drift_report(profile, _live({}), actions, returns)
    assert [c.status for c in report.actions] == ["ok", "drift"]
    kinds = [r.split(":")[0] for r in report.rollback_reasons]
    assert "actions" in kinds
    assert "cusum" in kinds
    cusum = next(d for d in report.detectors if d.name == "cusum:returns")
    assert cusum.rollback
    assert cusum.alarm_bars
    assert 300 <= cusum.alarm_bars[0] < 320


def test_the_batch_replay_equals_feeding_the_monitor_bar_by_bar(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(11)
    x = _live({}, n=1500, seed=11)
    x[700:, 0] += 1.5
    actions = rng.uniform(-1, 1, (1500, 2))
    actions[900:] += 0.5
    returns = 0.0005 + 0.01 * rng.standard_normal(1500)
    report = drift_report(profile, x, actions, returns)
    monitor = DriftMonitor(profile)
    for t in range(1500):
        monitor.update(x[t], actions[t], float(returns[t]))
    assert [a.to_dict() for a in monitor.alarms] == [a.to_dict() for a in report.alarms]
    assert len(report.alarms) >= 3


def test_report_json_is_strict_and_complete(profile: ReferenceProfile) -> None:
    x = _live({1: 2.0})
    x[:, 3] = np.nan  # a channel without live values: null, not NaN
    index = [f"2024-01-{1 + i % 28:02d}" for i in range(600)]
    report = drift_report(profile, x, index=index, metadata={"policy": "p1"})
    data = json.loads(report.to_json())
    assert data["n_bars"] == 600
    assert data["start"] == "2024-01-01"
    assert data["features"][3]["status"] == "empty"
    assert data["features"][3]["psi"] is None
    assert data["drifted_features"] == ["b"]
    assert data["config"]["psi_threshold"] == 0.25
    assert data["metadata"] == {"policy": "p1"}
    window = next(d for d in data["detectors"] if d["name"] == "features")
    assert window["n_alarms"] >= 1
    assert window["alarm_times"][0] == index[window["alarm_bars"][0]]


def test_html_report_escapes_names_and_shows_the_verdict(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    report = drift_report(profile, _live({0: 1.0, 1: 1.0, 2: 1.0}))
    path = report.write_html(tmp_path / "out" / "drift.html")
    html = path.read_text(encoding="utf-8")
    assert "Rollback triggered" in html
    assert "d&lt;script&gt;" in html
    assert "<script" not in html
    assert html.count('<tr class="drift">') == 3


def test_metrics_follow_prometheus_conventions(profile: ReferenceProfile) -> None:
    report = drift_report(profile, _live({0: 1.0, 1: 1.0, 2: 1.0}))
    samples = drift_metrics(report, {"model": "spy-ppo"})
    by_key = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    key = ("tradeforge_feature_psi", (("feature", "a"), ("model", "spy-ppo")))
    assert by_key[key] == pytest.approx(report.features[0].psi)
    assert by_key[("tradeforge_features_drifted", (("model", "spy-ppo"),))] == 3.0
    assert by_key[("tradeforge_drift_rollback", (("model", "spy-ppo"),))] == 1.0
    cusum = ("tradeforge_cusum_threshold", (("model", "spy-ppo"), ("stream", "returns")))
    assert profile.cusum is not None
    assert by_key[cusum] == profile.cusum.h
    for s in samples:
        assert re.fullmatch(r"tradeforge_[a-z_]+", s.name)
        assert s.name.endswith("_total") == (s.name == "tradeforge_drift_alarms_total")
    text = render_prometheus(samples)
    line = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? (NaN|[-+0-9.eE]+|[+-]Inf)$')
    names = set()
    for row in text.splitlines():
        if row.startswith("# TYPE"):
            name = row.split()[2]
            assert name not in names
            names.add(name)
        elif not row.startswith("# HELP"):
            assert line.match(row), row
    assert 'feature="d<script>"' in text


def test_label_values_are_escaped() -> None:
    from tradeforge.monitor import MetricSample

    text = render_prometheus([MetricSample("tradeforge_feature_psi", {"feature": 'x"\\\n'}, 0.5)])
    assert 'feature="x\\"\\\\\\n"' in text
    assert text.endswith(" 0.5\n")


def test_live_monitor_metrics_carry_the_rolling_psi_and_cusum(profile: ReferenceProfile) -> None:
    monitor = DriftMonitor(profile)
    x = _live({0: 2.0}, n=300)
    for t in range(300):
        monitor.update(x[t], None, -0.02)
    samples = {(s.name, s.labels.get("feature") or s.labels.get("detector")): s.value
               for s in monitor_metrics(monitor)}  # fmt: skip
    assert samples[("tradeforge_feature_psi", "a")] > 0.25
    assert samples[("tradeforge_drift_rollback", None)] == 1.0  # the CUSUM saw -2.5 sigma bars
    assert samples[("tradeforge_drift_alarms_total", "cusum:returns")] >= 1
    assert math.isfinite(samples[("tradeforge_cusum_statistic", None)])


def test_inputs_that_do_not_fit_the_profile_are_refused(profile: ReferenceProfile) -> None:
    with pytest.raises(FeatureError, match="features have 3 columns; expected 4"):
        drift_report(profile, np.zeros((10, 3)))
    with pytest.raises(FeatureError, match="actions have 3 dimensions; the profile has 2"):
        drift_report(profile, np.zeros((10, 4)), np.zeros((10, 3)))
    with pytest.raises(FeatureError, match="different lengths"):
        drift_report(profile, np.zeros((10, 4)), np.zeros((9, 2)))
    with pytest.raises(FeatureError, match="2 symbols; the profile was built on 1"):
        drift_report(profile, np.zeros((10, 2, 4)))
    with pytest.raises(ValueError, match="psi_warn"):
        DriftConfig(psi_warn=0.5)
    with pytest.raises(ValueError, match="unknown detector"):
        DriftConfig(rollback_on=("nope",))


def test_real_sp500_features_drift_in_the_2008_crisis_but_not_in_calm_years(sp500_panel) -> None:
    from tradeforge.features.pipeline import FeaturePipeline
    from tradeforge.features.spec import FeatureSpec

    names = ["logret_1", "logret_5", "rsi_14", "bb_pctb_20_2", "natr_14", "vol_20"]
    pipe = FeaturePipeline(FeatureSpec.from_names(names)).fit(
        sp500_panel, "2003-06-01", "2006-12-31"
    )
    panel = pipe.transform(sp500_panel)

    def rows(start: str, end: str) -> np.ndarray:
        keep = (panel.index >= start) & (panel.index <= end)
        return panel.values[keep][:, 0, :]

    profile = build_reference_profile(rows("2003-06-01", "2006-12-31"), pipe.names)
    crisis = drift_report(profile, rows("2008-09-01", "2009-03-31"))
    assert {"logret_1", "vol_20"} <= set(crisis.drifted_features)
    assert crisis.rollback_reasons
    assert crisis.rollback_reasons[0].startswith("features:")
    for start, end in (("2005-01-01", "2005-12-31"), ("2013-01-01", "2014-12-31")):
        calm = drift_report(profile, rows(start, end))
        assert calm.drifted_features == (), start
        assert not calm.rollback, (start, calm.rollback_reasons)

"""Feature specs: column naming, name parsing, YAML shape, hashing and error messages."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tradeforge.core.errors import FeatureError
from tradeforge.features import FeatureSpec, IndicatorSpec, compute, parse_feature_name
from tradeforge.features.registry import REGISTRY


@pytest.mark.parametrize(
    ("name", "indicator", "params"),
    [
        ("rsi_14", "rsi", {"n": 14}),
        ("ema_20", "ema", {"n": 20}),
        ("macd_12_26_9", "macd", {"fast": 12, "slow": 26, "signal": 9}),
        ("macd_signal_12_26_9", "macd_signal", {"fast": 12, "slow": 26, "signal": 9}),
        ("macd_hist_12_26_9", "macd_hist", {"fast": 12, "slow": 26, "signal": 9}),
        ("bb_upper_20_2", "bb_upper", {"n": 20, "k": 2.0}),
        ("bb_lower_20_2.5", "bb_lower", {"n": 20, "k": 2.5}),
        ("atr_14", "atr", {"n": 14}),
        ("obv", "obv", {}),
        ("xrank_logret_20", "xrank", {"of": "logret_20"}),
    ],
)
def test_names_round_trip(name: str, indicator: str, params: dict[str, object]) -> None:
    spec = parse_feature_name(name)
    assert spec.name == indicator
    assert spec.resolved_params() == params
    assert spec.column() == name


def test_defaults_fill_missing_params() -> None:
    assert IndicatorSpec(name="rsi").column() == "rsi_14"
    assert IndicatorSpec(name="macd_hist").column() == "macd_hist_12_26_9"
    assert IndicatorSpec(name="bb_upper", params={"n": 10}).column() == "bb_upper_10_2"
    assert parse_feature_name("atr").column() == "atr_14"


def test_every_registered_indicator_has_a_column_name() -> None:
    for name, ind in REGISTRY.items():
        params = {"of": "ret_1"} if name == "xrank" else {}
        col = IndicatorSpec(name=name, params=params).column()
        assert col.startswith(name)
        assert parse_feature_name(col).column() == col
        assert ind.description


def test_unknown_indicator_names_the_key_and_allowed_values() -> None:
    spec = FeatureSpec(indicators=[IndicatorSpec(name="rsi"), IndicatorSpec(name="stochastic")])
    with pytest.raises(FeatureError) as err:
        spec.columns()
    msg = str(err.value)
    assert "features.indicators[1].name = 'stochastic'" in msg
    assert "rsi" in msg
    assert "macd_hist" in msg


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"n": 1}, "features.indicators[0].params.n = 1: expected a value >= 2"),
        ({"n": 2.5}, "features.indicators[0].params.n = 2.5: expected an integer"),
        ({"n": "x"}, "features.indicators[0].params.n = 'x': expected an integer"),
        ({"window": 5}, "unknown parameter(s) ['window'] for 'rsi'; allowed: ['n']"),
    ],
)
def test_bad_params_name_the_key(params: dict[str, object], fragment: str) -> None:
    spec = FeatureSpec(indicators=[IndicatorSpec(name="rsi", params=params)])  # type: ignore[arg-type]
    with pytest.raises(FeatureError) as err:
        spec.columns()
    assert fragment in str(err.value)


def test_bad_names_in_from_names_and_compute() -> None:
    with pytest.raises(FeatureError, match=r"'rsx_14' is not '<indicator>_<params>'.*allowed"):
        FeatureSpec.from_names(["rsx_14"])
    with pytest.raises(FeatureError, match=r"params.n = 0: expected a value >= 2"):
        parse_feature_name("ema_0")
    frame = pd.DataFrame({"close": [1.0, 2.0]})
    with pytest.raises(FeatureError, match=r"missing columns \['high', 'low'\]"):
        compute(frame, ["atr_14"])
    with pytest.raises(FeatureError, match="allowed: VIX, WTI"):
        FeatureSpec(macro=["GOLD"]).columns()
    with pytest.raises(FeatureError, match="duplicate columns"):
        FeatureSpec.from_names(["rsi_14", "rsi"]).columns()
    with pytest.raises(FeatureError, match=r"features.clip = -1.0"):
        FeatureSpec.from_names(["rsi_14"], clip=-1.0).columns()


def test_yaml_section_and_hash() -> None:
    text = """
features:
  scaler: robust
  clip: 4.0
  macro: [vix]
  indicators:
    - {name: rsi, params: {n: 14}}
    - {name: macd_hist}
    - {name: bb_pctb, params: {n: 20, k: 2}}
"""
    spec = FeatureSpec.model_validate(yaml.safe_load(text)["features"])
    assert spec.columns() == ("rsi_14", "macd_hist_12_26_9", "bb_pctb_20_2", "macro_vix")
    same = FeatureSpec.from_names(
        ["rsi", "macd_hist_12_26_9", "bb_pctb_20_2.0"], scaler="robust", clip=4.0, macro=["VIX"]
    )
    assert spec.spec_hash == same.spec_hash  # defaults resolved before hashing
    assert spec.spec_hash != FeatureSpec.from_names(["rsi_14"]).spec_hash
    with pytest.raises(ValueError, match="extra"):
        FeatureSpec.model_validate({"indicators": [], "scaler": "zscore", "colour": "red"})
    with pytest.raises(ValueError, match="scaler"):
        FeatureSpec.model_validate({"scaler": "minmax"})


def test_indicators_may_be_listed_by_column_name() -> None:
    spec = FeatureSpec.model_validate(
        {"indicators": ["rsi_14", {"name": "ema", "params": {"n": 5}}]}
    )
    assert spec.columns() == ("rsi_14", "ema_5")
    with pytest.raises(ValueError, match="'foo_3' is not"):
        FeatureSpec.model_validate({"indicators": ["foo_3"]})


def test_default_spec() -> None:
    spec = FeatureSpec.default()
    cols = spec.columns()
    assert "rsi_14" in cols
    assert "macd_hist_pct_12_26_9" in cols
    assert len(cols) == len(set(cols))
    assert spec.scaler == "zscore"

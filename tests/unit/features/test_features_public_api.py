"""The public API of tradeforge.features is what __all__ lists, and the contract names exist."""

from __future__ import annotations

import tradeforge.features as features


def test_all_names_resolve() -> None:
    for name in features.__all__:
        assert getattr(features, name) is not None, name
    assert sorted(features.__all__) == sorted(set(features.__all__))


def test_contract_surface() -> None:
    pipe_cls = features.FeaturePipeline
    for attr in (
        "fit",
        "transform",
        "update",
        "names",
        "warmup",
        "content_hash",
        "check_compatible",
        "save",
        "load",
    ):
        assert hasattr(pipe_cls, attr), attr
    for attr in ("to_frame", "summary", "feature"):
        assert hasattr(features.FeaturePanel, attr), attr
    assert callable(features.FeatureSpec.default)
    assert callable(features.FeatureSpec.from_names)
    assert callable(features.build_features)
    assert callable(features.compute)


def test_available_indicators_describe_the_registry() -> None:
    listed = features.available_indicators()
    assert set(listed) == set(features.REGISTRY)
    assert "Wilder" in listed["rsi"]

from __future__ import annotations

import numpy as np
import pytest
from agent_helpers import val_observations

from tradeforge.agents import PolicyRegistry, load_policy
from tradeforge.core.errors import AgentError, ArtifactError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def test_register_versions_aliases_and_round_trip(artifact_copy, mlflow_uri, tmp_path):
    registry = PolicyRegistry(mlflow_uri)
    first = registry.register(artifact_copy, "spy-ppo")
    assert (first.version, first.aliases) == (1, ("challenger",))
    assert first.tags["algo"] == "ppo"
    assert first.tags["feature_hash"] == load_policy(artifact_copy).feature_hash
    assert "validation.sharpe" in first.tags
    second = registry.register(artifact_copy, "spy-ppo", tags={"note": "retrain"})
    assert (second.version, second.aliases) == (2, ("challenger",))
    assert registry.get("spy-ppo", 1).aliases == ()
    champion = registry.promote("spy-ppo", 1)
    assert champion.aliases == ("champion",)
    assert [(v.version, v.aliases) for v in registry.versions("spy-ppo")] == [
        (1, ("champion",)),
        (2, ("challenger",)),
    ]
    assert registry.get("spy-ppo", "challenger").tags["note"] == "retrain"
    assert registry.names() == ["spy-ppo"]
    # the registered directory is the artifact, byte for byte, and acts identically
    loaded = registry.load("spy-ppo", "champion", dst=tmp_path / "dl")
    local = load_policy(artifact_copy)
    for obs in val_observations(15):
        np.testing.assert_array_equal(loaded.act(obs), local.act(obs))
    assert loaded.spec == local.spec
    # a new registry object on the same store sees the same state
    again = PolicyRegistry(mlflow_uri)
    assert again.get("spy-ppo", "champion").version == 1


def test_register_reuses_training_run_artifacts(tmp_path, mlflow_uri):
    from agent_helpers import VAL, make_env_factory, tiny_config

    from tradeforge.agents import train_agent

    config = tiny_config(
        tracking={"mlflow": True, "mlflow_uri": mlflow_uri, "learning_curve": False}
    )
    result = train_agent(
        config,
        make_env_factory(episode_length=32),
        make_env_factory(start=VAL[0], end=VAL[1]),
        tmp_path / "run",
    )
    registry = PolicyRegistry(mlflow_uri)
    info = registry.register(result.artifact_path, "trained", run_id=result.mlflow_run_id)
    assert info.run_id == result.mlflow_run_id
    assert info.source == f"runs:/{result.mlflow_run_id}/policy"
    listed = registry.client.list_artifacts(result.mlflow_run_id, "policy")
    assert sorted(a.path for a in listed).count("policy/model.zip") == 1
    path = registry.download("trained", "challenger", tmp_path / "dl")
    assert (path / "model.zip").read_bytes() == (result.artifact_path / "model.zip").read_bytes()


def test_registry_errors_name_what_exists(artifact_copy, mlflow_uri):
    registry = PolicyRegistry(mlflow_uri)
    with pytest.raises(AgentError, match=r"'nope' not found .* known: none"):
        registry.get("nope", "champion")
    registry.register(artifact_copy, "m")
    with pytest.raises(AgentError, match=r"no alias 'champion'; aliases: challenger=v1"):
        registry.get("m", "champion")
    with pytest.raises(AgentError, match=r"no version 7; versions: \[1\]"):
        registry.get("m", 7)
    with pytest.raises(AgentError, match="alias = 'v2' is not valid"):
        registry.set_alias("m", "v2", 1)
    (artifact_copy / "metrics.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"metrics\.json is corrupted"):
        registry.register(artifact_copy, "m")
    assert [v.version for v in registry.versions("m")] == [1]


def test_promote_keeps_the_replaced_champion_and_rollback_restores_it(artifact_copy, mlflow_uri):
    registry = PolicyRegistry(mlflow_uri)
    for _ in range(3):
        registry.register(artifact_copy, "m")  # v1, v2, v3 (candidate)
    assert registry.promote("m", 1).aliases == ("champion",)
    assert registry.aliases("m") == {"challenger": 3, "champion": 1}  # nothing replaced
    registry.promote("m", 2)
    assert registry.aliases("m") == {"challenger": 3, "champion": 2, "previous_champion": 1}
    registry.promote("m", "2")  # the champion again: previous_champion stays
    assert registry.aliases("m")["previous_champion"] == 1
    assert registry.promote("m", "challenger").version == 3
    assert registry.aliases("m") == {"challenger": 3, "champion": 3, "previous_champion": 2}
    restored = registry.rollback("m")
    assert (restored.version, restored.aliases) == (2, ("champion",))
    assert registry.aliases("m") == {"challenger": 3, "champion": 2}
    assert PolicyRegistry(mlflow_uri).get("m", "champion").version == 2  # stored, not cached
    with pytest.raises(
        AgentError,
        match=r"'m' has no alias 'previous_champion' to roll back to; "
        r"aliases: challenger=v3, champion=v2",
    ):
        registry.rollback("m")
    with pytest.raises(AgentError, match="'nope' not found"):
        registry.rollback("nope")
    with pytest.raises(AgentError, match=r"'m' has no version 9; versions: \[1, 2, 3\]"):
        registry.promote("m", 9)
    assert registry.aliases("m") == {"challenger": 3, "champion": 2}


def test_registry_default_uri_and_refusing_a_missing_store(tmp_path, monkeypatch):
    from tradeforge.agents.registry import default_registry_uri

    monkeypatch.delenv("TRADEFORGE_REGISTRY_URI", raising=False)
    monkeypatch.setenv("TRADEFORGE_HOME", str(tmp_path / "home"))
    home_store = tmp_path / "home" / "registry" / "mlflow.db"
    assert default_registry_uri() == f"sqlite:///{home_store.resolve()}"
    missing = tmp_path / "none" / "mlflow.db"
    monkeypatch.setenv("TRADEFORGE_REGISTRY_URI", f"sqlite:///{missing}")
    assert default_registry_uri() == f"sqlite:///{missing}"
    with pytest.raises(AgentError, match=r"no MLflow store at '.*none/mlflow\.db'"):
        PolicyRegistry(create=False)
    assert not missing.parent.exists()  # nothing created
    with pytest.raises(AgentError, match=r"no MLflow store at '.*home/registry/mlflow\.db'"):
        PolicyRegistry(f"sqlite:///{home_store}", create=False)
    assert not home_store.parent.exists()


def test_registry_creates_a_missing_store_and_its_folder(tmp_path):
    store = tmp_path / "deep" / "registry" / "mlflow.db"
    registry = PolicyRegistry(f"sqlite:///{store}")
    assert registry.names() == []
    assert store.is_file()

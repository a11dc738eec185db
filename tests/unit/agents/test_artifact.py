from __future__ import annotations

import json

import numpy as np
import pytest
from agent_helpers import StandInPipeline, val_observations

from tradeforge.agents import LoadedPolicy, load_policy
from tradeforge.agents.artifact import verify_manifest, write_manifest
from tradeforge.core.errors import ArtifactError, PipelineMismatchError
from tradeforge.core.policy import Policy


def test_artifact_holds_everything_and_loads_as_policy(artifact_copy):
    policy = load_policy(artifact_copy)
    assert isinstance(policy, LoadedPolicy)
    assert isinstance(policy, Policy)
    assert policy.algo == "ppo"
    assert policy.feature_hash == StandInPipeline().content_hash
    assert isinstance(policy.pipeline, StandInPipeline)
    assert policy.metadata["data_ranges"] == {"train": [0, 300], "validation": [300, 420]}
    assert policy.metadata["config"]["agent"]["algo"] == "ppo"
    assert set(policy.metrics) >= {"validation", "best_seed", "seeds", "spread"}
    assert policy.metrics["spread"]["sharpe"]["n"] == 1.0
    version = policy.metadata["version"]
    assert {"tradeforge", "git_sha", "torch", "stable_baselines3", "numpy"} <= set(version)
    spec = json.loads((artifact_copy / "spec.json").read_text())
    assert spec["observation"]["shape"] == [4]
    assert spec["action"] == {"type": "discrete", "n": 3, "start": 0}
    assert spec["action_weights"] == [[-1.0], [0.0], [1.0]]
    # act returns target weights from the action table; equal inputs give equal outputs
    weights = [policy.act(o) for o in val_observations(10)]
    assert all(w.shape == (1,) and w[0] in (-1.0, 0.0, 1.0) for w in weights)
    again = load_policy(artifact_copy)
    for obs, w in zip(val_observations(10), weights, strict=True):
        np.testing.assert_array_equal(again.act(obs), w)


@pytest.mark.parametrize(
    ("name", "message"),
    [("model.zip", "model.zip is corrupted"), ("normalizer.json", "normalizer.json is corrupted")],
)
def test_altered_file_is_named(artifact_copy, name, message):
    path = artifact_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=message):
        load_policy(artifact_copy)


def test_missing_files_and_manifest(artifact_copy):
    (artifact_copy / "spec.json").unlink()
    with pytest.raises(ArtifactError, match=r"spec\.json listed in manifest\.json is missing"):
        load_policy(artifact_copy)
    (artifact_copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="not a tradeforge policy artifact"):
        load_policy(artifact_copy)
    with pytest.raises(ArtifactError, match="is not a directory"):
        load_policy(artifact_copy / "nope")


def test_mismatched_spec_is_caught_even_with_a_fresh_manifest(artifact_copy):
    spec = json.loads((artifact_copy / "spec.json").read_text())
    spec["observation"]["shape"] = [6]
    (artifact_copy / "spec.json").write_text(json.dumps(spec))
    write_manifest(artifact_copy)
    verify_manifest(artifact_copy)
    with pytest.raises(ArtifactError, match=r"spec\.json has an invalid space"):
        load_policy(artifact_copy)  # bounds of shape (4,) with shape [6]
    del spec["observation"]["low"], spec["observation"]["high"]
    (artifact_copy / "spec.json").write_text(json.dumps(spec))
    write_manifest(artifact_copy)
    with pytest.raises(ArtifactError, match=r"observation space .* does not match spec\.json"):
        load_policy(artifact_copy)


def test_normalizer_shape_mismatch(artifact_copy):
    stats = json.loads((artifact_copy / "normalizer.json").read_text())
    stats["obs_rms"]["mean"] = [0.0] * 5
    (artifact_copy / "normalizer.json").write_text(json.dumps(stats))
    write_manifest(artifact_copy)
    with pytest.raises(ArtifactError, match=r"normalizer\.json statistics have shape \(5,\)"):
        load_policy(artifact_copy)


def test_feature_hash_mismatch_names_both_hashes(artifact_copy):
    trained = StandInPipeline().content_hash
    other = StandInPipeline(scale=50.0)
    with pytest.raises(PipelineMismatchError) as info:
        load_policy(artifact_copy, expected_feature_hash=other.content_hash)
    assert trained in str(info.value)
    assert other.content_hash in str(info.value)
    policy = load_policy(artifact_copy, expected_feature_hash=trained)
    policy.check_pipeline(StandInPipeline())
    with pytest.raises(PipelineMismatchError, match="features/"):
        policy.check_pipeline(other)


def test_altered_pipeline_hash_in_features_folder(artifact_copy):
    (artifact_copy / "features" / "pipeline.json").write_text(
        json.dumps({"scale": 1.0, "names": ["ret"]})
    )
    write_manifest(artifact_copy)
    with pytest.raises(ArtifactError, match="features/ pipeline hash"):
        load_policy(artifact_copy)


def test_wrong_observation_shape_at_act(artifact_copy):
    policy = load_policy(artifact_copy)
    with pytest.raises(ArtifactError, match=r"observation shape \(6,\) does not match"):
        policy.act(np.zeros(6, dtype=np.float32))


def test_unknown_algo_in_spec(artifact_copy):
    spec = json.loads((artifact_copy / "spec.json").read_text())
    spec["algo"] = "dqn"
    (artifact_copy / "spec.json").write_text(json.dumps(spec))
    write_manifest(artifact_copy)
    with pytest.raises(ArtifactError, match=r"algo 'dqn' is not usable.*ppo, a2c"):
        load_policy(artifact_copy)

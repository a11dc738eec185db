"""``tradeforge models list|show`` and usage errors on a real local MLflow registry (sqlite);
promote and rollback through the governance guard are in tests/unit/governance/test_gov_models_cmd.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.testing.cli import run_cli as run
from tradeforge.testing.registry import make_registry_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def _store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow sqlite store with model ``spy-ppo`` v1..v3 (v3 the challenger)."""
    return make_registry_store(tmp_path_factory.mktemp("registry") / "mlflow.db",
                               tags={"algo": "ppo"})  # fmt: skip


@pytest.fixture
def registry_uri(_store_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "store" / "mlflow.db"
    target.parent.mkdir()
    shutil.copy(_store_template, target)
    return f"sqlite:///{target}"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def aliases(uri: str) -> dict[str, int]:
    return PolicyRegistry(uri).aliases("spy-ppo")


def test_list_models_and_versions(capsys, registry_uri):
    listed = run_json(capsys, "models", "list", "--registry-uri", registry_uri)
    assert listed == {
        "registry_uri": registry_uri,
        "models": [{"name": "spy-ppo", "versions": 3, "aliases": {"challenger": 3}}],
    }
    versions = run_json(capsys, "models", "list", "spy-ppo", "--registry-uri", registry_uri)
    assert [(v["version"], v["aliases"]) for v in versions["versions"]] == [
        (1, []),
        (2, []),
        (3, ["challenger"]),
    ]
    assert versions["versions"][0]["tags"] == {"algo": "ppo"}
    assert versions["versions"][0]["created_at"].startswith("20")
    code, out, _ = run(capsys, "models", "list", "spy-ppo", "--registry-uri", registry_uri)
    assert code == 0
    assert "challenger" in out
    assert "ppo" in out


def test_show_a_version_by_number_or_alias(capsys, registry_uri):
    shown = run_json(capsys, "models", "show", "spy-ppo", "2", "--registry-uri", registry_uri)
    assert (shown["name"], shown["version"], shown["aliases"]) == ("spy-ppo", 2, [])
    assert shown["source"].endswith("v2")
    by_alias = run_json(
        capsys, "models", "show", "spy-ppo", "challenger", "--registry-uri", registry_uri
    )
    assert by_alias["version"] == 3
    # no champion yet: the default reference names the aliases that exist
    code, out, err = run(capsys, "models", "show", "spy-ppo", "--registry-uri", registry_uri)
    assert (code, out) == (2, "")
    assert err == "error: 'spy-ppo' has no alias 'champion'; aliases: challenger=v3\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("promote", "spy-ppo", "9"), "error: 'spy-ppo' has no version 9; versions: [1, 2, 3]"),
        (("promote", "spy-ppo", "gold"), "error: 'spy-ppo' has no alias 'gold'; aliases:"),
        (("show", "nope"), "error: registered model 'nope' not found in sqlite:///"),
        (("rollback", "nope"), "error: registered model 'nope' not found in sqlite:///"),
    ],
)
def test_missing_model_version_or_alias_is_one_line(capsys, registry_uri, argv, message):
    code, out, err = run(capsys, "models", *argv, "--registry-uri", registry_uri)
    assert (code, out) == (2, "")
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert aliases(registry_uri) == {"challenger": 3}


def test_default_store_comes_from_the_environment_and_is_never_created(
    capsys, registry_uri, tmp_path, monkeypatch
):
    monkeypatch.setenv("TRADEFORGE_REGISTRY_URI", registry_uri)
    listed = run_json(capsys, "models", "list")
    assert listed["models"][0]["name"] == "spy-ppo"
    missing = tmp_path / "absent" / "mlflow.db"
    monkeypatch.setenv("TRADEFORGE_REGISTRY_URI", f"sqlite:///{missing}")
    code, out, err = run(capsys, "models", "list")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: registry uri = 'sqlite:///{missing}': no MLflow store at")
    assert err.count("\n") == 1
    assert not missing.parent.exists()
    # unset: the store in the tradeforge home, which the commands never create either
    monkeypatch.delenv("TRADEFORGE_REGISTRY_URI")
    monkeypatch.setenv("TRADEFORGE_HOME", str(tmp_path / "home"))
    code, out, err = run(capsys, "models", "show", "spy-ppo")
    assert (code, out) == (2, "")
    store = (tmp_path / "home" / "registry" / "mlflow.db").resolve()
    assert err.startswith(f"error: registry uri = 'sqlite:///{store}': no MLflow store at")
    assert not (tmp_path / "home").exists()

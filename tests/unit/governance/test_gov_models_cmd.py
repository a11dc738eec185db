"""``tradeforge models gate|promote|rollback|history`` through the governance guard (sqlite)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeforge.agents.registry import PolicyRegistry
from tradeforge.audit import AuditLog
from tradeforge.testing.cli import run_cli as run
from tradeforge.testing.registry import make_registry_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def _gov_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite store with ``spy-ppo`` v1..v3 (v3 the challenger), registered by ``trainer``."""
    path = tmp_path_factory.mktemp("gov_registry") / "mlflow.db"
    return make_registry_store(path, tags={"algo": "ppo", "registered_by": "trainer"})


@pytest.fixture
def store(_gov_store_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "store" / "mlflow.db"
    target.parent.mkdir()
    shutil.copy(_gov_store_template, target)
    return f"sqlite:///{target}"


def cli(capsys, uri: str, *argv: str, actor: str = "ops") -> tuple[int, str, str]:
    who = ("--actor", actor) if argv[0] != "history" else ()
    return run(capsys, "models", *argv, "--registry-uri", uri, *who)


def cli_json(capsys, uri: str, *argv: str, actor: str = "ops") -> dict:
    code, out, err = cli(capsys, uri, *argv, "--json", actor=actor)
    assert code == 0, err
    return json.loads(out)


def aliases(uri: str) -> dict[str, int]:
    return PolicyRegistry(uri).aliases("spy-ppo")


def audit_of(uri: str) -> AuditLog:
    return AuditLog(Path(uri.removeprefix("sqlite:///")).parent / "audit.db", create=False)


def test_ungated_promotion_is_refused_without_a_second_approver(capsys, store):
    code, out, err = cli(capsys, store, "promote", "spy-ppo", "1")
    assert (code, out) == (2, "")
    assert err.startswith("error: promote spy-ppo v1 to 'champion': gates ['offline', 'shadow'")
    assert err.count("\n") == 1
    code, _, err = cli(capsys, store, "promote", "spy-ppo", "1", "--to", "canary",
                       "--approver", "trainer")  # fmt: skip
    assert code == 2
    assert "registered (trained) this version" in err
    assert aliases(store) == {"challenger": 3}
    with audit_of(store) as audit:
        refused = [e.data for e in audit.entries(kind="governance.refused")]
    assert [(r["alias"], r["to_version"], r["actor"]) for r in refused] == [
        ("champion", 1, "ops"), ("canary", 1, "ops"),
    ]  # fmt: skip


def test_promote_and_rollback_with_an_approver_keep_the_old_semantics(capsys, store):
    first = cli_json(capsys, store, "promote", "spy-ppo", "1", "--approver", "alice")
    assert first == {"name": "spy-ppo", "champion": 1, "previous_champion": None}
    assert aliases(store) == {"challenger": 3, "champion": 1}
    code, out, _ = cli(capsys, store, "promote", "spy-ppo", "3", "--approver", "alice")
    assert code == 0
    assert out.strip() == "spy-ppo: champion = v3 (was v1; previous_champion = v1)"
    assert aliases(store) == {"challenger": 3, "champion": 3, "previous_champion": 1}
    back = cli_json(capsys, store, "rollback", "spy-ppo")
    assert back == {"name": "spy-ppo", "champion": 1, "replaced": 3}
    assert aliases(store) == {"challenger": 3, "champion": 1}
    code, out, err = cli(capsys, store, "rollback", "spy-ppo")
    assert (code, out) == (2, "")
    assert err == (
        "error: 'spy-ppo' has no alias 'previous_champion' to roll back to; aliases: "
        "challenger=v3, champion=v1; expected a champion replaced by an earlier promote\n"
    )
    assert aliases(store) == {"challenger": 3, "champion": 1}  # one step back only
    history = cli_json(capsys, store, "history", "spy-ppo")
    moves = [(m["action"], m["alias"], m["from_version"], m["to_version"], m["approver"])
             for m in history["moves"]]  # fmt: skip
    assert moves == [
        ("promote", "champion", None, 1, "alice"),
        ("promote", "champion", 1, 3, "alice"),
        ("rollback", "champion", 3, 1, "alice"),
    ]


def _run_dir(path: Path, sharpe: float, n: int, tried: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, n)
    r = 0.01 * (x - x.mean()) / x.std(ddof=1) + 0.01 * sharpe / math.sqrt(252)
    path.mkdir(parents=True)
    idx = pd.bdate_range("2016-01-01", periods=n, name="timestamp")
    pd.Series(r, index=idx).to_frame("returns").to_csv(path / "oos_returns.csv")
    summary = {"configurations_tried": tried, "periods_per_year": 252}
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_gate_records_tags_and_a_failed_gate_exits_1(capsys, store, tmp_path):
    good = _run_dir(tmp_path / "good", 2.5, 900, 4)
    result = cli_json(capsys, store, "gate", "spy-ppo", "2", "--offline", str(good))
    assert (result["gate"], result["passed"], result["version"]) == ("offline", True, 2)
    info = PolicyRegistry(store).get("spy-ppo", 2)
    assert info.tags["gate.offline"] == "passed"
    assert json.loads(info.tags["gate.offline.json"])["checks"] == result["checks"]
    weak = _run_dir(tmp_path / "weak", 0.3, 200, 50)
    code, out, _ = cli(capsys, store, "gate", "spy-ppo", "3", "--offline", str(weak))
    assert code == 1
    assert "offline gate FAILED" in out
    assert PolicyRegistry(store).get("spy-ppo", 3).tags["gate.offline"] == "failed"
    code, _, err = cli(capsys, store, "gate", "spy-ppo", "3")
    assert code == 2
    assert "expected exactly one of --offline, --shadow, --paper" in err
    code, _, err = cli(capsys, store, "gate", "spy-ppo", "3", "--paper", str(tmp_path))
    assert code == 2
    assert "--paper needs --modelled-cost-bps" in err


def test_gated_version_moves_to_shadow_and_canary_without_an_approver(capsys, store, tmp_path):
    good = _run_dir(tmp_path / "good", 2.5, 900, 4)
    cli_json(capsys, store, "gate", "spy-ppo", "2", "--offline", str(good))
    shadow = cli_json(capsys, store, "promote", "spy-ppo", "2", "--to", "shadow")
    assert (shadow["alias"], shadow["version"]) == ("shadow", 2)
    # shadow evidence: identical decisions over 25 sessions, returns as in the backtest
    d = tmp_path / "shadow"
    d.mkdir()
    idx = pd.bdate_range("2020-01-01", periods=25, name="timestamp")
    w = pd.DataFrame({"SPY": np.linspace(0.2, 0.8, 25)}, index=idx)
    w.to_csv(d / "champion_weights.csv")
    w.to_csv(d / "challenger_weights.csv")
    r = pd.read_csv(good / "oos_returns.csv", index_col=0)["returns"].to_numpy()[:25]
    pd.Series(r, index=idx).to_frame("returns").to_csv(d / "challenger_returns.csv")
    code, out, err = cli(capsys, store, "gate", "spy-ppo", "2", "--shadow", str(d),
                         "--reference", str(good))  # fmt: skip
    assert code == 0, out + err
    canary = cli_json(capsys, store, "promote", "spy-ppo", "2", "--to", "canary")
    assert canary["gates"] == {"offline": "passed", "shadow": "passed", "paper": "missing"}
    assert aliases(store) == {"challenger": 3, "shadow": 2, "canary": 2}
    code, _, err = cli(capsys, store, "promote", "spy-ppo", "2")
    assert code == 2
    assert "gates ['paper'] not passed (paper=missing)" in err

"""The service config: latest:NAME picks the newest run's last fold, paths resolve against the
working directory, unknown keys and missing runs are named."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tradeforge.core.errors import ConfigError
from tradeforge.serve.config import latest_policy, load_serve_config


def _artifact(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    return folder


def test_latest_picks_the_newest_run_and_its_last_fold(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    old = _artifact(runs / "quickstart-1" / "folds" / "fold_2" / "ensemble")
    os.utime(runs / "quickstart-1", (time.time() - 100, time.time() - 100))
    _artifact(runs / "quickstart-2" / "folds" / "fold_1" / "ensemble")
    newest = _artifact(runs / "quickstart-2" / "folds" / "fold_10" / "ensemble")
    _artifact(runs / "portfolio-9" / "folds" / "fold_0" / "ensemble")
    assert latest_policy("quickstart", runs) == newest  # fold_10 after fold_1, not by text
    assert old != newest
    member = _artifact(runs / "single-1" / "folds" / "fold_0" / "members" / "ppo" / "policy")
    assert latest_policy("single", runs) == member
    with pytest.raises(ConfigError, match=r"no run .*nothing-\*/folds"):
        latest_policy("nothing", runs)


def test_the_yaml_resolves_paths_and_refuses_unknown_keys(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    artifact = _artifact(tmp_path / "runs" / "quickstart-1" / "folds" / "fold_0" / "ensemble")
    config = tmp_path / "configs" / "serve.yaml"
    config.parent.mkdir()
    config.write_text("serve:\n  policy: latest:quickstart\n  replay: {bar_interval_s: 2}\n",
                      encoding="utf-8")  # fmt: skip
    loaded = load_serve_config(config)
    assert loaded.policy == str(artifact.resolve())
    assert loaded.state_dir == str((tmp_path / "runs" / "serve").resolve())
    assert loaded.replay.bar_interval_s == 2
    config.write_text("serve:\n  policy: x\n  replay: {bar_intervals: 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bar_intervals"):
        load_serve_config(config)

"""``tradeforge run --ray [--address ADDR] [--num-cpus N] [--fold-tasks-only]``: which compute backend the flags give
``run_experiment`` (the Ray run itself is tested end to end in ``test_ray_run.py``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tradeforge.cli.app import main
from tradeforge.experiment import run as run_module
from tradeforge.experiment.compute import ComputeConfig

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "quickstart.yaml"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []

    def fake_run(config: Any, out_dir: Any, progress: Any = None, compute: Any = None) -> Any:
        seen.append(compute)
        return SimpleNamespace(summary={})

    monkeypatch.setattr(run_module, "run_experiment", fake_run)
    monkeypatch.setattr("tradeforge.cli.run_cmd._print_summary", lambda summary: None)
    return seen


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ComputeConfig()),
        (["--ray"], ComputeConfig(backend="ray")),
        (["--ray", "--num-cpus", "2"], ComputeConfig(backend="ray", num_cpus=2)),
        (["--address", "auto"], ComputeConfig(backend="ray", address="auto")),
        (["--fold-tasks-only"], ComputeConfig(backend="ray", seed_tasks=False)),
        (["--ray", "--fold-tasks-only"], ComputeConfig(backend="ray", seed_tasks=False)),
    ],
)
def test_run_flags_choose_the_compute_backend(
    captured: list[Any], tmp_path: Path, flags: list[str], expected: ComputeConfig
) -> None:
    main(["run", str(CONFIG), "--out", str(tmp_path), *flags])
    assert captured == [expected]


def test_a_cluster_address_with_num_cpus_is_one_line_error(
    captured: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(CONFIG), "--out", str(tmp_path), "--address", "auto", "--num-cpus", "2"])
    assert exit_info.value.code == 2
    assert "num_cpus = 2 with address = 'auto'" in capsys.readouterr().err
    assert captured == []

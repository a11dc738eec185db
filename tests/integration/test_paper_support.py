"""Shared helpers for the ``test_paper_*`` integration tests (no tests here).

* :func:`trained_artifact`: a tiny PPO trained once per session with ``train_fold`` (the path
  ``tradeforge train`` takes) on bundled data, single asset (S&P 500, continuous long/short
  position) or a portfolio (AAPL/IBM/MSFT, softmax weights).
* :func:`numpy_program`: a :class:`TradingProgram` without torch (a fitted feature pipeline and a
  small deterministic numpy policy) for the crash tests, whose node processes must start fast.
* :func:`node_process`: runs ``paper_trade`` against a venue URL in a separate process started
  from a forkserver that imported the heavy modules once; the process writes its summary to
  ``STATE/summary.json`` (a process killed with SIGKILL writes nothing).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradeforge.data.config import DataConfig
from tradeforge.execution.node_risk import CRASH_ENV
from tradeforge.execution.venue import VenueConfig, VenueEngine, VenueServer
from tradeforge.testing.programs import SIM, SYMBOLS, bundled_panel, numpy_program

_ROOT: list[Path] = []


# -- trained artifacts -------------------------------------------------------------------------
def _experiment(kind: str) -> dict[str, Any]:
    single = kind == "single"
    return {
        "name": f"paper-{kind}",
        "seed": 3,
        "data": {"symbols": ["SP500"] if single else SYMBOLS, "start": "2009-01-01",
                 "end": "2011-12-31"},
        "features": {"indicators": ["logret_1", "logret_5", "rsi_14", "vol_20"]},
        "env": {"action": "continuous" if single else "weights", "window": 5,
                "episode_length": 100, "sim": {"allow_short": single}},
        "agent": {
            "algo": "ppo", "timesteps": 64, "n_envs": 1,
            "hyperparams": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
            "policy_kwargs": {"net_arch": [16]}, "eval": {"freq": 64, "patience": 0},
            "tracking": {"learning_curve": False},
        },
        "walkforward": {"unit": "bars", "train": 300, "val": 60, "test": 60, "n_folds": 1},
    }  # fmt: skip


@cache
def _trained(kind: str, root: Path) -> Path:
    from tradeforge.experiment import load_experiment, train_fold

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = root / f"{kind}.yaml"
    config.write_text(yaml.safe_dump(_experiment(kind)), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADEFORGE_HOME", str(root / "home"))
        summary = train_fold(load_experiment(config), root / kind).summary
    return Path(summary["artifact"])


def trained_artifact(kind: str, factory: pytest.TempPathFactory) -> Path:
    """The session's tiny artifact of ``kind`` (``single`` or ``portfolio``), trained once."""
    if not _ROOT:
        _ROOT.append(factory.mktemp("paper_artifacts"))
    return _trained(kind, _ROOT[0])


# -- the torch-free program lives in tradeforge.testing.programs ---------------------------
_panel = bundled_panel


def start_venue(replay_start: date) -> VenueServer:
    config = VenueConfig(data=DataConfig(source="bundled", symbols=SYMBOLS), sim=SIM,
                         replay_start=replay_start)  # fmt: skip
    return VenueServer(VenueEngine(config, panel=_panel())).start()


def created_orders(server: VenueServer) -> list[str]:
    """Client order ids of every order the venue created (each request that made an order)."""
    return [e["client_order_id"] for e in server.engine.order_log if e.get("outcome") == "created"]


# -- node processes ------------------------------------------------------------------------------
_PRELOAD = [
    "tradeforge.experiment.paper", "tradeforge.experiment.paper_program",
    "tradeforge.execution.node_alpaca", "tradeforge.execution.brokers.alpaca",
    "alpaca.data.historical", "alpaca.trading.client", "alpaca.trading.stream",
    "tradeforge.data.bundled", "tradeforge.envs.config", "tradeforge.backtest.metrics",
]  # fmt: skip
_CONTEXT: list[Any] = []


def _context() -> Any:
    if not _CONTEXT:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


def run_node(url: str, state: str, start: str, end: str, crash: str | None) -> None:
    """The body of a node process: paper trade the numpy program on the venue at ``url``."""
    from tradeforge.execution.node import NodeConfig
    from tradeforge.experiment.paper import PaperConfig, paper_trade

    if crash:
        os.environ[CRASH_ENV] = crash
    else:
        os.environ.pop(CRASH_ENV, None)
    config = PaperConfig(node=NodeConfig(strategy_id="swing", reconcile_every=2))
    result = paper_trade(config, numpy_program(), venue="local", venue_url=url, start=start,
                         end=end, state_dir=state)  # fmt: skip
    Path(state, "summary.json").write_text(json.dumps(result.summary()), encoding="utf-8")


def node_process(url: str, state: Path, start: str, end: str, crash: str | None = None) -> Any:
    """A started node process (see :func:`run_node`)."""
    process = _context().Process(target=run_node, args=(url, str(state), start, end, crash))
    process.start()
    return process


def summary(state: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((state / "summary.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fails a test that leaves a venue server or a trade-updates stream thread running."""
    yield
    names = ("tradeforge-venue", "alpaca-trade-updates")
    left = [t.name for t in threading.enumerate() if t.name.startswith(names) and t.is_alive()]
    assert left == [], f"threads left running: {left}"

"""The main job as a library: experiment config, fold composition, ``run_experiment``, replay.

Everything ``tradeforge run|train|tune|backtest --policy`` does is reachable from here, so a
service or a notebook runs an experiment exactly as the CLI does::

    from tradeforge.experiment import load_experiment, run_experiment

    config = load_experiment("configs/quickstart.yaml", {"seed": 1})
    result = run_experiment(config, out_dir="runs/quickstart-seed1")
    print(result.metrics["sharpe"], result.summary["configurations_tried"])
    result.returns      # stitched out-of-sample per-bar returns
    result.weights      # stitched out-of-sample target weights

Heavy modules (agents, torch) load only when a run needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentConfig": "tradeforge.experiment.config",
    "ReportOptions": "tradeforge.experiment.config",
    "TrackingOptions": "tradeforge.experiment.config",
    "load_experiment": "tradeforge.experiment.config",
    "RunResult": "tradeforge.experiment.run",
    "run_experiment": "tradeforge.experiment.run",
    "default_run_dir": "tradeforge.experiment.run",
    "Replay": "tradeforge.experiment.replay",
    "replay_policy": "tradeforge.experiment.replay",
    "FoldTraining": "tradeforge.experiment.single_fold",
    "train_fold": "tradeforge.experiment.single_fold",
    "tune_fold": "tradeforge.experiment.single_fold",
    "fold_inputs": "tradeforge.experiment.single_fold",
    "SuiteConfig": "tradeforge.experiment.suite",
    "SuiteResult": "tradeforge.experiment.suite",
    "load_suite": "tradeforge.experiment.suite",
    "plan_suite": "tradeforge.experiment.suite",
    "run_suite": "tradeforge.experiment.suite",
    "PaperConfig": "tradeforge.experiment.paper",
    "PaperResult": "tradeforge.experiment.paper",
    "paper_trade": "tradeforge.experiment.paper",
    "TradingProgram": "tradeforge.experiment.paper_program",
    "load_program": "tradeforge.experiment.paper_program",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradeforge.experiment' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

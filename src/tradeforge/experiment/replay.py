"""Replay a saved policy artifact (single agent or ensemble) over a date range and backtest it.

The artifact carries everything: the data config it was trained on, the env config (window,
actions, simulator and costs), the fitted feature pipeline and the model. By default the replay
covers the artifact's own test window; any other range works the same way, with features
computed from the full history so the first decisions have their look-back window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradeforge.backtest.engine import BacktestResult, decision_window, run_backtest
from tradeforge.core.config import validate_config
from tradeforge.core.errors import ArtifactError, BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.config import DataConfig
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig
from tradeforge.risk.config import RiskConfig


@dataclass(frozen=True)
class Replay:
    """A replayed policy: its panel, decided weights and the backtest of them."""

    panel: BarPanel
    weights: FloatArray
    result: BacktestResult
    start: pd.Timestamp
    end: pd.Timestamp
    env: EnvConfig


def _member_dir(directory: Path) -> Path:
    """The directory whose config.json/data.json describe the run (an ensemble's first member)."""
    if (directory / "config.json").is_file():
        return directory
    members = sorted(p for p in (directory / "members").glob("*") if (p / "config.json").is_file())
    if not members:
        raise ArtifactError(
            f"{directory}: no config.json in the artifact or its members; expected a directory "
            "written by tradeforge train/run (a policy or an ensemble)"
        )
    return members[0]


def _read(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot be read ({exc}); the artifact is incomplete") from None
    return loaded


def _bar(index: pd.DatetimeIndex, when: Any, side: str, name: str) -> int:
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    pos = int(index.searchsorted(ts, side=side))  # type: ignore[call-overload]
    if side == "right":
        pos -= 1
    if not 0 <= pos < len(index):
        raise BacktestError(
            f"{name} = {ts.date()} is outside the data ({index[0].date()} .. {index[-1].date()})"
        )
    return pos


@dataclass(frozen=True)
class OpenedArtifact:
    """A policy artifact opened for replay: the loaded policy, its member folder, the data and
    evaluation env configs it was trained with, its test range and its fitted pipeline."""

    policy: Any
    meta: Path
    data: DataConfig
    env: EnvConfig
    ranges: dict[str, Any]
    pipeline: Any


def open_artifact(directory: Path) -> OpenedArtifact:
    """Load the policy at ``directory`` with the configs and pipeline a replay needs (replay,
    paper trading and explanations all open artifacts this one way)."""
    from tradeforge.agents.policy import load_policy
    from tradeforge.experiment.compose import eval_env_config

    directory = Path(directory)
    policy = load_policy(directory)
    meta = _member_dir(directory)
    config = _read(meta, "config.json")
    data = validate_config(DataConfig, config["data"], source=f"{meta}/config.json: data")
    env = eval_env_config(
        validate_config(EnvConfig, config["env"], source=f"{meta}/config.json: env")
    )
    pipeline = getattr(policy, "pipeline", None)
    if pipeline is None:
        raise ArtifactError(f"{directory}: the artifact holds no fitted feature pipeline")
    return OpenedArtifact(policy, meta, data, env, _read(meta, "data.json"), pipeline)


def replay_policy(
    directory: Path,
    start: str | None = None,
    end: str | None = None,
    risk: RiskConfig | None = None,
) -> Replay:
    """Run the policy at ``directory`` deterministically over ``[start, end]`` and backtest it.

    ``risk``: the risk engine's limits to replay under instead of the artifact's ``env.risk``
    (the limits it was trained under; None: those). The policy decides in an env that applies
    them (it sees the account the controls leave, as the trading node does) and the backtest
    of its targets applies the same engine (``run_backtest(..., risk=)``).
    """
    from tradeforge.agents.rollout import rollout_weights
    from tradeforge.data.ingest import load_panel
    from tradeforge.envs.env import TradingEnv

    opened = open_artifact(directory)
    policy, data, env, ranges = opened.policy, opened.data, opened.env, opened.ranges
    pipeline = opened.pipeline
    if risk is not None:
        env = env.model_copy(update={"risk": risk})
    panel = load_panel(data.model_copy(update={"start": None, "end": None}))
    first = _bar(panel.index, start or ranges.get("test_start"), "left", "start")
    last = _bar(panel.index, end or ranges.get("test_end"), "right", "end")
    if last <= first:
        raise BacktestError(
            f"end {panel.index[last].date()} is not after start {panel.index[first].date()}"
        )
    features = pipeline.transform(panel)
    if hasattr(policy, "bind_prices"):
        policy.bind_prices(panel.close)
    trading = TradingEnv(panel, features, env, start=first, end=min(last + 2, panel.n_bars))
    weights = rollout_weights(policy, trading)
    result = run_backtest(panel, weights, env.sim, *decision_window(weights), risk=risk or env.risk)
    return Replay(panel, weights, result, panel.index[first], panel.index[last], env)


__all__ = ["OpenedArtifact", "Replay", "open_artifact", "replay_policy"]

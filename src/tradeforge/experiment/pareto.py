"""Return against drawdown: train one config over a grid of reward weights and draw the
out-of-sample Pareto front.

Each grid point is a full walk-forward (:func:`~tradeforge.experiment.run.run_experiment`) of the
config with the point's reward weights as overrides (e.g. ``env.reward.drawdown`` x
``env.reward.turnover``). Every point is scored on its stitched test windows only: annualised
return, maximum drawdown and turnover (mean traded fraction of equity per bar, from the target
weights). A point is on the front when no other point has at least its return and at most its
drawdown with one of the two strictly better. The baselines of the first run (same bars, same
costs) are drawn on the same plot.

Example::

    from tradeforge.experiment.pareto import parse_grid, run_pareto

    result = run_pareto("configs/quickstart_tilt.yaml", parse_grid(["env.reward.excess_drawdown=0,0.2"]))
    result.front  # the grid points on the out-of-sample front
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.config import ExperimentConfig, load_experiment

PLOT_FILE = "pareto.png"
JSON_FILE = "pareto.json"
REWARD_PREFIX = "env.reward."

# (grid point label, done, total)
ParetoProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ParetoPoint:
    """One strategy out of sample: a grid point (``kind="agent"``, with its reward ``weights``)
    or a baseline (``kind="baseline"``; ``turnover`` is None: not measured)."""

    label: str
    kind: str
    annual_return: float
    max_drawdown: float  # a negative fraction (-0.2: 20% below the peak)
    sharpe: float
    turnover: float | None
    weights: dict[str, float] = field(default_factory=dict)
    run_dir: str | None = None
    on_front: bool = False


@dataclass(frozen=True)
class ParetoResult:
    """The grid points (``points``), the baselines, the front and the files written."""

    points: list[ParetoPoint]
    baselines: list[ParetoPoint]
    out_dir: Path
    plot: Path
    json_path: Path

    @property
    def front(self) -> list[ParetoPoint]:
        """The non-dominated grid points, by increasing drawdown depth."""
        return sorted((p for p in self.points if p.on_front), key=lambda p: -p.max_drawdown)


def parse_grid(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["env.reward.drawdown=0,0.1", ...]`` as ``{key: [values]}``.

    Keys must name reward weights (``env.reward.<term>``); values are comma-separated numbers.
    Raises :class:`ConfigError` naming the bad item otherwise.
    """
    grid: dict[str, list[float]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key.startswith(REWARD_PREFIX) or key == REWARD_PREFIX:
            raise ConfigError(
                f"grid item {spec!r}: expected 'env.reward.<term>=v1,v2,...' "
                "(e.g. env.reward.drawdown=0,0.1)"
            )
        try:
            parsed = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"grid item {spec!r}: values {values!r} are not comma-separated numbers"
            ) from None
        if not parsed or not all(math.isfinite(v) for v in parsed):
            raise ConfigError(f"grid item {spec!r}: expected at least one finite number")
        if key in grid:
            raise ConfigError(f"grid item {spec!r}: {key} is given twice; expected it once")
        grid[key] = parsed
    return grid


def default_grid(config: ExperimentConfig) -> dict[str, list[float]]:
    """Drawdown penalty x turnover penalty, 2 x 2: the config's own drawdown term
    (``excess_drawdown`` when the reward is benchmark-relative, else ``drawdown``) at 0 and 0.2,
    the turnover penalty at 0 and 0.01."""
    drawdown = "excess_drawdown" if config.env.reward.has_excess else "drawdown"
    return {f"{REWARD_PREFIX}{drawdown}": [0.0, 0.2], f"{REWARD_PREFIX}turnover": [0.0, 0.01]}


def grid_points(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """Every combination of the grid's values (the first key varies slowest)."""
    if not grid:
        raise ConfigError("the reward grid is empty; expected at least one env.reward.<term>")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def pareto_front(returns: Sequence[float], drawdowns: Sequence[float]) -> list[bool]:
    """Which points are non-dominated when return is maximised and drawdown depth minimised.

    ``drawdowns`` are negative fractions (closer to 0 is better). Point j dominates i when
    ``r_j >= r_i`` and ``dd_j >= dd_i`` with one strictly greater; equal points are all kept.
    NaN points are never on the front.
    """
    r = np.asarray(returns, dtype=np.float64)
    d = np.asarray(drawdowns, dtype=np.float64)
    if r.shape != d.shape or r.ndim != 1:
        raise ValueError(
            f"returns {r.shape} and drawdowns {d.shape} must be 1-D of the same length"
        )
    ok = np.isfinite(r) & np.isfinite(d)
    out: list[bool] = []
    for i in range(r.size):
        if not ok[i]:
            out.append(False)
            continue
        dominated = ok & (r >= r[i]) & (d >= d[i]) & ((r > r[i]) | (d > d[i]))
        out.append(not bool(dominated.any()))
    return out


def _label(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{k.removeprefix(REWARD_PREFIX)}={v:g}" for k, v in weights.items())


def _dir_name(index: int, weights: Mapping[str, float]) -> str:
    parts = [f"{k.removeprefix(REWARD_PREFIX)}-{v:g}" for k, v in weights.items()]
    return f"p{index:02d}_" + "_".join(parts)


def _turnover(weights: pd.DataFrame) -> float:
    """Mean sum of absolute changes of the target weights per bar (the first bar from cash)."""
    if weights.empty:
        return math.nan
    w = weights.to_numpy(dtype=np.float64)
    steps = np.abs(np.diff(w, axis=0, prepend=np.zeros((1, w.shape[1])))).sum(axis=1)
    return float(steps.mean())


def _number(value: Any) -> float:
    return float(value) if value is not None else math.nan


def run_pareto(
    config_path: str | Path,
    grid: Mapping[str, Sequence[float]] | None = None,
    out_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: ParetoProgress | None = None,
) -> ParetoResult:
    """Run ``config_path`` once per grid point (``overrides`` apply to every point), then write
    ``pareto.json`` and ``pareto.png`` into ``out_dir`` (default
    ``<output_dir>/<name>-pareto``); each point's run goes to ``out_dir/points/<point>``."""
    from tradeforge.experiment.run import run_experiment

    path = Path(config_path)
    base = load_experiment(path, dict(overrides or {}))
    chosen = dict(grid) if grid is not None else default_grid(base)
    combos = grid_points(chosen)
    root = Path(out_dir) if out_dir is not None else Path(base.output_dir) / f"{base.name}-pareto"
    root.mkdir(parents=True, exist_ok=True)
    # every point validates before any training (a bad key fails in a second, not an hour)
    configs = [load_experiment(path, {**(overrides or {}), **combo}) for combo in combos]
    raw_points: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, Any]] = {}
    for i, (combo, config) in enumerate(zip(combos, configs, strict=True)):
        label = _label(combo)
        if progress is not None:
            progress(label, i, len(combos))
        run_dir = root / "points" / _dir_name(i, combo)
        result = run_experiment(config, out_dir=run_dir)
        m = result.metrics
        raw_points.append(
            {
                "label": label,
                "kind": "agent",
                "annual_return": _number(m.get("annual_return")),
                "max_drawdown": _number(m.get("max_drawdown")),
                "sharpe": _number(m.get("sharpe")),
                "turnover": _turnover(result.weights),
                "weights": dict(combo),
                "run_dir": str(run_dir),
            }
        )
        if not baselines:
            baselines = dict(result.summary.get("baselines", {}))
    if progress is not None:
        progress("", len(combos), len(combos))
    flags = pareto_front(
        [p["annual_return"] for p in raw_points], [p["max_drawdown"] for p in raw_points]
    )
    points = [ParetoPoint(**p, on_front=f) for p, f in zip(raw_points, flags, strict=True)]
    base_points = [
        ParetoPoint(
            label=name,
            kind="baseline",
            annual_return=_number(bm.get("annual_return")),
            max_drawdown=_number(bm.get("max_drawdown")),
            sharpe=_number(bm.get("sharpe")),
            turnover=None,
        )
        for name, bm in baselines.items()
    ]
    plot = write_pareto_plot(
        points, base_points, root / PLOT_FILE, title=f"{base.name}: out of sample"
    )
    json_path = root / JSON_FILE
    payload = {
        "config": str(path),
        "grid": {k: list(v) for k, v in chosen.items()},
        "points": [_jsonable(asdict(p)) for p in points],
        "baselines": [_jsonable(asdict(p)) for p in base_points],
        "front": [p.label for p in sorted(points, key=lambda p: -p.max_drawdown) if p.on_front],
        "plot": str(plot),
    }
    json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return ParetoResult(points, base_points, root, plot, json_path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def write_pareto_plot(
    points: Sequence[ParetoPoint],
    baselines: Sequence[ParetoPoint],
    path: Path,
    title: str = "out of sample",
) -> Path:
    """Annualised return against max drawdown depth: grid points coloured by turnover, the
    front joined by a line, the baselines as black crosses with their names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    finite = [p for p in points if math.isfinite(p.annual_return) and math.isfinite(p.max_drawdown)]
    if finite:
        turnover = [p.turnover if p.turnover is not None else math.nan for p in finite]
        sc = ax.scatter(
            [-100 * p.max_drawdown for p in finite],
            [100 * p.annual_return for p in finite],
            c=turnover,
            cmap="viridis",
            marker="o",
            s=[90 if p.on_front else 45 for p in finite],
            edgecolors=["red" if p.on_front else "none" for p in finite],
            zorder=3,
        )
        fig.colorbar(sc, ax=ax, label="turnover per bar")
        for p in finite:
            ax.annotate(
                p.label,
                (-100 * p.max_drawdown, 100 * p.annual_return),
                fontsize=6,
                xytext=(4, 4),
                textcoords="offset points",
            )
    front = sorted((p for p in finite if p.on_front), key=lambda p: -p.max_drawdown)
    if len(front) > 1:
        ax.plot(
            [-100 * p.max_drawdown for p in front],
            [100 * p.annual_return for p in front],
            color="red",
            linewidth=1.0,
            zorder=2,
            label="Pareto front",
        )
    for b in baselines:
        if math.isfinite(b.annual_return) and math.isfinite(b.max_drawdown):
            ax.scatter(
                [-100 * b.max_drawdown],
                [100 * b.annual_return],
                marker="x",
                color="black",
                zorder=4,
            )
            ax.annotate(
                b.label,
                (-100 * b.max_drawdown, 100 * b.annual_return),
                fontsize=7,
                xytext=(4, -10),
                textcoords="offset points",
            )
    ax.set_xlabel("max drawdown (%)")
    ax.set_ylabel("annualised return (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(front) > 1:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


__all__ = [
    "JSON_FILE",
    "PLOT_FILE",
    "ParetoPoint",
    "ParetoProgress",
    "ParetoResult",
    "default_grid",
    "grid_points",
    "pareto_front",
    "parse_grid",
    "run_pareto",
    "write_pareto_plot",
]

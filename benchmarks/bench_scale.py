"""Issue 14, point 3 ("scale-out on Ray"): the quickstart walk-forward serial vs on Ray.

Runs ``run_experiment`` on the config (default ``configs/quickstart.yaml``) in this process:
serially, then on a local Ray instance of ``--num-cpus`` CPUs (default: every core) with one task
per fold only (``compute.seed_tasks: false``, the previous design), then with every fold's
members x seeds as tasks of their own (the default). Each Ray run gets a fresh Ray instance,
whose start-up is timed on its own; the Ray wall times are given with and without it. The runs
must agree to the last bit (out-of-sample returns, weights, metrics, every member's best seed);
the JSON says whether they did, and how many tasks each Ray run submitted. The machine's load
average around each run is recorded: on a shared machine the other processes' load bounds the
speedup. With 3 folds x 2 members x 2 seeds on 2 cores the ideal is 1.5x for fold tasks (two
folds, then the third alone) and 2x for member x seed tasks (12 trainings, 6 per core).

Run: ``nice -n 5 python benchmarks/bench_scale.py [--timesteps N] [--num-cpus N]
[--no-fold-only]``; writes ``benchmarks/results/scale.json``. ``--timesteps`` overrides
``agent.timesteps`` (shorter runs on a busy machine); the folds, members and seeds stay the
config's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.json"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _best_seeds(run_dir: Path) -> dict[str, int]:
    """``fold/member`` -> the best seed, from every member's (or agent's) ``summary.json``."""
    out = {}
    for path in sorted((run_dir / "folds").glob("**/summary.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "best_seed" in data:
            out[str(path.parent.relative_to(run_dir / "folds"))] = int(data["best_seed"])
    return out


def _same(a: Any, b: Any, a_dir: Path, b_dir: Path) -> bool:
    return bool(
        np.array_equal(a.returns.to_numpy(), b.returns.to_numpy())
        and np.array_equal(a.weights.to_numpy(), b.weights.to_numpy())
        and a.metrics == b.metrics
        and _best_seeds(a_dir) == _best_seeds(b_dir)
    )


def _ray_run(ray: Any, config: Any, out: Path, num_cpus: int, seed_tasks: bool) -> dict[str, Any]:
    from tradeforge.experiment import run_experiment
    from tradeforge.experiment.compute import ComputeConfig

    load_before = _load()
    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False)
    startup_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        result = run_experiment(
            config, out_dir=out, compute=ComputeConfig(backend="ray", seed_tasks=seed_tasks)
        )
        wall_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    folds = len(result.folds)
    trained = len(list((out / "folds").glob("**/seed_*/checkpoints/best/model.zip")))
    return {
        "result": result,
        "tasks": {"fold": folds, "member_seed": trained if seed_tasks else 0},
        "trainings": trained,
        "wall_s": round(wall_s, 2),
        "startup_s": round(startup_s, 2),
        "with_startup_s": round(wall_s + startup_s, 2),
        "load_avg_1_5_15_before": load_before,
        "load_avg_1_5_15_after": _load(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-fold-only", action="store_true", help="skip the fold-tasks run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import ray

    from tradeforge.experiment import load_experiment, run_experiment

    overrides = {"agent.timesteps": args.timesteps} if args.timesteps else None
    config = load_experiment(args.config, overrides)
    agent = config.agent
    ensemble = config.ensemble_config()
    members = len(ensemble.member_configs(agent)) if ensemble is not None else 1
    cpus = args.num_cpus
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        load_before = _load()
        t0, c0 = time.perf_counter(), time.process_time()
        serial = run_experiment(config, out_dir=root / "serial")
        serial_s, serial_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        serial_load_after = _load()
        dirs = {"member_seed_tasks": root / "seeds"}
        if not args.no_fold_only:
            dirs = {"fold_tasks": root / "folds", **dirs}
        for name, out in dirs.items():
            runs[name] = _ray_run(ray, config, out, cpus, seed_tasks=name != "fold_tasks")
        identical = {
            name: _same(serial, run.pop("result"), root / "serial", dirs[name])
            for name, run in runs.items()
        }
    n_folds = len(serial.folds)
    leaves = n_folds * members * agent.seeds
    for name, run in runs.items():
        run["speedup"] = round(serial_s / run["wall_s"], 3)
        run["speedup_with_startup"] = round(serial_s / run["with_startup_s"], 3)
        units = n_folds if name == "fold_tasks" else leaves
        run["ideal_speedup"] = round(units / -(-units // cpus), 3)
        run["identical_to_serial"] = identical[name]
    result: dict[str, Any] = {
        "benchmark": "quickstart walk-forward: serial vs Ray (fold tasks; member x seed tasks)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ray": ray.__version__,
        },
        "config": str(
            args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
        ),
        "folds": n_folds,
        "members": members,
        "seeds": agent.seeds,
        "timesteps": agent.timesteps,
        "ray_num_cpus": cpus,
        "serial": {
            "wall_s": round(serial_s, 2),
            "cpu_s": round(serial_cpu_s, 2),  # CPU this process got: wall - CPU = contention
            "load_avg_1_5_15_before": load_before,
            "load_avg_1_5_15_after": serial_load_after,
        },
        "ray": runs,
        "identical_results": all(identical.values()),
        "sharpe": serial.metrics.get("sharpe"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    import sys

    sys.stdout.write(json.dumps(main(), indent=2) + "\n")

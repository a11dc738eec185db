"""Issue 14, point 3 ("scale-out on Ray"): the quickstart walk-forward serial vs folds as Ray tasks.

Runs ``run_experiment`` on the config (default ``configs/quickstart.yaml``) twice in this process:
serially, then with ``compute: {backend: ray}`` on a local Ray instance of ``--num-cpus`` CPUs
(default: every core). Ray's start-up is timed on its own and the Ray wall time is given with
and without it. The two runs must agree to the last bit (out-of-sample returns, weights and
metrics); the JSON says whether they did. The machine's load average before and after is
recorded: on a shared machine the other processes' load bounds the speedup, and with 3 folds on
2 cores the ideal is 1.5x (two folds, then the third alone).

Run: ``nice -n 5 python benchmarks/bench_scale.py [--timesteps N] [--num-cpus N]``; writes
``benchmarks/results/scale.json``. ``--timesteps`` overrides ``agent.timesteps`` (shorter runs on a
busy machine); the folds, members and seeds stay the config's.
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import ray

    from tradeforge.experiment import load_experiment, run_experiment
    from tradeforge.experiment.compute import ComputeConfig

    overrides = {"agent.timesteps": args.timesteps} if args.timesteps else None
    config = load_experiment(args.config, overrides)
    agent = config.agent
    ensemble = config.ensemble_config()
    members = len(ensemble.member_configs(agent)) if ensemble is not None else 1
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        serial = run_experiment(config, out_dir=Path(tmp) / "serial")
        serial_s, serial_cpu_s = time.perf_counter() - t0, time.process_time() - c0

        t0 = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
        startup_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            on_ray = run_experiment(
                config, out_dir=Path(tmp) / "ray", compute=ComputeConfig(backend="ray")
            )
            ray_s = time.perf_counter() - t0
        finally:
            ray.shutdown()
    load_after = _load()
    identical = bool(
        np.array_equal(serial.returns.to_numpy(), on_ray.returns.to_numpy())
        and np.array_equal(serial.weights.to_numpy(), on_ray.weights.to_numpy())
        and serial.metrics == on_ray.metrics
    )
    result: dict[str, Any] = {
        "benchmark": "quickstart walk-forward: serial vs folds as Ray tasks",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ray": ray.__version__,
            "load_avg_1_5_15_before": load_before,
            "load_avg_1_5_15_after": load_after,
        },
        "config": str(
            args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
        ),
        "folds": len(serial.folds),
        "members": members,
        "seeds": agent.seeds,
        "timesteps": agent.timesteps,
        "ray_num_cpus": args.num_cpus,
        "serial_s": round(serial_s, 2),
        "serial_cpu_s": round(serial_cpu_s, 2),  # CPU this process got: wall - CPU = contention
        "ray_s": round(ray_s, 2),
        "ray_startup_s": round(startup_s, 2),
        "ray_with_startup_s": round(ray_s + startup_s, 2),
        "speedup": round(serial_s / ray_s, 3),
        "speedup_with_startup": round(serial_s / (ray_s + startup_s), 3),
        "ideal_speedup": round(len(serial.folds) / -(-len(serial.folds) // args.num_cpus), 3),
        "identical_results": identical,
        "sharpe": serial.metrics.get("sharpe"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    import sys

    sys.stdout.write(json.dumps(main(), indent=2) + "\n")

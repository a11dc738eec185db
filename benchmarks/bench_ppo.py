"""Benchmark: SB3 PPO (today's defaults) vs ``agent.backend: fast`` on the portfolio config.

Throughput. Both paths train on the first walk-forward fold of ``configs/portfolio.yaml`` (4
bundled equities, its features, window 10, softmax weights with cash, 250-bar random-start
episodes) through ``BatchedTradingVecEnv`` with ``n_envs`` 8 behind the same ``VecNormalize``
``train_agent`` uses, one torch thread, ``[64, 64]`` MlpPolicy:

* ``sb3``: ``stable_baselines3.PPO`` with ``factory.DEFAULT_HYPERPARAMS["ppo"]`` (n_steps 256,
  batch 64, 10 epochs), what ``agent.backend: sb3`` (the default) trains;
* ``fast``: ``tradeforge.agents.fastppo.FastPPO`` with ``FAST_HYPERPARAMS`` (n_steps 256,
  batch 512, 4 epochs);
* ``fast, sb3 hyperparams``: the fast loop with the SB3 defaults (how much the loop alone gives);
* ``sb3, fast hyperparams``: SB3's loop with the fast defaults (how much the hyperparameters give).

Env steps per second = timesteps / wall time of ``model.learn``, and timesteps / CPU time of this
process during it (``time.process_time``: what one otherwise idle core would take; the machine is
shared, so wall rates move with the load); repeats are interleaved and the best of each kept, so
load on the shared machine hits all alike. ``fast, n_envs 32`` shows the fast path with more
rows per batched step. ``null env`` rows repeat ``sb3``
and ``fast`` on a VecEnv with the same spaces that computes nothing (PPO's own cost).

Quality (``--quality``): ``run_experiment`` on the portfolio config (3 walk-forward folds, early
stopping on validation as shipped; ensemble off so the PPO member alone is scored), backend sb3
vs fast (and ``fast32``: fast with 32 envs x 64 steps per rollout, the same 2,048 samples),
seeds 0..S-1 (``--variants`` picks some; results merge into the file; ``--config
configs/quickstart.yaml`` checks another experiment, under ``quality_<name>``); out-of-sample Sharpe, total return and max drawdown per seed, plus the
validation Sharpe of each fold's chosen checkpoint and the training wall time.

As shipped (``--quality --as-shipped``): the config exactly as shipped (ensemble kept: the
A2C member trains with SB3 on either backend), only ``seed`` and ``agent.backend`` overridden,
backend sb3 vs fast, seeds 0..S-1; per run the wall and CPU seconds of the whole
``run_experiment`` (this process plus any children), the run's out-of-sample Sharpe, total
return and max drawdown, the verdict against the report's benchmark, the best baseline by Sharpe
with the bootstrap test against it, each fold's ensemble weights and each member's validation
Sharpe; results under ``shipped_<config name>``.

Run: ``nice -n 5 python benchmarks/bench_ppo.py [--quality --seeds 2]``; writes
``benchmarks/results/ppo.json`` (the load average is recorded before and after).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "ppo.json"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "portfolio.yaml"
N_ENVS = 8
TIMESTEPS = 8192
REPEATS = 3


def _portfolio() -> tuple[Any, Any, Any, Any]:
    from tradeforge.data.folds import make_folds
    from tradeforge.data.ingest import load_panel
    from tradeforge.experiment.compose import fit_fold_features
    from tradeforge.experiment.config import load_experiment

    config = load_experiment(CONFIG)
    panel = load_panel(config.data)
    config = config.resolved_for(panel)
    fold = make_folds(panel.index, config.walkforward)[0]
    inputs = fit_fold_features(config, panel, fold)
    return config, panel, fold, inputs


def _hyper(name: str) -> dict[str, Any]:
    from tradeforge.agents.factory import DEFAULT_HYPERPARAMS
    from tradeforge.agents.fastppo import FAST_HYPERPARAMS

    return dict(DEFAULT_HYPERPARAMS["ppo"] if name == "sb3" else FAST_HYPERPARAMS)


#: Quality variants: name -> experiment overrides (dotted keys) on top of the portfolio config.
VARIANTS: dict[str, dict[str, Any]] = {
    "sb3": {"agent.backend": "sb3"},
    "fast": {"agent.backend": "fast"},
    "fast32": {"agent.backend": "fast", "agent.n_envs": 32, "agent.hyperparams": {"n_steps": 64}},
    "fast_b1024": {"agent.backend": "fast", "agent.hyperparams": {"batch_size": 1024}},
}


def _model(loop: str, hyper: str, venv: Any, **extra: Any) -> Any:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from tradeforge.agents.fastppo import FastPPO

    cls = FastPPO if loop == "fast" else PPO
    norm = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=False, clip_obs=10.0)
    return cls(
        "MlpPolicy",
        norm,
        seed=0,
        device="cpu",
        verbose=0,
        policy_kwargs={"net_arch": [64, 64]},
        **{**_hyper(hyper), **extra},
    )


def _steps_per_s(loop: str, hyper: str, make: Any, **extra: Any) -> tuple[float, float]:
    """(env-steps per wall second, per CPU second of this process) of one ``learn``."""
    model = _model(loop, hyper, make(), **extra)
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=TIMESTEPS)
    steps = float(model.num_timesteps)
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu)


def null_vec_env(like: Any) -> Any:
    """A VecEnv with ``like``'s spaces and batch size that computes nothing."""
    from _null_env import null_vec_env as shared

    return shared(like, episode_len=250, copy_obs=True)


CASES: dict[str, tuple[str, str, bool, int]] = {
    "sb3 (today's defaults)": ("sb3", "sb3", False, N_ENVS),
    "fast (fast defaults)": ("fast", "fast", False, N_ENVS),
    "fast loop, sb3 hyperparams": ("fast", "sb3", False, N_ENVS),
    "sb3 loop, fast hyperparams": ("sb3", "fast", False, N_ENVS),
    "fast, n_envs 32": ("fast", "fast", False, 32),
    "fast, n_envs 32, n_steps 64": ("fast", "fast", False, 32),
    "fast, batch 1024": ("fast", "fast", False, N_ENVS),
    "null env: sb3": ("sb3", "sb3", True, N_ENVS),
    "null env: fast": ("fast", "fast", True, N_ENVS),
}


def throughput(names: list[str] | None = None) -> dict[str, Any]:
    import torch

    from tradeforge.envs.vec_env import BatchedTradingVecEnv

    torch.set_num_threads(1)
    config, panel, fold, inputs = _portfolio()

    def batched(n_envs: int = N_ENVS) -> Any:
        return BatchedTradingVecEnv(
            panel, inputs.features, config.env, n_envs, fold.train.start, fold.train.stop, seed=0
        )

    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    for _ in range(REPEATS):
        for name, (loop, hyper, is_null, n_envs) in CASES.items():
            if names is not None and name not in names:
                continue

            def make(n: int = n_envs, empty: bool = is_null) -> Any:
                return null_vec_env(batched(n)) if empty else batched(n)

            extra: dict[str, Any] = {"n_steps": 64} if "n_steps 64" in name else {}
            if "batch 1024" in name:
                extra["batch_size"] = 1024
            rate, cpu_rate = _steps_per_s(loop, hyper, make, **extra)
            best[name] = max(best.get(name, 0.0), rate)
            best_cpu[name] = max(best_cpu.get(name, 0.0), cpu_rate)
    sample = batched()
    return {
        "env": {
            "panel": f"{', '.join(panel.symbols)}; train bars {fold.train.start}..{fold.train.stop}",
            "obs_dim": list(sample.observation_space.shape),
            "action": str(sample.action_space),
            "n_envs": N_ENVS,
        },
        "timesteps": TIMESTEPS,
        "repeats": REPEATS,
        "hyperparams": {"sb3": _hyper("sb3"), "fast": _hyper("fast")},
        "env_steps_per_s": best,
        "env_steps_per_cpu_s": best_cpu,
    }


def quality(seeds: int, variants: list[str], config_path: Path = CONFIG) -> dict[str, Any]:
    from tradeforge.experiment.config import ExperimentConfig, load_experiment
    from tradeforge.experiment.run import run_experiment

    out: dict[str, Any] = {}
    for backend in variants:
        rows = []
        for seed in range(seeds):
            overrides = {"seed": seed, **VARIANTS[backend]}
            raw = load_experiment(config_path, overrides).model_dump()
            raw["ensemble"] = None  # the PPO agent alone (the shipped ensemble adds an A2C)
            config = ExperimentConfig.model_validate(raw)
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                cpu = time.process_time()
                result = run_experiment(config, Path(tmp) / "run")
                cpu = time.process_time() - cpu
                elapsed = time.perf_counter() - start
                val = _fold_validation(result.run_dir)
            metrics = result.metrics
            rows.append(
                {
                    "seed": seed,
                    "wall_s": elapsed,
                    "cpu_s": cpu,
                    "oos": {k: _num(metrics.get(k)) for k in QUALITY_METRICS},
                    "fold_validation_sharpe": val,
                }
            )
        out[backend] = rows
    out["mean"] = {
        backend: {
            key: sum(r["oos"][key] for r in out[backend]) / len(out[backend])
            for key in QUALITY_METRICS
        }
        | {"cpu_s": sum(r["cpu_s"] for r in out[backend]) / len(out[backend])}
        for backend in variants
    }
    return out


QUALITY_METRICS = ("sharpe", "total_return", "max_drawdown")

#: As-shipped variants: only the backend changes (the seed comes from the seed loop).
SHIPPED: dict[str, dict[str, Any]] = {
    "sb3": {"agent.backend": "sb3"},
    "fast": {"agent.backend": "fast"},
    # fast loop, SB3's 10 epochs per rollout (the fast default is 4) with 512-sample minibatches
    "fast_e10": {"agent.backend": "fast", "agent.hyperparams": {"n_epochs": 10}},
}


def _cpu_now() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def shipped(seeds: list[int], variants: list[str], config_path: Path) -> dict[str, Any]:
    """``run_experiment`` on the config as shipped, per backend and seed (see the docstring)."""
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.run import run_experiment

    out: dict[str, Any] = {}
    for backend in variants:
        rows = []
        for seed in seeds:
            config = load_experiment(config_path, {"seed": seed, **SHIPPED[backend]})
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as tmp:
                start, cpu = time.perf_counter(), _cpu_now()
                result = run_experiment(config, Path(tmp) / "run")
                cpu = _cpu_now() - cpu
                elapsed = time.perf_counter() - start
                folds = _fold_members(result.run_dir)
            row = {
                "seed": seed,
                "wall_s": elapsed,
                "cpu_s": cpu,
                "load_avg_1m_before_after": [load, os.getloadavg()[0]],
                "oos": {k: _num(result.metrics.get(k)) for k in QUALITY_METRICS},
                **_against_baselines(result.summary, config.report.benchmark),
                "folds": folds,
            }
            rows.append(row)
            sys.stderr.write(
                f"{config_path.stem} {backend} seed {seed}: sharpe {row['oos']['sharpe']:.3f} "
                f"cpu {cpu:.0f}s wall {elapsed:.0f}s\n"
            )
        out[backend] = rows
    return out


def _against_baselines(summary: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """The run's verdict against ``benchmark`` and the bootstrap row of its best baseline."""
    import pandas as pd

    from tradeforge.experiment.report import verdict

    sig = pd.DataFrame(summary.get("significance", []))
    baselines = {name: _num(m.get("sharpe")) for name, m in summary.get("baselines", {}).items()}
    ranked = sorted(
        (name for name, value in baselines.items() if math.isfinite(value)),
        key=lambda name: -baselines[name],
    )
    best = ranked[0] if ranked else None
    test = None
    if best is not None and "baseline" in sig:
        rows = sig[sig["baseline"] == best]
        if not rows.empty:
            row = rows.iloc[0]
            test = {k: _num(row[k]) for k in ("sharpe_diff", "ci_low", "ci_high", "p_value")}
    return {
        "verdict": verdict(sig, benchmark),
        "baseline_sharpe": {  # None where undefined (cash: no variance)
            k: v if math.isfinite(v) else None for k, v in baselines.items()
        },
        "best_baseline": best,
        "vs_best_baseline": test,
    }


def _fold_members(run_dir: Path) -> list[dict[str, Any]]:
    """Per fold: the ensemble's member weights and each member's validation Sharpe."""
    folds = []
    for fold_dir in sorted(run_dir.glob("folds/fold_*")):
        entry: dict[str, Any] = {"fold": fold_dir.name}
        ens = fold_dir / "ensemble_summary.json"
        if ens.is_file():
            data = json.loads(ens.read_text(encoding="utf-8"))
            entry["weights"] = {str(k): _num(v) for k, v in data.get("weights", {}).items()}
        entry["member_validation_sharpe"] = {
            path.parent.name: _num(
                json.loads(path.read_text(encoding="utf-8")).get("validation", {}).get("sharpe")
            )
            for path in sorted(fold_dir.glob("members/*/summary.json"))
        }
        folds.append(entry)
    return folds


def _shipped_mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max over seeds of the OOS metrics, and the mean CPU and wall seconds."""
    out: dict[str, Any] = {}
    for key in QUALITY_METRICS:
        values = [r["oos"][key] for r in rows]
        out[key] = sum(values) / len(values)
        out[f"{key}_range"] = [min(values), max(values)]
    for key in ("cpu_s", "wall_s"):
        out[key] = sum(r[key] for r in rows) / len(rows)
    return out


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _fold_validation(run_dir: Path) -> list[float]:
    """Validation Sharpe of each fold's chosen checkpoint (the train_agent summaries)."""
    values = []
    for path in sorted(run_dir.glob("folds/**/summary.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        val = data.get("validation")
        if isinstance(val, dict) and "sharpe" in val:
            values.append(float(val["sharpe"]))
    return values


def _machine() -> dict[str, Any]:
    import numpy as np
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": 1,
        "stable_baselines3": stable_baselines3.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", action="store_true", help="also run the walk-forward check")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--variants", default="sb3,fast", help=f"quality variants, of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="experiment YAML of the quality check"
    )
    parser.add_argument("--cases", default="", help="';'-separated throughput cases (default all)")
    parser.add_argument(
        "--as-shipped",
        action="store_true",
        help="quality of the config as shipped (ensemble kept), backends of --variants",
    )
    parser.add_argument(
        "--seed-list", default="", help="comma-separated seeds (overrides --seeds: 0..S-1)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    record: dict[str, Any] = {}
    if args.out.is_file():
        record = json.loads(args.out.read_text(encoding="utf-8"))
    record.update(
        {
            "benchmark": "ppo",
            "timestamp": datetime.now(UTC).isoformat(),
            "machine": _machine(),
            "load_avg_1m_before": os.getloadavg()[0],
        }
    )
    if not args.no_throughput:
        names = args.cases.split(";") if args.cases else None
        new = throughput(names)
        old = record.get("throughput", {})
        for key in ("env_steps_per_s", "env_steps_per_cpu_s"):
            new[key] = {**old.get(key, {}), **new[key]}
        wall, cpu = new["env_steps_per_s"], new["env_steps_per_cpu_s"]
        base, fast = "sb3 (today's defaults)", "fast (fast defaults)"
        if base in wall and fast in wall:
            new["speedup_fast_vs_sb3"] = wall[fast] / wall[base]
            new["speedup_fast_vs_sb3_cpu"] = cpu[fast] / cpu[base]
        new["load_avg_1m_before_after"] = [record["load_avg_1m_before"], os.getloadavg()[0]]
        record["throughput"] = new
    if args.quality and args.as_shipped:
        seeds = (
            [int(x) for x in args.seed_list.split(",")]
            if args.seed_list
            else list(range(args.seeds))
        )
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in SHIPPED]
        if unknown:
            parser.error(f"--variants {unknown}: as shipped, expected some of {list(SHIPPED)}")
        key = f"shipped_{args.config.stem}"
        previous = record.get(key, {})
        load_before = os.getloadavg()[0]
        new = shipped(seeds, variants, args.config)
        merged: dict[str, Any] = {}
        for backend in sorted({*previous.get("runs", {}), *new}):
            by_seed = {r["seed"]: r for r in previous.get("runs", {}).get(backend, [])}
            for row in by_seed.values():  # files written before NaN became None
                sharpes = row.get("baseline_sharpe", {})
                row["baseline_sharpe"] = {
                    k: v if v is None or math.isfinite(v) else None for k, v in sharpes.items()
                }
            by_seed.update({r["seed"]: r for r in new.get(backend, [])})
            merged[backend] = [by_seed[s] for s in sorted(by_seed)]
        record[key] = {
            "config": str(args.config.name),
            "what": "run_experiment on the config as shipped (ensemble kept); only seed and "
            "agent.backend overridden",
            "load_avg_1m_before_after": [load_before, os.getloadavg()[0]],
            "cpu_count": os.cpu_count(),
            "runs": merged,
            "mean": {backend: _shipped_mean(rows) for backend, rows in merged.items()},
        }
    elif args.quality:
        load_before = os.getloadavg()[0]
        variants = args.variants.split(",")
        key = "quality" if args.config == CONFIG else f"quality_{args.config.stem}"
        previous = record.get(key, {})
        new = quality(args.seeds, variants, args.config)
        mean = {**previous.get("mean", {}), **new.pop("mean")}
        record[key] = {
            **previous,
            "load_avg_1m_before_after": [load_before, os.getloadavg()[0]],
            "config": str(args.config.name),
            "seeds": args.seeds,
            "variants": {k: VARIANTS[k] for k in {*previous.get("variants", {}), *variants}},
            **new,
            "mean": mean,
        }
    record["load_avg_1m_after"] = os.getloadavg()[0]
    record["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    sys.stdout.write(json.dumps(record.get("throughput", {}).get("env_steps_per_s", {}), indent=2))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

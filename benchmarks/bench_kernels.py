"""Issue 14, point 2 ("faster kernels"): the three targets, before and after, in one run.

Targets: the batched env at 10M env-steps/s for one asset (1 asset x 4,096 envs,
``BatchedTradingVecEnv.step`` as SB3 calls it: observations, rewards, dones and the list of info
dicts); the 100-asset x 5,000-bar weights backtest (``run_backtest``, building its market arrays
included) in at most 15 ms; the default feature set (``FeaturePipeline.transform``, 500 symbols x
1,258 daily bars) within 2x of TA-Lib's C speed.

"Before" is a baseline revision of ``src/`` (``--baseline``, default ``BASELINE`` below: the
commit before the kernel work) exported with ``git archive`` into a temporary folder; "after" is
this working tree; "previous" (``--previous``, default ``PREVIOUS``: the tree before the latest
kernel session; ``--previous ''`` skips it) shows what that session added. Every measurement runs in a fresh child process (``_kernel_worker.py``) whose
``PYTHONPATH`` points at one of the two ``src`` folders, alternating baseline and current for
``--rounds`` rounds so that both see the same load; each child reports its best of several
repeats after a warm-up (numba compilation or cache loading excluded), and the best over the
rounds is kept. TA-Lib (C, per symbol) is timed in every features child before tradeforge's
transform touches the heap (tradeforge's buffer pool would otherwise take pages TA-Lib reuses), and
its best over all children is the reference; "cold" is a transform on an emptied buffer pool. The same data as ``bench_envs.py``, ``bench_backtest.py`` and ``bench_features.py``.

Run: ``python benchmarks/bench_kernels.py [--baseline REV] [--previous REV] [--rounds 3]
[--clock cpu|wall]`` (about 10 minutes); writes ``benchmarks/results/kernels.json``. Timings are
the worker's CPU time by default (``--clock wall`` for wall-clock): on a shared machine the
ratios measured side by side in this run are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "kernels.json"
WORKER = HERE / "_kernel_worker.py"
BASELINE = "5cf7898"  # main before the kernel work of issue 14 (point 2)
PREVIOUS = "13e5466"  # main after the second kernel session (before the third: one-call env step,
# buffer pool and paired windows for features, the three-row backtest market)
TASKS = ("env", "backtest", "features")
TARGETS = {
    "env_steps_per_s": 10_000_000.0,
    "backtest_s": 0.015,
    "features_over_talib": 2.0,
}


def export_src(rev: str, dest: Path) -> Path:
    """``git archive REV src`` unpacked under ``dest``; returns the ``src`` folder."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def run_worker(src: Path, task: str, clock: str = "cpu") -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(HERE)])}
    out = subprocess.run(
        [sys.executable, str(WORKER), task, clock],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {task} on {src} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def best(runs: list[dict[str, Any]], key: str, higher: bool) -> float:
    values = [float(r[key]) for r in runs if key in r]
    return max(values) if higher else min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision measured as 'before'")
    parser.add_argument("--previous", default=PREVIOUS, help="a middle revision ('' to skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clock",
        default="cpu",
        choices=("cpu", "wall"),
        help="time with the worker's CPU time (default: leaves out waits for a core on a shared "
        "machine) or wall-clock time",
    )
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    labels = ["before", "previous", "after"] if args.previous else ["before", "after"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        t: {label: [] for label in labels} for t in args.tasks
    }
    with tempfile.TemporaryDirectory(prefix="tf-baseline-") as tmp:
        trees = {"before": export_src(args.baseline, Path(tmp) / "before")}
        if args.previous:
            trees["previous"] = export_src(args.previous, Path(tmp) / "previous")
        trees["after"] = ROOT / "src"
        for r in range(args.rounds):
            for task in args.tasks:
                for label, src in trees.items():
                    res = run_worker(src, task, args.clock)
                    runs[task][label].append(res)
                    print(f"round {r + 1} {task:8s} {label:6s} {res}", flush=True)
            loads.append(os.getloadavg()[0])

    summary: dict[str, Any] = {}
    if "env" in runs:
        env = runs["env"]
        summary["env"] = {
            name: {label: best(env[label], name, True) for label in labels}
            for name in env["after"][0]
            if name.endswith("steps_per_s") and name in env["before"][0]
        }
        for label in labels[:-1]:  # the same observations, rewards and dones, bit for bit
            summary["env"][f"bit_equal_{label}_after"] = all(
                a[key] == b[key]
                for a, b in zip(env["after"], env[label], strict=True)
                for key in ("digest_1x256", "digest_30x256")
            )
        summary["env"]["after_only"] = {
            name: best(env["after"], name, True)
            for name in env["after"][0]
            if name.endswith("steps_per_s") and name not in env["before"][0]
        }
    if "backtest" in runs:
        bt = runs["backtest"]
        summary["backtest"] = {
            **{f"{label}_s": best(bt[label], "seconds", False) for label in labels},
            "equity_max_rel_diff_after_vs_before": max(
                abs(a["final_equity"] / b["final_equity"] - 1.0)
                for a, b in zip(bt["after"], bt["before"], strict=True)
            ),
            **{
                f"equity_curve_bit_equal_{label}_after": all(
                    a["digest"] == b["digest"] for a, b in zip(bt["after"], bt[label], strict=True)
                )
                for label in labels[:-1]
            },
        }
    if "features" in runs:
        ft = runs["features"]
        # TA-Lib runs first in every worker (whatever the tree): its best over all of them
        talib = min(best(ft[label], "talib_s", False) for label in labels)
        summary["features"] = {
            **{f"{label}_s": best(ft[label], "transform_s", False) for label in labels},
            "after_graph_s": best(ft["after"], "graph_s", False),
            "after_stack_s": best(ft["after"], "stack_s", False),
            "after_stack_last_s": best(ft["after"], "stack_last_s", False),
            "after_cold_s": best(ft["after"], "transform_cold_s", False),
            "talib_s": talib,
            **{
                f"values_bit_equal_{label}_after": all(
                    a["digest"] == b["digest"] for a, b in zip(ft["after"], ft[label], strict=True)
                )
                for label in labels[:-1]
            },
        }

    ratios: dict[str, float] = {}
    if "env" in summary:
        one = summary["env"]["1x4096_steps_per_s"]
        ratios["env 1x4096 after / before"] = one["after"] / one["before"]
        ratios["env 1x4096 after / target"] = one["after"] / TARGETS["env_steps_per_s"]
        if "previous" in one:
            ratios["env 1x4096 after / previous"] = one["after"] / one["previous"]
    if "backtest" in summary:
        b = summary["backtest"]
        ratios["backtest before / after"] = b["before_s"] / b["after_s"]
        ratios["backtest after / target"] = b["after_s"] / TARGETS["backtest_s"]
        if "previous_s" in b:
            ratios["backtest previous / after"] = b["previous_s"] / b["after_s"]
    if "features" in summary:
        f = summary["features"]
        ratios["features before / talib"] = f["before_s"] / f["talib_s"]
        ratios["features after / talib"] = f["after_s"] / f["talib_s"]
        ratios["features after, cold buffer pool / talib"] = f["after_cold_s"] / f["talib_s"]
        ratios["features graph only (after) / talib"] = f["after_graph_s"] / f["talib_s"]
        ratios["features graph + stack_last (after) / talib"] = (
            f["after_graph_s"] + f["after_stack_last_s"]
        ) / f["talib_s"]
        ratios["features before / after"] = f["before_s"] / f["after_s"]
        if "previous_s" in f:
            ratios["features previous / talib"] = f["previous_s"] / f["talib_s"]
            ratios["features previous / after"] = f["previous_s"] / f["after_s"]
    for key, value in ratios.items():
        print(f"{key:42s} {value:8.2f}")

    payload = {
        "benchmark": "kernels (issue 14, point 2)",
        "timestamp": datetime.now(UTC).isoformat(),
        "baseline": args.baseline,
        "previous": args.previous or None,
        "rounds": args.rounds,
        "clock": args.clock,
        "targets": TARGETS,
        "summary": summary,
        "ratios": ratios,
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m_per_round": loads,
        },
        "notes": [
            "before = git archive of the baseline revision's src, after = this tree; each "
            "measurement in a fresh process, alternating, best over the rounds",
            "machine shared by several engineers (load average per round above): absolute "
            "times are inflated and noisy, the before/after and TA-Lib ratios of one run are "
            "what to compare",
            "clock 'cpu': each time is the measuring process's CPU time (every measured path "
            "is single-threaded), so waits for a core under load are left out; cache and "
            "memory-bandwidth contention from other jobs still inflate it",
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Benchmark: the latency one per-decision explanation adds to a trading node's decision.

Setup, as ``bench_node.py``: prices rebuilt from bundled bar relatives (``build_panel``),
``FeaturePipeline`` defaults (9 features) fitted on the first 1,000 bars, observation window 30,
an SB3 PPO ``MlpPolicy`` (64x64, untrained, seed 0: the cost does not depend on the weights),
for 1 symbol (273 inputs, 1 output) and 30 symbols (8,132 inputs, 31 outputs: softmax weights
with cash). The observations are the env's own over 600 bars that the policy trades.

Measured per decision, one torch thread, interleaved so that load on the shared machine hits
all alike:

* ``policy``: the deterministic action alone (what the node already pays);
* ``explain``: :class:`tradeforge.monitor.explain.DecisionExplainer` (Integrated Gradients,
  16 Gauss-Legendre points, top 5 entries, the output that moved most: the default) on the
  raw observation through ``PolicyOutput`` (the normalizer path of ``tradeforge explain``):
  the added latency, target p99 <= 10 ms; ``explain_3_outputs``: the 3 that moved most;
* ``captum``: :func:`tradeforge.monitor.explain.integrated_gradients` for the same outputs
  (captum, the same quadrature) on 100 decisions, for comparison.

Wall time on a machine whose 2 cores are shared with other jobs includes waiting for a core,
so ``explain_thread_cpu`` gives the same calls' CPU time of the calling thread
(``time.thread_time``): the cost on an uncontended core.

The completeness error (|sum of attributions - (f(x) - f(baseline))|) of every explained
output is reported too.

Run: ``python benchmarks/bench_explain.py``; writes ``benchmarks/results/explain.json``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results" / "explain.json"
N_BARS = 1_700
FIT_BARS = 1_000
DECISIONS = 600
CAPTUM_DECISIONS = 100
TARGET_P99_MS = 10.0


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()), "n": int(a.size)}  # fmt: skip


def setup(n_symbols: int) -> tuple[Any, Any, Any, np.ndarray, list[str]]:
    """(PPO model, PolicyOutput forward, layout, observations (DECISIONS, size), output names)."""
    from stable_baselines3 import PPO

    from bench_backtest import build_panel
    from tradeforge.envs.config import EnvConfig
    from tradeforge.envs.env import TradingEnv
    from tradeforge.experiment.explain import PolicyOutput, _output_names
    from tradeforge.features.pipeline import FeaturePipeline
    from tradeforge.monitor.explain import ObservationLayout, flat_observation

    panel = build_panel(n_symbols, N_BARS)
    pipeline = FeaturePipeline().fit(panel, None, panel.index[FIT_BARS - 1])
    env_config = EnvConfig(action="weights" if n_symbols > 1 else "continuous", window=30)
    env = TradingEnv(panel, pipeline.transform(panel), env_config, start=FIT_BARS,
                     end=FIT_BARS + DECISIONS + 2)  # fmt: skip
    model = PPO("MlpPolicy", env, seed=0, device="cpu")
    model.policy.set_training_mode(False)
    layout = ObservationLayout(window=30, symbols=tuple(str(s) for s in panel.symbols),
                               features=tuple(env.feature_names))  # fmt: skip
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(DECISIONS):
        rows.append(flat_observation(obs))
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=len(rows))
    forward = PolicyOutput(model.policy, None, layout, False, "action")
    n_out = int(np.prod(model.action_space.shape))
    return model, forward, layout, np.stack(rows), _output_names(n_out, layout.symbols)


def measure(n_symbols: int) -> dict[str, Any]:
    import torch

    from tradeforge.monitor.explain import DecisionExplainer, integrated_gradients

    model, forward, layout, X, names = setup(n_symbols)
    baseline = X.mean(axis=0)
    explainer = DecisionExplainer(forward, layout, baseline, k=5, n_steps=16, outputs=names)
    three = DecisionExplainer(forward, layout, baseline, k=5, n_steps=16, max_outputs=3,
                              outputs=names)  # fmt: skip
    for x in X[:20]:  # warm up (first calls allocate)
        explainer(x)
        three(x)
        model.predict(x.astype(np.float32), deterministic=True)
    policy_ms, explain_ms, three_ms, errors, explained = [], [], [], [], []
    explain_cpu_ms = []
    for x in X:
        t0 = time.perf_counter()
        model.predict(x.astype(np.float32), deterministic=True)
        t1 = time.perf_counter()
        c1 = time.thread_time()
        out = explainer(x)
        explain_cpu_ms.append(1000 * (time.thread_time() - c1))
        t2 = time.perf_counter()
        three(x)
        t3 = time.perf_counter()
        policy_ms.append(1000 * (t1 - t0))
        explain_ms.append(1000 * (t2 - t1))
        three_ms.append(1000 * (t3 - t2))
        errors.extend(o["completeness_error"] for o in out["outputs"])
        explained.append([o["output"] for o in out["outputs"]])
    captum_ms = []
    for x, outs in zip(X[:CAPTUM_DECISIONS], explained, strict=False):
        t0 = time.perf_counter()
        for name in outs:
            integrated_gradients(forward, x, baseline, n_steps=16, target=names.index(name))
        captum_ms.append(1000 * (time.perf_counter() - t0))
    with torch.no_grad():
        scale = float(forward(torch.as_tensor(X[:50], dtype=torch.float32)).abs().mean())
    return {
        "inputs": layout.size,
        "outputs": len(names),
        "outputs_explained": len(explained[0]),
        "policy": _stats(policy_ms),
        "explain": _stats(explain_ms),
        "explain_thread_cpu": _stats(explain_cpu_ms),
        "explain_3_outputs": _stats(three_ms) if len(names) > 1 else None,
        "captum_same_outputs": _stats(captum_ms),
        "completeness_error_max": float(max(errors)),
        "mean_abs_output": scale,
        "meets_target_wall": bool(np.percentile(explain_ms, 99) <= TARGET_P99_MS),
        "meets_target_cpu": bool(np.percentile(explain_cpu_ms, 99) <= TARGET_P99_MS),
    }


def main() -> None:
    import torch

    logging.disable(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    results = {f"{n}_symbols": measure(n) for n in (1, 30)}
    out = {
        "benchmark": "per-decision explanation: latency added to a decision",
        "when": date.today().isoformat(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_avg_1m": os.getloadavg()[0],
                    "note": "2 cores shared with other jobs; one torch thread"},
        "setup": {"bars": N_BARS, "features": "FeatureSpec.default() (9)", "window": 30,
                  "policy": "SB3 PPO MlpPolicy 64x64 (untrained, seed 0)",
                  "explainer": "DecisionExplainer: IG, 16 Gauss-Legendre points, top 5, "
                               "the output that moved most", "decisions": DECISIONS},
        "target_p99_ms": TARGET_P99_MS,
        "results": results,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for key, r in results.items():
        e, c = r["explain"], r["captum_same_outputs"]
        logging.getLogger(__name__).info("%s", key)
        cpu = r["explain_thread_cpu"]
        print_row = (f"{key}: explain p50 {e['p50_ms']:.2f} p99 {e['p99_ms']:.2f} ms (cpu p99 "
                     f"{cpu['p99_ms']:.2f}); captum p50 "
                     f"{c['p50_ms']:.2f} ms; policy p50 {r['policy']['p50_ms']:.2f} ms")  # fmt: skip
        os.write(1, (print_row + "\n").encode())


if __name__ == "__main__":
    main()

"""One measurement of ``bench_kernels.py`` in a fresh process (``tradeforge`` from PYTHONPATH).

``python benchmarks/_kernel_worker.py env|backtest|features [cpu|wall]`` prints one JSON line.
Uses only APIs that exist both before and after the kernel work, so the same code times both
trees. ``cpu`` (the default) times with this process's CPU time (``time.process_time``: every
measured path is single-threaded), which on a shared machine leaves out the time spent waiting
for a core; ``wall`` uses ``time.perf_counter``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from typing import Any

import numpy as np

SECONDS = 2.0  # per env measurement (best of 3 slices)
CLOCK = time.process_time  # set from argv in main()


def best_of(fn: Any, repeat: int) -> tuple[float, Any]:
    """Fastest ``CLOCK`` time of ``repeat`` calls of ``fn`` and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t0)
    return best, out


def env_rate(panel: Any, features: Any, config: Any, n_envs: int, **kwargs: Any) -> float:
    from tradeforge.envs import BatchedTradingVecEnv

    raw = kwargs.pop("raw", False)
    vec = BatchedTradingVecEnv(panel, features, config, n_envs=n_envs, seed=0, **kwargs)
    vec.reset()
    shape = (16, n_envs, *vec.action_space.shape)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, size=shape).astype(np.float32)
    step = vec.step
    if raw:  # the core's array step: no VecEnv wrapper, no info dicts, no auto-reset
        step = vec._core.step_batch
    for i in range(5):
        step(actions[i])
    rate = 0.0
    for _ in range(3):
        count, start, clock0 = 0, time.perf_counter(), CLOCK()
        while time.perf_counter() - start < SECONDS / 3:
            step(actions[count % 16])
            count += 1
        rate = max(rate, count * n_envs / (CLOCK() - clock0))
    return rate


def env_digest(panel: Any, features: Any, config: Any, n_envs: int, steps: int = 300) -> str:
    """sha256 of the observations, rewards and dones of ``steps`` seeded steps (episodes end and
    reset inside): the same digest before and after means the same numbers."""
    from tradeforge.envs import BatchedTradingVecEnv

    vec = BatchedTradingVecEnv(panel, features, config, n_envs=n_envs, seed=0)
    h = hashlib.sha256(np.asarray(vec.reset()).tobytes())
    rng = np.random.default_rng(1)
    for _ in range(steps):
        a = rng.uniform(-1.0, 1.0, size=(n_envs, *vec.action_space.shape)).astype(np.float32)
        obs, reward, done, _ = vec.step(a)
        h.update(np.asarray(obs).tobytes() + reward.tobytes() + done.tobytes())
    return h.hexdigest()[:16]


def task_env() -> dict[str, Any]:
    import inspect

    from bench_envs import thirty_assets
    from tradeforge.data.bundled import load_bundled_panel
    from tradeforge.envs import BatchedTradingVecEnv, EnvConfig
    from tradeforge.envs.registration import default_features

    panel = load_bundled_panel(["SP500"])
    features = default_features(panel)
    one = EnvConfig(window=30, episode_length=252, random_start=True)
    out = {
        "1x4096_steps_per_s": env_rate(panel, features, one, 4096),
        "1x256_steps_per_s": env_rate(panel, features, one, 256),
        "1x8_steps_per_s": env_rate(panel, features, one, 8),
    }
    panel30, features30 = thirty_assets()
    thirty = EnvConfig(action="weights", window=10, episode_length=252, random_start=True)
    out["30x256_steps_per_s"] = env_rate(panel30, features30, thirty, 256)
    out["digest_1x256"] = env_digest(panel, features, one, 256)
    out["digest_30x256"] = env_digest(panel30, features30, thirty, 256)
    if "kernel" in inspect.signature(BatchedTradingVecEnv).parameters:  # the tree has both
        out["1x4096_numpy_path_steps_per_s"] = env_rate(panel, features, one, 4096, kernel="numpy")
        out["1x4096_core_step_batch_steps_per_s"] = env_rate(panel, features, one, 4096, raw=True)
    return out


def task_backtest() -> dict[str, float]:
    from bench_backtest import N_ASSETS, N_BARS, build_panel, make_weights, run_tradeforge

    panel = build_panel(N_ASSETS, N_BARS)
    w = make_weights(N_BARS, N_ASSETS)
    run_tradeforge(panel, w, "numba", False)  # compile or load the numba cache
    seconds, equity = best_of(lambda: run_tradeforge(panel, w, "numba", False), 9)
    digest = hashlib.sha256(np.ascontiguousarray(equity).tobytes()).hexdigest()[:16]
    return {"seconds": seconds, "final_equity": float(equity[-1]), "digest": digest}


def task_features() -> dict[str, Any]:
    from bench_features import build_panel, talib_features
    from tradeforge.data.panel import OHLCV
    from tradeforge.features import FeaturePipeline, FeatureSpec
    from tradeforge.features.graph import Context

    panel = build_panel()
    # TA-Lib first, on a heap our transforms have not touched: tradeforge's buffer pool
    # (features.workspace) keeps pages that TA-Lib's fresh outputs would otherwise reuse, which
    # made TA-Lib page-fault ~4x more and look up to 1.5x slower when timed after them.
    columns = [tuple(panel.field(f)[:, j].copy() for f in OHLCV) for j in range(panel.n_symbols)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_talib, _ = best_of(lambda: [talib_features(*x) for x in columns], 5)
    spec = FeatureSpec.default().model_copy(update={"scaler": "none"})
    values = FeaturePipeline(spec).transform(panel).values  # compile or load the cache
    t_transform, _ = best_of(lambda: FeaturePipeline(spec).transform(panel), 5)
    extra: dict[str, float] = {}
    try:  # one transform on an empty buffer pool: what a first (cold) call costs
        from tradeforge.features import workspace
    except ImportError:
        pass
    else:

        def cold() -> None:
            workspace.clear()
            FeaturePipeline(spec).transform(panel)

        extra["transform_cold_s"] = best_of(cold, 5)[0]
    pipe = FeaturePipeline(spec)
    fields = {name: panel.field(name) for name in OHLCV}
    ctx = Context.of(fields, panel.index)
    t_graph, cols = best_of(lambda: pipe._graph.run(ctx, pipe._outputs), 5)
    t_stack, _ = best_of(lambda: np.stack(cols[0], axis=-1), 5)
    try:  # the compiled stack FeaturePipeline.raw could use (features.kernels.stack_last)
        from tradeforge.features.kernels import stack_last
    except ImportError:
        pass
    else:
        stack_last(cols[0])
        extra["stack_last_s"] = best_of(lambda: stack_last(cols[0]), 5)[0]
    clean = np.where(np.isnan(values), 0.0, values)
    return {
        "transform_s": t_transform,
        "graph_s": t_graph,
        "stack_s": t_stack,
        "talib_s": t_talib,
        "digest": hashlib.sha256(clean.tobytes() + np.isnan(values).tobytes()).hexdigest()[:16],
        **extra,
    }


def main() -> None:
    global CLOCK
    task = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "wall":
        CLOCK = time.perf_counter
    fn = {"env": task_env, "backtest": task_backtest, "features": task_features}[task]
    print(json.dumps(fn()))


if __name__ == "__main__":
    main()

"""Run every benchmark in turn (each writes ``benchmarks/results/<area>.json``).

Peers (vectorbt, backtrader, gym-trading-env, ta, gym-anytrading) are not tradeforge dependencies:
install them with ``pip install -r benchmarks/requirements.txt`` first. Run on a quiet machine;
each script times tradeforge and its peers side by side in one process and reports ratios.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_data.py",
    "bench_features.py",
    "bench_envs.py",
    "bench_backtest.py",
    "bench_kernels.py",
    "bench_agents.py",
    "bench_audit.py",
    "bench_node.py",
    "bench_oms_store.py",
    "bench_serve_api.py",
)


def main() -> int:
    failed = []
    for name in SCRIPTS:
        t0 = time.perf_counter()
        print(f"=== {name}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name)])
        print(f"=== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

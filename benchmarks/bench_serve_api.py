"""API latency of the running service under a bounded open-loop load on loopback.

Starts the demo service (``python -m tradeforge.testing.serve_demo``: the node trading on the
local venue, the scheduler, the watcher, uvicorn with one worker) in its own process, then
sends requests at a fixed rate (default 200 requests/s for 30 s per endpoint: open loop, so a
slow answer does not slow the sender down) and records each latency:

* ``GET /healthz``: the framework floor (no auth, no work): the peer every ratio is taken to;
* ``GET /api/v1/status``: auth + a snapshot of the node's stores (cached 0.2 s);
* ``POST /api/v1/score`` with ``{"symbol": ...}``: auth + one policy decision on the node's
  latest observation;
* ``POST /api/v1/score`` with an explicit observation.

The load comes from 16 threads with one keep-alive connection each, on the same machine.

Writes ``benchmarks/results/serve_api.json``. Usage:
``python benchmarks/bench_serve_api.py [--rate 200] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
KEY = "bench-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WORKERS = 16


def _load(base: str, request: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: request i is due at t0 + i / rate whatever happened before; WORKERS threads
    (one keep-alive connection each) take the due requests in turn. A latency runs from the
    time a request was due, so a server that falls behind is charged for the queue too."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.1

    def worker(k: int) -> None:
        with httpx.Client(base_url=base, timeout=10.0) as client:
            for i in range(k, n, WORKERS):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    answer = client.request(**request)
                    code = answer.status_code
                except httpx.HTTPError as exc:
                    with lock:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                took = time.perf_counter() - due
                with lock:
                    latencies.append(took)
                    if code != 200:
                        errors[str(code)] = errors.get(str(code), 0) + 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1000.0
    return {
        "requests": n, "ok": int(ms.size), "errors": errors, "achieved_rps": n / took,
        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
    }  # fmt: skip


def _run(base: str, rate: float, seconds: float, observation: list[float]) -> dict[str, Any]:
    headers = {"X-API-Key": KEY}
    cases = {
        "healthz": {"method": "GET", "url": "/healthz"},
        "status": {"method": "GET", "url": "/api/v1/status", "headers": headers},
        "score_symbol": {"method": "POST", "url": "/api/v1/score", "headers": headers,
                         "json": {"symbol": "AAPL"}},
        "score_observation": {"method": "POST", "url": "/api/v1/score", "headers": headers,
                              "json": {"observation": observation}},
    }  # fmt: skip
    out: dict[str, Any] = {}
    for name, request in cases.items():
        _load(base, request, rate, 2.0)  # warm up
        out[name] = _load(base, request, rate, seconds)
        print(f"{name:>18}: p50 {out[name]['p50_ms']:.2f} ms  p99 {out[name]['p99_ms']:.2f} "
              f"ms  max {out[name]['max_ms']:.1f} ms  errors {out[name]['errors']}")  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--bar-interval",
        type=float,
        default=1.0,
        help="wall seconds per replayed bar while measuring (3600: no bar)",
    )
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "TRADEFORGE_API_KEY": KEY, "SERVE_BAR_INTERVAL_S": str(args.bar_interval)}
    with tempfile.TemporaryDirectory() as state:
        server = subprocess.Popen([sys.executable, "-m", "tradeforge.testing.serve_demo", state,
                                   str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    got = httpx.post(f"{base}/api/v1/score", json={"symbol": "AAPL"},
                                     headers={"X-API-Key": KEY}, timeout=2)  # fmt: skip
                    if got.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the service did not answer /api/v1/score within 60 s")
                time.sleep(0.3)
            n_obs = _observation_size(base)
            observation = list(np.random.default_rng(0).normal(size=n_obs).round(4))
            results = _run(base, args.rate, args.seconds, observation)
        finally:
            server.terminate()
            server.wait(timeout=20)
    floor = results["healthz"]["p50_ms"]
    for r in results.values():
        r["p50_ratio_to_healthz"] = r["p50_ms"] / floor
    payload = {
        "what": "API latency under open-loop load on loopback; the service process runs the "
        "node on the local venue (one bar per second) while being measured",
        "rate_rps": args.rate, "seconds_per_endpoint": args.seconds,
        "bar_interval_s": args.bar_interval, "load_threads": WORKERS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }  # fmt: skip
    name = "serve_api.json" if args.bar_interval < 60 else "serve_api_no_bars.json"
    out = HERE / "results" / name
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _observation_size(base: str) -> int:
    """The observation length the policy takes: ask with a wrong one and read the message."""
    got = httpx.post(f"{base}/api/v1/score", json={"observation": [0.0]},
                     headers={"X-API-Key": KEY}, timeout=5)  # fmt: skip
    detail = str(got.json().get("detail", ""))
    digits = detail.split("expected [", 1)[-1].split("]", 1)[0]
    return int(digits) if digits.isdigit() else 1


if __name__ == "__main__":
    sys.exit(main())

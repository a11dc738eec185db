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

Writes ``benchmarks/results/serve_api.json``. Usage:
``python benchmarks/bench_serve_api.py [--rate 200] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
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


async def _load(client: httpx.AsyncClient, request: dict[str, Any], rate: float,
                seconds: float) -> dict[str, Any]:  # fmt: skip
    """Open loop: request i is sent at t0 + i / rate whatever happened before."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    n = int(rate * seconds)
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter()
        try:
            answer = await client.request(**request)
            if answer.status_code != 200:
                errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(i) for i in range(n)))
    took = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1000.0
    return {
        "requests": n, "ok": int(ms.size), "errors": errors, "achieved_rps": n / took,
        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
    }  # fmt: skip


async def _run(base: str, rate: float, seconds: float, observation: list[float]) -> dict[str, Any]:
    headers = {"X-API-Key": KEY}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    cases = {
        "healthz": {"method": "GET", "url": f"{base}/healthz"},
        "status": {"method": "GET", "url": f"{base}/api/v1/status", "headers": headers},
        "score_symbol": {"method": "POST", "url": f"{base}/api/v1/score", "headers": headers,
                         "json": {"symbol": "AAPL"}},
        "score_observation": {"method": "POST", "url": f"{base}/api/v1/score",
                              "headers": headers, "json": {"observation": observation}},
    }  # fmt: skip
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        for name, request in cases.items():
            await _load(client, request, rate, 2.0)  # warm up
            out[name] = await _load(client, request, rate, seconds)
            print(f"{name:>18}: p50 {out[name]['p50_ms']:.2f} ms  p99 {out[name]['p99_ms']:.2f} "
                  f"ms  max {out[name]['max_ms']:.1f} ms  errors {out[name]['errors']}")  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    port = _free_port()
    env = {**os.environ, "TRADEFORGE_API_KEY": KEY, "SERVE_BAR_INTERVAL_S": "1.0"}
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
            results = asyncio.run(_run(base, args.rate, args.seconds, observation))
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
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }  # fmt: skip
    out = HERE / "results" / "serve_api.json"
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

"""SIGTERM with three open event streams: the service process exits within 10 s (uvicorn waits
for open connections unless the app ends its streams and the graceful timeout is bounded)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("alpaca")

KEY = "sigterm-test-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stream(url: str, opened: list[int]) -> None:
    try:
        with httpx.stream("GET", url, headers={"X-API-Key": KEY, "Accept": "text/event-stream"},
                          timeout=httpx.Timeout(30.0, read=30.0)) as answer:  # fmt: skip
            opened.append(answer.status_code)
            for _ in answer.iter_bytes():
                pass
    except httpx.HTTPError:
        pass


def test_sigterm_with_three_event_streams_exits_within_ten_seconds(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "TRADEFORGE_API_KEY": KEY, "SERVE_BAR_INTERVAL_S": "0.5"}
    process = subprocess.Popen([sys.executable, "-m", "tradeforge.testing.serve_demo",
                                str(tmp_path), str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.2)
        opened: list[int] = []
        threads = [threading.Thread(target=_stream, args=(f"{base}/events", opened), daemon=True)
                   for _ in range(3)]  # fmt: skip
        for t in threads:
            t.start()
        while len(opened) < 3:
            assert time.monotonic() < deadline, f"streams did not open: {opened}"
            time.sleep(0.05)
        assert opened == [200, 200, 200]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        took = time.monotonic() - started
        assert took < 10.0, f"exit took {took:.1f} s"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]

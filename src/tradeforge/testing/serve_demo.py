"""Run the service on the torch-free program in this process, for tests and benchmarks that need
a real server process (SIGTERM handling, API latency):
``python -m tradeforge.testing.serve_demo STATE PORT``.

It serves on 127.0.0.1:PORT with the key from ``TRADEFORGE_API_KEY`` and the local venue
replaying 2010 bar by bar (``SERVE_BAR_INTERVAL_S``, default 1 s), and writes ``STATE/ready``
once the app is about to listen.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import PaperConfig
from tradeforge.risk import RiskConfig
from tradeforge.serve.app import create_app, serve
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.config import ReplayConfig, ServeConfig
from tradeforge.serve.runtime import TradingService
from tradeforge.testing.programs import numpy_program


def main(state: str, port: int) -> None:
    interval = float(os.environ.get("SERVE_BAR_INTERVAL_S", "1.0"))
    config = ServeConfig(
        policy=str(Path(state) / "unused"), venue="local", state_dir=state,
        replay=ReplayConfig(start="2010-01-04", end="2010-12-31", bar_interval_s=interval),
        paper=PaperConfig(node=NodeConfig(strategy_id="swing"),
                          risk=RiskConfig(max_gross=1.0, max_drawdown=0.25)),
    )  # fmt: skip
    service = TradingService(config, numpy_program()).start()
    app = create_app(service, Authenticator.from_env())
    Path(state, "ready").write_text(str(port), encoding="utf-8")
    try:
        serve(app, "127.0.0.1", port, graceful_s=3.0)
    finally:
        service.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

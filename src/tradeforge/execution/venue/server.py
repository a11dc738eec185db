"""Serving the venue: in-process on a background thread (tests, the trading node), or in the
foreground (``tradeforge venue serve``).

``VenueServer`` binds 127.0.0.1 by default on a free port (``port=0``), so tests never clash
and never listen beyond the loopback. Stop it (or use it as a context manager): the server
thread ends, open websocket connections are closed, and the journal is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from tradeforge.execution.venue.app import create_app
from tradeforge.execution.venue.engine import VenueEngine
from tradeforge.execution.venue.errors import VenueError

logger = logging.getLogger(__name__)


def _uvicorn_config(engine: VenueEngine, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        create_app(engine), host=host, port=port, log_level=log_level, log_config=None,
        access_log=False, lifespan="off", ws="websockets-sansio", timeout_graceful_shutdown=3,
        ws_ping_interval=None,
    )  # fmt: skip


class VenueServer:
    """The venue on a background uvicorn thread.

    ``url`` is the REST base for ``TradingClient(url_override=...)`` and
    ``StockHistoricalDataClient(url_override=...)`` (no trailing slash, no ``/v2``);
    ``stream_url`` is the ``TradingStream(url_override=...)`` websocket. ``close_engine``
    closes the engine's journal when the server stops.
    """

    def __init__(
        self,
        engine: VenueEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        close_engine: bool = True,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._log_level = log_level
        self._close_engine = close_engine
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> VenueServer:
        """Start serving; returns once the port is bound (raises :class:`VenueError` if not)."""
        if self.running:
            return self
        import uvicorn

        self._server = uvicorn.Server(_uvicorn_config(self.engine, self.host, self.port,
                                                      self._log_level))  # fmt: skip
        self._thread = threading.Thread(
            target=self._server.run, name=f"tradeforge-venue-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise VenueError(
                    f"venue server on {self.host}:{self.port} did not start within {timeout} s; "
                    "expected a free port on this host"
                )
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        logger.info("venue serving on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        thread, server = self._thread, self._server
        if thread is not None and server is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout)
            if thread.is_alive():
                raise VenueError(f"venue server thread did not stop within {2 * timeout} s")
        self._thread = None
        if self._close_engine:
            self.engine.close()
            self._close_engine = False

    def __enter__(self) -> VenueServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(engine: VenueEngine, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM); closes the journal."""
    import uvicorn

    try:
        uvicorn.Server(_uvicorn_config(engine, host, port, "info")).run()
    finally:
        engine.close()


__all__ = ["VenueServer", "serve_forever"]

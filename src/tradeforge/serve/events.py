"""The dashboard's live feed: a server-sent-event stream of snapshots and heartbeats.

:func:`snapshot_events` polls ``service.snapshot()`` (off the event loop, in a worker thread)
every ``poll_s`` seconds and yields

* a ``snapshot`` event (id = the snapshot's ``version``, data = ``Snapshot.to_dict()``) on
  connect and whenever the version changes, and
* a ``heartbeat`` event (``{"ts": ..., "version": ...}``) when nothing was sent for
  ``heartbeat_s`` seconds, so a browser can tell a quiet service from a dead connection.

It returns within one poll interval once the service is stopping (``app.state.stopping``, a
:class:`threading.Event` set on SIGTERM) or the client has gone: an open dashboard must never
hold up the process's shutdown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from fastapi.sse import ServerSentEvent

from tradeforge.core.errors import ConfigError
from tradeforge.serve.snapshot import ServiceHandle

SNAPSHOT_EVENT = "snapshot"
HEARTBEAT_EVENT = "heartbeat"
RETRY_MS = 2000  # how long a browser waits before reconnecting a dropped stream
POLL_S = 0.25
# below 5 s with room for one poll interval: a quiet stream beats at least every 5 s
HEARTBEAT_S = 4.0


async def _never_disconnected() -> bool:
    return False


async def snapshot_events(
    service: ServiceHandle,
    *,
    stopping: threading.Event,
    is_disconnected: Callable[[], Awaitable[bool]] = _never_disconnected,
    poll_s: float = POLL_S,
    heartbeat_s: float = HEARTBEAT_S,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[ServerSentEvent]:
    """The event stream of one client (module docstring)."""
    if not poll_s > 0:
        raise ConfigError(f"poll_s is {poll_s!r}; expected a positive number of seconds")
    if not heartbeat_s >= poll_s:
        raise ConfigError(
            f"heartbeat_s is {heartbeat_s!r}; expected at least poll_s ({poll_s!r}) seconds"
        )
    last_version: str | None = None
    last_sent = clock()
    while not stopping.is_set() and not await is_disconnected():
        snap = await anyio.to_thread.run_sync(service.snapshot)
        if stopping.is_set():
            break
        if snap.version != last_version:
            retry = RETRY_MS if last_version is None else None
            last_version = snap.version
            last_sent = clock()
            yield ServerSentEvent(
                event=SNAPSHOT_EVENT, id=snap.version, data=snap.to_dict(), retry=retry
            )
        elif clock() - last_sent >= heartbeat_s:
            last_sent = clock()
            yield ServerSentEvent(
                event=HEARTBEAT_EVENT,
                data={"ts": datetime.now(UTC).isoformat(), "version": last_version},
            )
        await anyio.sleep(poll_s)


__all__ = [
    "HEARTBEAT_EVENT",
    "HEARTBEAT_S",
    "POLL_S",
    "RETRY_MS",
    "SNAPSHOT_EVENT",
    "snapshot_events",
]

"""The local Alpaca-compatible paper venue (``tradeforge venue serve``). See ``docs/venue.md``.

:class:`VenueEngine` keeps the venue's state (orders, fills, cash on ``SimulatedBroker``, a
replay clock over stored bars, a write-ahead journal); :func:`create_app` puts Alpaca's REST
subset, the trade-updates websocket and the admin/fault endpoints in front of it;
:class:`VenueServer` serves it on a loopback port from a background thread.
"""

from tradeforge.execution.venue.app import create_app
from tradeforge.execution.venue.config import VenueConfig
from tradeforge.execution.venue.engine import VenueEngine
from tradeforge.execution.venue.errors import AlpacaApiError, VenueError, VenueStateError
from tradeforge.execution.venue.faults import FAULT_KINDS, FaultPlan, parse_fault
from tradeforge.execution.venue.journal import VenueJournal
from tradeforge.execution.venue.server import VenueServer, serve_forever

__all__ = [
    "FAULT_KINDS",
    "AlpacaApiError",
    "FaultPlan",
    "VenueConfig",
    "VenueEngine",
    "VenueError",
    "VenueJournal",
    "VenueServer",
    "VenueStateError",
    "create_app",
    "parse_fault",
    "serve_forever",
]

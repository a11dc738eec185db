"""The local venue's configuration: which bars it replays, how it fills, who may connect."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.data.config import DataConfig
from tradeforge.sim import SimConfig

#: Exchange names alpaca-py's ``AssetExchange`` accepts for equities.
ExchangeName = Literal["AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"]

#: The fields whose change would make a stored journal replay differently (see ``replay_key``).
REPLAY_FIELDS: tuple[str, ...] = (
    "data",
    "sim",
    "replay_start",
    "untradable",
    "check_buying_power",
)


def _default_data() -> DataConfig:
    return DataConfig(source="bundled", symbols=["AAPL", "IBM", "MSFT"], start=date(2008, 1, 1))


class VenueConfig(FrozenConfig):
    """How the local Alpaca-compatible venue behaves.

    * ``data``: the stored bars it replays (read with ``tradeforge.data.ingest.load_panel``);
      default: the bundled AAPL, IBM and MSFT daily bars from 2008.
    * ``sim``: the fill and cost model (``SimulatedBroker`` on ``tradeforge.sim``); its
      ``initial_cash`` is the account's starting cash, ``fractional`` makes assets
      ``fractionable`` (notional orders need it), ``allow_short`` makes them ``shortable``.
    * ``replay_start``: the first decision bar is the first bar on or after this date; None
      starts at bar ``max(sim.vol_window, sim.adv_window)`` so the cost model has its history.
    * ``api_key`` / ``secret_key``: when set, every REST request and stream authentication must
      carry them (else 401 ``{"message": "unauthorized"}``); None accepts any key.
    * ``account_number``, ``exchange``: what ``/v2/account`` and ``/v2/assets`` report.
    * ``untradable``: symbols reported ``tradable: false``; orders for them answer 422.
    * ``max_stream_connections``: refuse (``unauthorized``, "connection limit exceeded") a
      trade-updates connection beyond this many open ones (Alpaca allows one per account);
      None: no limit.
    * ``check_buying_power``: refuse (403 ``insufficient buying power``) a buy whose cost at
      the last close, plus the open buys, exceeds the cash. Off by default: a backtest sizes
      buys with the proceeds of same-bar sells, which have not settled when the buy is sent.
    """

    data: DataConfig = Field(default_factory=_default_data)
    sim: SimConfig = Field(default_factory=SimConfig)
    replay_start: date | None = None
    api_key: str | None = None
    secret_key: str | None = None
    account_number: str = Field(default="TFPAPER0001", min_length=1, max_length=32)
    exchange: ExchangeName = "NASDAQ"
    untradable: tuple[str, ...] = ()
    check_buying_power: bool = False
    max_stream_connections: int | None = Field(default=None, ge=1)

    @field_validator("untradable")
    @classmethod
    def _strip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({s.strip() for s in value if s.strip()}))

    def replay_key(self) -> dict[str, Any]:
        """The fields a stored journal depends on, as JSON-ready values."""
        dumped = self.model_dump(mode="json", include=set(REPLAY_FIELDS))
        return {name: dumped[name] for name in REPLAY_FIELDS}


__all__ = ["REPLAY_FIELDS", "ExchangeName", "VenueConfig"]

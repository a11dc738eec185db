"""``AlpacaBroker``: the :class:`~tradeforge.execution.broker.Broker` protocol on alpaca-py.

It drives the unmodified SDK (``TradingClient`` for REST, ``TradingStream`` for trade updates)
against Alpaca paper, Alpaca live, or the local venue (``tradeforge venue serve``), and closes
the SDK's traps (research/broker.md):

* **No blind retries.** alpaca-py retries every request, POSTs included, three times on 429 and
  504 and exposes no switch; this adapter turns that off (``_retry = 0``, no retry codes) and
  runs its own policy. A request that was certainly not carried out (429, connection refused)
  is sent again after a wait (``Retry-After`` / ``X-Ratelimit-Reset`` are honoured). A submit
  whose outcome is unknown (timeout, 5xx, an unreadable 2xx body, a dropped connection) is
  NEVER sent again blindly: the order is looked up by ``client_order_id`` first, adopted when
  found, and re-sent with the SAME id only when the venue says it does not have it (a venue
  that had it after all refuses the copy: "client_order_id must be unique", 422, which is
  mapped to a look-up). Reads and cancels are idempotent and are retried with backoff.
* **Explicit timeouts.** The SDK passes none to ``requests`` (a hung server blocks forever);
  every request here has ``(connect_timeout_s, read_timeout_s)``.
* **A client-side throttle** keeps under ``requests_per_minute`` (Alpaca allows 200).
* **Definitive refusals** (400, 403, 422 other than a duplicate id) become a ``BrokerOrder`` in
  ``rejected`` with the venue's code and message; they are not retried. 401 raises
  :class:`~tradeforge.execution.errors.BrokerError` (wrong keys are not an order problem).
* **Trade updates** arrive on a ``TradingStream`` thread and are turned into domain events
  (``new``/``accepted`` -> ``OrderAccepted``, ``fill``/``partial_fill`` -> ``OrderFilled`` with
  the ``execution_id`` as fill id, ``canceled``, ``expired``/``done_for_day``, ``rejected``).
  Nothing is replayed after a reconnect, so after every reconnect the next
  :meth:`AlpacaBroker.drain_events` re-reads the open orders it knows over REST and emits what
  the stream missed. :meth:`AlpacaBroker.start` returns only once the stream is listening.

Statuses map as in docs/execution.md (Alpaca's ``new`` is our ``accepted``). The local venue's
``tf_fills`` / ``tf_fee`` extensions (every execution with its id and the simulator's fee) are
read when present, so reconciliation against the venue adopts exact fills and fees; against
Alpaca (commission-free, totals only) the order manager infers a fill from the totals.

The SDK attributes this module sets (``TradingClient._retry``, ``_retry_codes``, ``_session``;
``TradingStream._start_ws``, ``_auth``, ``_dispatch``, ``_loop``) are private: alpaca-py has no
public way to do this. The tests pin each of them against the installed version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.domain import (
    ClientOrderId,
    DomainError,
    FillId,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    SubmitOrder,
    Symbol,
    VenueOrderId,
    client_order_id_of,
)
from tradeforge.execution.broker import BrokerAccount, BrokerOrder, BrokerPosition
from tradeforge.execution.errors import BrokerError, BrokerUnavailableError, OrderNotFoundError

logger = logging.getLogger(__name__)
T = TypeVar("T")

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
PAPER_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM_URL = "wss://api.alpaca.markets/stream"

#: Alpaca's 18 order statuses in tradeforge's vocabulary (docs/execution.md). ``done_for_day``
#: is handled apart (expired for a day order, still open otherwise).
ALPACA_STATUS_MAP: dict[str, OrderStatus] = {
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "pending_review": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "pending_replace": OrderStatus.PENDING_REPLACE,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "replaced": OrderStatus.REPLACED,
}
_DUPLICATE_ID = "client_order_id must be unique"


def map_status(status: str, time_in_force: str, filled_qty: Decimal) -> OrderStatus:
    """An Alpaca status string in tradeforge's ``OrderStatus`` (see ``ALPACA_STATUS_MAP``).

    An open status with something filled is ``partially_filled``; ``done_for_day`` is
    ``expired`` for a day order and open otherwise. An unknown status raises ``BrokerError``.
    """
    if status == "done_for_day":
        if time_in_force == "day":
            return OrderStatus.EXPIRED
        mapped = OrderStatus.ACCEPTED
    elif status in ALPACA_STATUS_MAP:
        mapped = ALPACA_STATUS_MAP[status]
    else:
        raise BrokerError(f"order status = {status!r}; expected one of Alpaca's 18 statuses")
    if mapped is OrderStatus.ACCEPTED and filled_qty > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped


class AlpacaBrokerConfig(FrozenConfig):
    """How to reach Alpaca (or the local venue) and how patient to be.

    * ``base_url``: the REST base (``url_override``): ``http(s)://host[:port]`` with no
      trailing slash and no ``/v2``; None is Alpaca paper or live per ``paper``.
    * ``stream_url``: the trade-updates websocket (``ws(s)://host[:port]/stream``); None is
      derived from ``paper``, or from ``base_url`` (same host, ``/stream``) when that is set.
    * ``stream``: run the trade-updates stream (False: REST only, events only from resyncs).
    * ``connect_timeout_s`` / ``read_timeout_s``: per HTTP request.
    * ``max_attempts``: tries per operation (submit, read, cancel) before giving up with
      ``BrokerUnavailableError``; ``backoff_s`` doubles per try up to ``max_backoff_s``.
    * ``max_rate_limit_wait_s``: the longest wait a 429's ``Retry-After`` may impose.
    * ``requests_per_minute`` per ``rate_window_s``: the client-side throttle.
    * ``stream_ready_timeout_s``: how long :meth:`AlpacaBroker.start` waits for ``listening``.
    """

    api_key: str = Field(min_length=1)
    secret_key: SecretStr
    paper: bool = True
    base_url: str | None = None
    stream_url: str | None = None
    stream: bool = True
    connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    read_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=0.25, ge=0, le=30)
    max_backoff_s: float = Field(default=4.0, ge=0, le=120)
    max_rate_limit_wait_s: float = Field(default=30.0, ge=0, le=600)
    requests_per_minute: int = Field(default=190, ge=1, le=10_000)
    rate_window_s: float = Field(default=60.0, gt=0, le=600)
    stream_ready_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _check_urls(self) -> AlpacaBrokerConfig:
        if self.base_url is not None:
            _check_url("base_url", self.base_url, ("http", "https"), path_allowed=False)
        if self.stream_url is not None:
            _check_url("stream_url", self.stream_url, ("ws", "wss"), path_allowed=True)
        for name in ("base_url", "stream_url"):
            host = urlparse(getattr(self, name) or "").hostname or ""
            if self.paper and host == "api.alpaca.markets":
                raise ValueError(
                    f"{name} = {getattr(self, name)!r} is Alpaca LIVE but paper = True; expected "
                    "the paper URL (paper-api.alpaca.markets) or paper = False"
                )
            if not self.paper and host == "paper-api.alpaca.markets":
                raise ValueError(
                    f"{name} = {getattr(self, name)!r} is Alpaca paper but paper = False; "
                    "expected the live URL or paper = True"
                )
            if host == "api.alpaca.markets" and self.api_key.startswith("PK"):
                raise ValueError(
                    f"api_key = 'PK...' is a paper key but {name} is Alpaca LIVE; expected live "
                    "keys (AK...) for the live URL"
                )
        return self

    @property
    def rest_url(self) -> str:
        if self.base_url is not None:
            return self.base_url
        return PAPER_URL if self.paper else LIVE_URL

    @property
    def trade_stream_url(self) -> str:
        if self.stream_url is not None:
            return self.stream_url
        if self.base_url is not None:
            parsed = urlparse(self.base_url)
            scheme = "wss" if parsed.scheme == "https" else "ws"
            return f"{scheme}://{parsed.netloc}/stream"
        return PAPER_STREAM_URL if self.paper else LIVE_STREAM_URL


def _check_url(name: str, url: str, schemes: tuple[str, ...], *, path_allowed: bool) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ValueError(f"{name} = {url!r}; expected {'|'.join(schemes)}://host[:port]")
    if url.endswith("/"):
        raise ValueError(f"{name} = {url!r} ends with '/'; expected no trailing slash")
    if not path_allowed and parsed.path not in ("",):
        raise ValueError(
            f"{name} = {url!r} has a path ({parsed.path!r}); expected scheme://host[:port] only "
            "(alpaca-py appends /v2 itself)"
        )


# -- outcomes of one HTTP attempt ---------------------------------------------------------------
class _Outcome(Exception):
    pass


class _Unknown(_Outcome):
    """The request may or may not have been carried out."""


class _RateLimited(_Outcome):
    def __init__(self, wait: float) -> None:
        super().__init__(f"429 rate limited (retry after {wait:.2f} s)")
        self.wait = wait


class _Refused(_Outcome):
    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    @property
    def duplicate(self) -> bool:
        return self.status == 422 and _DUPLICATE_ID in self.message


def _error_body(text: str) -> tuple[int | None, str]:
    try:
        body = json.loads(text)
    except ValueError:
        return None, " ".join(text.split())[:200]
    if not isinstance(body, dict):
        return None, str(body)[:200]
    code = body.get("code")
    return (int(code) if isinstance(code, int) else None), str(body.get("message", body))


def _dec(value: Any, name: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise _Unknown(f"{name} = {value!r} is not a number") from None
    if not out.is_finite():
        raise _Unknown(f"{name} = {value!r} is not finite")
    return out


def _wire_float(value: Decimal, name: str) -> float:
    number = float(value)
    if Decimal(repr(number)) != value:
        raise BrokerError(
            f"{name} = {value} cannot be sent exactly as a JSON number (alpaca-py sends floats); "
            "expected at most 15 significant digits"
        )
    return number


@dataclass(frozen=True)
class MarketClock:
    """What ``/v2/clock`` says (UTC)."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass
class _Track:
    """What this broker has reported about one order (to fill in what the stream missed)."""

    venue_id: str
    acked: bool = False
    terminal: bool = False
    fill_ids: set[str] = field(default_factory=set)
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    covered: Decimal = Decimal(0)  # cumulative qty accounted for by an inferred fill


class AlpacaBroker:
    """The Broker protocol on alpaca-py (see the module docstring).

    ``trading_client`` and ``stream_factory`` replace the SDK objects (tests); ``sleep`` is
    the wait between tries. Call :meth:`start` before trading (it starts the stream) and
    :meth:`close` at the end (or use the broker as a context manager).
    """

    def __init__(
        self,
        config: AlpacaBrokerConfig,
        *,
        trading_client: Any = None,
        stream_factory: Callable[[], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._client = trading_client if trading_client is not None else self._make_client()
        self._configure_client(self._client)
        self._stream_factory = stream_factory
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._updates: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._connects = 0
        self._resynced_at = 0
        self._resync_pending = False
        self.auth_failures = 0
        self._tracks: dict[ClientOrderId, _Track] = {}
        self._sent: deque[float] = deque()
        self.http_attempts = 0

    # -- SDK set-up ------------------------------------------------------------------------
    def _make_client(self) -> Any:
        try:
            from alpaca.trading.client import TradingClient
        except ImportError:
            raise BrokerError(
                "AlpacaBroker needs alpaca-py, which is not installed; expected "
                "`pip install 'tradeforge[vendors]'` (or `pip install alpaca-py`)"
            ) from None

        return TradingClient(
            self.config.api_key, self.config.secret_key.get_secret_value(),
            paper=self.config.paper, raw_data=True, url_override=self.config.base_url,
        )  # fmt: skip

    def _configure_client(self, client: Any) -> None:
        from requests.adapters import HTTPAdapter

        for name in ("_retry", "_retry_codes", "_session", "_use_raw_data"):
            if not hasattr(client, name):
                raise BrokerError(
                    f"alpaca-py TradingClient has no attribute {name!r}; expected alpaca-py "
                    "0.3x-0.4x (this adapter disables its built-in POST retries through it)"
                )
        client._retry = 0
        client._retry_codes = []
        client._use_raw_data = True
        timeout = (self.config.connect_timeout_s, self.config.read_timeout_s)

        class _TimeoutAdapter(HTTPAdapter):
            def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                if kwargs.get("timeout") is None:
                    kwargs["timeout"] = timeout
                return super().send(request, **kwargs)

        adapter = _TimeoutAdapter(max_retries=0)
        client._session.mount("http://", adapter)
        client._session.mount("https://", adapter)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> AlpacaBroker:
        """Start the trade-updates stream and wait until it listens (no-op without stream)."""
        if not self.config.stream or self._thread is not None:
            return self
        self._stream = self._stream_factory() if self._stream_factory else self._make_stream()
        self._stream.subscribe_trade_updates(self._on_update)
        self._thread = threading.Thread(target=self._stream.run, name="alpaca-trade-updates",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        if not self._ready.wait(self.config.stream_ready_timeout_s):
            failures = self.auth_failures
            self.close()
            raise BrokerUnavailableError(
                f"trade-updates stream at {self.config.trade_stream_url} not listening after "
                f"{self.config.stream_ready_timeout_s} s ({failures} authentication failure(s)); "
                "expected an 'authorized' reply and a 'listening' acknowledgement"
            )
        return self

    def _make_stream(self) -> Any:
        from alpaca.trading.stream import TradingStream

        broker = self

        class _ObservedStream(TradingStream):
            async def _start_ws(self) -> None:
                await super()._start_ws()  # type: ignore[no-untyped-call]
                broker._on_connect()

            async def _auth(self) -> None:
                try:
                    await super()._auth()  # type: ignore[no-untyped-call]
                except ValueError:
                    broker.auth_failures += 1
                    logger.error("trade-updates stream: authentication refused")
                    raise

            async def _dispatch(self, msg: dict[str, Any]) -> None:
                if msg.get("stream") == "listening":
                    broker._ready.set()
                await super()._dispatch(msg)

        return _ObservedStream(
            self.config.api_key, self.config.secret_key.get_secret_value(),
            paper=self.config.paper, raw_data=True, url_override=self.config.trade_stream_url,
            websocket_params={
                "ping_interval": 10, "ping_timeout": 30, "max_queue": 1024,
                "open_timeout": self.config.connect_timeout_s, "close_timeout": 2,
            },
        )  # fmt: skip

    def _on_connect(self) -> None:
        with self._lock:
            self._connects += 1
            if self._connects > 1:
                self._resync_pending = True
                logger.warning("trade-updates stream reconnected; open orders will be resynced")

    async def _on_update(self, message: Any) -> None:
        if isinstance(message, dict):
            self._updates.put(message)

    @property
    def stream_connects(self) -> int:
        """How many times the stream (re)connected and authenticated."""
        with self._lock:
            return self._connects

    def close(self) -> None:
        """Stop the stream thread and close the HTTP session (idempotent)."""
        stream, thread = self._stream, self._thread
        if stream is not None and thread is not None and thread.is_alive():
            loop = getattr(stream, "_loop", None)
            if loop is not None and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._stop_stream(stream), loop)
                with contextlib.suppress(Exception):
                    future.result(timeout=5)
            thread.join(timeout=10)
            if thread.is_alive():
                logger.error("trade-updates stream thread did not stop within 10 s")
        self._stream, self._thread = None, None
        self._client._session.close()

    @staticmethod
    async def _stop_stream(stream: Any) -> None:
        await stream.stop_ws()
        await stream.close()

    def __enter__(self) -> AlpacaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one HTTP attempt ------------------------------------------------------------------
    def _throttle(self) -> None:
        window, limit = self.config.rate_window_s, self.config.requests_per_minute
        while True:
            now = time.monotonic()
            while self._sent and now - self._sent[0] >= window:
                self._sent.popleft()
            if len(self._sent) < limit:
                self._sent.append(now)
                return
            self._sleep(window - (now - self._sent[0]) + 1e-3)

    def _once(self, call: Callable[[], T]) -> T:
        """One request, its outcome classified (raises ``_Unknown``/``_RateLimited``/``_Refused``)."""
        import requests
        from alpaca.common.exceptions import APIError

        self._throttle()
        self.http_attempts += 1
        try:
            return call()
        except APIError as exc:
            status = exc.status_code
            code, message = _error_body(str(exc))
            if status is None or status >= 500 or status == 408:
                raise _Unknown(f"HTTP {status}: {message}") from None
            if status == 429:
                raise _RateLimited(self._retry_after(exc)) from None
            raise _Refused(status, code, message) from None
        except requests.Timeout as exc:
            raise _Unknown(f"timeout ({exc.__class__.__name__})") from None
        except requests.ConnectionError as exc:
            raise _Unknown(f"connection error ({exc.__class__.__name__})") from None
        except (ValidationError, TypeError, ValueError, KeyError) as exc:
            raise _Unknown(f"unreadable reply ({exc.__class__.__name__}: {exc})"[:300]) from None

    def _retry_after(self, exc: Any) -> float:
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        wait = self.config.backoff_s
        try:
            if headers.get("Retry-After") is not None:
                wait = float(headers["Retry-After"])
            elif headers.get("X-Ratelimit-Reset") is not None:
                wait = float(headers["X-Ratelimit-Reset"]) - time.time()
        except ValueError:
            pass
        return min(max(wait, 0.0), self.config.max_rate_limit_wait_s)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.config.backoff_s * 2 ** (attempt - 1), self.config.max_backoff_s))

    def _idempotent(self, what: str, call: Callable[[], T]) -> T:
        """A read or cancel: retried on unknown outcomes and rate limits."""
        last = ""
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return self._once(call)
            except _RateLimited as exc:
                last = str(exc)
                if attempt < self.config.max_attempts:
                    self._sleep(exc.wait)
            except _Unknown as exc:
                last = str(exc)
                if attempt < self.config.max_attempts:
                    self._sleep(self._backoff(attempt))
            except _Refused as exc:
                if exc.status == 401:
                    raise BrokerError(
                        f"{what}: 401 unauthorized; expected valid API keys"
                    ) from None
                raise
        raise BrokerUnavailableError(
            f"{what}: no usable answer after {self.config.max_attempts} attempts ({last})"
        )

    # -- parsing ---------------------------------------------------------------------------
    def _broker_order(self, raw: Any) -> BrokerOrder:
        """An Alpaca order (raw JSON) as a BrokerOrder; raises ``_Unknown`` when unreadable."""
        from alpaca.trading.models import Order

        if not isinstance(raw, dict):
            raise _Unknown(f"order reply is {type(raw).__name__}, not a JSON object")
        model = Order(**raw)  # the SDK's own validation
        filled = _dec(model.filled_qty or 0, "filled_qty")
        tif = model.time_in_force.value
        try:
            status = map_status(model.status.value, tif, filled)
        except BrokerError as exc:
            raise _Unknown(str(exc)) from None
        quantity = _dec(model.qty, "qty") if model.qty is not None else filled
        avg = model.filled_avg_price
        cid = ClientOrderId(model.client_order_id)
        side = OrderSide(model.side.value) if model.side is not None else OrderSide.BUY
        order = BrokerOrder(
            client_order_id=cid, venue_order_id=VenueOrderId(str(model.id)),
            symbol=Symbol(model.symbol or ""), side=side, quantity=quantity, status=status,
            updated_at=model.updated_at.astimezone(UTC), filled_quantity=filled,
            avg_fill_price=_dec(avg, "filled_avg_price") if avg not in (None, "") and filled else None,
            fills=self._venue_fills(raw, cid, Symbol(model.symbol or ""), side),
            reason=str(raw.get("reject_reason") or ""),
        )  # fmt: skip
        self._track(cid, order.venue_order_id)
        return order

    @staticmethod
    def _venue_fills(
        raw: dict[str, Any], cid: ClientOrderId, symbol: Symbol, side: OrderSide
    ) -> tuple[OrderFilled, ...] | None:
        """The local venue's ``tf_fills`` extension as domain fills (None when absent)."""
        items = raw.get("tf_fills")
        if not isinstance(items, list):
            return None
        try:
            return tuple(
                OrderFilled(
                    client_order_id=cid,
                    ts=datetime.fromisoformat(str(f["timestamp"]).replace("Z", "+00:00")),
                    fill_id=FillId(str(f["execution_id"])),
                    symbol=symbol,
                    side=side,
                    quantity=Decimal(str(f["qty"])),
                    price=Decimal(str(f["price"])),
                    fee=Decimal(str(f.get("fee") or 0)),
                )
                for f in items
            )
        except (DomainError, KeyError, TypeError, ValueError, InvalidOperation):
            logger.warning("order %s: unreadable tf_fills extension; using totals", cid)
            return None

    def _track(self, cid: ClientOrderId, venue_id: str) -> _Track:
        with self._lock:
            track = self._tracks.get(cid)
            if track is None:
                track = self._tracks[cid] = _Track(venue_id)
            return track

    # -- Broker protocol -------------------------------------------------------------------
    def _order_request(self, command: SubmitOrder) -> Any:
        from alpaca.trading import requests as rq

        common: dict[str, Any] = {
            "symbol": command.symbol, "qty": _wire_float(command.quantity, "quantity"),
            "side": command.side.value, "time_in_force": command.time_in_force.value,
            "client_order_id": command.client_order_id,
        }  # fmt: skip
        limit = _wire_float(command.limit_price, "limit_price") if command.limit_price else None
        stop = _wire_float(command.stop_price, "stop_price") if command.stop_price else None
        if command.order_type is OrderType.MARKET:
            return rq.MarketOrderRequest(**common)
        if command.order_type is OrderType.LIMIT:
            return rq.LimitOrderRequest(**common, limit_price=limit)
        if command.order_type is OrderType.STOP:
            return rq.StopOrderRequest(**common, stop_price=stop)
        return rq.StopLimitOrderRequest(**common, limit_price=limit, stop_price=stop)

    def submit(self, command: SubmitOrder) -> BrokerOrder:
        """Place ``command`` at most once (see the module docstring for the retry policy)."""
        cid = command.client_order_id
        request = self._order_request(command)
        last = ""
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                raw = self._once(lambda: self._client.submit_order(request))
                return self._parse_or_unknown(raw)
            except _RateLimited as exc:  # refused before it was carried out: safe to resend
                last = str(exc)
                if attempt < self.config.max_attempts:
                    self._sleep(exc.wait)
                continue
            except _Refused as exc:
                if exc.status == 401:
                    raise BrokerError(
                        f"submit {cid}: 401 unauthorized; expected valid keys"
                    ) from None
                if not exc.duplicate:
                    logger.info("submit %s refused: %s", cid, exc)
                    return self._rejected(command, exc)
                last = f"duplicate client_order_id ({exc.message})"
                logger.info("submit %s: the venue already has this id; fetching it", cid)
            except _Unknown as exc:
                last = str(exc)
                logger.warning(
                    "submit %s: outcome unknown (%s); looking it up by client id", cid, exc
                )
            found = self.get_order_by_client_id(cid)  # BrokerUnavailableError propagates
            if found is not None:
                return found
            if attempt < self.config.max_attempts:
                self._sleep(self._backoff(attempt))
        raise BrokerUnavailableError(
            f"submit {cid}: not confirmed after {self.config.max_attempts} attempts ({last}); "
            "resolve it with get_order_by_client_id"
        )

    def _parse_or_unknown(self, raw: Any) -> BrokerOrder:
        try:
            return self._broker_order(raw)
        except (ValidationError, TypeError, ValueError, KeyError) as exc:
            raise _Unknown(f"unreadable order ({exc.__class__.__name__})") from None

    def _rejected(self, command: SubmitOrder, exc: _Refused) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=command.client_order_id, venue_order_id=VenueOrderId(""),
            symbol=command.symbol, side=command.side, quantity=command.quantity,
            status=OrderStatus.REJECTED, updated_at=datetime.now(UTC),
            reason=f"HTTP {exc.status} {exc.code}: {exc.message}",
        )  # fmt: skip

    def get_order_by_client_id(self, client_order_id: ClientOrderId) -> BrokerOrder | None:
        what = f"get order {client_order_id}"
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                raw = self._idempotent(
                    what, lambda: self._client.get_order_by_client_id(client_order_id)
                )
            except _Refused as exc:
                if exc.status == 404:
                    return None
                raise BrokerError(f"{what}: {exc}") from None
            try:
                return self._broker_order(raw)
            except (_Unknown, ValidationError, TypeError, ValueError, KeyError) as exc:
                logger.warning("%s: unreadable reply (%s)", what, exc)
                if attempt < self.config.max_attempts:
                    self._sleep(self._backoff(attempt))
        raise BrokerUnavailableError(
            f"{what}: unreadable replies after {self.config.max_attempts} attempts"
        )

    def cancel(self, client_order_id: ClientOrderId) -> None:
        """Request a cancel; an order already done is not an error (the outcome is an event)."""
        track = self._tracks.get(client_order_id)
        venue_id = track.venue_id if track is not None and track.venue_id else None
        if venue_id is None:
            found = self.get_order_by_client_id(client_order_id)
            if found is None:
                raise OrderNotFoundError(
                    f"cancel: no order with client_order_id {client_order_id!r}"
                )
            venue_id = found.venue_order_id
        try:
            self._idempotent(f"cancel {client_order_id}",
                             lambda: self._client.cancel_order_by_id(venue_id))  # fmt: skip
        except _Refused as exc:
            if exc.status == 404:
                raise OrderNotFoundError(f"cancel: the venue has no order {venue_id}") from None
            if exc.status == 422:
                logger.info("cancel %s: not cancelable (%s)", client_order_id, exc.message)
                return
            raise BrokerError(f"cancel {client_order_id}: {exc}") from None

    def list_open_orders(self) -> list[BrokerOrder]:
        from alpaca.common.enums import Sort
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        out: dict[str, BrokerOrder] = {}
        after: datetime | None = None
        while True:
            request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500,
                                       direction=Sort.ASC, after=after)  # fmt: skip

            def fetch(r: Any = request) -> Any:
                return self._client.get_orders(r)

            try:
                page = self._idempotent("list open orders", fetch)
            except _Refused as exc:
                raise BrokerError(f"list open orders: {exc}") from None
            if not isinstance(page, list):
                raise BrokerUnavailableError(f"list open orders: reply is {type(page).__name__}")
            for raw in page:
                try:
                    order = self._broker_order(raw)
                except (_Unknown, ValidationError, TypeError, ValueError, KeyError) as exc:
                    raise BrokerUnavailableError(
                        f"list open orders: unreadable order ({exc})"
                    ) from None
                out[order.venue_order_id] = order
            if len(page) < 500:
                return list(out.values())
            after = datetime.fromisoformat(str(page[-1]["submitted_at"]).replace("Z", "+00:00"))

    def positions(self) -> dict[Symbol, BrokerPosition]:
        try:
            raw = self._idempotent("positions", self._client.get_all_positions)
        except _Refused as exc:
            raise BrokerError(f"positions: {exc}") from None
        out: dict[Symbol, BrokerPosition] = {}
        try:
            for item in raw:
                qty = _dec(item["qty"], "qty")
                if item.get("side") == "short" and qty > 0:
                    qty = -qty
                symbol = Symbol(str(item["symbol"]))
                out[symbol] = BrokerPosition(
                    symbol, qty, _dec(item["avg_entry_price"], "avg_entry_price")
                )
        except (_Unknown, KeyError, TypeError) as exc:
            raise BrokerUnavailableError(f"positions: unreadable reply ({exc})") from None
        return out

    def account(self) -> BrokerAccount:
        try:
            raw = self._idempotent("account", self._client.get_account)
            return BrokerAccount(
                cash=_dec(raw["cash"], "cash"), buying_power=_dec(raw["buying_power"], "buying_power"),
                equity=_dec(raw["equity"], "equity"),
            )  # fmt: skip
        except _Refused as exc:
            raise BrokerError(f"account: {exc}") from None
        except (_Unknown, KeyError, TypeError) as exc:
            raise BrokerUnavailableError(f"account: unreadable reply ({exc})") from None

    def clock(self) -> MarketClock:
        """The venue's clock (``/v2/clock``): its time, whether the market is open, and the next
        session (not part of the Broker protocol; the trading node checks skew and hours)."""
        from alpaca.trading.models import Clock

        try:
            raw = self._idempotent("clock", self._client.get_clock)
            model = Clock(**raw)
        except _Refused as exc:
            raise BrokerError(f"clock: {exc}") from None
        except (ValidationError, TypeError) as exc:
            raise BrokerUnavailableError(f"clock: unreadable reply ({exc})") from None
        return MarketClock(
            timestamp=model.timestamp.astimezone(UTC), is_open=model.is_open,
            next_open=model.next_open.astimezone(UTC), next_close=model.next_close.astimezone(UTC),
        )  # fmt: skip

    # -- events ----------------------------------------------------------------------------
    def drain_events(self) -> list[OrderEvent]:
        """Events from the stream since the last call, then (after a reconnect) from a REST
        resync of every open order this broker knows."""
        events: list[OrderEvent] = []
        while True:
            try:
                message = self._updates.get_nowait()
            except queue.Empty:
                break
            events.extend(self._events_from_update(message))
        with self._lock:
            resync, self._resync_pending = self._resync_pending, False
        if resync:
            events.extend(self.resync())
        return events

    def resync(self) -> list[OrderEvent]:
        """Re-read every open order this broker knows over REST; events for what changed."""
        events: list[OrderEvent] = []
        for cid, track in list(self._tracks.items()):
            if track.terminal:
                continue
            try:
                remote = self.get_order_by_client_id(cid)
            except BrokerError as exc:
                logger.warning("resync %s: %s", cid, exc)
                with self._lock:
                    self._resync_pending = True
                continue
            if remote is not None:
                events.extend(self._events_from_order(cid, track, remote))
        return events

    def _events_from_order(
        self, cid: ClientOrderId, track: _Track, remote: BrokerOrder
    ) -> list[OrderEvent]:
        ts = remote.updated_at
        out: list[OrderEvent] = []
        if remote.status is OrderStatus.REJECTED and remote.filled_quantity == 0:
            track.terminal = True
            return [OrderRejected(client_order_id=cid, ts=ts, reason=remote.reason or "rejected")]
        if not track.acked:
            track.acked = True
            out.append(
                OrderAccepted(client_order_id=cid, ts=ts, venue_order_id=remote.venue_order_id)
            )
        if remote.fills is not None:
            for fill in remote.fills:
                if fill.fill_id not in track.fill_ids:
                    self._count_fill(track, fill.fill_id, fill.quantity, fill.price)
                    out.append(fill)
        else:
            gap = remote.filled_quantity - track.filled
            if gap > 0 and remote.avg_fill_price is not None:
                price = (remote.avg_fill_price * remote.filled_quantity - track.notional) / gap
                fill_id = FillId(f"recon-{remote.venue_order_id}-{remote.filled_quantity}")
                self._count_fill(track, fill_id, gap, price)
                track.covered = remote.filled_quantity
                out.append(OrderFilled(client_order_id=cid, ts=ts, fill_id=fill_id,
                                       symbol=remote.symbol, side=remote.side, quantity=gap,
                                       price=price))  # fmt: skip
        if remote.status is OrderStatus.CANCELED:
            out.append(OrderCanceled(client_order_id=cid, ts=ts, reason="canceled"))
        elif remote.status is OrderStatus.EXPIRED:
            out.append(OrderExpired(client_order_id=cid, ts=ts))
        track.terminal = remote.status.is_terminal
        return out

    @staticmethod
    def _count_fill(track: _Track, fill_id: str, qty: Decimal, price: Decimal) -> None:
        track.fill_ids.add(fill_id)
        track.filled += qty
        track.notional += qty * price

    def _events_from_update(self, message: dict[str, Any]) -> list[OrderEvent]:
        from alpaca.trading.models import TradeUpdate

        data = message.get("data")
        if message.get("stream") != "trade_updates" or not isinstance(data, dict):
            return []
        try:
            update = TradeUpdate(**data)  # the SDK's own validation
            raw_order = data["order"]
            cid = client_order_id_of(str(raw_order["client_order_id"]))
        except (ValidationError, DomainError, KeyError, TypeError) as exc:
            logger.warning("unreadable trade update (%s); resyncing over REST", exc)
            with self._lock:
                self._resync_pending = True
            return []
        event = str(data.get("event"))
        ts = update.timestamp.astimezone(UTC)
        venue_id = str(update.order.id)
        track = self._track(cid, venue_id)
        if event in ("new", "accepted", "pending_new"):
            track.acked = True
            return [
                OrderAccepted(client_order_id=cid, ts=ts, venue_order_id=VenueOrderId(venue_id))
            ]
        if event in ("fill", "partial_fill"):
            try:
                return self._fill_event(cid, track, data, update, ts)
            except (DomainError, InvalidOperation, ValueError) as exc:
                logger.warning("unusable fill update for %s (%s); resyncing over REST", cid, exc)
                with self._lock:
                    self._resync_pending = True
                return []
        if event in ("canceled", "expired", "done_for_day", "rejected"):
            if event == "done_for_day" and update.order.time_in_force.value != "day":
                return []
            track.terminal = True
            if event == "canceled":
                return [OrderCanceled(client_order_id=cid, ts=ts, reason="canceled")]
            if event == "rejected":
                reason = str(raw_order.get("reject_reason") or "rejected by the venue")
                return [OrderRejected(client_order_id=cid, ts=ts, reason=reason)]
            return [OrderExpired(client_order_id=cid, ts=ts)]
        logger.debug("trade update %s for %s: no domain event", event, cid)
        return []

    def _fill_event(
        self, cid: ClientOrderId, track: _Track, data: dict[str, Any], update: Any, ts: datetime
    ) -> list[OrderEvent]:
        if data.get("qty") is None or data.get("price") is None:
            with self._lock:
                self._resync_pending = True
            return []
        cumulative = Decimal(str(update.order.filled_qty or 0))
        fill_id = str(data.get("execution_id") or f"{update.order.id}-{cumulative}")
        if fill_id in track.fill_ids or (track.covered and cumulative <= track.covered):
            return []  # already reported (a duplicate, or covered by a resync's inferred fill)
        qty, price = Decimal(str(data["qty"])), Decimal(str(data["price"]))
        side = OrderSide(update.order.side.value) if update.order.side else OrderSide.BUY
        fill = OrderFilled(
            client_order_id=cid,
            ts=ts,
            fill_id=FillId(fill_id),
            symbol=update.order.symbol,
            side=side,
            quantity=qty,
            price=price,
            fee=Decimal(str(data.get("tf_fee") or 0)),
        )
        self._count_fill(track, fill_id, qty, price)
        return [fill]


__all__ = ["ALPACA_STATUS_MAP", "AlpacaBroker", "AlpacaBrokerConfig", "MarketClock", "map_status"]

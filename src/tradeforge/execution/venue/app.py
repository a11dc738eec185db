"""The venue's HTTP and websocket face: Alpaca's REST subset, the trade-updates stream, admin.

Routes (what alpaca-py's ``TradingClient``, ``StockHistoricalDataClient`` and ``TradingStream``
send; research/broker.md section 1):

* ``GET /v2/account``, ``GET /v2/clock``, ``GET /v2/calendar``, ``GET /v2/assets``,
  ``GET /v2/assets/{symbol_or_id}``;
* ``POST /v2/orders``, ``GET /v2/orders``, ``GET /v2/orders/{id}``,
  ``GET /v2/orders:by_client_order_id``, ``DELETE /v2/orders/{id}``, ``DELETE /v2/orders``;
* ``GET /v2/positions``, ``GET /v2/positions/{symbol}``, ``DELETE /v2/positions/{symbol}``,
  ``DELETE /v2/positions``;
* ``GET /v2/stocks/bars`` (the data client's base URL is the same server);
* websocket ``/stream``: ``authenticate`` -> ``authorization`` reply, ``listen`` ->
  ``listening`` reply, then ``trade_updates`` messages, all as binary frames like Alpaca paper;
* admin (not Alpaca): ``POST /admin/advance {"bars": n}``, ``GET /admin/state``,
  ``POST|GET|DELETE /admin/faults``, ``POST /admin/disconnect``, ``GET /admin/requests``.

Errors come back in Alpaca's shape (``{"code", "message"}``; 401 is ``{"message":
"unauthorized"}``). Fault injection sits in :class:`FaultMiddleware`, in front of everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from tradeforge.execution.venue.engine import VenueEngine
from tradeforge.execution.venue.errors import (
    BAD_REQUEST,
    INTERNAL,
    NOT_FOUND,
    RATE_LIMITED,
    VALIDATION,
    AlpacaApiError,
    VenueError,
)
from tradeforge.execution.venue.faults import (
    DelayFault,
    HttpErrorFault,
    MalformedFault,
    parse_fault,
)
from tradeforge.execution.venue.stream import Subscription

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class FaultMiddleware:
    """Logs every HTTP request and applies the HTTP faults of the engine's :class:`FaultPlan`."""

    def __init__(self, app: Asgi, engine: VenueEngine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/admin"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        fault = self.engine.faults.take_http(method, path)
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "fault": fault.kind if fault else None,
        }
        self.engine.http_log.append(entry)
        if fault is None:
            await self.app(scope, receive, self._recording(send, entry))
            return
        logger.info("venue fault %s on %s %s", fault.kind, method, path)
        if isinstance(fault, DelayFault) and fault.phase == "before":
            # read the whole request first: it is carried out even if the client gives up
            buffered = await self._buffer(receive)
            await asyncio.sleep(fault.seconds)
            await self.app(scope, buffered, self._recording(send, entry))
            return
        if isinstance(fault, HttpErrorFault) and fault.phase == "before":
            await self._error(send, fault, entry)
            return
        captured: list[AsgiMessage] = []

        async def capture(message: AsgiMessage) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        entry["carried_out"] = True
        if isinstance(fault, DelayFault):
            await asyncio.sleep(fault.seconds)
            for message in captured:
                await self._recording(send, entry)(message)
        elif isinstance(fault, HttpErrorFault):
            await self._error(send, fault, entry)
        else:
            await self._malformed(send, fault, captured, entry)

    @staticmethod
    async def _buffer(receive: Receive) -> Receive:
        """The request body read now, handed to the app later (then: a disconnect)."""
        messages: list[AsgiMessage] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> AsgiMessage:
            if messages:
                return messages.pop(0)
            return {"type": "http.disconnect"}

        return replay

    @staticmethod
    def _recording(send: Send, entry: dict[str, Any]) -> Send:
        async def wrapped(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        return wrapped

    @staticmethod
    async def _respond(
        send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Send, fault: HttpErrorFault, entry: dict[str, Any]) -> None:
        entry["status"] = fault.status
        extra: list[tuple[bytes, bytes]] = []
        if fault.retry_after is not None:
            wait = math.ceil(fault.retry_after)
            extra = [
                (b"retry-after", str(wait).encode()),
                (b"x-ratelimit-limit", b"200"),
                (b"x-ratelimit-remaining", b"0"),
                (b"x-ratelimit-reset", str(int(time.time()) + wait).encode()),
            ]
        if fault.body == "html":
            await self._respond(send, fault.status, _HTML, b"text/html", extra)
            return
        if fault.body == "empty":
            await self._respond(send, fault.status, b"", b"text/plain", extra)
            return
        default_code = RATE_LIMITED if fault.status == 429 else fault.status * 100000
        payload = {
            "code": fault.code if fault.code is not None else default_code,
            "message": fault.message or ("rate limit exceeded" if fault.status == 429 else
                                         f"injected HTTP {fault.status}"),
        }  # fmt: skip
        await self._respond(send, fault.status, _json_bytes(payload), b"application/json", extra)

    async def _malformed(
        self, send: Send, fault: MalformedFault, captured: list[AsgiMessage], entry: dict[str, Any]
    ) -> None:
        entry["status"] = 200
        raw = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if fault.variant == "empty":
            await self._respond(send, 200, b"", b"application/json", [])
            return
        if fault.variant == "html":
            await self._respond(send, 200, _HTML, b"text/html", [])
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if isinstance(body, dict):
            if fault.variant == "missing_status":
                body.pop("status", None)
            else:
                body["status"] = "weird"
        await self._respond(send, 200, _json_bytes(body), b"application/json", [])


def _authorizer(engine: VenueEngine) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if not engine_accepts(
            engine,
            request.headers.get("apca-api-key-id"),
            request.headers.get("apca-api-secret-key"),
        ):
            raise AlpacaApiError(401, None, "unauthorized")

    return check


def engine_accepts(engine: VenueEngine, key: str | None, secret: str | None) -> bool:
    """Whether ``key``/``secret`` may use the venue (any key when none is configured)."""
    config = engine.config
    if config.api_key is None:
        return True
    return hmac.compare_digest(key or "", config.api_key) and hmac.compare_digest(
        secret or "", config.secret_key or ""
    )


def _v2_router(engine: VenueEngine) -> APIRouter:
    r = APIRouter(prefix="/v2", dependencies=[Depends(_authorizer(engine))])

    @r.get("/account")
    async def account() -> Any:
        return engine.account()

    @r.get("/clock")
    async def clock() -> Any:
        return engine.clock()

    @r.get("/calendar")
    async def calendar(start: str | None = None, end: str | None = None) -> Any:
        return engine.calendar(start, end)

    @r.get("/assets")
    async def assets(status: str | None = None, asset_class: str | None = None) -> Any:
        return engine.assets(status, asset_class)

    @r.get("/assets/{symbol_or_id}")
    async def asset(symbol_or_id: str) -> Any:
        return engine.asset(symbol_or_id)

    @r.post("/orders")
    async def submit(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise AlpacaApiError(400, BAD_REQUEST, "request body format is invalid") from None
        return engine.submit(body)

    @r.get("/orders")
    async def orders(
        status: str | None = None, limit: int | None = None, after: str | None = None,
        until: str | None = None, direction: str | None = None, side: str | None = None,
        symbols: str | None = None, nested: str | None = None,
    ) -> Any:  # fmt: skip
        return engine.orders(status, limit, after, until, direction, side, symbols)

    @r.get("/orders:by_client_order_id")
    async def by_client_id(client_order_id: str = Query(...)) -> Any:
        return engine.order_by_client_id(client_order_id)

    @r.get("/orders/{order_id}")
    async def order(order_id: str, nested: str | None = None) -> Any:
        return engine.order_by_id(order_id)

    @r.delete("/orders/{order_id}", status_code=204)
    async def cancel(order_id: str) -> Response:
        engine.cancel(order_id)
        return Response(status_code=204)

    @r.delete("/orders")
    async def cancel_all() -> Any:
        return JSONResponse(engine.cancel_all(), status_code=207)

    @r.get("/positions")
    async def positions() -> Any:
        return engine.positions()

    @r.get("/positions/{symbol_or_id}")
    async def position(symbol_or_id: str) -> Any:
        return engine.position(symbol_or_id)

    @r.delete("/positions/{symbol_or_id}")
    async def close_position(
        symbol_or_id: str, qty: str | None = None, percentage: str | None = None
    ) -> Any:
        return engine.close_position(symbol_or_id, qty, percentage)

    @r.delete("/positions")
    async def close_all(cancel_orders: str | None = None) -> Any:
        cancel = (cancel_orders or "").lower() == "true"
        return JSONResponse(engine.close_all_positions(cancel), status_code=207)

    @r.get("/stocks/bars")
    async def bars(
        symbols: str, timeframe: str, start: str | None = None, end: str | None = None,
        limit: int | None = None, page_token: str | None = None, sort: str | None = None,
        adjustment: str | None = None, feed: str | None = None, asof: str | None = None,
        currency: str | None = None,
    ) -> Any:  # fmt: skip
        return engine.bars(symbols, timeframe, start, end, limit, page_token, sort)

    return r


def _admin_router(engine: VenueEngine) -> APIRouter:
    r = APIRouter(prefix="/admin")

    @r.post("/advance")
    async def advance(request: Request) -> Any:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        bars = body.get("bars", 1) if isinstance(body, dict) else body
        if not isinstance(bars, int) or isinstance(bars, bool):
            raise VenueError(f"advance bars = {bars!r}; expected an integer >= 1")
        return engine.advance(bars)

    @r.get("/state")
    async def state() -> Any:
        return engine.state()

    @r.post("/faults", status_code=201)
    async def add_fault(request: Request) -> Any:
        try:
            raw = await request.json()
        except ValueError:
            raise VenueError("fault body is not JSON; expected an object with a 'kind'") from None
        return {"id": engine.faults.add(parse_fault(raw))}

    @r.get("/faults")
    async def faults() -> Any:
        return {"pending": engine.faults.pending(), "fired": dict(engine.faults.fired)}

    @r.delete("/faults")
    async def clear_faults() -> Any:
        engine.faults.clear()
        return {"pending": []}

    @r.post("/disconnect")
    async def disconnect() -> Any:
        return {"closed": engine.hub.disconnect_all()}

    @r.get("/requests")
    async def requests() -> Any:
        return {"orders": list(engine.order_log), "http": list(engine.http_log)}

    return r


async def _receive_json(ws: WebSocket) -> dict[str, Any] | None:
    """The next JSON object from the client (text or binary frame); None when it left."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    raw = message.get("text") or message.get("bytes") or b""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _authorization(status: str, message: str = "") -> bytes:
    data = {"action": "authenticate", "status": status}
    if message and message != status:
        data["message"] = message
    return _json_bytes({"stream": "authorization", "data": data})


async def _stream(ws: WebSocket, engine: VenueEngine) -> None:
    hub = engine.hub
    await ws.accept()
    try:
        first = await asyncio.wait_for(_receive_json(ws), timeout=10)
    except (TimeoutError, WebSocketDisconnect):
        first = None
    if first is None:
        with contextlib.suppress(Exception):
            await ws.close(code=1008)
        return
    data = first.get("data") or {}
    hub.auth_attempts += 1
    limit = engine.config.max_stream_connections
    refusal = ""
    if (
        first.get("action") != "authenticate"
        or engine.faults.take_stream_auth()
        or not engine_accepts(engine, data.get("key_id"), data.get("secret_key"))
    ):
        refusal = "unauthorized"
    elif limit is not None and hub.connected >= limit:
        refusal = "connection limit exceeded"
    if refusal:
        hub.auth_refused += 1
        with contextlib.suppress(Exception):
            await ws.send_bytes(_authorization("unauthorized", refusal))
            await ws.close(code=1008)
        return
    await ws.send_bytes(_authorization("authorized"))
    hub.connected += 1
    try:
        await _serve_listener(ws, engine)
    finally:
        hub.connected -= 1


async def _serve_listener(ws: WebSocket, engine: VenueEngine) -> None:
    """After authorization: wait for ``listen``, then send trade updates until either side
    closes (or the hub says disconnect)."""
    hub = engine.hub
    sub: Subscription | None = None
    listening = asyncio.Event()

    async def reader() -> None:
        nonlocal sub
        while True:
            message = await _receive_json(ws)
            if message is None:
                return
            if message.get("action") != "listen":
                continue
            streams = list((message.get("data") or {}).get("streams") or [])
            ack = {"stream": "listening", "data": {"streams": streams}}
            if "trade_updates" in streams and sub is None:
                sub = hub.subscribe()
                sub.queue.put_nowait(ack)  # first in its queue: before any update
                listening.set()
            else:
                await ws.send_bytes(_json_bytes(ack))

    async def writer() -> bool:
        await listening.wait()
        mine = sub
        if mine is None:
            return False
        while True:
            message = await mine.queue.get()
            if message is None:
                return True
            await ws.send_bytes(_json_bytes(message))

    tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        closing = any(t is tasks[1] and not t.cancelled() and t.exception() is None and t.result()
                      for t in done)  # fmt: skip
        if closing:
            with contextlib.suppress(Exception):
                await ws.close(code=1011)
    except Exception:  # a client that vanished mid-send: nothing to clean beyond the finally
        logger.debug("venue stream connection ended with an error", exc_info=True)
    finally:
        for task in tasks:
            task.cancel()
        if sub is not None:
            hub.unsubscribe(sub)


def create_app(engine: VenueEngine) -> Any:
    """The venue's ASGI app (FastAPI wrapped in :class:`FaultMiddleware`)."""
    app = FastAPI(title="tradeforge venue", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine

    @app.exception_handler(AlpacaApiError)
    async def _alpaca_error(request: Request, exc: AlpacaApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(VenueError)
    async def _venue_error(request: Request, exc: VenueError) -> JSONResponse:
        return JSONResponse({"code": 40910000, "message": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return JSONResponse({"code": VALIDATION, "message": "; ".join(parts)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = NOT_FOUND if exc.status_code == 404 else exc.status_code * 100000
        return JSONResponse({"code": code, "message": str(exc.detail).lower()},
                            status_code=exc.status_code)  # fmt: skip

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("venue: internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"code": INTERNAL, "message": "internal server error"}, status_code=500)

    app.include_router(_v2_router(engine))
    app.include_router(_admin_router(engine))

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await _stream(ws, engine)

    return FaultMiddleware(app, engine)


__all__ = ["FaultMiddleware", "create_app", "engine_accepts"]

"""The FastAPI application and the server that runs it.

``create_app(service, auth)`` assembles: ``/healthz`` (open: the process is alive),
``/readyz`` (broker connected, reconciled, data fresh; 503 with the problems otherwise),
``/metrics`` (Prometheus text), the ``/api/v1`` router, and the dashboard (login, pages,
live events, static files). Everything but ``/healthz`` needs credentials.

``serve(app, host, port)`` runs one uvicorn worker (Prometheus metrics live in this process)
with a bounded graceful shutdown: on SIGTERM/SIGINT it sets ``app.state.stopping`` at once, so
open event streams end, and uvicorn stops waiting for connections after ``graceful_s``.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from tradeforge import __version__
from tradeforge.core.errors import ConfigError, RiskError, TradeforgeError
from tradeforge.serve.api import make_api_router
from tradeforge.serve.auth import Authenticator, require_auth

logger = logging.getLogger(__name__)


def create_app(
    service: Any, auth: Authenticator, *, metrics: Any = None, metrics_token: str | None = None
) -> FastAPI:
    """The service's app (module docstring). ``metrics`` has ``render() -> (body, type)``
    (default: ``service.metrics``); ``metrics_token`` is a second bearer token that opens
    ``/metrics`` only (what a Prometheus scrape job holds instead of the API key)."""
    app = FastAPI(
        title="tradeforge", version=__version__,
        description="Trading service: status, positions, orders, risk, kill switch, scoring.",
        openapi_url=None, docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.service = service
    app.state.auth = auth
    app.state.stopping = threading.Event()
    app.state.metrics = metrics if metrics is not None else getattr(service, "metrics", None)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], dependencies=[Depends(require_auth)])
    async def readyz(request: Request) -> JSONResponse:
        ready, problems = await run_in_threadpool(request.app.state.service.readiness)
        return JSONResponse(
            {"ready": ready, "problems": problems}, status_code=200 if ready else 503
        )

    async def require_scrape(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if (metrics_token and scheme.lower() == "bearer"
                and hmac.compare_digest(token.strip().encode(), metrics_token.encode())):  # fmt: skip
            return
        await require_auth(request)

    @app.get("/metrics", tags=["ops"], dependencies=[Depends(require_scrape)])
    async def metrics_route(request: Request) -> Response:
        source = request.app.state.metrics
        if source is None:
            raise HTTPException(404, detail="this service exports no metrics")
        body, content_type = await run_in_threadpool(source.render)
        return Response(body, media_type=content_type)

    app.include_router(make_api_router())
    _include_dashboard(app)
    _documentation(app)
    _error_handlers(app)
    return app


def _documentation(app: FastAPI) -> None:
    """The OpenAPI schema and its browsable docs, behind the same credentials as the rest."""
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_auth)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_auth)])
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tradeforge API")


def _include_dashboard(app: FastAPI) -> None:
    from tradeforge.serve.ui import make_ui_router

    app.include_router(make_ui_router())


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConfigError)
    async def bad_input(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RiskError)
    async def risk_refused(_request: Request, exc: RiskError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(TradeforgeError)
    async def refused(_request: Request, exc: TradeforgeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg"),
                   "input": _short(e.get("input"))} for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": errors}, status_code=422)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 and isinstance(value, str | int | float | None) else text[:80]


def serve(app: FastAPI, host: str, port: int, *, graceful_s: float = 3.0) -> None:
    """Run ``app`` with uvicorn until SIGTERM/SIGINT (module docstring)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, workers=1, log_config=None,
                            timeout_graceful_shutdown=int(max(1, round(graceful_s))),
                            access_log=False, lifespan="on")  # fmt: skip
    server = StoppingServer(config, app.state.stopping)
    server.run()


class StoppingServer:
    """A uvicorn server that tells the app it is stopping as soon as a signal arrives."""

    def __init__(self, config: Any, stopping: threading.Event) -> None:
        import uvicorn

        stopping_event = stopping

        class _Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                stopping_event.set()
                super().handle_exit(sig, frame)

        self.server = _Server(config)

    def run(self) -> None:
        self.server.run()

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def exit(self) -> None:
        self.server.should_exit = True


__all__ = ["StoppingServer", "create_app", "serve"]

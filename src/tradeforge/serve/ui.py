"""The operator dashboard: server-rendered pages (Jinja2) kept live by server-sent events.

Routes (``make_ui_router``):

* ``GET /login``, ``POST /login`` (API key -> session cookie), ``POST /logout``;
* pages ``/`` (overview, kill/resume), ``/positions``, ``/models``, ``/risk``, ``/audit``,
  ``/alerts``;
* ``POST /ui/kill`` and ``POST /ui/resume``: a typed reason, then a confirm step; they call
  ``service.kill``/``service.resume`` with ``source="dashboard"``;
* ``GET /ui/fragments/{name}`` (the HTML of one live region) and ``GET /ui/chart/equity``
  (the Plotly figure as JSON), which the browser re-fetches when a new snapshot arrives;
* ``GET /events``: the SSE stream (:mod:`tradeforge.serve.events`);
* ``GET /static/dashboard.js``, ``/static/dashboard.css`` and ``/static/plotly.min.js`` (the
  latter from the installed ``plotly`` package): the pages load nothing from another host.

Everything but the login form needs credentials (the login page inlines its stylesheet)
(:func:`~tradeforge.serve.auth.require_auth`); POSTs also need the session's CSRF token
(:func:`~tradeforge.serve.auth.require_csrf`). A browser (``Accept: text/html``) that asks for
a page without a session gets the login form with status 401 (not a redirect), other clients a
plain 401. The app provides ``app.state.service`` (a
:class:`~tradeforge.serve.snapshot.ServiceHandle`), ``app.state.auth`` (an
:class:`~tradeforge.serve.auth.Authenticator`) and ``app.state.stopping`` (a
:class:`threading.Event` set on shutdown, which ends every event stream).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tradeforge.core.errors import ConfigError
from tradeforge.serve.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Authenticator,
    Principal,
    require_auth,
    require_csrf,
)
from tradeforge.serve.charts import equity_figure
from tradeforge.serve.events import HEARTBEAT_S, POLL_S, snapshot_events
from tradeforge.serve.snapshot import ServiceHandle, Snapshot

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
OWN_STATIC = ("dashboard.js", "dashboard.css")
DASHBOARD_SOURCE = "dashboard"

# Pages only load what this host serves; plotly injects <style> elements and data: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# (path, template, nav label) of every page, in nav order.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("/", "overview.html", "Overview"),
    ("/positions", "positions.html", "Positions & orders"),
    ("/models", "models.html", "Models"),
    ("/risk", "risk.html", "Risk"),
    ("/audit", "audit.html", "Audit"),
    ("/alerts", "alerts.html", "Alerts"),
)
# Live regions: the name in ``data-fragment`` -> its template under templates/fragments.
FRAGMENTS: dict[str, str] = {
    name: f"fragments/{name}.html"
    for name in (
        "state", "tiles", "positions", "open-orders", "recent-orders",
        "fills", "denials", "models", "limits", "states", "audit", "alerts",
    )
}  # fmt: skip

KILL_REASON_MISSING = "Give a reason for halting trading; it is written to the audit log."
RESUME_REASON_MISSING = "Give a reason for resuming trading; it is written to the audit log."


# -- formatting -----------------------------------------------------------------------------------
DASH = "—"


def fmt_money(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def fmt_pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def fmt_qty(value: float | None) -> str:
    if value is None:
        return DASH
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return DASH
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def fmt_limit(value: float | None, unit: str) -> str:
    """A limit or its use in the limit's own unit."""
    if value is None:
        return DASH
    if unit == "ratio":
        return fmt_pct(value)
    if unit == "usd":
        return fmt_money(value)
    if unit == "bps":
        return f"{value:,.1f} bps"
    if unit == "bool":
        return "yes" if value else "no"
    return fmt_qty(value)


def bar_width(fraction: float | None) -> str:
    """A CSS width (0%..100%) for a utilisation bar."""
    if fraction is None:
        return "0%"
    return f"{max(0.0, min(1.0, fraction)) * 100:.1f}%"


def use_level(fraction: float | None) -> str:
    """``ok`` / ``warn`` (>= 80 % of the limit) / ``bad`` (at or over it) / ``none``."""
    if fraction is None:
        return "none"
    if fraction >= 1.0:
        return "bad"
    return "warn" if fraction >= 0.8 else "ok"


def ratio(used: float | None, limit: float | None) -> float | None:
    if used is None or limit is None or limit == 0:
        return None
    return abs(used) / abs(limit)


def pnl_class(value: float | None) -> str:
    if value is None or value == 0:
        return "flat"
    return "up" if value > 0 else "down"


def _json_script(value: Any) -> Markup:
    """JSON safe to embed in a ``<script type="application/json">`` element."""
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=fmt_money, pct=fmt_pct, qty=fmt_qty, time=fmt_time, age=fmt_age,
        duration=fmt_duration, bar_width=bar_width, use_level=use_level, pnl_class=pnl_class,
        json_script=_json_script,
    )  # fmt: skip
    env.globals.update(fmt_limit=fmt_limit, ratio=ratio, pages=PAGES)
    return env


def render(template: str, **context: Any) -> str:
    """Render one template of this package (tests use it for fragments too)."""
    return _environment().get_template(template).render(**context)


# -- request helpers ------------------------------------------------------------------------------
def _service(request: Request) -> ServiceHandle:
    service: ServiceHandle = request.app.state.service
    return service


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def _stopping(request: Request) -> threading.Event:
    stopping = getattr(request.app.state, "stopping", None)
    if isinstance(stopping, threading.Event):
        return stopping
    fallback = threading.Event()
    request.app.state.stopping = fallback
    return fallback


async def _snapshot(request: Request) -> Snapshot:
    return await anyio.to_thread.run_sync(_service(request).snapshot)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _safe_next(target: str) -> str:
    """Only a local path may be the place to go after login (no open redirect)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


def _html(body: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


@functools.cache
def _dashboard_css() -> str:
    """The stylesheet, inlined into the login page: static files need a session too."""
    return (STATIC_DIR / "dashboard.css").read_text(encoding="utf-8").replace("</", "<\\/")


def _login_page(
    request: Request, *, error: str = "", next_path: str = "/", status_code: int = 200
) -> HTMLResponse:
    body = render("login.html", error=error, next_path=_safe_next(next_path), csrf_token="",
                  inline_css=Markup(_dashboard_css()))  # fmt: skip
    response = _html(body, status_code)
    if status_code == status.HTTP_401_UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _page_principal(request: Request) -> Principal | HTMLResponse:
    """The caller, or (for a browser without a session) the login page with status 401."""
    try:
        return await require_auth(request)
    except HTTPException:
        if _wants_html(request):
            return _login_page(
                request, next_path=request.url.path, status_code=status.HTTP_401_UNAUTHORIZED
            )
        raise


def _page_context(
    request: Request, snap: Snapshot, principal: Principal, active: str
) -> dict[str, Any]:
    return {
        "s": snap,
        "csrf_token": principal.csrf,
        "csrf_field": CSRF_FIELD,
        "active": active,
        "halted": snap.killed or snap.trading_state == "halted",
        "equity_figure": equity_figure(snap),
        "error": "",
        "reason": "",
    }


def _page_route(path: str, template: str) -> Callable[[Request], Any]:
    async def page(request: Request) -> Response:
        principal = await _page_principal(request)
        if isinstance(principal, Response):
            return principal
        snap = await _snapshot(request)
        return _html(render(template, **_page_context(request, snap, principal, path)))

    page.__name__ = "page_" + (template.removesuffix(".html"))
    return page


async def _action(
    request: Request,
    principal: Principal,
    *,
    action: str,
    reason: str,
    confirm: str,
    call: Callable[[ServiceHandle, str], Snapshot],
    missing: str,
) -> Response:
    """Kill/resume: a typed reason, then a confirm page, then the call and back to ``/``."""
    reason = reason.strip()
    if not reason or confirm != "yes":
        snap = await _snapshot(request)
        context = _page_context(request, snap, principal, "/")
        if not reason:
            context.update(error=missing, error_action=action)
            return _html(render("overview.html", **context), status.HTTP_400_BAD_REQUEST)
        context.update(action=action, reason=reason)
        return _html(render("confirm.html", **context))
    service = _service(request)
    try:
        await anyio.to_thread.run_sync(lambda: call(service, reason))
    except ConfigError as exc:
        snap = await _snapshot(request)
        context = _page_context(request, snap, principal, "/")
        context.update(error=str(exc), error_action=action)
        return _html(render("overview.html", **context), status.HTTP_400_BAD_REQUEST)
    return RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)


@functools.cache
def plotly_js_path() -> Path:
    """``plotly/package_data/plotly.min.js`` of the installed plotly (without importing it)."""
    spec = importlib.util.find_spec("plotly")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "package_data" / "plotly.min.js"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "plotly/package_data/plotly.min.js was not found in the installed plotly package "
        f"(searched {locations!r}); expected plotly>=5 to be installed"
    )


# -- the router -----------------------------------------------------------------------------------
def make_ui_router(*, poll_s: float = POLL_S, heartbeat_s: float = HEARTBEAT_S) -> APIRouter:
    """The dashboard's routes (module docstring). ``poll_s``: how often an event stream reads
    the snapshot; ``heartbeat_s``: the longest quiet time before a heartbeat event."""
    if not poll_s > 0 or not heartbeat_s >= poll_s:
        raise ConfigError(
            f"poll_s={poll_s!r}, heartbeat_s={heartbeat_s!r}; expected poll_s > 0 and "
            "heartbeat_s >= poll_s"
        )
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    async def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return _login_page(request, next_path=next)

    @router.post("/login")
    async def login(
        request: Request,
        api_key: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        auth = _auth(request)
        if not api_key or not auth.check_key(api_key):
            return _login_page(
                request,
                error="That API key is not valid.",
                next_path=next,
                status_code=status.HTTP_401_UNAUTHORIZED,
            )
        cookie, _csrf = auth.issue_session()
        response = RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            SESSION_COOKIE, cookie, max_age=int(auth.session_ttl_s), path="/", httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    @router.post("/logout")
    async def logout(
        request: Request, _principal: Annotated[Principal, Depends(require_csrf)]
    ) -> Response:
        response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    for path, template, _label in PAGES:
        router.add_api_route(path, _page_route(path, template), methods=["GET"])

    @router.post("/ui/kill")
    async def kill(
        request: Request,
        principal: Annotated[Principal, Depends(require_csrf)],
        reason: Annotated[str, Form()] = "",
        confirm: Annotated[str, Form()] = "",
    ) -> Response:
        return await _action(
            request, principal, action="kill", reason=reason, confirm=confirm,
            call=lambda svc, why: svc.kill(why, source=DASHBOARD_SOURCE),
            missing=KILL_REASON_MISSING,
        )  # fmt: skip

    @router.post("/ui/resume")
    async def resume(
        request: Request,
        principal: Annotated[Principal, Depends(require_csrf)],
        reason: Annotated[str, Form()] = "",
        confirm: Annotated[str, Form()] = "",
    ) -> Response:
        return await _action(
            request, principal, action="resume", reason=reason, confirm=confirm,
            call=lambda svc, why: svc.resume(why, source=DASHBOARD_SOURCE),
            missing=RESUME_REASON_MISSING,
        )  # fmt: skip

    @router.get("/ui/fragments/{name}")
    async def fragment(
        request: Request, name: str, principal: Annotated[Principal, Depends(require_auth)]
    ) -> HTMLResponse:
        template = FRAGMENTS.get(name)
        if template is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail=f"no fragment {name!r}; expected one of {sorted(FRAGMENTS)}",
            )
        snap = await _snapshot(request)
        return _html(render(template, **_page_context(request, snap, principal, "")))

    @router.get("/ui/chart/equity")
    async def equity_chart(
        request: Request, _principal: Annotated[Principal, Depends(require_auth)]
    ) -> JSONResponse:
        snap = await _snapshot(request)
        return JSONResponse(equity_figure(snap), headers={"Cache-Control": "no-store"})

    @router.get("/events", response_class=EventSourceResponse)
    async def events(
        request: Request, _principal: Annotated[Principal, Depends(require_auth)]
    ) -> AsyncIterator[ServerSentEvent]:
        async for event in snapshot_events(
            _service(request), stopping=_stopping(request),
            is_disconnected=request.is_disconnected, poll_s=poll_s, heartbeat_s=heartbeat_s,
        ):  # fmt: skip
            yield event

    @router.get("/static/plotly.min.js")
    async def plotly_js(_principal: Annotated[Principal, Depends(require_auth)]) -> FileResponse:
        return FileResponse(
            plotly_js_path(), media_type="text/javascript",
            headers={"Cache-Control": "private, max-age=86400"},
        )  # fmt: skip

    @router.get("/static/{name}")
    async def static_file(
        name: str, _principal: Annotated[Principal, Depends(require_auth)]
    ) -> FileResponse:
        if name not in OWN_STATIC:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail=f"no static file {name!r}; expected one of {[*OWN_STATIC, 'plotly.min.js']}",
            )
        media = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(
            STATIC_DIR / name, media_type=media, headers={"Cache-Control": "no-cache"}
        )

    return router


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "FRAGMENTS",
    "KILL_REASON_MISSING",
    "PAGES",
    "RESUME_REASON_MISSING",
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "make_ui_router",
    "plotly_js_path",
    "render",
]

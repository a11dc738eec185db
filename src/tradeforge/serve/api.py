"""API v1: status, positions, orders, fills, risk, models, kill/resume, alias moves and scoring.

Every route here needs credentials (:func:`~tradeforge.serve.auth.require_auth`); the ones that
change state (kill, resume, models/promote, models/rollback) also need the CSRF token when they
ride on a browser session. Alias moves go through the governance guard
(:mod:`tradeforge.serve.models`): a refusal answers 409 and is audited.
The service handle is ``request.app.state.service`` (a :class:`TradingService` or a stand-in
with the same methods). Bad input answers 422 with a message naming the field and the value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from tradeforge.serve.auth import Principal, require_auth, require_csrf
from tradeforge.serve.models import promote_alias, rollback_alias
from tradeforge.serve.snapshot import Snapshot

READ = [Depends(require_auth)]
COUNTED = ("open_orders", "positions", "ready", "problems")


class ReasonBody(BaseModel):
    """Why (required: it goes to the audit log)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


class ScoreBody(BaseModel):
    """An observation in the env's layout (a flat list of numbers), or a traded symbol whose
    latest bar the node decided on."""

    model_config = ConfigDict(extra="forbid")
    observation: list[float] | None = Field(default=None, max_length=1_000_000)
    symbol: str | None = Field(default=None, max_length=32)


class PromoteBody(BaseModel):
    """Move ``to`` (an alias) to ``version`` (a number or an alias) of the service's registry
    model. ``actor``: who acts (audited); ``approver``: the second person a version that failed
    a required gate needs (not the actor, not the trainer)."""

    model_config = ConfigDict(extra="forbid")
    version: int | str = Field(union_mode="left_to_right")
    to: str = Field(default="champion", min_length=1, max_length=64)
    actor: str = Field(min_length=1, max_length=200, pattern=r"\S")
    approver: str | None = Field(default=None, max_length=200)


class RollbackBody(BaseModel):
    """Restore ``previous_champion`` as the champion; ``reason`` is audited."""

    model_config = ConfigDict(extra="forbid")
    actor: str = Field(min_length=1, max_length=200, pattern=r"\S")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")
    approver: str | None = Field(default=None, max_length=200)


class Status(BaseModel):
    mode: str
    venue: str
    strategy_id: str
    trading_state: str
    killed: bool
    kill_reason: str
    equity: float | None
    cash: float | None
    day_pnl: float | None
    drawdown: float | None
    gross_exposure: float | None
    net_exposure: float | None
    last_bar_time: str | None
    data_age_s: float | None
    last_decision_time: str | None
    next_bar_time: str | None
    open_orders: int
    positions: int
    ready: bool
    problems: list[str]
    version: str
    canary: dict[str, Any] | None = None  # the canary sleeve: share, equity, last decision,
    # rolled back or not and why (None: no canary configured)
    shadow: dict[str, Any] | None = None  # the shadow runner: agreement with the policy


class Decision(BaseModel):
    model: str
    version: str
    action: list[float]
    weights: dict[str, float]
    latency_ms: float
    bar_time: str | None


def _service(request: Request) -> Any:
    return request.app.state.service


async def _snapshot(request: Request) -> Snapshot:
    snap: Snapshot = await run_in_threadpool(_service(request).snapshot)
    return snap


def make_api_router() -> APIRouter:
    """The ``/api/v1`` routes (module docstring)."""
    router = APIRouter(prefix="/api/v1", tags=["api"])

    @router.get("/status", dependencies=READ)
    async def status(request: Request) -> Status:
        snap = await _snapshot(request)
        body = snap.to_dict()
        return Status(
            **{k: body[k] for k in Status.model_fields if k in body and k not in COUNTED},
            open_orders=len(snap.open_orders), positions=len(snap.positions),
            ready=not snap.problems, problems=list(snap.problems),
        )  # fmt: skip

    @router.get("/positions", dependencies=READ)
    async def positions(request: Request) -> dict[str, Any]:
        snap = await _snapshot(request)
        body = snap.to_dict()
        return {k: body[k] for k in ("equity", "cash", "positions", "gross_exposure",
                                     "net_exposure", "unrealized_pnl", "realized_pnl")}  # fmt: skip

    @router.get("/orders", dependencies=READ)
    async def orders(request: Request) -> dict[str, Any]:
        body = (await _snapshot(request)).to_dict()
        return {"open": body["open_orders"], "recent": body["recent_orders"]}

    @router.get("/fills", dependencies=READ)
    async def fills(request: Request) -> dict[str, Any]:
        body = (await _snapshot(request)).to_dict()
        return {"fills": body["fills"]}

    @router.get("/risk", dependencies=READ)
    async def risk(request: Request) -> dict[str, Any]:
        body = (await _snapshot(request)).to_dict()
        keys = ("trading_state", "killed", "kill_reason", "state_reason", "limits", "denials",
                "drawdown", "drawdown_limit", "time_in_state_s", "audit_head_seq")  # fmt: skip
        return {k: body[k] for k in keys}

    @router.get("/models", dependencies=READ)
    async def models(request: Request) -> dict[str, Any]:
        body = (await _snapshot(request)).to_dict()
        return {"models": body["models"], "canary": body.get("canary"),
                "shadow": body.get("shadow")}  # fmt: skip

    @router.post("/models/promote")
    async def promote(
        body: PromoteBody, request: Request, who: Principal = Depends(require_csrf)
    ) -> dict[str, Any]:
        registry = getattr(_service(request), "registry_config", None)
        return await run_in_threadpool(lambda: promote_alias(
            registry, body.version, body.to, actor=body.actor.strip(), approver=body.approver))  # fmt: skip

    @router.post("/models/rollback")
    async def rollback(
        body: RollbackBody, request: Request, who: Principal = Depends(require_csrf)
    ) -> dict[str, Any]:
        registry = getattr(_service(request), "registry_config", None)
        return await run_in_threadpool(lambda: rollback_alias(
            registry, actor=body.actor.strip(), reason=body.reason.strip(),
            approver=body.approver))  # fmt: skip

    @router.post("/kill")
    async def kill(
        body: ReasonBody, request: Request, who: Principal = Depends(require_csrf)
    ) -> Status:
        service = _service(request)
        await run_in_threadpool(lambda: service.kill(body.reason.strip(), source=f"api:{who.via}"))
        return await status(request)

    @router.post("/resume")
    async def resume(
        body: ReasonBody, request: Request, who: Principal = Depends(require_csrf)
    ) -> Status:
        service = _service(request)
        await run_in_threadpool(
            lambda: service.resume(body.reason.strip(), source=f"api:{who.via}")
        )
        return await status(request)

    @router.post("/score", dependencies=READ)
    async def score(body: ScoreBody, request: Request) -> Decision:
        service = _service(request)
        out = await run_in_threadpool(
            lambda: service.score(observation=body.observation, symbol=body.symbol)
        )
        return Decision(**out)

    return router


__all__ = [
    "Decision",
    "PromoteBody",
    "ReasonBody",
    "RollbackBody",
    "ScoreBody",
    "Status",
    "make_api_router",
]

"""The model lifecycle on the registry: registered -> challenger -> shadow -> canary -> champion.

Aliases (:mod:`tradeforge.agents.registry`): ``challenger`` (registered, waiting), ``shadow``
(deciding beside the champion without orders), ``canary`` (a small live sleeve), ``champion``
(the one to trade) and ``previous_champion`` (the champion the last promotion replaced).

Every alias move goes through :func:`promote` (or :func:`rollback_champion`,
:func:`tradeforge.governance.canary.rollback`) and is written to a hash-chained
:class:`~tradeforge.audit.log.AuditLog` (kind ``governance.alias``; a refused move as
``governance.refused``) with who moved it, the alias, from and to which version, the gate
results and the approver, in the same transaction as the move is made (the move is made
inside the audit transaction, so a failed move writes nothing).

**The guard.** A move to an alias needs the gates of :data:`REQUIRED_GATES` recorded as passed
on the version (tags ``gate.<name> = passed``, written by :func:`record_gate`): ``shadow``
needs ``offline``; ``canary`` needs ``offline`` and ``shadow``; ``champion`` needs all three.
A version that failed or lacks a required gate gets the alias ONLY when a second approver is
given: a non-empty name that differs from the actor moving it and from the user who
registered it (tag ``registered_by``). The approval is recorded on the version
(``approval.<alias>``) and in the audit entry. There is no other path: no force flag.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradeforge.agents.registry import (
    CANARY,
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    SHADOW,
    ModelVersionInfo,
    PolicyRegistry,
    _sqlite_path,
)
from tradeforge.audit.log import AuditLog, AuditLogBase
from tradeforge.governance.errors import GovernanceError, PromotionRefused
from tradeforge.governance.gates import GATES, GateName, GateResult
from tradeforge.governance.model_card import attach_model_card

AUDIT_KIND = "governance.alias"
REFUSED_KIND = "governance.refused"
GATE_KIND = "governance.gate"
PROMOTABLE = (CHALLENGER, SHADOW, CANARY, CHAMPION)
REQUIRED_GATES: dict[str, tuple[GateName, ...]] = {
    CHALLENGER: (),
    SHADOW: ("offline",),
    CANARY: ("offline", "shadow"),
    CHAMPION: ("offline", "shadow", "paper"),
}
PASSED, FAILED = "passed", "failed"


def default_audit_path(registry_uri: str | None = None) -> Path:
    """Where alias moves are audited by default: ``audit.db`` next to a sqlite registry store
    (for the default store that is ``$TRADEFORGE_HOME/registry/audit.db``), else
    ``$TRADEFORGE_HOME/registry/audit.db`` (``~/.tradeforge`` when unset)."""
    store = _sqlite_path(registry_uri) if registry_uri else None
    if store is not None:
        return store.parent / "audit.db"
    home = Path(os.environ.get("TRADEFORGE_HOME") or Path.home() / ".tradeforge")
    return (home / "registry" / "audit.db").resolve()


def open_audit(path: str | Path | None = None, registry_uri: str | None = None) -> AuditLog:
    """The governance audit log at ``path`` (default :func:`default_audit_path`)."""
    return AuditLog(Path(path) if path is not None else default_audit_path(registry_uri))


def gate_tags(result: GateResult) -> dict[str, str]:
    """``gate.<name>`` (``passed``/``failed``) and ``gate.<name>.json`` (the full result)."""
    return {
        f"gate.{result.gate}": PASSED if result.passed else FAILED,
        f"gate.{result.gate}.json": result.to_json(),
    }


def gate_status(info: ModelVersionInfo) -> dict[str, str]:
    """Each gate's recorded outcome on a version: ``passed``, ``failed`` or ``missing``."""
    return {g: info.tags.get(f"gate.{g}", "missing") for g in GATES}


def gate_results(info: ModelVersionInfo) -> dict[str, Any]:
    """The recorded gate results of a version (parsed JSON), by gate name."""
    out: dict[str, Any] = {}
    for gate in GATES:
        text = info.tags.get(f"gate.{gate}.json")
        if text:
            try:
                out[gate] = json.loads(text)
            except ValueError:
                out[gate] = {"unreadable": text[:200]}
    return out


def correlation_id(name: str, suffix: str) -> str:
    """The audit correlation id of a model's entries: ``NAME:SUFFIX`` in printable ASCII."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in f"{name}:{suffix}")
    return text[:128]


def _correlation(name: str, version: int) -> str:
    return correlation_id(name, f"v{version}")


def holds_by_guard(info: ModelVersionInfo, alias: str) -> bool:
    """Whether ``info`` may hold ``alias``: every required gate passed, or a second approval
    for that alias recorded on the version (``approval.<alias>``)."""
    status = gate_status(info)
    if all(status[g] == PASSED for g in REQUIRED_GATES.get(alias, ())):
        return True
    return bool(info.tags.get(f"approval.{alias}", "").strip())


def champion_eligible(info: ModelVersionInfo) -> bool:
    """:func:`holds_by_guard` for ``champion``."""
    return holds_by_guard(info, CHAMPION)


def register_version(
    registry: PolicyRegistry,
    artifact_dir: Path,
    name: str,
    *,
    actor: str,
    audit: AuditLogBase,
    n_trials: int | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ModelVersionInfo:
    """Register an artifact (provenance tags: see
    :func:`~tradeforge.agents.registry.provenance_tags`; ``configurations_tried`` from
    ``n_trials``) as a new version with its model card
    (:func:`~tradeforge.governance.model_card.attach_model_card`) and make it the
    ``challenger``, audited."""
    extra = {"registered_by": actor, **dict(tags or {})}
    if n_trials is not None:
        extra["configurations_tried"] = str(int(n_trials))
    info = registry.register(artifact_dir, name, run_id=run_id, alias=None, tags=extra)
    run_dir = Path(extra["run_dir"]) if extra.get("run_dir") else None
    attach_model_card(registry, name, info.version, run_dir=run_dir, artifact=Path(artifact_dir))
    return promote(registry, name, info.version, CHALLENGER, actor=actor, audit=audit)


def record_gate(
    registry: PolicyRegistry,
    name: str,
    version: int | str,
    result: GateResult,
    *,
    actor: str,
    audit: AuditLogBase,
) -> ModelVersionInfo:
    """Store ``result`` as tags of the version (:func:`gate_tags`) and audit it."""
    info = registry.get(name, version)
    payload = {"model": name, "version": info.version, "actor": actor,
               "gate": result.gate, "passed": result.passed,
               "failed_checks": result.failed()}  # fmt: skip
    with audit.transaction() as cur:
        registry.set_tags(name, info.version, gate_tags(result))
        audit.record(cur, GATE_KIND, payload, _correlation(name, info.version))
        _enforce(registry, name, registry.get(name, info.version), actor, audit, cur)
    return registry.get(name, info.version)


def _enforce(
    registry: PolicyRegistry,
    name: str,
    info: ModelVersionInfo,
    actor: str,
    audit: AuditLogBase,
    cur: Any,
) -> None:
    """After a gate result: take ``canary`` / ``champion`` from a version that no longer
    qualifies (a champion falls back to an eligible ``previous_champion``, else the alias is
    removed), auditing each move in the caller's transaction ``cur``."""
    aliases = registry.aliases(name)
    for alias in (CANARY, CHAMPION):
        if aliases.get(alias) != info.version or holds_by_guard(info, alias):
            continue
        to_version: int | None = None
        if alias == CHAMPION:
            previous = aliases.get(PREVIOUS_CHAMPION)
            if previous is not None and champion_eligible(registry.get(name, previous)):
                to_version = previous
                registry.set_alias(name, CHAMPION, previous)
            else:
                registry.delete_alias(name, CHAMPION)
            if previous is not None:
                registry.delete_alias(name, PREVIOUS_CHAMPION)
        else:
            registry.delete_alias(name, alias)
        payload = {"action": "demote", "model": name, "alias": alias,
                   "from_version": info.version, "to_version": to_version, "actor": actor,
                   "approver": None, "gates": gate_status(info),
                   "reason": "a required gate is no longer passed"}  # fmt: skip
        audit.record(cur, AUDIT_KIND, payload, _correlation(name, info.version))


def _approval_problem(approver: str | None, actor: str, trainer: str | None) -> str | None:
    who = (approver or "").strip()
    if not who:
        return "no second approver was given"
    if who == actor.strip():
        return f"approver {who!r} is the actor moving the alias; expected another person"
    if trainer and who == trainer.strip():
        return f"approver {who!r} registered (trained) this version; expected another person"
    return None


def _check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise GovernanceError(f"actor = {actor!r}; expected the non-empty name of who acts")
    return actor.strip()


def promote(
    registry: PolicyRegistry,
    name: str,
    version: int | str,
    to_alias: str,
    *,
    actor: str,
    audit: AuditLogBase,
    approver: str | None = None,
) -> ModelVersionInfo:
    """Move ``to_alias`` to ``version`` (a number or an alias) of ``name`` through the guard
    (module docstring). ``champion``: the champion it replaces becomes ``previous_champion``
    and a ``canary`` alias on the promoted version is removed. Raises
    :class:`PromotionRefused` (after auditing the refusal) when the guard refuses."""
    actor = _check_actor(actor)
    if to_alias not in PROMOTABLE:
        raise GovernanceError(
            f"to_alias = {to_alias!r}; expected one of {', '.join(PROMOTABLE)} "
            f"({PREVIOUS_CHAMPION!r} moves only with a champion promotion or rollback)"
        )
    info = registry.get(name, version)
    status = gate_status(info)
    missing = [g for g in REQUIRED_GATES[to_alias] if status[g] != PASSED]
    problem = _approval_problem(approver, actor, info.tags.get("registered_by"))
    before = registry.aliases(name)
    payload: dict[str, Any] = {
        "action": "promote", "model": name, "alias": to_alias,
        "from_version": before.get(to_alias), "to_version": info.version, "actor": actor,
        "approver": (approver or "").strip() or None, "gates": status,
        "gate_results": gate_results(info), "required_gates": list(REQUIRED_GATES[to_alias]),
        "override": bool(missing),
    }  # fmt: skip
    if missing and problem is not None:
        audit.append(REFUSED_KIND, {**payload, "reason": problem, "unmet_gates": missing},
                     _correlation(name, info.version))  # fmt: skip
        raise PromotionRefused(
            f"promote {name} v{info.version} to {to_alias!r}: gates {missing} not passed "
            f"({', '.join(f'{g}={status[g]}' for g in missing)}) and {problem}; expected every "
            f"required gate ({', '.join(REQUIRED_GATES[to_alias])}) passed, or a second "
            "approver (--approver) other than the actor and the trainer"
        )
    with audit.transaction() as cur:
        if to_alias == CHAMPION:
            current = before.get(CHAMPION)
            payload["previous_champion"] = current if current != info.version else None
            if current is not None and current != info.version:
                registry.set_alias(name, PREVIOUS_CHAMPION, current)
            registry.set_alias(name, CHAMPION, info.version)
            if before.get(CANARY) == info.version:
                registry.delete_alias(name, CANARY)
        else:
            registry.set_alias(name, to_alias, info.version)
        if missing:
            registry.set_tags(name, info.version, {f"approval.{to_alias}": str(approver).strip()})
        audit.record(cur, AUDIT_KIND, payload, _correlation(name, info.version))
    return registry.get(name, info.version)


def rollback_champion(
    registry: PolicyRegistry,
    name: str,
    *,
    actor: str,
    audit: AuditLogBase,
    reason: str = "manual rollback",
    approver: str | None = None,
) -> ModelVersionInfo:
    """Point ``champion`` back at ``previous_champion`` and drop that alias, audited.

    The guard applies to the restored version too: it must have passed the champion gates or
    hold a recorded champion approval (it was champion before, so it normally does); else a
    second ``approver`` is needed. Raises the registry's error naming the aliases when there
    is no ``previous_champion``."""
    actor = _check_actor(actor)
    before = registry.aliases(name)
    if PREVIOUS_CHAMPION not in before:
        registry.rollback(name)  # raises the registry's one-line error naming the aliases
    previous = before[PREVIOUS_CHAMPION]
    info = registry.get(name, previous)
    status = gate_status(info)
    missing = [g for g in REQUIRED_GATES[CHAMPION] if status[g] != PASSED]
    approved = info.tags.get(f"approval.{CHAMPION}")
    payload: dict[str, Any] = {
        "action": "rollback", "model": name, "alias": CHAMPION,
        "from_version": before.get(CHAMPION), "to_version": previous, "actor": actor,
        "approver": (approver or "").strip() or approved, "gates": status,
        "gate_results": gate_results(info), "reason": reason,
    }  # fmt: skip
    if missing and not approved:
        problem = _approval_problem(approver, actor, info.tags.get("registered_by"))
        if problem is not None:
            audit.append(REFUSED_KIND, {**payload, "reason": problem, "unmet_gates": missing},
                         _correlation(name, previous))  # fmt: skip
            raise PromotionRefused(
                f"rollback {name} to v{previous}: it has gates {missing} not passed and no "
                f"recorded champion approval, and {problem}; expected a second approver"
            )
    with audit.transaction() as cur:
        registry.set_alias(name, CHAMPION, previous)
        registry.delete_alias(name, PREVIOUS_CHAMPION)
        audit.record(cur, AUDIT_KIND, payload, _correlation(name, previous))
    return registry.get(name, previous)


def alias_history(audit: AuditLogBase, name: str | None = None) -> list[dict[str, Any]]:
    """The audited alias moves (payloads with ``seq`` and ``ts``), oldest first."""
    out = []
    for entry in audit.entries(kind=AUDIT_KIND):
        data = entry.data
        if name is None or data.get("model") == name:
            out.append({"seq": entry.seq, "ts": entry.ts, **data})
    return out


__all__ = [
    "AUDIT_KIND",
    "GATE_KIND",
    "PROMOTABLE",
    "REFUSED_KIND",
    "REQUIRED_GATES",
    "alias_history",
    "champion_eligible",
    "correlation_id",
    "default_audit_path",
    "gate_results",
    "gate_status",
    "gate_tags",
    "holds_by_guard",
    "open_audit",
    "promote",
    "record_gate",
    "register_version",
    "rollback_champion",
]

"""Alias moves through the service's API: the guarded, audited promote and rollback of
:mod:`tradeforge.governance.lifecycle` (the same calls as ``tradeforge models promote|rollback``)
on the registry of the service's ``registry:`` config.

The caller names who acts (``actor``) and, to move an alias to a version that has not passed
the gates the alias requires, a second ``approver`` other than the actor and the trainer.
A refusal raises :class:`~tradeforge.governance.errors.PromotionRefused` after it is audited
(the API answers 409 with its message); without a ``registry:`` section the service answers 422.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeforge.core.errors import ConfigError

if TYPE_CHECKING:
    from tradeforge.serve.config import RegistryConfig

NO_REGISTRY = "registry is not set in the serve config; expected registry: {model: NAME, uri: ...}"


def _require(registry: RegistryConfig | None) -> RegistryConfig:
    if registry is None:
        raise ConfigError(NO_REGISTRY)
    return registry


def _result(registry: Any, name: str, info: Any) -> dict[str, Any]:
    from tradeforge.governance.lifecycle import gate_status

    return {"model": name, "version": info.version, "aliases": registry.aliases(name),
            "gates": gate_status(info)}  # fmt: skip


def promote_alias(
    config: RegistryConfig | None,
    version: int | str,
    to_alias: str,
    *,
    actor: str,
    approver: str | None = None,
) -> dict[str, Any]:
    """Move ``to_alias`` of the configured model to ``version`` through the gates, audited;
    returns the model, the version moved to, the aliases after the move and its gate status."""
    from tradeforge.agents.registry import PolicyRegistry
    from tradeforge.governance.lifecycle import open_audit, promote

    cfg = _require(config)
    registry = PolicyRegistry(cfg.uri, create=False)
    with open_audit(cfg.audit_path, registry.registry_uri) as audit:
        info = promote(registry, cfg.model, version, to_alias, actor=actor, audit=audit,
                       approver=approver)  # fmt: skip
    return _result(registry, cfg.model, info)


def rollback_alias(
    config: RegistryConfig | None, *, actor: str, reason: str, approver: str | None = None
) -> dict[str, Any]:
    """Restore ``previous_champion`` as the champion of the configured model, audited."""
    from tradeforge.agents.registry import PolicyRegistry
    from tradeforge.governance.lifecycle import open_audit, rollback_champion

    cfg = _require(config)
    registry = PolicyRegistry(cfg.uri, create=False)
    with open_audit(cfg.audit_path, registry.registry_uri) as audit:
        info = rollback_champion(registry, cfg.model, actor=actor, audit=audit, reason=reason,
                                 approver=approver)  # fmt: skip
    return _result(registry, cfg.model, info)


__all__ = ["NO_REGISTRY", "promote_alias", "rollback_alias"]

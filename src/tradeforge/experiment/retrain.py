"""``retrain``: walk-forward on the latest stored data, then a challenger only through the
offline gate.

One call (the ``tradeforge retrain`` command and the service's retraining job):

1. runs :func:`~tradeforge.experiment.run.run_experiment` on the config, its data cut at ``end``
   (default: everything stored). The config's own ``tracking.register`` is switched off: the
   registration below is the only one, and it happens only after the gate;
2. applies the offline gate (:func:`tradeforge.governance.gates.offline_gate_from_run`):
   deflated Sharpe with every configuration tried counted, OOS drawdown within budget, MinTRL;
3. **passed**: registers the last fold's policy as a new version (provenance and run tags),
   makes it ``challenger`` (audited), records the gate result on it (audited) and moves
   ``shadow`` to it through the guard (audited), so a service's shadow runner picks it up.
   The model card is written as an MLflow artifact of the version;
4. **failed**: nothing is registered. A ``governance.refused`` audit entry (``action:
   retrain``) names the failed checks with their values and thresholds, and the result's
   ``refused`` says the same. With a second ``approver`` (non-empty, not the actor) the
   version is registered anyway, the failed gate is recorded on it, and ``shadow`` moves to
   it as an audited override (``approval.shadow`` on the version).

``champion`` (and ``canary``) are never moved by a retrain: they need the shadow and paper
gates.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeforge.core.errors import ConfigError
from tradeforge.experiment.config import ExperimentConfig

if TYPE_CHECKING:
    from tradeforge.agents.registry import PolicyRegistry
    from tradeforge.audit.log import AuditLogBase
    from tradeforge.experiment.run import ProgressFn, RunResult
    from tradeforge.governance.gates import GateConfig, GateResult

logger = logging.getLogger(__name__)

RETRAIN_REFUSED_EXIT = 1
Runner = Callable[[ExperimentConfig, Path | None], "RunResult"]


@dataclass(frozen=True)
class RetrainResult:
    """What :func:`retrain` did: the run, the offline gate and, when registered, the version.

    ``refused`` is the one-line reason when nothing was registered (the failed checks with
    their values); ``approver`` is set when a failed gate was overridden."""

    run_dir: Path
    model: str
    gate: GateResult
    version: int | None = None
    aliases: tuple[str, ...] = ()
    refused: str | None = None
    approver: str | None = None
    card: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def registered(self) -> bool:
        return self.version is not None

    @property
    def exit_code(self) -> int:
        """0 when a version was registered, :data:`RETRAIN_REFUSED_EXIT` when refused."""
        return 0 if self.registered else RETRAIN_REFUSED_EXIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "model": self.model,
            "registered": self.registered,
            "version": self.version,
            "aliases": list(self.aliases),
            "refused": self.refused,
            "approver": self.approver,
            "model_card": self.card,
            "gate": json.loads(self.gate.to_json()),
            "metrics": self.metrics,
        }


def failed_checks_text(gate: GateResult) -> str:
    """``name = value (threshold t)`` of every failed check, ``; `` separated."""
    parts = []
    for c in gate.checks:
        if not c.passed:
            value = "n/a" if c.value is None else f"{c.value:.6g}"
            limit = "n/a" if c.threshold is None else f"{c.threshold:.6g}"
            parts.append(f"{c.name} = {value} (threshold {limit}: {c.detail})")
    return "; ".join(parts)


def with_end(config: ExperimentConfig, end: date | str | None) -> ExperimentConfig:
    """The config with its data cut at ``end`` and its own registration switched off."""
    update: dict[str, Any] = {}
    if end is not None:
        try:
            when = date.fromisoformat(str(end)) if not isinstance(end, date) else end
        except ValueError:
            raise ConfigError(f"end = {end!r}; expected a date YYYY-MM-DD") from None
        if config.data.start is not None and when < config.data.start:
            raise ConfigError(
                f"end = {when} is before data.start = {config.data.start}; expected a later end"
            )
        update["data"] = config.data.model_copy(update={"end": when})
    if config.tracking is not None and config.tracking.register_policy:
        update["tracking"] = config.tracking.model_copy(update={"register_policy": False})
    return config.model_copy(update=update) if update else config


def run_tags(summary: Mapping[str, Any], data_section: Mapping[str, Any]) -> dict[str, str]:
    """Version tags of a retrained policy, from the run's ``summary.json``: the run directory,
    its OOS metrics and range, ``configurations_tried``, ``periods_per_year`` and the SHA-256
    of the data section (the same tags as ``tracking: {register: true}``)."""
    metrics = summary.get("metrics") or {}
    data = json.dumps(dict(data_section), sort_keys=True, separators=(",", ":"), default=str)
    tags = {
        "run_dir": str(summary.get("run_dir", "")),
        "oos_sharpe": str(float(metrics.get("sharpe", float("nan")))),
        "oos_total_return": str(float(metrics.get("total_return", float("nan")))),
        "deflated_sharpe": str(float(metrics.get("deflated_sharpe", float("nan")))),
        "configurations_tried": str(summary.get("configurations_tried")),
        "trial_sharpes_known": str(len(summary.get("trial_sharpes") or [])),
        "periods_per_year": str(summary.get("periods_per_year")),
        "data_config_checksum": hashlib.sha256(data.encode()).hexdigest(),
        "strategy": str(summary.get("strategy", "")),
        "retrained": "true",
    }
    for key in ("oos_start", "oos_end"):
        if summary.get(key):
            tags[key] = str(summary[key])
    return tags


def _approver(approver: str | None, actor: str) -> str | None:
    who = (approver or "").strip()
    if not who:
        return None
    if who == actor.strip():
        raise ConfigError(
            f"approver = {who!r} is the actor running the retrain; expected a second person"
        )
    return who


def retrain(
    config: ExperimentConfig,
    *,
    actor: str,
    end: date | str | None = None,
    model: str | None = None,
    registry: PolicyRegistry | None = None,
    audit: AuditLogBase | None = None,
    approver: str | None = None,
    gate_config: GateConfig | None = None,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    runner: Runner | None = None,
) -> RetrainResult:
    """Retrain and register a challenger only through the offline gate (module docstring).

    ``model``: the registered name (default ``tracking.model_name``, else the config name);
    ``registry``: default ``tracking.registry_uri`` (else the default store); ``audit``:
    default ``audit.db`` next to the registry store; ``runner(config, out_dir)``: how the
    walk-forward is run (default :func:`~tradeforge.experiment.run.run_experiment`)."""
    from tradeforge.agents.registry import SHADOW, PolicyRegistry
    from tradeforge.governance.gates import offline_gate_from_run
    from tradeforge.governance.lifecycle import (
        REFUSED_KIND,
        correlation_id,
        open_audit,
        promote,
        record_gate,
        register_version,
    )
    from tradeforge.governance.model_card import attach_model_card

    if not isinstance(actor, str) or not actor.strip():
        raise ConfigError(f"actor = {actor!r}; expected the non-empty name of who retrains")
    second = _approver(approver, actor)
    cfg = with_end(config, end)
    tracking = config.tracking
    name = model or (tracking.model_name if tracking else None) or config.name
    if registry is None:
        registry = PolicyRegistry(tracking.registry_uri if tracking else None)
    if audit is None:  # the default log, closed when done
        with open_audit(registry_uri=registry.registry_uri) as own:
            return retrain(config, actor=actor, end=end, model=name, registry=registry,
                           audit=own, approver=approver, gate_config=gate_config,
                           out_dir=out_dir, progress=progress, runner=runner)  # fmt: skip
    log = audit
    if runner is None:
        from tradeforge.experiment.run import run_experiment

        result = run_experiment(cfg, out_dir, progress)
    else:
        result = runner(cfg, out_dir)
    run_dir = Path(result.run_dir)
    gate = offline_gate_from_run(run_dir, gate_config)
    summary = dict(result.summary)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    if not gate.passed and second is None:
        reason = f"offline gate failed: {failed_checks_text(gate)}"
        log.append(REFUSED_KIND, {
            "action": "retrain", "model": name, "alias": "challenger", "from_version": None,
            "to_version": None, "actor": actor.strip(), "approver": None,
            "gates": {"offline": "failed"}, "gate_results": {"offline": json.loads(gate.to_json())},
            "reason": reason, "unmet_gates": ["offline"], "run_dir": str(run_dir),
        }, correlation_id(name, "retrain"))  # fmt: skip
        logger.warning("retrain of %s refused: %s", name, reason)
        return RetrainResult(run_dir, name, gate, refused=reason, metrics=metrics)
    artifact = Path(result.folds[-1].artifact)
    info = register_version(
        registry, artifact, name, actor=actor.strip(), audit=log,
        n_trials=int(summary["configurations_tried"]),
        tags=run_tags(summary, cfg.data.model_dump(mode="json")),
    )  # fmt: skip
    record_gate(registry, name, info.version, gate, actor=actor.strip(), audit=log)
    info = promote(registry, name, info.version, SHADOW, actor=actor.strip(), audit=log,
                   approver=second if not gate.passed else None)  # fmt: skip
    card = attach_model_card(registry, name, info.version, run_dir=run_dir, artifact=artifact)
    info = registry.get(name, info.version)
    return RetrainResult(
        run_dir, name, gate, version=info.version, aliases=tuple(info.aliases),
        approver=second if not gate.passed else None, card=card, metrics=metrics,
    )  # fmt: skip


__all__ = [
    "RETRAIN_REFUSED_EXIT",
    "RetrainResult",
    "failed_checks_text",
    "retrain",
    "run_tags",
    "with_end",
]

"""Model governance: the lifecycle on the registry, the promotion gates, guarded promotion and
the canary rollback decision (see ``docs/governance.md``).

* :mod:`~tradeforge.governance.gates`: :class:`GateConfig`, the offline, shadow and paper gates
  returning a JSON-serialisable :class:`GateResult`;
* :mod:`~tradeforge.governance.lifecycle`: audited, guarded alias moves (:func:`promote`,
  :func:`rollback_champion`, :func:`record_gate`, :func:`register_version`);
* :mod:`~tradeforge.governance.canary`: :class:`CanaryMonitor` and :func:`rollback`;
* :mod:`~tradeforge.governance.stats`: minimum track record length, bootstrap drawdown band.
"""

from tradeforge.governance.canary import (
    CanaryBar,
    CanaryConfig,
    CanaryMonitor,
    CanaryReference,
    RollbackDecision,
    Trigger,
    rollback,
)
from tradeforge.governance.errors import GovernanceError, PromotionRefused
from tradeforge.governance.gates import (
    Check,
    GateConfig,
    GateResult,
    PaperEvidence,
    load_paper_evidence,
    offline_gate,
    offline_gate_from_run,
    paper_gate,
    shadow_gate,
    shadow_gate_from_dir,
)
from tradeforge.governance.lifecycle import (
    REQUIRED_GATES,
    default_audit_path,
    gate_status,
    open_audit,
    promote,
    record_gate,
    register_version,
    rollback_champion,
)
from tradeforge.governance.stats import (
    bootstrap_drawdown_quantile,
    max_drawdown,
    min_track_record_length,
)

__all__ = [
    "REQUIRED_GATES",
    "CanaryBar",
    "CanaryConfig",
    "CanaryMonitor",
    "CanaryReference",
    "Check",
    "GateConfig",
    "GateResult",
    "GovernanceError",
    "PaperEvidence",
    "PromotionRefused",
    "RollbackDecision",
    "Trigger",
    "bootstrap_drawdown_quantile",
    "default_audit_path",
    "gate_status",
    "load_paper_evidence",
    "max_drawdown",
    "min_track_record_length",
    "offline_gate",
    "offline_gate_from_run",
    "open_audit",
    "paper_gate",
    "promote",
    "record_gate",
    "register_version",
    "rollback",
    "rollback_champion",
    "shadow_gate",
    "shadow_gate_from_dir",
]

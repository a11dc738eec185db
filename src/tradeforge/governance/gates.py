"""The three promotion gates: offline (walk-forward), shadow (no orders) and paper.

Each gate returns a :class:`GateResult`: the gate's name, ``passed`` (every check passed) and
its :class:`Check` list (name, measured value, threshold, passed, detail), JSON-serialisable
(:meth:`GateResult.to_json`) so that :func:`tradeforge.governance.lifecycle.record_gate` can
store it as registry version tags. Thresholds live in the frozen :class:`GateConfig`.

* **offline** (:func:`offline_gate`, :func:`offline_gate_from_run`): the deflated Sharpe ratio of
  the walk-forward out-of-sample returns, with EVERY configuration tried counted (a run's
  ``configurations_tried``), is at least ``min_dsr`` (0.95: a 95 % probability that the true
  Sharpe beats the best of that many useless configurations); the OOS max drawdown is within
  ``max_drawdown``; the OOS record is at least the minimum track record length (MinTRL) for
  ``PSR(0) >= mintrl_confidence``.
* **shadow** (:func:`shadow_gate`): the challenger decided on the same bars as the champion
  without sending orders for at least ``min_shadow_sessions`` sessions: no errors; the mean L1
  distance between their weight vectors at most ``max_action_distance``; the ratio of their
  turnovers within ``[1 / max_turnover_ratio, max_turnover_ratio]``; the challenger's simulated
  drawdown at most ``drawdown_band_multiple`` x the ``drawdown_band_quantile`` of the drawdown
  over the same horizon on seeded stationary-bootstrap paths of the backtest OOS returns.
* **paper** (:func:`paper_gate`, evidence from a paper run's state directory by
  :func:`load_paper_evidence`): at least ``min_paper_sessions`` marked bars and
  ``min_paper_fills`` fills; no reconciliation mismatch (a bar denied because reconciliation
  halted trading, a restored decision that differed, or a reconciliation that was not ``ok`` in
  ``summary.json``); risk-denial rate below ``max_denial_rate``; realised execution cost
  (implementation shortfall plus fees, bps of the filled arrival notional) at most
  ``max_slippage_multiple`` x the modelled cost; drawdown within the band above (or within
  ``max_drawdown`` when no reference returns are given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradeforge.backtest.significance import sharpe_inference
from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import TradeforgeError
from tradeforge.core.types import FloatArray
from tradeforge.governance.errors import GovernanceError
from tradeforge.governance.stats import (
    bootstrap_drawdown_quantile,
    max_drawdown,
    min_track_record_length,
)

GateName = Literal["offline", "shadow", "paper"]
GATES: tuple[GateName, ...] = ("offline", "shadow", "paper")
RECONCILIATION_HALT = "trading halted by reconciliation"


class GateConfig(FrozenConfig):
    """Thresholds of the three gates (see the module docstring for what each one bounds)."""

    min_dsr: float = Field(0.95, gt=0, lt=1)
    max_drawdown: float = Field(0.25, gt=0, le=1)
    mintrl_confidence: float = Field(0.95, gt=0.5, lt=1)
    min_shadow_sessions: int = Field(20, ge=1)
    max_action_distance: float = Field(0.5, ge=0, le=2)
    max_turnover_ratio: float = Field(2.0, ge=1)
    drawdown_band_multiple: float = Field(1.5, ge=1)
    drawdown_band_quantile: float = Field(0.95, gt=0, lt=1)
    n_boot: int = Field(1000, ge=100)
    mean_block: float | None = Field(None, ge=1)
    seed: int = 0
    min_paper_sessions: int = Field(20, ge=1)
    min_paper_fills: int = Field(30, ge=0)
    max_denial_rate: float = Field(0.01, gt=0, le=1)
    max_slippage_multiple: float = Field(2.0, gt=0)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


class Check(BaseModel):
    """One measured condition of a gate. Non-finite values are stored as ``None`` (JSON has no
    infinity); ``detail`` then says what the value was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: float | None
    threshold: float | None
    passed: bool
    detail: str = ""

    @classmethod
    def of(
        cls, name: str, value: float | None, threshold: float | None, passed: bool, detail: str
    ) -> Check:
        return cls(name=name, value=_finite(value), threshold=_finite(threshold),
                   passed=bool(passed), detail=detail)  # fmt: skip


class GateResult(BaseModel):
    """A gate's outcome: ``passed`` is True exactly when every check passed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gate: GateName
    passed: bool
    checks: tuple[Check, ...]
    evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> GateResult:
        if not self.checks:
            raise ValueError(f"gate {self.gate!r} has no checks; expected at least one")
        expected = all(c.passed for c in self.checks)
        if self.passed != expected:
            raise ValueError(
                f"gate {self.gate!r} passed = {self.passed} but its checks give {expected}"
            )
        return self

    @classmethod
    def of(
        cls, gate: GateName, checks: Sequence[Check], evidence: dict[str, Any] | None = None
    ) -> GateResult:
        return cls(gate=gate, passed=all(c.passed for c in checks), checks=tuple(checks),
                   evidence=dict(evidence or {}))  # fmt: skip

    def to_json(self) -> str:
        """Compact JSON (what is stored in the registry tag ``gate.<name>.json``)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> GateResult:
        return cls.model_validate_json(text)

    def failed(self) -> list[str]:
        """Names of the checks that failed."""
        return [c.name for c in self.checks if not c.passed]


# -- offline ----------------------------------------------------------------------------------
def offline_gate(
    returns: pd.Series | FloatArray,
    *,
    n_trials: int | None,
    trial_sharpes: Sequence[float] | None = None,
    periods_per_year: int = 252,
    config: GateConfig | None = None,
) -> GateResult:
    """The offline gate on walk-forward out-of-sample ``returns`` (module docstring).

    ``n_trials`` is EVERY configuration tried (tuning trials x members x seeds); ``None`` is
    refused so that an uncounted search cannot pass. ``trial_sharpes`` (annualised) give the
    spread of the trials' Sharpe ratios; without, it is assumed (see
    :func:`~tradeforge.backtest.significance.deflated_sharpe_ratio`)."""
    cfg = config or GateConfig()
    if n_trials is None or int(n_trials) < 1:
        raise GovernanceError(
            f"offline gate n_trials = {n_trials!r}; expected the number of configurations "
            "tried (>= 1), so that the deflated Sharpe counts every trial"
        )
    try:
        inference = sharpe_inference(
            returns, int(n_trials), trial_sharpes=list(trial_sharpes or []) or None,
            periods_per_year=periods_per_year,
        )  # fmt: skip
    except TradeforgeError as exc:
        raise GovernanceError(f"offline gate: {exc}") from exc
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    dsr = inference["dsr"]
    dd = max_drawdown(r)
    sr = inference["sharpe"] / math.sqrt(periods_per_year)
    mintrl = min_track_record_length(
        sr, inference["skew"], inference["kurtosis"], 0.0, cfg.mintrl_confidence
    )
    n_obs = int(inference["n_obs"])
    checks = [
        Check.of("deflated_sharpe", dsr, cfg.min_dsr, dsr >= cfg.min_dsr,
                 f"DSR {dsr:.4f} over {int(n_trials)} configurations tried (best useless "
                 f"trial expected at annual Sharpe {inference['expected_max_sharpe']:.3f}); "
                 f"annual Sharpe {inference['sharpe']:.3f}"),
        Check.of("max_drawdown", dd, cfg.max_drawdown, dd <= cfg.max_drawdown,
                 f"OOS max drawdown {dd:.2%}, budget {cfg.max_drawdown:.2%}"),
        Check.of("min_track_record", n_obs, mintrl, n_obs >= mintrl,
                 f"{n_obs} OOS bars; MinTRL for PSR(0) >= {cfg.mintrl_confidence} is "
                 + (f"{mintrl:.1f} bars" if math.isfinite(mintrl) else "infinite (Sharpe <= 0)")),
    ]  # fmt: skip
    evidence = {k: _finite(v) for k, v in inference.items()}
    evidence["periods_per_year"] = periods_per_year
    return GateResult.of("offline", checks, evidence)


def read_oos_returns(run_dir: Path) -> pd.Series:
    """A run's ``oos_returns.csv`` (timestamp index, column ``returns``)."""
    path = Path(run_dir) / "oos_returns.csv"
    if not path.is_file():
        raise GovernanceError(
            f"run dir = {str(run_dir)!r} has no oos_returns.csv; expected the directory of a "
            "completed `tradeforge run`"
        )
    frame = pd.read_csv(path, index_col=0, parse_dates=True)
    if "returns" not in frame.columns:
        raise GovernanceError(f"{path}: columns {list(frame.columns)}; expected 'returns'")
    return frame["returns"].astype(float)


def read_run_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise GovernanceError(
            f"run dir = {str(run_dir)!r} has no summary.json; expected a completed run"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise GovernanceError(f"{path} holds {type(data).__name__}; expected a JSON object")
    return data


def offline_gate_from_run(run_dir: Path, config: GateConfig | None = None) -> GateResult:
    """:func:`offline_gate` on a finished walk-forward run directory: ``oos_returns.csv`` and,
    from ``summary.json``, ``configurations_tried`` and ``periods_per_year``."""
    summary = read_run_summary(run_dir)
    tried = summary.get("configurations_tried")
    if tried is None:
        raise GovernanceError(
            f"{run_dir}/summary.json has no configurations_tried; expected the count of every "
            "configuration the run tried"
        )
    result = offline_gate(
        read_oos_returns(run_dir), n_trials=int(tried),
        trial_sharpes=summary.get("trial_sharpes"),
        periods_per_year=int(summary.get("periods_per_year", 252)), config=config,
    )  # fmt: skip
    evidence = {**result.evidence, "run_dir": str(run_dir)}
    return GateResult.of("offline", result.checks, evidence)


# -- shadow -----------------------------------------------------------------------------------
def _weights(values: Any, label: str) -> FloatArray:
    w = np.asarray(values, dtype=np.float64)
    w = w[:, None] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[0] == 0:
        raise GovernanceError(f"{label} has shape {np.shape(values)}; expected (bars, assets)")
    out: FloatArray = np.nan_to_num(w, nan=0.0)
    return out


def _turnover(w: FloatArray) -> float:
    return float(np.abs(np.diff(w, axis=0)).sum(axis=1).mean()) if w.shape[0] > 1 else 0.0


def drawdown_band(
    reference_returns: pd.Series | FloatArray, horizon: int, config: GateConfig
) -> float:
    """``drawdown_band_multiple`` x the bootstrap ``drawdown_band_quantile`` of the drawdown
    over ``horizon`` bars of the reference (backtest OOS) returns."""
    q = bootstrap_drawdown_quantile(
        np.asarray(reference_returns, dtype=np.float64), horizon,
        quantile=config.drawdown_band_quantile, n_boot=config.n_boot, seed=config.seed,
        mean_block=config.mean_block,
    )  # fmt: skip
    return config.drawdown_band_multiple * q


def shadow_gate(
    champion_weights: Any,
    challenger_weights: Any,
    challenger_returns: pd.Series | FloatArray,
    reference_returns: pd.Series | FloatArray,
    *,
    errors: int = 0,
    sessions: int | None = None,
    config: GateConfig | None = None,
) -> GateResult:
    """The shadow gate (module docstring). Weights are ``(bars, assets)`` on the same bars;
    ``challenger_returns`` the challenger's simulated per-bar returns over them;
    ``reference_returns`` the champion's backtest OOS returns (the drawdown band);
    ``sessions`` defaults to the number of bars."""
    cfg = config or GateConfig()
    champ = _weights(champion_weights, "champion weights")
    chall = _weights(challenger_weights, "challenger weights")
    if champ.shape != chall.shape:
        raise GovernanceError(
            f"champion weights {champ.shape}, challenger weights {chall.shape}; expected the "
            "same bars and assets"
        )
    r = np.asarray(challenger_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = int(sessions if sessions is not None else champ.shape[0])
    distance = float(np.abs(champ - chall).sum(axis=1).mean())
    sign_agreement = float(np.mean(np.sign(champ) == np.sign(chall)))
    t_champ, t_chall = _turnover(champ), _turnover(chall)
    ratio = t_chall / t_champ if t_champ > 0.0 else (1.0 if t_chall == 0.0 else math.inf)
    lo, hi = 1.0 / cfg.max_turnover_ratio, cfg.max_turnover_ratio
    dd = max_drawdown(r)
    band = drawdown_band(reference_returns, max(1, r.size), cfg)
    checks = [
        Check.of("sessions", n, cfg.min_shadow_sessions, n >= cfg.min_shadow_sessions,
                 f"{n} shadow sessions, need {cfg.min_shadow_sessions}"),
        Check.of("errors", errors, 0, errors == 0, f"{errors} errors while deciding"),
        Check.of("action_distance", distance, cfg.max_action_distance,
                 distance <= cfg.max_action_distance,
                 f"mean L1 |w_champion - w_challenger| {distance:.4f}; sign agreement "
                 f"{sign_agreement:.2%}"),
        Check.of("turnover_ratio", ratio, hi, lo <= ratio <= hi,
                 f"challenger/champion turnover {t_chall:.4f}/{t_champ:.4f} = {ratio:.3f}; "
                 f"expected within [{lo:.3f}, {hi:.3f}]"),
        Check.of("drawdown_band", dd, band, dd <= band,
                 f"simulated drawdown {dd:.2%} vs {cfg.drawdown_band_multiple} x "
                 f"q{cfg.drawdown_band_quantile:g} bootstrap drawdown over {r.size} bars "
                 f"= {band:.2%}"),
    ]  # fmt: skip
    evidence = {"bars": int(champ.shape[0]), "assets": int(champ.shape[1]),
                "sign_agreement": sign_agreement, "seed": cfg.seed}  # fmt: skip
    return GateResult.of("shadow", checks, evidence)


def _csv_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise GovernanceError(f"shadow evidence file {str(path)!r} is missing")
    return pd.read_csv(path, index_col=0, parse_dates=True)


def shadow_gate_from_dir(
    shadow_dir: Path, reference_returns: pd.Series | FloatArray, config: GateConfig | None = None
) -> GateResult:
    """:func:`shadow_gate` on a shadow run's files: ``champion_weights.csv`` and
    ``challenger_weights.csv`` (timestamp index, one column per symbol, the same bars),
    ``challenger_returns.csv`` (timestamp, ``returns``) and optional ``shadow.json``
    (``{"errors": n, "sessions": n}``)."""
    d = Path(shadow_dir)
    champ = _csv_frame(d / "champion_weights.csv")
    chall = _csv_frame(d / "challenger_weights.csv")
    if not champ.index.equals(chall.index):
        raise GovernanceError(
            f"{d}: champion and challenger weights are on different bars; expected the same"
        )
    rets = _csv_frame(d / "challenger_returns.csv")
    meta: dict[str, Any] = {}
    if (d / "shadow.json").is_file():
        meta = json.loads((d / "shadow.json").read_text(encoding="utf-8"))
    return shadow_gate(
        champ.to_numpy(), chall[champ.columns].to_numpy(), rets.iloc[:, 0].to_numpy(),
        reference_returns, errors=int(meta.get("errors", 0)),
        sessions=meta.get("sessions"), config=config,
    )  # fmt: skip


# -- paper ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaperEvidence:
    """What a paper run left that the paper gate judges."""

    equity: tuple[float, ...]
    n_commands: int
    n_denied: int
    n_fills: int
    reconciliation_mismatches: int
    cost_bps: float | None
    details: tuple[str, ...] = ()

    @property
    def sessions(self) -> int:
        return len(self.equity)

    @property
    def returns(self) -> FloatArray:
        e = np.asarray(self.equity, dtype=np.float64)
        out: FloatArray = e[1:] / e[:-1] - 1.0 if e.size > 1 else np.empty(0)
        return out


def load_paper_evidence(state_dir: Path) -> PaperEvidence:
    """Read a paper run's state directory: the node journal ``node.sqlite`` (marks, decisions,
    denials, parents), the order store ``oms.sqlite`` (orders, fills) and, when present,
    ``summary.json`` (:meth:`PaperResult.summary`: reconciliations, restore mismatches)."""
    from tradeforge.execution.node_config import NodeResult
    from tradeforge.execution.node_journal import NodeJournal
    from tradeforge.execution.store import OrderStore

    state = Path(state_dir)
    journal_path, store_path = state / "node.sqlite", state / "oms.sqlite"
    for path in (journal_path, store_path):
        if not path.is_file():
            raise GovernanceError(
                f"paper state dir = {str(state)!r} has no {path.name}; expected the --state "
                "directory of a paper run"
            )
    meta = _journal_meta(journal_path)
    journal = NodeJournal(journal_path, meta["strategy_id"], json.loads(meta["symbols"]),
                          meta["fingerprint"])  # fmt: skip
    try:
        marks, decisions, parents = journal.marks(), journal.decisions(), journal.parents()
    finally:
        journal.close()
    store = OrderStore.open_sqlite(store_path)
    try:
        orders, fills = store.load_orders(), store.fills()
    finally:
        store.close()
    node = NodeResult(meta["strategy_id"], marks, decisions, orders, fills, halted=False,
                      parents=parents)  # fmt: skip
    denied = node.denied
    halted = [cid for cid, why in denied.items() if why.startswith(RECONCILIATION_HALT)]
    details = [f"{len(halted)} orders denied because reconciliation halted trading"]
    mismatches = len(halted)
    summary_path = state / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        bad = [r for r in summary.get("reconciliations", []) if not str(r).endswith(": ok")]
        restored = int(summary.get("restore_mismatches", 0) or 0)
        mismatches += len(bad) + restored
        details.append(f"summary.json: {len(bad)} reconciliations not ok, {restored} restore "
                       "mismatches")  # fmt: skip
    cost: float | None = None
    if fills:
        cost = node.shortfall_summary().get("cost_bps")
    n_commands = sum(len(d.commands) for d in decisions)
    return PaperEvidence(
        equity=tuple(float(Decimal(m.equity)) for m in marks), n_commands=n_commands,
        n_denied=len(denied) - len(halted), n_fills=len(fills),
        reconciliation_mismatches=mismatches, cost_bps=cost, details=tuple(details),
    )  # fmt: skip


def _journal_meta(path: Path) -> dict[str, str]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT key, value FROM node_meta").fetchall())
    except sqlite3.Error as exc:
        raise GovernanceError(f"node journal {str(path)!r}: {exc}; expected node_meta") from exc
    finally:
        conn.close()
    missing = [k for k in ("strategy_id", "symbols", "fingerprint") if k not in rows]
    if missing:
        raise GovernanceError(f"node journal {str(path)!r} lacks {missing} in node_meta")
    return {str(k): str(v) for k, v in rows.items()}


def paper_gate(
    evidence: PaperEvidence | Path,
    *,
    modelled_cost_bps: float,
    reference_returns: pd.Series | FloatArray | None = None,
    config: GateConfig | None = None,
) -> GateResult:
    """The paper gate (module docstring) on :class:`PaperEvidence` or a state directory.

    ``modelled_cost_bps`` is the simulator's cost assumption per traded notional (commission,
    spread, slippage, impact, in bps); ``reference_returns`` the backtest OOS returns that set
    the drawdown band (without them the band is ``max_drawdown``)."""
    cfg = config or GateConfig()
    ev = evidence if isinstance(evidence, PaperEvidence) else load_paper_evidence(evidence)
    if not (math.isfinite(modelled_cost_bps) and modelled_cost_bps >= 0):
        raise GovernanceError(
            f"modelled_cost_bps = {modelled_cost_bps}; expected a finite cost >= 0 bps"
        )
    rate = ev.n_denied / ev.n_commands if ev.n_commands else 0.0
    limit = cfg.max_slippage_multiple * modelled_cost_bps
    cost_ok = ev.cost_bps is not None and ev.cost_bps <= limit
    returns = ev.returns
    dd = max_drawdown(returns)
    if reference_returns is not None:
        band = drawdown_band(reference_returns, max(1, returns.size), cfg)
        band_detail = (f"{cfg.drawdown_band_multiple} x q{cfg.drawdown_band_quantile:g} "
                       f"bootstrap drawdown over {returns.size} bars")  # fmt: skip
    else:
        band, band_detail = cfg.max_drawdown, "the offline drawdown budget"
    checks = [
        Check.of("sessions", ev.sessions, cfg.min_paper_sessions,
                 ev.sessions >= cfg.min_paper_sessions,
                 f"{ev.sessions} marked bars, need {cfg.min_paper_sessions}"),
        Check.of("fills", ev.n_fills, cfg.min_paper_fills, ev.n_fills >= cfg.min_paper_fills,
                 f"{ev.n_fills} fills, need {cfg.min_paper_fills}"),
        Check.of("reconciliation_mismatches", ev.reconciliation_mismatches, 0,
                 ev.reconciliation_mismatches == 0, "; ".join(ev.details)),
        Check.of("denial_rate", rate, cfg.max_denial_rate, rate < cfg.max_denial_rate,
                 f"{ev.n_denied} of {ev.n_commands} orders denied by risk"),
        Check.of("slippage", ev.cost_bps, limit, cost_ok,
                 (f"realised cost {ev.cost_bps:.2f} bps" if ev.cost_bps is not None
                  else "no fills to measure") + f" vs {cfg.max_slippage_multiple} x modelled "
                 f"{modelled_cost_bps:.2f} bps"),
        Check.of("drawdown_band", dd, band, dd <= band,
                 f"paper drawdown {dd:.2%} vs {band:.2%} ({band_detail})"),
    ]  # fmt: skip
    evidence_out = {"modelled_cost_bps": modelled_cost_bps, "n_commands": ev.n_commands,
                    "n_denied": ev.n_denied}  # fmt: skip
    return GateResult.of("paper", checks, evidence_out)


__all__ = [
    "GATES",
    "Check",
    "GateConfig",
    "GateName",
    "GateResult",
    "PaperEvidence",
    "drawdown_band",
    "load_paper_evidence",
    "offline_gate",
    "offline_gate_from_run",
    "paper_gate",
    "read_oos_returns",
    "read_run_summary",
    "shadow_gate",
    "shadow_gate_from_dir",
]

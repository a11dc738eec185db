"""The service's YAML config: what to trade, where, on which clock, and who may operate it.

::

    policy: latest:quickstart              # an artifact dir, or the newest `tradeforge run` of a
                                           # config name: its last fold's ensemble (or member)
    venue: local                           # local (our paper venue) | alpaca | sim
    mode: paper                            # paper | live: the banner, and live needs confirm
    state_dir: runs/serve                  # orders, fills, journal, risk, audit, alerts, jobs
    replay:                                # local/sim venues replay stored bars...
      start: 2016-01-04                    # ...from here (default: the artifact's test window)
      bar_interval_s: 5                    # one stored bar every 5 s of wall time
    schedule: {exchange: XNYS, frequency: 1d, offset_s: 60}   # alpaca: the exchange calendar
    paper: {node: {...}, risk: {max_gross: 1.0, max_drawdown: 0.2}}   # as `tradeforge paper`
    alerts: {webhooks: [{url: http://127.0.0.1:9000/hook}], cooldown_s: 300}
    api: {host: 127.0.0.1, port: 8000}
    registry: {model: spy-ppo, uri: sqlite:///runs/mlflow.db}   # where aliases are looked up
    canary:                                # the `canary` alias trades a sleeve beside the policy
      enabled: true
      share: 0.01                          # the sleeve's share of capital (a step of `ramp`)
      ramp: [0.01, 0.05, 0.25]             # steps up after `ramp_after_sessions` passing
      ramp_after_sessions: 20              # paper-gate sessions in a row; never above the last
      limits: {max_gross: 1.0}             # the sleeve's own RiskConfig (of sleeve equity)
      monitor: {max_daily_loss: 0.02, max_drawdown: 0.05, cusum: false}   # rollback triggers
    shadow: {enabled: true}                # the `shadow` alias decides, places no orders

Relative paths are resolved against the working directory (where ``runs/`` is).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig, load_yaml_section
from tradeforge.core.errors import ConfigError
from tradeforge.experiment.paper import PaperConfig
from tradeforge.governance.canary import CanaryConfig
from tradeforge.governance.gates import GateConfig
from tradeforge.monitor.alerts import AlertsConfig
from tradeforge.risk import RiskConfig
from tradeforge.serve.scheduler import ScheduleConfig


class ReplayConfig(FrozenConfig):
    """Replay venues (``local``, ``sim``): the period (None: the artifact's test window) and
    how much wall time one stored bar takes."""

    start: str | None = None
    end: str | None = None
    bar_interval_s: float = Field(default=5.0, gt=0.0, le=86_400.0)


class ApiConfig(FrozenConfig):
    """Where the API listens and how long a browser session lasts. The key itself is never in
    a file: it comes from the environment variable ``key_env``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    key_env: str = "TRADEFORGE_API_KEY"
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0.0)
    graceful_shutdown_s: float = Field(default=3.0, gt=0.0, le=60.0)


class RegistryConfig(FrozenConfig):
    """The MLflow registry the ``canary`` and ``shadow`` aliases are read from: the registered
    model ``model`` in the store ``uri`` (None: ``agents.registry.default_registry_uri``);
    alias moves are audited in ``audit_path`` (None: ``audit.db`` next to a sqlite store)."""

    model: str = Field(min_length=1)
    uri: str | None = None
    audit_path: str | None = None


class CanaryServeConfig(FrozenConfig):
    """The canary sleeve (docs/serve.md): ``share`` of the account's equity, traded by the
    registry's ``canary`` version beside the policy, with its own risk ``limits`` (fractions of
    the sleeve's equity), rolled back by ``monitor``'s triggers; the share steps up ``ramp``
    after the paper gate (``gate``, ``modelled_cost_bps``) passed on ``ramp_after_sessions``
    sessions in a row. ``reference_returns`` (a CSV or ``.npy`` of the canary's backtest
    out-of-sample returns) calibrates the CUSUM trigger; ``monitor.cusum`` needs it."""

    enabled: bool = False
    share: float = Field(default=0.01, gt=0.0, le=1.0)
    ramp: tuple[float, ...] = (0.01, 0.05, 0.25)
    ramp_after_sessions: int = Field(default=20, ge=1)
    limits: RiskConfig = Field(default_factory=lambda: RiskConfig(max_gross=1.0))
    monitor: CanaryConfig = Field(default_factory=lambda: CanaryConfig(cusum=False))
    gate: GateConfig = Field(default_factory=GateConfig)
    modelled_cost_bps: float = Field(default=10.0, ge=0.0)
    reference_returns: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CanaryServeConfig:
        ramp = list(self.ramp)
        bad = [v for v in ramp if not 0.0 < v <= 1.0]
        if bad:
            raise ValueError(f"canary.ramp = {ramp}: {bad} out of range; expected shares in (0, 1]")
        if any(b <= a for a, b in itertools.pairwise(ramp)):
            raise ValueError(f"canary.ramp = {ramp}; expected strictly increasing steps")
        if ramp and self.share not in ramp:
            raise ValueError(f"canary.share = {self.share} is not a step of canary.ramp = {ramp}; "
                             "expected one of the steps (the sleeve starts there)")  # fmt: skip
        if self.monitor.cusum and self.reference_returns is None:
            raise ValueError("canary.monitor.cusum = true but canary.reference_returns is not set; "
                             "expected the canary's backtest OOS returns (CSV or .npy) or "
                             "monitor.cusum = false")  # fmt: skip
        return self

    @property
    def steps(self) -> tuple[float, ...]:
        """The shares the sleeve may hold, from ``share`` up (``share`` alone without a ramp)."""
        ramp = self.ramp or (self.share,)
        return tuple(v for v in ramp if v >= self.share)


class ShadowServeConfig(FrozenConfig):
    """The shadow runner: the registry's ``shadow`` version decides on the policy's bars and
    places no orders; its records (the shadow gate's files) go to ``dir`` (None:
    ``STATE/shadow``)."""

    enabled: bool = False
    dir: str | None = None


class ServeConfig(FrozenConfig):
    """One service: a policy trading on a venue (module docstring)."""

    policy: str
    venue: Literal["local", "alpaca", "sim"] = "local"
    mode: Literal["paper", "live"] = "paper"
    state_dir: str = "runs/serve"
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    registry: RegistryConfig | None = None
    canary: CanaryServeConfig = Field(default_factory=CanaryServeConfig)
    shadow: ShadowServeConfig = Field(default_factory=ShadowServeConfig)

    @model_validator(mode="after")
    def _needs_registry(self) -> ServeConfig:
        for name, section in (("canary", self.canary), ("shadow", self.shadow)):
            if section.enabled and self.registry is None:
                raise ValueError(f"{name}.enabled = true but registry is not set; expected "
                                 "registry: {model: NAME} (where the alias is looked up)")  # fmt: skip
        return self

    def resolved(self, base: Path | None = None) -> ServeConfig:
        """Paths made absolute against ``base`` (default: the working directory); a
        ``latest:NAME`` policy becomes the newest run's artifact (:func:`latest_policy`)."""
        root = base or Path.cwd()

        def absolute(value: str) -> str:
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else (root / path).resolve())

        policy = self.policy
        if policy.startswith("latest:"):
            policy = str(latest_policy(policy.removeprefix("latest:"), root / "runs"))
        update: dict[str, Any] = {"policy": absolute(policy), "state_dir": absolute(self.state_dir)}
        if self.canary.reference_returns is not None:
            update["canary"] = self.canary.model_copy(
                update={"reference_returns": absolute(self.canary.reference_returns)}
            )
        if self.shadow.dir is not None:
            update["shadow"] = self.shadow.model_copy(update={"dir": absolute(self.shadow.dir)})
        return self.model_copy(update=update)


def latest_policy(name: str, runs: Path) -> Path:
    """The policy artifact of the newest ``runs/NAME-*`` run: its last fold's ``ensemble``,
    or the fold's only member when it trained one algorithm."""
    candidates = sorted((d for d in runs.glob(f"{name}-*") if (d / "folds").is_dir()),
                        key=lambda d: d.stat().st_mtime)  # fmt: skip
    if not candidates:
        raise ConfigError(f"policy = 'latest:{name}': no run {runs}/{name}-*/folds; expected "
                          f"`tradeforge run configs/{name}.yaml` to have run first")  # fmt: skip
    folds = sorted((candidates[-1] / "folds").glob("fold_*"),
                   key=lambda d: int(d.name.split("_")[-1]) if d.name.split("_")[-1].isdigit() else -1)  # fmt: skip
    for fold in reversed(folds):
        if (fold / "ensemble" / "manifest.json").is_file():
            return fold / "ensemble"
        members = sorted(p.parent for p in fold.glob("members/*/policy/manifest.json"))
        if members:
            return members[0]
    raise ConfigError(f"policy = 'latest:{name}': {candidates[-1]} holds no policy artifact "
                      "(folds/fold_K/ensemble or members/*/policy); expected a finished run")  # fmt: skip


def load_serve_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ServeConfig:
    """The :class:`ServeConfig` in the YAML file ``path`` (top level or under ``serve:``), with
    ``overrides`` (top-level keys) applied and paths resolved (:meth:`ServeConfig.resolved`)."""
    config = load_yaml_section(path, ServeConfig, "serve", overrides)
    return config.resolved()


__all__ = [
    "ApiConfig",
    "CanaryServeConfig",
    "RegistryConfig",
    "ReplayConfig",
    "ServeConfig",
    "ShadowServeConfig",
    "latest_policy",
    "load_serve_config",
]

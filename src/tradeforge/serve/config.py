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

Relative paths are resolved against the working directory (where ``runs/`` is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tradeforge.core.config import FrozenConfig, load_yaml_section
from tradeforge.core.errors import ConfigError
from tradeforge.experiment.paper import PaperConfig
from tradeforge.monitor.alerts import AlertsConfig
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
        return self.model_copy(
            update={"policy": absolute(policy), "state_dir": absolute(self.state_dir)}
        )


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


__all__ = ["ApiConfig", "ReplayConfig", "ServeConfig", "latest_policy", "load_serve_config"]

"""Ensembles: several agents trained side by side and a meta-controller that picks or weights them.

The ICAIF 2020 ensemble strategy (Yang, Liu, Zhong, Walid): each member is scored by its Sharpe
ratio over the most recent ``window`` bars of validation; ``select`` mode trades the best member,
``soft`` mode trades the average of all members weighted by ``softmax(score / temperature)``.
With ``online`` scoring (and prices bound with :meth:`EnsemblePolicy.bind_prices`), every
``window`` decisions the members are re-scored on their last ``window`` (frictionless, paper)
returns, so the choice rolls forward through a test period as in the paper's quarterly rebalance.

A supervised alpha member (LightGBM predicting the next ``horizon``-bar return from the last
bar's features, fitted only on the training window) can join: its prediction's sign becomes a
long / flat / short level in the env's action kind.

The ensemble is saved as a directory::

    ensemble.json            mode, scores, weights, member list, rolling score buffers, config
    members/<name>/          each member's policy artifact (or alpha.json + model.txt)
    manifest.json            sha256 of every file above

and loaded with :func:`load_ensemble`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field, field_validator

from tradeforge.agents.alpha import AlphaMember, AlphaMemberConfig, fit_alpha_member
from tradeforge.agents.artifact import sha256_file, write_manifest
from tradeforge.agents.config import ALGOS, AgentConfig
from tradeforge.agents.evaluation import sharpe
from tradeforge.agents.mapper import Mapper, SerialMapper
from tradeforge.agents.rollout import policy_env_action
from tradeforge.agents.training import (
    SeedOutcome,
    SeedTask,
    TrainResult,
    WarmStart,
    finish_training,
    seed_task,
)
from tradeforge.agents.vecenv import EnvFactory
from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import AgentError, ArtifactError
from tradeforge.core.types import FloatArray

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "ensemble.json"


# -- configuration ----------------------------------------------------------------------------------
def _default_members() -> list[AgentConfig | str]:
    return ["ppo", "a2c", "ddpg"]


class EnsembleConfig(FrozenConfig):
    """The ``ensemble`` section of an experiment.

    ``members``: algorithm names (they take the experiment's ``agent`` settings with that
    algorithm) or full agent configs. ``mode``: ``select`` (best validation Sharpe) or ``soft``
    (softmax of Sharpe / ``temperature``). ``window``: bars per rebalance window (scoring window
    on validation, re-scoring period online).
    """

    members: list[AgentConfig | str] = Field(default_factory=lambda: _default_members())
    alpha: AlphaMemberConfig | None = None
    mode: Literal["select", "soft"] = "select"
    window: int = Field(default=63, ge=2)
    temperature: float = Field(default=1.0, gt=0.0)
    online: bool = True
    periods_per_year: int = Field(default=252, ge=1)

    @field_validator("members")
    @classmethod
    def _check_members(cls, value: list[AgentConfig | str]) -> list[AgentConfig | str]:
        if not value:
            raise ValueError("members is empty; expected at least one algorithm or agent config")
        for item in value:
            if isinstance(item, str) and item not in ALGOS:
                raise ValueError(f"member {item!r} is not an algorithm; expected one of {ALGOS}")
        return value

    def member_configs(self, base: AgentConfig | None = None) -> list[tuple[str, AgentConfig]]:
        """(unique name, AgentConfig) per member; names come from the algorithm (``ppo``,
        ``ppo_2``, ...). A bare name takes ``base`` with that algorithm (``base``'s
        hyperparameters only when the algorithm is the same)."""
        base = base or AgentConfig()
        out: list[tuple[str, AgentConfig]] = []
        seen: dict[str, int] = {}
        for item in self.members:
            if isinstance(item, str):
                hyper = base.hyperparams if item == base.algo else {}
                cfg = base.with_updates(algo=item, hyperparams=hyper)
            else:
                cfg = item
            seen[cfg.algo] = seen.get(cfg.algo, 0) + 1
            name = cfg.algo if seen[cfg.algo] == 1 else f"{cfg.algo}_{seen[cfg.algo]}"
            out.append((name, cfg))
        if self.alpha is not None and self.alpha.name in {n for n, _ in out}:
            raise AgentError(f"alpha.name = {self.alpha.name!r} clashes with an agent member name")
        return out


# -- meta-controller ------------------------------------------------------------------------------
def member_weights(
    scores: Mapping[str, float], mode: str, temperature: float = 1.0
) -> dict[str, float]:
    """Weights over members from their scores: one-hot on the best (``select``, first on ties)
    or ``softmax(score / temperature)`` (``soft``). Non-finite scores count as -inf."""
    names = list(scores)
    if not names:
        raise AgentError("member_weights needs at least one scored member")
    values = np.array([scores[n] for n in names], dtype=np.float64)
    values = np.where(np.isfinite(values), values, -np.inf)
    if mode == "select" or not np.isfinite(values).any():
        best = int(np.argmax(values))
        return {n: float(i == best) for i, n in enumerate(names)}
    if mode != "soft":
        raise AgentError(f"mode = {mode!r}; expected 'select' or 'soft'")
    z = values / temperature
    z = np.exp(z - z[np.isfinite(z)].max())
    z = np.where(np.isfinite(z), z, 0.0)
    z = z / z.sum()
    return {n: float(w) for n, w in zip(names, z, strict=True)}


def window_score(returns: FloatArray, window: int, periods_per_year: int) -> float:
    """Sharpe of the last ``window`` returns (all when fewer)."""
    tail = np.asarray(returns, dtype=np.float64)[-window:]
    return sharpe(tail, periods_per_year)


# -- members --------------------------------------------------------------------------------------
def _decide(policy: Any, observation: Any) -> tuple[FloatArray, Any]:
    """(target as ``act`` reports it, env action) of one member, from a single ``act`` call."""
    if hasattr(policy, "decide"):
        target, action = policy.decide(observation)
        return np.atleast_1d(np.asarray(target, dtype=np.float64)), action
    out = np.atleast_1d(np.asarray(policy.act(observation), dtype=np.float64))
    if hasattr(policy, "env_action"):  # the env's own action (e.g. weights logits incl. cash)
        return out, policy.env_action(observation)
    space = getattr(policy, "action_space", None)
    spec = getattr(policy, "spec", None)
    if isinstance(space, gym.spaces.Discrete):
        table = spec.get("action_weights") if isinstance(spec, dict) else None
        if table is not None:
            rows = np.asarray(table, dtype=np.float64)
            return out, int(np.argmin(np.abs(rows - out[None, :]).sum(axis=1)))
        return out, int(out[0])
    if isinstance(space, gym.spaces.MultiDiscrete):
        return out, np.rint(out).astype(np.int64)
    return out, out.astype(np.float32)


# -- validation -----------------------------------------------------------------------------------
def validation_returns(policy: Any, env: Any) -> FloatArray:
    """Per-step equity returns of ``policy`` run deterministically over the env's range (its
    action from ``decide`` when it has one, else ``env_action`` or ``act``)."""
    if not isinstance(env, gym.Env):
        raise AgentError(
            f"ensemble scoring needs make_eval_env to return a gymnasium Env; got "
            f"{type(env).__name__}"
        )
    if hasattr(policy, "reset"):
        policy.reset()
    obs, info = env.reset(seed=0)
    equity = [float(info.get("equity", np.nan))]
    while True:
        if hasattr(policy, "decide"):
            action = policy.decide(obs)[1]
        else:
            action = policy_env_action(policy, obs, env)
        obs, _, terminated, truncated, info = env.step(action)
        if "equity" not in info:
            raise AgentError("ensemble scoring needs info['equity'] from env.step")
        equity.append(float(np.asarray(info["equity"]).reshape(-1)[0]))
        if terminated or truncated:
            break
    curve = np.asarray(equity, dtype=np.float64)
    if not np.isfinite(curve[0]):
        curve = curve[1:]
    out: FloatArray = np.diff(curve) / curve[:-1]
    return out


def score_members(
    members: Mapping[str, Any], make_eval_env: EnvFactory, window: int, periods_per_year: int
) -> dict[str, dict[str, Any]]:
    """Validation statistics per member: window and full Sharpe, total return, the per-window
    Sharpe table and the last ``window`` returns (the online scoring buffer)."""
    out: dict[str, dict[str, Any]] = {}
    for name, policy in members.items():
        returns = validation_returns(policy, make_eval_env())
        chunks = [returns[i : i + window] for i in range(0, returns.size, window)]
        out[name] = {
            "score": window_score(returns, window, periods_per_year),
            "sharpe_full": sharpe(returns, periods_per_year),
            "total_return": float(np.prod(1.0 + returns) - 1.0),
            "steps": int(returns.size),
            "window_sharpe": [sharpe(c, periods_per_year) for c in chunks],
            "returns": returns[-window:].tolist(),
        }
    return out


# -- the ensemble policy --------------------------------------------------------------------------
class EnsemblePolicy:
    """Members combined by validation (and, online, rolling) scores; a ``Policy``.

    ``act`` returns the weighted average of the members' ``act`` outputs (target weights for
    position-style discrete members, target positions in [-1, 1] for continuous ones).
    ``env_action`` returns the action for the env: the active member's in ``select`` mode; in
    ``soft`` mode the weighted average (Box actions) or the weighted vote (discrete actions).
    All members must share one action space.
    """

    def __init__(
        self,
        members: Mapping[str, Any],
        scores: Mapping[str, float],
        *,
        mode: Literal["select", "soft"] = "select",
        window: int = 63,
        temperature: float = 1.0,
        online: bool = True,
        periods_per_year: int = 252,
        buffers: Mapping[str, Sequence[float]] | None = None,
        metadata: dict[str, Any] | None = None,
        sources: Mapping[str, Path] | None = None,
    ) -> None:
        if not members:
            raise AgentError("an ensemble needs at least one member")
        missing = [n for n in members if n not in scores]
        if missing:
            raise AgentError(f"members {missing} have no validation score")
        self.members = dict(members)
        self.names = list(self.members)
        self.mode = mode
        self.window = window
        self.temperature = temperature
        self.online = online
        self.periods_per_year = periods_per_year
        self.metadata = metadata or {}
        self.sources = {n: Path(p) for n, p in (sources or {}).items()}
        self.validation_scores = {n: float(scores[n]) for n in self.names}
        self.scores = dict(self.validation_scores)
        self.weights = member_weights(self.scores, mode, temperature)
        self._initial_buffers = {n: list((buffers or {}).get(n, [])) for n in self.names}
        self._buffers: dict[str, deque[float]] = {}
        self._prices: FloatArray | None = None
        self.switches: list[tuple[int, dict[str, float]]] = []
        self._last: dict[str, FloatArray] = {}
        self._since = 0
        self._decisions = 0
        self._spaces_checked = False
        self.reset()

    # -- Policy API ---------------------------------------------------------------------------
    @property
    def active(self) -> str:
        """The member with the largest weight now."""
        return max(self.names, key=lambda n: self.weights[n])

    @property
    def pipeline(self) -> Any:
        for policy in self.members.values():
            pipe = getattr(policy, "pipeline", None)
            if pipe is not None:
                return pipe
        return None

    @property
    def feature_hash(self) -> str | None:
        for policy in self.members.values():
            value = getattr(policy, "feature_hash", None)
            if value is not None:
                return str(value)
        return None

    def reset(self) -> None:
        """Start a new episode: validation scores and buffers again, member memories cleared."""
        self.scores = dict(self.validation_scores)
        self.weights = member_weights(self.scores, self.mode, self.temperature)
        self._buffers = {n: deque(self._initial_buffers[n], maxlen=self.window) for n in self.names}
        self.switches = []
        self._last = {}
        self._since = 0
        self._decisions = 0
        for policy in self.members.values():
            if hasattr(policy, "reset"):
                policy.reset()

    def _decide_all(self, observation: Any) -> dict[str, tuple[FloatArray, Any]]:
        out = {n: _decide(self.members[n], observation) for n in self.names}
        self._last = {n: out[n][0] for n in self.names}
        self._decisions += 1
        return out

    def act(self, observation: Any) -> FloatArray:
        decisions = self._decide_all(observation)
        total = sum(self.weights[n] * decisions[n][0] for n in self.names)
        out: FloatArray = np.asarray(total, dtype=np.float64)
        return out

    def env_action(self, observation: Any, action_masks: Any = None) -> Any:
        decisions = self._decide_all(observation)
        if self.mode == "select":
            return decisions[self.active][1]
        actions = [np.asarray(decisions[n][1]) for n in self.names]
        weights = np.array([self.weights[n] for n in self.names])
        first = actions[0]
        if np.issubdtype(first.dtype, np.integer):
            stacked = np.stack([a.reshape(-1) for a in actions])  # (members, dims)
            n_choices = int(stacked.max()) + 1
            votes = np.zeros((stacked.shape[1], n_choices))
            for k in range(stacked.shape[0]):
                votes[np.arange(stacked.shape[1]), stacked[k]] += weights[k]
            if action_masks is not None:
                mask = np.asarray(action_masks, dtype=bool).reshape(stacked.shape[1], -1)
                votes = np.where(mask[:, :n_choices], votes, -np.inf)
            choice = np.argmax(votes, axis=1)
            return int(choice[0]) if first.ndim == 0 else choice.astype(np.int64)
        blended = sum(w * a.astype(np.float64) for w, a in zip(weights, actions, strict=True))
        return np.clip(np.asarray(blended), -1.0, 1.0).astype(first.dtype)

    # -- online scoring -----------------------------------------------------------------------
    def bind_prices(self, close: FloatArray) -> None:
        """Closes (T, N) of the panel the env runs on: ``observe(info)`` then scores members."""
        arr = np.asarray(close, dtype=np.float64)
        self._prices = arr[:, None] if arr.ndim == 1 else arr

    def observe(self, info: dict[str, Any]) -> None:
        """After ``env.step``: record each member's paper return from bar - 1 to ``info["bar"]``."""
        if self._prices is None or "bar" not in info or not self._last:
            return
        bar = int(info["bar"])
        if not 1 <= bar < self._prices.shape[0]:
            return
        returns = self._prices[bar] / self._prices[bar - 1] - 1.0
        self.record_returns(np.nan_to_num(returns))

    def record_returns(self, asset_returns: FloatArray) -> None:
        """Add each member's return ``target . asset_returns`` for the last decision; every
        ``window`` records (when ``online``) re-score and re-weight the members."""
        if not self._last:
            return
        r = np.asarray(asset_returns, dtype=np.float64).reshape(-1)
        for name in self.names:
            self._buffers[name].append(float(np.dot(self._last[name].reshape(-1), r)))
        self._since += 1
        if self.online and self._since >= self.window:
            self._since = 0
            self.scores = {
                n: window_score(np.asarray(self._buffers[n]), self.window, self.periods_per_year)
                for n in self.names
            }
            self.weights = member_weights(self.scores, self.mode, self.temperature)
            self.switches.append((self._decisions, dict(self.weights)))

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write the ensemble directory (members' artifacts copied in, then a manifest); an
        existing ensemble there is replaced."""
        directory = Path(directory)
        if directory.exists():
            if not is_ensemble_dir(directory) and any(directory.iterdir()):
                raise AgentError(
                    f"{directory} exists and is not an ensemble directory; expected a new or "
                    "empty directory (or an ensemble to replace)"
                )
            shutil.rmtree(directory)
        (directory / "members").mkdir(parents=True)
        entries = []
        for name in self.names:
            policy = self.members[name]
            target = directory / "members" / name
            if isinstance(policy, AlphaMember):
                policy.save(target)
                entries.append({"name": name, "type": "alpha", "path": f"members/{name}"})
                continue
            source = self.sources.get(name)
            if source is None or not source.is_dir():
                raise AgentError(
                    f"member {name!r} ({type(policy).__name__}) has no saved artifact to copy; "
                    "only policies from load_policy and alpha members can be saved"
                )
            shutil.copytree(source, target)
            entries.append({"name": name, "type": "agent", "path": f"members/{name}"})
        meta = {
            "format": FORMAT_VERSION,
            "kind": "tradeforge-ensemble",
            "mode": self.mode,
            "window": self.window,
            "temperature": self.temperature,
            "online": self.online,
            "periods_per_year": self.periods_per_year,
            "members": entries,
            "scores": self.validation_scores,
            "weights": member_weights(self.validation_scores, self.mode, self.temperature),
            "buffers": self._initial_buffers,
            "metadata": self.metadata,
        }
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        (directory / META).write_text(text, encoding="utf-8")
        write_manifest(directory)
        return directory


def is_ensemble_dir(directory: Path) -> bool:
    return (Path(directory) / META).is_file()


def _verify(directory: Path) -> None:
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} is missing; not a tradeforge ensemble")
    try:
        files = dict(json.loads(manifest_path.read_text(encoding="utf-8"))["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path} is not a valid manifest: {exc}") from None
    if META not in files:
        raise ArtifactError(f"manifest.json in {directory} does not list {META}")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"ensemble file {name} listed in manifest.json is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"ensemble file {name} is corrupted: sha256 does not match")


def load_ensemble(directory: Path, *, expected_feature_hash: str | None = None) -> EnsemblePolicy:
    """Verify and load an ensemble directory written by :meth:`EnsemblePolicy.save`."""
    from tradeforge.agents.policy import load_policy

    directory = Path(directory)
    if not is_ensemble_dir(directory):
        raise ArtifactError(f"{directory} has no {META}; not a tradeforge ensemble")
    _verify(directory)
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{META} format {meta.get('format')!r}; expected {FORMAT_VERSION}")
    members: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    for entry in meta["members"]:
        path = directory / entry["path"]
        if entry["type"] == "alpha":
            members[entry["name"]] = AlphaMember.load(path)
        else:
            members[entry["name"]] = load_policy(path, expected_feature_hash=expected_feature_hash)
            sources[entry["name"]] = path
    return EnsemblePolicy(
        members,
        meta["scores"],
        mode=meta["mode"],
        window=int(meta["window"]),
        temperature=float(meta["temperature"]),
        online=bool(meta["online"]),
        periods_per_year=int(meta["periods_per_year"]),
        buffers=meta.get("buffers"),
        metadata=meta.get("metadata", {}),
        sources=sources,
    )


# -- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsembleResult:
    """What :func:`train_ensemble` produced."""

    path: Path
    policy: EnsemblePolicy
    members: dict[str, TrainResult | None]
    validation: dict[str, dict[str, Any]]
    weights: dict[str, float]
    run_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def selected(self) -> str:
        return max(self.weights, key=lambda n: self.weights[n])

    def summary(self) -> dict[str, Any]:
        return {
            "ensemble": str(self.path),
            "run_dir": str(self.run_dir),
            "mode": self.policy.mode,
            "selected": self.selected,
            "weights": self.weights,
            "validation": {
                n: {k: v for k, v in stats.items() if k != "returns"}
                for n, stats in self.validation.items()
            },
            "members": {
                n: (None if r is None else str(r.artifact_path)) for n, r in self.members.items()
            },
        }


def train_ensemble(
    config: EnsembleConfig,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    progress: bool = False,
    *,
    base_agent: AgentConfig | None = None,
    panel: Any | None = None,
    features: Any | None = None,
    env_config: Any | None = None,
    train_range: tuple[int, int] | None = None,
    pipeline: Any | None = None,
    data_ranges: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
    warm_start: WarmStart | None = None,
    mapper: Mapper | None = None,
) -> EnsembleResult:
    """Train every member as ``train_agent`` would (same envs), fit the alpha member, score all
    on the validation env, and save the ensemble at ``run_dir / "ensemble"``.

    ``mapper`` runs every (member, seed) pair (:class:`~tradeforge.agents.mapper.SerialMapper`
    by default: members in order, each member's seeds in order; a ``RayMapper`` runs the pairs
    as Ray tasks with the same results); each member's best seed, artifact and summary are
    chosen and written here afterwards.

    ``make_eval_env`` must return a gymnasium Env (one validation episode over its range).
    The alpha member needs ``panel``, ``features`` (the FeaturePanel the envs read),
    ``env_config`` and ``train_range`` (bar indices ``[start, end)`` of the training window).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from tradeforge.agents.policy import load_policy

    members: dict[str, Any] = {}
    sources: dict[str, Path] = {}
    results: dict[str, TrainResult | None] = {}
    tasks = {
        name: seed_task(
            cfg,
            make_train_env,
            make_eval_env,
            run_dir / "members" / name,
            progress,
            warm_start=warm_start,
        )
        for name, cfg in config.member_configs(base_agent)
    }
    # members x seeds, flat: every (member, seed) pair is one call of the mapper (one Ray task)
    pairs = [(name, seed) for name, task in tasks.items() for seed in task.seeds()]
    logger.info("ensemble: training %d members x seeds (%s)", len(pairs), ", ".join(tasks))
    outcomes = (mapper or SerialMapper()).map(_MemberSeed(tasks), pairs)
    for name, task in tasks.items():
        result = finish_training(
            task.config, task.run_dir,
            [o for (member, _), o in zip(pairs, outcomes, strict=True) if member == name],
            pipeline=pipeline, data_ranges=data_ranges, extra_config=extra_config,
        )  # fmt: skip
        results[name] = result
        members[name] = load_policy(result.artifact_path)
        sources[name] = result.artifact_path
    if config.alpha is not None:
        if panel is None or features is None or env_config is None or train_range is None:
            raise AgentError(
                "ensemble alpha member needs panel, features, env_config and train_range "
                "passed to train_ensemble"
            )
        members[config.alpha.name] = fit_alpha_member(
            config.alpha, panel, features, env_config, train_range
        )
        results[config.alpha.name] = None
    _check_spaces(members)
    validation = score_members(members, make_eval_env, config.window, config.periods_per_year)
    scores = {n: float(v["score"]) for n, v in validation.items()}
    policy = EnsemblePolicy(
        members,
        scores,
        mode=config.mode,
        window=config.window,
        temperature=config.temperature,
        online=config.online,
        periods_per_year=config.periods_per_year,
        buffers={n: v["returns"] for n, v in validation.items()},
        metadata={
            "config": config.model_dump(mode="json"),
            "validation": {
                n: {k: v for k, v in s.items() if k != "returns"} for n, s in validation.items()
            },
            "data_ranges": data_ranges or {},
        },
        sources=sources,
    )
    path = policy.save(run_dir / "ensemble")
    out = EnsembleResult(
        path=path,
        policy=policy,
        members=results,
        validation=validation,
        weights=dict(policy.weights),
        run_dir=run_dir,
    )
    (run_dir / "ensemble_summary.json").write_text(
        json.dumps(out.summary(), indent=2, default=_json_default), encoding="utf-8"
    )
    logger.info("ensemble: weights %s", out.weights)
    return out


@dataclass(frozen=True)
class _MemberSeed:
    """``(member, seed)`` -> that member's seed task run on that seed (picklable)."""

    tasks: dict[str, SeedTask]

    def __call__(self, pair: tuple[str, int]) -> SeedOutcome:
        name, seed = pair
        return self.tasks[name](seed)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _check_spaces(members: Mapping[str, Any]) -> None:
    from tradeforge.agents.spaces import same_layout

    spaces = {n: getattr(p, "action_space", None) for n, p in members.items()}
    known = {n: s for n, s in spaces.items() if s is not None}
    if len(known) < 2:
        return
    first_name, first = next(iter(known.items()))
    for name, space in known.items():
        if not same_layout(first, space):
            raise AgentError(
                f"ensemble member {name!r} acts in {space} but {first_name!r} in {first}; "
                "expected every member to share one action space"
            )


__all__ = [
    "AlphaMember",
    "AlphaMemberConfig",
    "EnsembleConfig",
    "EnsemblePolicy",
    "EnsembleResult",
    "fit_alpha_member",
    "is_ensemble_dir",
    "load_ensemble",
    "member_weights",
    "score_members",
    "train_ensemble",
    "validation_returns",
    "window_score",
]

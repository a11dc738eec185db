"""Hyperparameter sweeps with Optuna: TPE sampling, median pruning, scored on validation only.

Each trial trains an agent with :func:`train_agent` on the training env and is scored on the
validation env (the mean of ``TuneConfig.metric`` over the agent's seeds, so one lucky seed does
not win). ``tune`` never receives a test env: the test period stays untouched. Intermediate
validation scores are reported to Optuna so the median pruner can stop weak trials early.

Search spaces are keyed by where the value goes: ``hyperparams.<name>`` (checked against the
algorithm's constructor), ``policy_kwargs.<name>`` or a top-level ``AgentConfig`` field such as
``timesteps``. Parallel trials (``n_jobs`` > 1) run in threads: they share the process-wide
random seeds, so a parallel sweep is not bit-reproducible (a sequential one is).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeforge.agents.config import AgentConfig
from tradeforge.agents.factory import allowed_hyperparams
from tradeforge.agents.vecenv import EnvFactory
from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import AgentError, ConfigError

log = logging.getLogger(__name__)

_TOP_LEVEL = frozenset({"timesteps", "n_envs", "normalize_obs", "normalize_reward", "clip_obs"})


class ParamSpace(FrozenConfig):
    """One searched parameter: ``float``/``int`` in [low, high] (optionally log/step) or one of
    ``choices``."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("type 'categorical' needs a non-empty choices list")
            return self
        if self.low is None or self.high is None or not self.low <= self.high:
            raise ValueError(
                f"type {self.type!r} needs low <= high; got low={self.low}, high={self.high}"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0; got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("log = true cannot be combined with step")
        return self


#: Sweeps used when ``TuneConfig.space`` is empty.
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "hyperparams.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "hyperparams.gamma": {"type": "float", "low": 0.9, "high": 0.999},
        "hyperparams.ent_coef": {"type": "float", "low": 1e-4, "high": 0.05, "log": True},
        "hyperparams.n_steps": {"type": "categorical", "choices": [128, 256, 512]},
    },
    "a2c": {
        "hyperparams.learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
        "hyperparams.gamma": {"type": "float", "low": 0.9, "high": 0.999},
        "hyperparams.n_steps": {"type": "categorical", "choices": [8, 16, 32]},
    },
    "sac": {
        "hyperparams.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "hyperparams.gamma": {"type": "float", "low": 0.9, "high": 0.999},
        "hyperparams.tau": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
    },
}
for _algo in ("ddpg", "td3"):
    DEFAULT_SPACES[_algo] = {
        **DEFAULT_SPACES["sac"],
        "hyperparams.action_noise": {"type": "float", "low": 0.0, "high": 0.3},
    }
DEFAULT_SPACES["recurrent_ppo"] = DEFAULT_SPACES["ppo"]
DEFAULT_SPACES["maskable_ppo"] = DEFAULT_SPACES["ppo"]


class TuneConfig(FrozenConfig):
    """An Optuna sweep.

    ``metric`` defaults to the agent's ``eval.metric``; the score of a trial is its mean over the
    agent's seeds on the validation env. ``storage`` (an Optuna URL such as
    ``sqlite:///runs/optuna.db``) makes a study resumable; None keeps it in memory.
    ``nested: true`` makes ``tradeforge run`` sweep inside every walk-forward fold, on that fold's
    own training and validation windows (never on a later window), before training the fold.
    ``storage`` may also be a journal file path (no ``://``). Workers sharing a study (see
    :func:`work_on_study`) mark their running trial alive every ``heartbeat_s``; a running trial
    silent for ``stale_after_s`` (its worker died) is marked FAIL and its parameters re-queued.
    """

    n_trials: int = Field(default=20, ge=1)
    n_jobs: int = Field(default=1, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0)
    metric: Literal["sharpe", "total_reward", "mean_reward", "total_return"] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    n_startup_trials: int = Field(default=5, ge=0)
    n_warmup_evals: int = Field(default=1, ge=0)
    storage: str | None = None
    study_name: str = "tradeforge"
    space: dict[str, ParamSpace] = Field(default_factory=dict)
    nested: bool = False
    heartbeat_s: float = Field(default=10.0, gt=0)
    stale_after_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check_stale(self) -> TuneConfig:
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ValueError(
                f"stale_after_s = {self.stale_after_s} with heartbeat_s = {self.heartbeat_s}: "
                "expected stale_after_s above twice heartbeat_s (a live worker would look dead)"
            )
        return self


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str
    score: float | None
    params: dict[str, Any]
    run_dir: str


@dataclass(frozen=True)
class TuneResult:
    """Best trial (by validation score), its artifact and every trial's outcome."""

    best_params: dict[str, Any]
    best_score: float
    best_trial: int
    best_config: AgentConfig
    best_artifact: Path
    metric: str
    trials: list[TrialRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "best_score": self.best_score,
            "best_trial": self.best_trial,
            "best_params": self.best_params,
            "best_artifact": str(self.best_artifact),
            "best_config": self.best_config.model_dump(mode="json"),
            "trials": [t.__dict__ for t in self.trials],
        }


def resolve_space(agent: AgentConfig, config: TuneConfig) -> dict[str, ParamSpace]:
    """The search space (defaults for the algorithm when none is given), keys checked."""
    if config.space:
        space = dict(config.space)
    else:
        space = {k: ParamSpace.model_validate(v) for k, v in DEFAULT_SPACES[agent.algo].items()}
    allowed = set(allowed_hyperparams(agent.algo))
    for key in space:
        section, _, name = key.partition(".")
        if section == "hyperparams" and name in allowed:
            continue
        if section == "policy_kwargs" and name:
            continue
        if key in _TOP_LEVEL:
            continue
        if section == "hyperparams":
            raise ConfigError(
                f"tune.space.{key}: {name!r} is not a parameter of {agent.algo}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        raise ConfigError(
            f"tune.space.{key}: expected 'hyperparams.<name>', 'policy_kwargs.<name>' or one of "
            f"{', '.join(sorted(_TOP_LEVEL))}"
        )
    return space


def apply_params(agent: AgentConfig, params: dict[str, Any]) -> AgentConfig:
    """``agent`` with sampled values put where their keys say (validated)."""
    data = agent.model_dump()
    for key, value in params.items():
        section, _, name = key.partition(".")
        if section in ("hyperparams", "policy_kwargs") and name:
            data[section] = {**data[section], name: value}
        else:
            data[key] = value
    try:
        return AgentConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"tuned parameters {params} give an invalid AgentConfig: {exc}") from exc


def _suggest(trial: Any, key: str, spec: ParamSpace) -> Any:
    if spec.type == "categorical":
        choices = list(spec.choices or [])
        if all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            return trial.suggest_categorical(key, choices)
        # lists such as net_arch: Optuna stores primitives, so sample their JSON text
        picked = trial.suggest_categorical(key, [json.dumps(c) for c in choices])
        return json.loads(picked)
    low, high = float(spec.low or 0.0), float(spec.high or 0.0)  # both set (ParamSpace checks)
    if spec.type == "int":
        step = int(spec.step) if spec.step is not None else 1
        return trial.suggest_int(key, int(low), int(high), step=step, log=spec.log)
    return trial.suggest_float(key, low, high, step=spec.step, log=spec.log)


class _PruningHook:
    """Reports the first seed's validation scores to Optuna; asks to stop when pruned."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.last_step = -1
        self.seed_index = 0
        self.pruned = False

    def __call__(self, score: float, timesteps: int) -> bool:
        if timesteps <= self.last_step:
            self.seed_index += 1  # a new seed started
        self.last_step = timesteps
        if self.seed_index > 0:
            return True
        self.trial.report(score if math.isfinite(score) else -1e9, timesteps)
        if self.trial.should_prune():
            self.pruned = True
            return False
        return True


def tune(
    agent: AgentConfig,
    config: TuneConfig,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    progress: bool = False,
    **train_kwargs: Any,
) -> TuneResult:
    """Run the sweep; each trial trains in ``run_dir/trial_<n>`` and is scored on validation.

    ``train_kwargs`` (``pipeline``, ``data_ranges``, ``extra_config``) go to every
    :func:`train_agent` call; ``progress`` shows each trial's bar (sequential sweeps only). The best trial's artifact is ``run_dir/trial_<n>/policy``;
    ``run_dir/tune.json`` holds the summary.
    """
    import optuna

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    space = _checked_space(agent, config)
    metric = config.metric or agent.eval.metric
    sampler: Any = (
        optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=config.n_startup_trials)
        if config.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=config.seed)
    )
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=_pruner(config),
        storage=None if config.storage is None else open_storage(config.storage),
        study_name=config.study_name,
        load_if_exists=config.storage is not None,
    )
    # one progress bar at a time: rich refuses concurrent live displays in parallel trials
    show_progress = progress and config.n_jobs == 1
    objective = _objective(
        agent, config, space, make_train_env, make_eval_env, run_dir, show_progress, train_kwargs
    )
    study.optimize(
        objective,
        n_trials=config.n_trials,
        n_jobs=config.n_jobs,
        timeout=config.timeout_s,
        catch=(),
        gc_after_trial=False,
        show_progress_bar=False,
    )
    return _result(study, agent, metric, run_dir)


def _checked_space(agent: AgentConfig, config: TuneConfig) -> dict[str, ParamSpace]:
    """The search space, each key tried once so a bad key or value fails before any training."""
    space = resolve_space(agent, config)
    for key, spec in space.items():
        probe = spec.choices[0] if spec.type == "categorical" and spec.choices else spec.low
        if spec.type == "int" and probe is not None:
            probe = int(probe)
        _validated(apply_params(agent, {key: probe}))
    return space


def _pruner(config: TuneConfig) -> Any:
    import optuna

    if config.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=config.n_startup_trials, n_warmup_steps=0, interval_steps=1
        )
    return optuna.pruners.NopPruner()


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: an RDB URL (``sqlite:///f.db``, ``postgresql://...``) or,
    without ``://``, a journal file (created if missing) shared through file locks."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if "://" in url:
        engine: dict[str, Any] = {}
        if url.startswith("sqlite"):  # several worker processes write: wait for the file lock
            engine = {"connect_args": {"timeout": 60}}
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                f"tune.storage = {url!r}: cannot open it ({exc}); expected an SQLAlchemy URL "
                "such as sqlite:///runs/optuna.db or postgresql://user@host/db, or a journal "
                "file path"
            ) from exc
    path = Path(url)
    if not path.parent.is_dir():
        raise ConfigError(
            f"tune.storage = {url!r}: folder {str(path.parent)!r} does not exist; expected a "
            "journal file path in an existing folder (or an RDB URL)"
        )
    return JournalStorage(JournalFileBackend(str(path)))


#: study user attribute: how many parameter sets have been queued for the workers
PLANNED = "tradeforge:planned"
#: trial system attributes: the worker holding it and its last heartbeat (unix seconds)
WORKER = "tradeforge:worker"
HEARTBEAT = "tradeforge:heartbeat"
#: a trial whose parameters killed its worker this many times is not queued again
MAX_RETRIES = 3


def plan_params(agent: AgentConfig, config: TuneConfig, n: int) -> list[dict[str, Any]]:
    """``n`` distinct parameter sets drawn with a random sampler seeded by ``config.seed``: the
    first ``k`` sets are the same for every ``n`` >= ``k``, so a study can grow and resume."""
    import optuna

    space = _checked_space(agent, config)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=config.seed))
    planned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(50 * n):
        if len(planned) == n:
            break
        trial = draws.ask()
        for key, spec in space.items():
            _suggest(trial, key, spec)
        draws.tell(trial, state=optuna.trial.TrialState.FAIL)
        key = json.dumps(trial.params, sort_keys=True)
        if key not in seen:
            seen.add(key)
            planned.append(dict(trial.params))
    if len(planned) < n:
        raise ConfigError(
            f"tune.n_trials = {n}: the search space gave only {len(planned)} distinct parameter "
            "sets; expected n_trials at most the number of distinct sets"
        )
    return planned


def prepare_shared_study(agent: AgentConfig, config: TuneConfig) -> Any:
    """Create or load the study ``config.study_name`` in ``config.storage`` and queue parameter
    sets up to ``n_trials`` (:func:`plan_params`); a resumed study queues only the new ones.

    Run it once per study before starting workers: workers only take queued trials, so no two
    evaluate the same parameters and the study holds ``n_trials`` finished trials plus one FAIL
    per trial whose worker died.
    """
    import optuna

    if config.storage is None:
        raise ConfigError("tune.storage = None: workers sharing a study need a storage URL or path")
    study = optuna.create_study(
        direction="maximize",
        storage=open_storage(config.storage),
        study_name=config.study_name,
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(seed=config.seed),
        pruner=_pruner(config),
    )
    planned = int(study.user_attrs.get(PLANNED, 0))
    if planned < config.n_trials:
        for k, params in enumerate(plan_params(agent, config, config.n_trials)):
            if k >= planned:
                study.enqueue_trial(params, user_attrs={"slot": k}, skip_if_exists=True)
        study.set_user_attr(PLANNED, config.n_trials)
    return study


class _Heartbeat:
    """Writes the trial's heartbeat every ``interval`` seconds from a daemon thread."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tune-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT, time.time())
            except Exception as exc:  # a busy storage: try again at the next beat
                log.warning("heartbeat of trial id %d not written: %s", self.trial_id, exc)

    def __enter__(self) -> _Heartbeat:
        self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT, time.time())
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def fail_stale_trials(study: Any, storage: Any, config: TuneConfig) -> list[int]:
    """Mark FAIL every running trial of ``study`` (held in ``storage``, see
    :func:`open_storage`) without a heartbeat for ``config.stale_after_s`` (its worker died)
    and queue its parameters again; returns the failed trial numbers."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        start = trial.datetime_start.timestamp() if trial.datetime_start else now
        if now - float(trial.system_attrs.get(HEARTBEAT, start)) <= config.stale_after_s:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another worker failed it first
            continue
        failed.append(trial.number)
        retries = int(trial.user_attrs.get("retries", 0)) + 1
        params = trial.system_attrs.get("fixed_params", trial.params)
        log.warning(
            "trial %d (worker %s) sent no heartbeat for %.0f s: marked FAIL%s",
            trial.number, trial.system_attrs.get(WORKER), config.stale_after_s,
            "" if retries > MAX_RETRIES else ", parameters queued again",
        )  # fmt: skip
        if retries <= MAX_RETRIES:
            attrs = {"retry_of": trial.number, "retries": retries}
            if "slot" in trial.user_attrs:
                attrs["slot"] = trial.user_attrs["slot"]
            study.enqueue_trial(params, user_attrs=attrs)
    return failed


def _claim(study: Any, storage: Any) -> tuple[Any, int] | None:
    """A queued trial this worker now runs (an atomic WAITING -> RUNNING) and its id, or None."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                storage.set_trial_system_attr(
                    trial_id, WORKER, f"{socket.gethostname()}:{os.getpid()}"
                )
                return optuna.Trial(study, trial_id), trial_id
        except UpdateFinishedTrialError:
            continue
    return None


def work_on_study(
    agent: AgentConfig,
    config: TuneConfig,
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    **train_kwargs: Any,
) -> int:
    """One worker on the shared study (prepared by :func:`prepare_shared_study`): take queued
    trials until none is queued or running, keeping a heartbeat on the running one and failing
    (and re-queueing) trials of dead workers. Returns how many trials this worker finished.

    Any number of workers, on any machines that reach the storage, may run this at once.
    """
    import optuna
    from optuna.trial import TrialState

    if config.storage is None:
        raise ConfigError("tune.storage = None: workers sharing a study need a storage URL or path")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(config.storage)
    study = optuna.load_study(
        study_name=config.study_name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=config.seed),
        pruner=_pruner(config),
    )
    space = _checked_space(agent, config)
    objective = _objective(
        agent, config, space, make_train_env, make_eval_env, run_dir, False, train_kwargs
    )
    finished = 0
    while True:
        fail_stale_trials(study, storage, config)
        claimed = _claim(study, storage)
        if claimed is None:
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return finished
            time.sleep(config.heartbeat_s)  # others still run: wait in case one of them dies
            continue
        trial, trial_id = claimed
        with _Heartbeat(storage, trial_id, config.heartbeat_s):
            # skip_if_finished: a worker too slow to beat may have been failed by another one
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            else:
                study.tell(trial, value, skip_if_finished=True)
        finished += 1


def shared_study_result(agent: AgentConfig, config: TuneConfig, run_dir: Path) -> TuneResult:
    """The result of the shared study (best trial, every trial's record) once workers are done;
    raises AgentError when fewer than ``n_trials`` trials finished (run the workers again)."""
    import optuna
    from optuna.trial import TrialState

    if config.storage is None:
        raise ConfigError("tune.storage = None: workers sharing a study need a storage URL or path")
    study = optuna.load_study(study_name=config.study_name, storage=open_storage(config.storage))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    if len(done) < config.n_trials:
        raise AgentError(
            f"study {config.study_name!r}: {len(done)} of n_trials = {config.n_trials} trials "
            "finished (workers stopped early); start the workers again to resume the study"
        )
    return _result(study, agent, config.metric or agent.eval.metric, Path(run_dir))


def _objective(
    agent: AgentConfig,
    config: TuneConfig,
    space: dict[str, ParamSpace],
    make_train_env: EnvFactory,
    make_eval_env: EnvFactory,
    run_dir: Path,
    show_progress: bool,
    train_kwargs: dict[str, Any],
) -> Callable[[Any], float]:
    """One trial: train in ``run_dir/trial_<n>``, return the mean validation score."""
    import optuna

    from tradeforge.agents.training import train_agent

    metric = config.metric or agent.eval.metric
    warmup = config.n_warmup_evals

    def objective(trial: Any) -> float:
        params = {key: _suggest(trial, key, spec) for key, spec in space.items()}
        trial.set_user_attr("params", params)
        trial_config = _validated(apply_params(agent, params))
        hook = _PruningHook(trial)
        guarded = _WarmupGuard(hook, warmup)
        trial_dir = run_dir / f"trial_{trial.number}"
        trial.set_user_attr("run_dir", str(trial_dir))
        result = train_agent(
            trial_config,
            make_train_env,
            make_eval_env,
            trial_dir,
            show_progress,
            eval_hook=guarded,
            **train_kwargs,
        )
        score = result.spread()[metric]["mean"]
        trial.set_user_attr("artifact", str(result.artifact_path))
        trial.set_user_attr("spread", result.spread()[metric])
        if hook.pruned:
            raise optuna.TrialPruned(f"pruned at validation {metric} {score:.4f}")
        if not math.isfinite(score):
            raise AgentError(f"trial {trial.number} gave a non-finite validation {metric}")
        return float(score)

    return objective


def _result(study: Any, agent: AgentConfig, metric: str, run_dir: Path) -> TuneResult:
    """The best trial and every trial's record; writes ``run_dir/tune.json``."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise AgentError(
            f"no tuning trial completed ({len(study.trials)} run, all pruned or failed); "
            "raise n_trials or n_startup_trials"
        )
    best = study.best_trial
    records = [
        TrialRecord(
            number=t.number,
            state=t.state.name,
            score=None if t.value is None else float(t.value),
            params=dict(t.user_attrs.get("params", t.params)),
            run_dir=str(t.user_attrs.get("run_dir", "")),
        )
        for t in study.trials
    ]
    best_params = dict(best.user_attrs["params"])
    result = TuneResult(
        best_params=best_params,
        best_score=float(best.value or 0.0),
        best_trial=best.number,
        best_config=apply_params(agent, best_params),
        best_artifact=Path(str(best.user_attrs["artifact"])),
        metric=metric,
        trials=records,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "tune.json").write_text(
        json.dumps(result.summary(), indent=2, default=str), encoding="utf-8"
    )
    log.info("tuning done: best trial %d, validation %s %.4f", best.number, metric, best.value)
    return result


class _WarmupGuard:
    """Never prune during the first ``warmup`` validations of a trial."""

    def __init__(self, hook: _PruningHook, warmup: int) -> None:
        self.hook = hook
        self.warmup = warmup
        self.calls = 0

    def __call__(self, score: float, timesteps: int) -> bool:
        self.calls += 1
        keep = self.hook(score, timesteps)
        if not keep and self.calls <= self.warmup:
            self.hook.pruned = False
            return True
        return keep


def _validated(agent: AgentConfig) -> AgentConfig:
    from tradeforge.agents.factory import validate_hyperparams

    validate_hyperparams(agent.algo, dict(agent.hyperparams), agent.backend)
    return agent


__all__ = [
    "DEFAULT_SPACES",
    "MAX_RETRIES",
    "ParamSpace",
    "TrialRecord",
    "TuneConfig",
    "TuneResult",
    "apply_params",
    "fail_stale_trials",
    "open_storage",
    "plan_params",
    "prepare_shared_study",
    "resolve_space",
    "shared_study_result",
    "tune",
    "work_on_study",
]

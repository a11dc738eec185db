"""``explain_policy``: why a saved policy acted as it did over a date range.

The artifact's stored bars are replayed exactly as ``replay_policy`` (and ``tradeforge drift
report --policy``) does: the data config and env config from the artifact, features from its
fitted pipeline over the full history, one deterministic pass from ``start`` to ``end`` (default:
the artifact's test window). Every decision's raw observation is recorded and then explained
with one of the :mod:`tradeforge.monitor.explain` methods:

* ``ig``: Integrated Gradients of the actor's deterministic action, one output per action
  dimension (PPO / A2C: the Gaussian mean before clipping; SAC / TD3 / DDPG: the actor's action),
  and for SAC / TD3 / DDPG also ``Q(s, pi(s))`` (the first critic) with respect to s. Discrete
  policies: the probability of the action taken. The observation normalizer of the artifact is
  part of the differentiated function, so attributions are in raw observation units;
* ``permutation``: global importance, the mean absolute change of each output when one entry is
  shuffled across the decisions;
* ``kernel_shap``: Kernel SHAP of each output with the baseline as the background.

The baseline is the reference profile's training feature mean of every feature (at every bar
and symbol of the window) when the artifact has ``reference_profile.json``, else the mean
observation over the explained range; the account-state tail always takes the observed mean
(the profile does not record it). ``ExplanationReport.baseline_source`` says which was used.

Ensembles are explained member by member (each with its own normalizer); a member that is not a
stable-baselines3 torch policy (the LightGBM alpha member) is explained through its ``act`` by
the model-agnostic methods only, and recurrent policies are skipped (their action depends on a
memory the observation does not hold).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import torch

from tradeforge.core.errors import ArtifactError, ConfigError
from tradeforge.core.types import FloatArray
from tradeforge.monitor.explain import (
    Attribution,
    Importance,
    ObservationLayout,
    aggregate,
    integrated_gradients,
    kernel_shap,
    numpy_forward,
    permutation_importance,
)

Method = Literal["ig", "permutation", "kernel_shap"]
METHODS: tuple[str, ...] = ("ig", "permutation", "kernel_shap")


# -- the differentiable policy ---------------------------------------------------------------
class PolicyOutput(torch.nn.Module):
    """Flat raw observations (n, size) -> an SB3 policy's deterministic output.

    ``output``: ``action`` (n, A) the deterministic action, ``q`` (n,) Q(s, pi(s)) of the first
    critic, ``probs`` (n, K) the action probabilities of a discrete policy. The artifact's
    observation normalizer (VecNormalize statistics) is applied first, with its clipping.
    """

    mean: torch.Tensor
    var: torch.Tensor

    def __init__(
        self,
        policy: torch.nn.Module,
        normalizer: dict[str, Any] | None,
        layout: ObservationLayout,
        dict_obs: bool,
        output: Literal["action", "q", "probs"],
    ) -> None:
        super().__init__()
        self.policy = policy
        self.layout = layout
        self.dict_obs = dict_obs
        self.output = output
        mean, var, clip, eps = _flat_stats(normalizer, layout)
        self.normalize = mean is not None
        self.register_buffer("mean", torch.as_tensor(np.zeros(1) if mean is None else mean))
        self.register_buffer("var", torch.as_tensor(np.ones(1) if var is None else var))
        self.clip = clip
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        obs: Any = x
        if self.normalize:
            mean, var = self.mean.to(x.dtype), self.var.to(x.dtype)
            obs = torch.clamp((x - mean) / torch.sqrt(var + self.eps), -self.clip, self.clip)
        if self.dict_obs:
            k, lay = self.layout.feature_size, self.layout
            shape = (-1, lay.window, len(lay.symbols), len(lay.features))
            obs = {"features": obs[:, :k].reshape(shape), "account": obs[:, k:]}
        policy: Any = self.policy
        if self.output == "probs":
            probs: torch.Tensor = policy.get_distribution(obs).distribution.probs
            return probs
        action: torch.Tensor = policy._predict(obs, deterministic=True)
        if self.output == "action":
            return action
        q: torch.Tensor = policy.critic.q1_forward(obs, action)
        return q[:, 0]


def _flat_stats(
    normalizer: dict[str, Any] | None, layout: ObservationLayout
) -> tuple[FloatArray | None, FloatArray | None, float, float]:
    if normalizer is None or not normalizer.get("norm_obs", False):
        return None, None, math.inf, 0.0
    rms = normalizer["obs_rms"]
    parts = [rms] if "mean" in rms else [rms["features"], rms["account"]]
    mean = np.concatenate([np.asarray(p["mean"], dtype=np.float64).reshape(-1) for p in parts])
    var = np.concatenate([np.asarray(p["var"], dtype=np.float64).reshape(-1) for p in parts])
    if mean.shape != (layout.size,):
        raise ArtifactError(
            f"normalizer.json statistics have {mean.size} entries; the observation has "
            f"{layout.size}"
        )
    return mean, var, float(normalizer["clip_obs"]), float(normalizer["epsilon"])


# -- the report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explained:
    """One explained output of one member."""

    member: str
    output: str
    result: Attribution | Importance


@dataclass(frozen=True)
class ExplanationReport:
    """Attributions of a policy's decisions over a date range (see the module docstring)."""

    artifact: str
    method: str
    layout: ObservationLayout
    index: tuple[pd.Timestamp, ...]  # the decision bar of every observation row
    observations: FloatArray  # (n, size) raw observations
    baseline: FloatArray  # (size,)
    baseline_source: str
    explained: tuple[Explained, ...]
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.layout.names

    def global_importance(self, top: int | None = None) -> pd.DataFrame:
        """Per member and output, every entry (or the ``top``) by importance: mean |attribution|
        (IG, Kernel SHAP) or mean |output change| (permutation), largest first."""
        rows = []
        for ex in self.explained:
            values = ex.result.importance()
            order = np.argsort(-values, kind="stable")[: top or len(values)]
            for rank, p in enumerate(order, start=1):
                e = self.layout.entry(int(p))
                rows.append(
                    {
                        "member": ex.member, "output": ex.output, "rank": rank, "entry": e.name,
                        "feature": e.feature, "symbol": e.symbol, "offset": e.offset,
                        "importance": float(values[p]),
                    }
                )  # fmt: skip
        return pd.DataFrame(rows, columns=_GLOBAL_COLUMNS)

    def grouped_importance(self, by: Literal["feature", "symbol", "offset"]) -> pd.DataFrame:
        """Global importance summed per feature, symbol or bar offset, largest first."""
        rows = []
        for ex in self.explained:
            series = cast(pd.Series, aggregate(ex.result.importance(), self.layout, by))
            for group, value in series.sort_values(ascending=False).items():
                rows.append(
                    {"member": ex.member, "output": ex.output, by: group, "importance": value}
                )
        return pd.DataFrame(rows, columns=["member", "output", by, "importance"])

    def decisions(self, top: int = 5, last: int | None = None) -> pd.DataFrame:
        """Per decision (the ``last`` ones when given), member and output: the ``top`` entries by
        |attribution|, with the output, its baseline value and the entry's observed value.
        Empty for permutation importance, which is global only."""
        rows = []
        for ex in self.explained:
            if not isinstance(ex.result, Attribution):
                continue
            res = ex.result
            first_row = len(self.index) - res.n
            start = 0 if last is None else max(0, res.n - last)
            for r in range(start, res.n):
                order = np.argsort(-np.abs(res.values[r]), kind="stable")[:top]
                for rank, p in enumerate(order, start=1):
                    rows.append(
                        {
                            "time": self.index[first_row + r], "member": ex.member,
                            "output": ex.output, "value": float(res.outputs[r]),
                            "baseline_value": float(res.baseline_outputs[r]), "rank": rank,
                            "entry": self.layout.entry(int(p)).name,
                            "observed": float(res.inputs[r, p]),
                            "attribution": float(res.values[r, p]),
                        }
                    )  # fmt: skip
        return pd.DataFrame(rows, columns=_DECISION_COLUMNS)

    def completeness(self) -> pd.DataFrame:
        """Per member and output: |sum(attributions) - (f(x) - f(baseline))| and the cost."""
        rows = []
        for ex in self.explained:
            res = ex.result
            if isinstance(res, Attribution):
                err = np.abs(res.delta)
                rel = err / np.maximum(np.abs(res.outputs - res.baseline_outputs), 1e-12)
                rows.append(
                    {
                        "member": ex.member, "output": ex.output, "n": res.n,
                        "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
                        "max_rel_error": float(rel.max()),
                        "ms_per_observation": res.ms_per_observation,
                    }
                )  # fmt: skip
            else:
                rows.append(
                    {
                        "member": ex.member, "output": ex.output, "n": res.n_observations,
                        "max_abs_error": math.nan, "mean_abs_error": math.nan,
                        "max_rel_error": math.nan,
                        "ms_per_observation": 1000 * res.seconds / max(1, res.n_observations),
                    }
                )  # fmt: skip
        return pd.DataFrame(rows)

    def to_dict(self, top: int = 5) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "method": self.method,
            "n_decisions": len(self.index),
            "start": _iso(self.index[0]) if self.index else None,
            "end": _iso(self.index[-1]) if self.index else None,
            "baseline_source": self.baseline_source,
            "layout": {
                "window": self.layout.window,
                "symbols": list(self.layout.symbols),
                "features": list(self.layout.features),
                "size": self.layout.size,
            },
            "global_importance": _records(self.global_importance(top)),
            "feature_importance": _records(self.grouped_importance("feature")),
            "symbol_importance": _records(self.grouped_importance("symbol")),
            "decisions": _records(self.decisions(top)),
            "completeness": _records(self.completeness()),
            "notes": list(self.notes),
        }

    def to_json(self, top: int = 5) -> str:
        return json.dumps(self.to_dict(top), indent=2, allow_nan=False)

    def write_html(self, path: Path, top: int = 5) -> Path:
        """A self-contained page (inline CSS, bar charts as base64 PNG, no scripts)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render_html(self, top), encoding="utf-8")
        return path


_GLOBAL_COLUMNS = ["member", "output", "rank", "entry", "feature", "symbol", "offset", "importance"]
_DECISION_COLUMNS = [
    "time", "member", "output", "value", "baseline_value", "rank", "entry", "observed",
    "attribution",
]  # fmt: skip


def _iso(value: Any) -> str:
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[str(key)] = value
        out.append(clean)
    return out


# -- replay and explain -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Decisions:
    policy: Any
    observations: FloatArray
    index: tuple[pd.Timestamp, ...]
    layout: ObservationLayout
    dict_obs: bool


def _flatten(observation: Any) -> FloatArray:
    if isinstance(observation, dict):
        feats = np.asarray(observation["features"], dtype=np.float64).reshape(-1)
        return np.concatenate([feats, np.asarray(observation["account"], dtype=np.float64)])
    out: FloatArray = np.asarray(observation, dtype=np.float64).reshape(-1)
    return out


def _replay(directory: Path, start: str | None, end: str | None) -> _Decisions:
    """The raw observation of every decision of a deterministic pass over [start, end]."""
    from tradeforge.agents.rollout import policy_env_action
    from tradeforge.data.ingest import load_panel
    from tradeforge.envs.env import TradingEnv
    from tradeforge.experiment.replay import _bar, open_artifact

    opened = open_artifact(directory)
    policy, data, env_config, ranges = opened.policy, opened.data, opened.env, opened.ranges
    pipeline = opened.pipeline
    panel = load_panel(data.model_copy(update={"start": None, "end": None}))
    first = _bar(panel.index, start or ranges.get("test_start"), "left", "start")
    last = _bar(panel.index, end or ranges.get("test_end"), "right", "end")
    if last < first:
        raise ConfigError(
            f"end = {end} is before start = {start}; expected a range holding decision bars"
        )
    features = pipeline.transform(panel)
    if hasattr(policy, "bind_prices"):
        policy.bind_prices(panel.close)
    env = TradingEnv(panel, features, env_config, start=first, end=min(last + 2, panel.n_bars))
    if hasattr(policy, "reset"):
        policy.reset()
    obs, info = env.reset(seed=0)
    rows: list[FloatArray] = []
    bars: list[int] = []
    while True:
        bar = int(info.get("bar", env.bar))
        if first <= bar <= last:
            rows.append(_flatten(obs))
            bars.append(bar)
        obs, _, terminated, truncated, info = env.step(policy_env_action(policy, obs, env))
        if hasattr(policy, "observe"):
            policy.observe(info)
        if terminated or truncated or bar >= last:
            break
    if not rows:
        raise ConfigError(
            f"--start {start} / --end {end}: no decision bars of {directory} in that range"
        )
    layout = ObservationLayout(
        window=env_config.window,
        symbols=tuple(str(s) for s in panel.symbols),
        features=tuple(env.feature_names),
    )
    return _Decisions(
        policy, np.stack(rows), tuple(panel.index[b] for b in bars), layout, env_config.dict_obs
    )


def _baseline(
    directory: Path, layout: ObservationLayout, observations: FloatArray
) -> tuple[FloatArray, str]:
    from tradeforge.monitor.profile import PROFILE_FILE, ReferenceProfile

    observed = observations.mean(axis=0)
    if not (directory / PROFILE_FILE).is_file():
        return observed, (
            f"mean observation over the replayed decisions (the artifact has no {PROFILE_FILE})"
        )
    profile = ReferenceProfile.load(directory)
    means = dict(zip(profile.feature_names, profile.feature_means, strict=True))
    values = np.array([means.get(name, math.nan) for name in layout.features])
    tiled = layout.tile(np.nan_to_num(values), observed[layout.feature_size :])
    missing = [n for n, v in zip(layout.features, values, strict=True) if not math.isfinite(v)]
    source = f"training feature means from {PROFILE_FILE}; account state: observed mean"
    if missing:
        for e in layout.entries:
            if e.kind == "feature" and e.feature in missing:
                tiled[e.position] = observed[e.position]
        source += f"; observed mean for {', '.join(missing)} (no training mean)"
    return tiled, source


def _members(policy: Any) -> dict[str, Any]:
    if hasattr(policy, "members"):
        return dict(policy.members)
    return {str(getattr(policy, "algo", "policy")): policy}


def _output_names(n_outputs: int, symbols: tuple[str, ...]) -> list[str]:
    if n_outputs == len(symbols):
        return [f"action[{s}]" for s in symbols]
    if n_outputs == len(symbols) + 1:
        return [f"action[{s}]" for s in symbols] + ["action[cash]"]
    return [f"action[{i}]" for i in range(n_outputs)]


def _torch_policy(member: Any) -> torch.nn.Module | None:
    model = getattr(member, "model", None)
    policy = getattr(model, "policy", None)
    return policy if isinstance(policy, torch.nn.Module) else None


def _explain_member(
    name: str,
    member: Any,
    decisions: _Decisions,
    baseline: FloatArray,
    method: Method,
    options: dict[str, Any],
    notes: list[str],
) -> list[Explained]:
    X = decisions.observations
    if options["last"] is not None and method != "permutation":
        X = X[-options["last"] :]
    if type(getattr(member, "model", None)).__name__ == "RecurrentPPO":
        notes.append(f"{name}: skipped, a recurrent policy's action depends on its memory")
        return []
    sb3 = _torch_policy(member)
    if sb3 is None:
        if method == "ig":
            notes.append(f"{name}: skipped by ig (not a torch policy); use permutation")
            return []

        def act(x: np.ndarray) -> np.ndarray:
            return np.stack([np.asarray(member.act(row), dtype=np.float64) for row in x])

        outputs = [(f"target[{s}]", i, act) for i, s in enumerate(decisions.layout.symbols)]
        return [_run(name, out, X, baseline, method, fn, i, options) for out, i, fn in outputs]
    sb3.set_training_mode(False)  # type: ignore[operator]
    normalizer = getattr(member, "normalizer", None)
    lay, dict_obs = decisions.layout, decisions.dict_obs
    found: list[Explained] = []
    if type(member.action_space).__name__ == "Discrete":
        probs = PolicyOutput(sb3, normalizer, lay, dict_obs, "probs")
        chosen = numpy_forward(probs)(X).argmax(axis=1)
        if method == "ig":
            target = [int(c) for c in chosen]
            res = _ig(probs, X, baseline, options, target)
            return [Explained(name, "p(action taken)", res)]
        return [
            _run(name, f"p(action {k})", X, baseline, method, numpy_forward(probs), int(k), options)
            for k in sorted(set(chosen.tolist()))
        ]
    actor = PolicyOutput(sb3, normalizer, lay, dict_obs, "action")
    n_out = int(np.prod(member.action_space.shape))
    for i, out in enumerate(_output_names(n_out, lay.symbols)):
        if method == "ig":
            res = _ig(actor, X, baseline, options, i)
            found.append(Explained(name, out, res))
        else:
            found.append(_run(name, out, X, baseline, method, numpy_forward(actor), i, options))
    if options["q_values"] and hasattr(sb3, "critic") and hasattr(sb3.critic, "q1_forward"):
        q = PolicyOutput(sb3, normalizer, lay, dict_obs, "q")
        if method == "ig":
            found.append(Explained(name, "Q(s, pi(s))", _ig(q, X, baseline, options, None)))
        else:
            found.append(_run(name, "Q(s, pi(s))", X, baseline, method, numpy_forward(q), None, options))  # fmt: skip
    return found


IG_BATCH = 8192  # interpolated observations per forward pass (bounds memory on long ranges)


def _ig(
    forward: torch.nn.Module,
    X: FloatArray,
    baseline: FloatArray,
    options: dict[str, Any],
    target: int | list[int] | None,
) -> Attribution:
    return integrated_gradients(
        forward, X, baseline, options["n_steps"], target, internal_batch_size=IG_BATCH
    )


def _run(
    member: str,
    output: str,
    X: FloatArray,
    baseline: FloatArray,
    method: Method,
    act: Any,
    target: int | None,
    options: dict[str, Any],
) -> Explained:
    if method == "permutation":
        res: Attribution | Importance = permutation_importance(
            act, X, options["n_repeats"], options["seed"], target=target
        )
    else:
        res = kernel_shap(act, X, baseline, options["nsamples"], options["seed"], target=target)
    return Explained(member, output, res)


def explain_policy(
    artifact: Path,
    start: str | None = None,
    end: str | None = None,
    method: Method = "ig",
    *,
    last: int | None = None,
    n_steps: int = 50,
    n_repeats: int = 5,
    nsamples: int = 512,
    seed: int = 0,
    q_values: bool = True,
) -> ExplanationReport:
    """Explain the decisions of the policy (or ensemble) at ``artifact`` over [start, end].

    ``last``: explain only the last N decisions (IG, Kernel SHAP; permutation importance always
    shuffles over every decision). ``n_steps``: IG quadrature points; ``n_repeats``:
    permutation shuffles; ``nsamples``: Kernel SHAP coalitions per decision; ``q_values``: also
    explain Q(s, pi(s)) of off-policy actor-critics.
    """
    if method not in METHODS:
        raise ConfigError(f"method = {method!r}; expected one of {', '.join(METHODS)}")
    if last is not None and last < 1:
        raise ConfigError(f"last = {last}; expected a positive number of decisions")
    directory = Path(artifact)
    decisions = _replay(directory, start, end)
    baseline, source = _baseline(directory, decisions.layout, decisions.observations)
    options = {
        "last": last, "n_steps": n_steps, "n_repeats": n_repeats, "nsamples": nsamples,
        "seed": seed, "q_values": q_values,
    }  # fmt: skip
    notes: list[str] = []
    explained: list[Explained] = []
    for name, member in _members(decisions.policy).items():
        explained.extend(_explain_member(name, member, decisions, baseline, method, options, notes))
    if not explained:
        raise ArtifactError(f"{directory}: no member of the policy can be explained by {method}")
    return ExplanationReport(
        artifact=str(directory),
        method=method,
        layout=decisions.layout,
        index=decisions.index,
        observations=decisions.observations,
        baseline=baseline,
        baseline_source=source,
        explained=tuple(explained),
        notes=tuple(notes),
    )


# -- HTML -------------------------------------------------------------------------------------
def _bar_chart(labels: list[str], values: list[float], title: str, xlabel: str) -> str:
    """A horizontal bar chart as a base64 PNG <img> (matplotlib's object API, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 0.32 * len(labels) + 1.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(labels))[::-1], values, color="#3b6ea5")
    ax.set_yticks(range(len(labels))[::-1], labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            text = f"{v:.4g}" if isinstance(v, float) else html.escape(_iso(v))
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _render_html(report: ExplanationReport, top: int) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>policy explanation</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style></head><body>",
        f"<h1>Why {html.escape(report.artifact)} acts as it does</h1>",
        f"<p>method: {html.escape(report.method)}; {len(report.index)} decisions, "
        f"{html.escape(_iso(report.index[0]))} .. {html.escape(_iso(report.index[-1]))}; "
        f"baseline: {html.escape(report.baseline_source)}</p>",
    ]
    table = report.global_importance(15)
    unit = "mean |output change|" if report.method == "permutation" else "mean |attribution|"
    features = report.grouped_importance("feature")
    for ex in report.explained:
        mine = table[(table.member == ex.member) & (table.output == ex.output)]
        grouped = features[(features.member == ex.member) & (features.output == ex.output)]
        title = f"{ex.member}: {ex.output}"
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(
            _bar_chart(list(mine.entry), list(mine.importance), "by observation entry", unit)
        )
        parts.append(
            _bar_chart(list(grouped.feature), list(grouped.importance), "by feature", unit)
        )
    last = report.decisions(top, last=1)
    if len(last):
        parts.append("<h2>last decision: top attributions</h2>" + _table(last))
    parts.append("<h2>completeness</h2>" + _table(report.completeness()))
    for note in report.notes:
        parts.append(f"<p>note: {html.escape(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["METHODS", "Explained", "ExplanationReport", "PolicyOutput", "explain_policy"]

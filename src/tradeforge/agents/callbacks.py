"""Training callbacks: periodic validation with best-model checkpoints and early stopping."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from tradeforge.agents.config import EvalConfig
from tradeforge.agents.evaluation import evaluate
from tradeforge.agents.vecenv import save_normalizer, sync_stats

#: Called after each validation with (score, timesteps); returning False stops training.
EvalHook = Callable[[float, int], bool]


def save_checkpoint(model: Any, norm: Any | None, directory: Path, extra: dict[str, Any]) -> None:
    """Weights, frozen normalizer statistics and bookkeeping, enough to resume or deploy."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.zip")
    save_normalizer(norm, directory / "normalizer.json")
    (directory / "state.json").write_text(json.dumps(extra, indent=2), encoding="utf-8")


class ValidationCallback(BaseCallback):
    """Evaluates on the validation env every ``freq`` env steps and once at the end.

    The validation env sits behind a frozen normalizer that receives the training statistics
    before each evaluation (it never updates them itself). An improvement of the score saves a
    checkpoint to ``best_dir``; ``patience`` evaluations without improvement stop training.
    """

    def __init__(
        self,
        eval_env: Any,
        train_norm: Any | None,
        config: EvalConfig,
        freq: int,
        best_dir: Path,
        last_dir: Path | None = None,
        hook: EvalHook | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(verbose=0)
        self.eval_env = eval_env
        self.train_norm = train_norm
        self.config = config
        self.freq = max(1, freq)
        self.best_dir = best_dir
        self.last_dir = last_dir
        self.hook = hook
        state = state or {}
        self.history: list[dict[str, float]] = list(state.get("history", []))
        self.train_curve: list[tuple[int, float]] = [
            (int(x[0]), float(x[1])) for x in state.get("train_curve", [])
        ]
        self.best_score: float = float(state.get("best_score", -math.inf))
        self.bad_evals: int = int(state.get("bad_evals", 0))
        self.stopped_early = False
        self.stopped_by_hook = False
        self._last_eval_step = -1
        self._next_eval = 0

    def state(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "train_curve": self.train_curve,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "bad_evals": self.bad_evals,
            "num_timesteps": int(self.num_timesteps),
        }

    def _on_training_start(self) -> None:
        self._next_eval = self.num_timesteps + self.freq

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        self._next_eval += self.freq
        return self._validate()

    def _on_training_end(self) -> None:
        if self._last_eval_step != self.num_timesteps and not self.stopped_by_hook:
            self._validate(final=True)

    def _validate(self, final: bool = False) -> bool:
        if self.train_norm is not None:
            sync_stats(self.train_norm, self.eval_env)
        metrics = evaluate(
            self.model,
            self.eval_env,
            episodes=self.config.episodes,
            max_steps=self.config.max_steps,
            periods_per_year=self.config.periods_per_year,
        )
        self._last_eval_step = self.num_timesteps
        score = float(metrics[self.config.metric])
        record = {"timesteps": float(self.num_timesteps), "score": score, **metrics}
        self.history.append(record)
        buffer = getattr(self.model, "ep_info_buffer", None)
        if buffer:
            self.train_curve.append(
                (int(self.num_timesteps), float(np.mean([ep["r"] for ep in buffer])))
            )
        if self.logger is not None:
            for key, value in metrics.items():
                self.logger.record(f"validation/{key}", value)
        if score > self.best_score:
            self.best_score = score
            self.bad_evals = 0
            save_checkpoint(self.model, self.train_norm, self.best_dir, {"metrics": record})
        else:
            self.bad_evals += 1
        if self.last_dir is not None:
            save_checkpoint(self.model, self.train_norm, self.last_dir, self.state())
        if self.hook is not None and not self.hook(score, int(self.num_timesteps)):
            self.stopped_by_hook = True
            return False
        patience = self.config.patience
        if (
            not final
            and patience > 0
            and len(self.history) > self.config.min_evals
            and self.bad_evals >= patience
        ):
            self.stopped_early = True
            return False
        return True


__all__ = ["EvalHook", "ValidationCallback", "save_checkpoint"]

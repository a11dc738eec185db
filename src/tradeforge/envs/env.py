"""``TradingEnv``: the Gymnasium environment for one asset or a portfolio of N assets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.envs.config import EnvConfig, as_env_config
from tradeforge.envs.engine import Kernel, TradingCore
from tradeforge.envs.observations import FeaturesLike
from tradeforge.risk.bars import RiskTally

_ALL = np.ones(1, dtype=bool)


class TradingEnv(gym.Env[Any, Any]):
    """Trade the panel's N assets from a window of pipeline features.

    The action (see ``EnvConfig.action``) becomes target weights (``info["weights"]``), sized at
    the decision bar's close, filled at the next bar by ``tradeforge.sim.step`` and marked at its
    close (with ``sim.delay_bars = d`` the step trades the target decided ``d`` steps earlier,
    so each decision fills ``d`` bars later; ``info["position"]`` shows what is held); the
    reward follows ``EnvConfig.reward``. Carry rates use the bars per year of the panel's
    frequency unless ``sim.periods_per_year`` is set. Episodes run over decision bars inside
    ``[start, end)`` after the feature warm-up (``decision_bars``); they end (``terminated``) on
    ruin or the drawdown limit and are truncated at ``episode_length`` or the end of the range.

    ``kernel``: ``"auto"`` (default) runs each step through the compiled one-env kernel when
    numba is installed (else numpy), ``"numba"`` requires it, ``"numpy"`` uses the batched numpy
    path (the reference the kernel is tested equal to). With ``config.risk`` setting an
    order-level check, a stop or a breaker, each step goes through the risk engine
    (``tradeforge.risk.bars.BarRisk``, as in ``run_backtest(..., risk=)``) on the numpy path;
    ``info["risk_state"]`` is its trading state and ``risk_tally`` its counts.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012 (an instance variable in gymnasium)
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
    }

    def __init__(
        self,
        panel: BarPanel,
        features: FeaturesLike,
        config: EnvConfig | Mapping[str, Any] | None = None,
        start: int = 0,
        end: int | None = None,
        render_mode: str | None = None,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SimulationError(
                f"render_mode = {render_mode!r}; expected None, 'ansi' or 'rgb_array'"
            )
        self.config = as_env_config(config)
        self.render_mode = render_mode
        self._core = TradingCore(panel, features, self.config, 1, start, end, kernel)
        self.action_space = self._core.actions.space
        self.observation_space = self._core.observations.space
        self._active = False
        self._history_bar: list[int] = []
        self._history_equity: list[float] = []
        self._history_weights: list[FloatArray] = []

    # -- public helpers -------------------------------------------------------------------------
    @property
    def panel(self) -> BarPanel:
        return self._core.panel

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._core.feature_names

    @property
    def decision_bars(self) -> tuple[int, int]:
        """First and last decision bar (inclusive) this env can use."""
        return self._core.range.first, self._core.range.last

    @property
    def bar(self) -> int:
        """The current decision bar (the bar whose close the current observation ends at)."""
        return int(self._core.t[0])

    @property
    def equity(self) -> float:
        return float(self._core.equity[0])

    @property
    def risk_tally(self) -> RiskTally | None:
        """What the risk engine did this episode (None without ``config.risk`` controls)."""
        gate = self._core.risk[0]
        return None if gate is None else gate.tally

    def action_to_weights(self, action: Any) -> FloatArray:
        """The target weights (N,) that ``action`` would map to now (no state is changed)."""
        out: FloatArray = self._core.actions.to_weights(np.asarray(action), self._core.target)[0]
        return out

    # -- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        core = self._core
        core.reset_rows(_ALL, self.np_random)
        self._active = True
        self._history_bar = [int(core.t[0])]
        self._history_equity = [float(core.equity[0])]
        self._history_weights = [core.weights[0].copy()]
        return self._first(core.observe()), {"bar": int(core.t[0]), "equity": self.equity}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if not self._active:
            raise SimulationError(
                "step() called before reset() or after the episode ended; call reset() first"
            )
        obs, reward, term, trunc, equity, bar, turnover, target, weights = self._core.step_one(
            action
        )
        self._active = not (term or trunc)
        self._history_bar.append(bar)
        self._history_equity.append(equity)
        self._history_weights.append(weights)
        info = {
            "weights": target,
            "position": weights,
            "equity": equity,
            "bar": bar,
            "turnover": turnover,
        }
        gate = self._core.risk[0]
        if gate is not None:  # config.risk runs the risk engine: its state after the step
            info["risk_state"] = gate.state.value
        return obs, reward, term, trunc, info

    def render(self) -> Any:
        from tradeforge.envs.render import render_ansi, render_rgb_array

        if self.render_mode == "ansi":
            return render_ansi(self)
        if self.render_mode == "rgb_array":
            return render_rgb_array(self)
        return None

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _first(obs: Any) -> Any:
        if isinstance(obs, dict):
            return {k: v[0] for k, v in obs.items()}
        return obs[0]

    def history(self) -> dict[str, np.ndarray]:
        """Bars, equity and held weights recorded since the last reset (for rendering/inspection)."""
        return {
            "bar": np.asarray(self._history_bar, dtype=np.int64),
            "equity": np.asarray(self._history_equity),
            "weights": np.asarray(self._history_weights).reshape(-1, self._core.n_assets),
        }


__all__ = ["TradingEnv"]

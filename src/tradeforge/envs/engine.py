"""The batched engine shared by ``TradingEnv`` (B = 1) and ``BatchedTradingVecEnv`` (B = n_envs).

It owns the data (market arrays from ``tradeforge.sim``, the feature window), the interpreters and
the per-row episode state, and calls ``tradeforge.sim.step`` for every piece of accounting: the
envs and the backtester therefore share one simulator. Everything here is vectorized over the
batch axis; there is no per-row Python loop.

With numba installed (``kernel="auto"``), a step instead runs through the compiled
``tradeforge.envs.kernel.env_step`` (which calls ``tradeforge.sim.kernel.account_step``, the
one-account copy of ``sim.step``): the same operations on scalars, tested equal to this numpy
path, without its ~100 numpy calls per step. One row calls it once (``step_one``); a batch calls
``batch_env_step``, which runs it row after row in one compiled loop and writes the next
observations of every row (``step_batch``). The per-row attributes (``t``, ``state``,
``target``, ``equity``, ``rewards.peak``...) are then views of three packed (B, ...) arrays the
kernel updates in place. ``kernel="numpy"`` keeps the vectorized numpy path (the reference).

Time convention: a row at decision bar ``t`` observes features up to and including bar ``t``; its
action becomes target weights sized at close[t], filled at bar t+1 and marked at close[t+1]; the
reward is the equity change between those closes; the row then moves to decision bar ``t + 1``.
With latency (``SimConfig.delay_bars = d``) the step at bar ``t`` trades the target decided at
bar ``t - d`` (``tradeforge.sim.latency``; nothing trades in the first ``d`` steps of an
episode), so the decision of bar ``t`` fills at bar ``t + 1 + d``.

The simulator settings are resolved once per panel: ``sim_config.periods_per_year`` is
``config.sim.periods_for(panel.frequency)`` (explicit, or derived from the data frequency).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import BoolArray, FloatArray, IntArray
from tradeforge.data.panel import BarPanel
from tradeforge.envs.actions import (
    ContinuousActions,
    DiscreteActions,
    WeightsActions,
    make_action_interpreter,
)
from tradeforge.envs.config import EnvConfig
from tradeforge.envs.observations import FeaturesLike, WindowObservations, select_features
from tradeforge.envs.rewards import RewardState
from tradeforge.risk.bars import BarFill, BarRisk, needs_engine
from tradeforge.sim import AccountState, MarketArrays, initial_state
from tradeforge.sim import step as sim_step
from tradeforge.sim.latency import clear_rows, empty_queue, push_target
from tradeforge.sim.step import StepResult

Kernel = Literal["auto", "numba", "numpy"]


# What ``TradingCore.step_one`` returns (a plain tuple: building a NamedTuple costs more than
# the rest of the bookkeeping): observation, reward, terminated, truncated, equity at the close
# of the new decision bar, the new decision bar, turnover (traded notional / equity before the
# step), and copies of the (N,) executed target weights and of the held weights after the fill.
OneStep = tuple[Any, float, bool, bool, float, int, float, FloatArray, FloatArray]


def _check_alignment(panel: BarPanel, features: FeaturesLike) -> None:
    if tuple(features.symbols) != tuple(panel.symbols):
        raise SimulationError(
            f"features.symbols {tuple(features.symbols)} do not match panel.symbols "
            f"{tuple(panel.symbols)}; expected the same symbols in the same order"
        )
    values = np.asarray(features.values)
    if values.ndim != 3 or values.shape[:2] != (panel.n_bars, panel.n_symbols):
        raise SimulationError(
            f"features.values has shape {values.shape}; expected ({panel.n_bars}, "
            f"{panel.n_symbols}, F) to match the panel"
        )
    if len(features.index) != panel.n_bars or not features.index.equals(panel.index):
        raise SimulationError(
            "features.index does not match panel.index; expected features computed on this panel"
        )


class DecisionRange:
    """The decision bars an env may use inside ``[start, end)`` and the checks behind them.

    ``first``: the first decision bar (after the feature warm-up and a full window);
    ``last``: the last decision bar (``end - 2``: its fill needs bar ``end - 1``).
    """

    def __init__(
        self,
        panel: BarPanel,
        values: FloatArray,
        names: tuple[str, ...],
        window: int,
        start: int,
        end: int | None,
    ) -> None:
        n = panel.n_bars
        stop = n if end is None else end
        if not 0 <= start < n:
            raise SimulationError(f"start = {start}; expected 0 <= start < {n} (bars in the panel)")
        if not start < stop <= n:
            raise SimulationError(f"end = {end}; expected start < end <= {n}")
        finite_rows = np.asarray(np.isfinite(values).all(axis=(1, 2)), dtype=bool)
        valid = np.flatnonzero(finite_rows[:stop])
        if valid.size == 0:
            raise SimulationError(
                f"no bar before end = {stop} has every feature finite; expected the feature "
                "warm-up to end inside the range"
            )
        warm = int(valid[0])
        self.first = max(start, warm + window - 1)
        self.last = stop - 2
        if self.first > self.last:
            raise SimulationError(
                f"window = {window} is too long for the data: the feature warm-up ends at bar "
                f"{warm} and the range is [{start}, {stop}); expected at least window + 1 bars "
                "after the warm-up"
            )
        lo = self.first - window + 1
        bad = ~np.isfinite(values[lo:stop])
        if bad.any():
            row, sym, feat = (int(x[0]) for x in np.nonzero(bad))
            bar = lo + row
            raise SimulationError(
                f"feature {names[feat]!r} of {panel.symbols[sym]!r} is NaN at bar {bar} "
                f"({panel.index[bar]}) inside the env range; expected finite features after the "
                "warm-up (fill or drop the gap, or start the env after it)"
            )
        self.start = start
        self.end = stop
        self.warmup = warm

    @property
    def n_decisions(self) -> int:
        return self.last - self.first + 1


def _use_compiled(kernel: str) -> bool:
    """Whether a core runs the compiled kernel (``tradeforge.envs.kernel``) for ``kernel``."""
    if kernel == "numpy":
        return False
    if kernel not in ("auto", "numba"):
        raise SimulationError(f"kernel = {kernel!r}; expected one of 'auto', 'numba', 'numpy'")
    from tradeforge.sim.kernel import NUMBA_AVAILABLE

    if kernel == "numba" and not NUMBA_AVAILABLE:
        raise SimulationError(
            "kernel = 'numba' but numba is not installed; install numba or use kernel = 'auto'"
        )
    return NUMBA_AVAILABLE


class TradingCore:
    """Batched episode state of B rows over one panel (see the module docstring)."""

    def __init__(
        self,
        panel: BarPanel,
        features: FeaturesLike,
        config: EnvConfig,
        n_batch: int,
        start: int = 0,
        end: int | None = None,
        kernel: Kernel = "auto",
    ) -> None:
        if n_batch < 1:
            raise SimulationError(f"n_envs = {n_batch}; expected an integer >= 1")
        _check_alignment(panel, features)
        values, names = select_features(features, config.feature_names)
        self.config = config
        self.sim_config = config.sim.resolved_for(panel.frequency)
        self.panel = panel
        self.feature_names = names
        self.range = DecisionRange(panel, values, names, config.window, start, end)
        length = config.episode_length
        if length is not None and length > self.range.n_decisions:
            raise SimulationError(
                f"episode_length = {length} exceeds the {self.range.n_decisions} decision bars "
                f"available in [{self.range.first}, {self.range.last}]; expected a shorter episode"
            )
        self.market = MarketArrays.for_config(panel, self.sim_config)
        self.n_batch = n_batch
        self.n_assets = panel.n_symbols
        self.actions = make_action_interpreter(self.n_assets, config)
        self.observations = WindowObservations(values, config.window, config.dict_obs)
        self.initial_cash = float(config.sim.initial_cash)
        prices = (self.market.mark, self.market.fill_prices(self.sim_config.fill_price))
        self.rewards = RewardState(config.reward, n_batch, self.initial_cash, prices)
        self.state = initial_state(config.sim, n_batch, self.n_assets)
        shape = (n_batch, self.n_assets)
        self.t: IntArray = np.full(n_batch, self.range.first, dtype=np.int64)
        self.t_stop: IntArray = np.full(n_batch, self.range.last, dtype=np.int64)
        self.steps: IntArray = np.zeros(n_batch, dtype=np.int64)
        self.target: FloatArray = np.zeros(shape)
        self.weights: FloatArray = np.zeros(shape)
        self.basis: FloatArray = np.zeros(shape)
        self.equity: FloatArray = np.full(n_batch, self.initial_cash)
        self.cash_fraction: FloatArray = np.ones(n_batch)
        self.upnl: FloatArray = np.zeros(n_batch)
        self.last_turnover: FloatArray = np.zeros(n_batch)
        # decided targets not yet released to the market (latency), (B, delay_bars, N)
        self.pending: FloatArray = empty_queue(n_batch, self.sim_config.delay_bars, self.n_assets)
        self._ruin = config.ruin_fraction * self.initial_cash
        self._max_dd = config.max_drawdown
        self._kernel: Any = None  # the compiled one-row step (``envs.kernel.env_step``)
        # the risk engine per row (``tradeforge.risk.bars.BarRisk``) when ``config.risk`` sets
        # a check, stop or breaker; its steps then take the numpy path
        self.risk_config = config.risk if needs_engine(config.risk) else None
        self.risk: list[BarRisk | None] = [None] * n_batch
        if _use_compiled(kernel) and self.risk_config is None:
            self._setup_compiled()

    @property
    def compiled(self) -> bool:
        """True when steps run through the compiled kernel (``tradeforge.envs.kernel``)."""
        return self._kernel is not None

    def _setup_compiled(self) -> None:
        """Pack the state of the B rows into three arrays shared with the kernel; the attributes
        the numpy path uses (``state``, ``target``, ``equity``, ``rewards.peak``...) become
        views."""
        from tradeforge.envs import kernel as k
        from tradeforge.sim.kernel import pack_sim_params, stack_for

        sim, market, n, b = self.sim_config, self.market, self.n_assets, self.n_batch
        self._stack = stack_for(market, sim.fill_price)
        ints = np.zeros((b, k.N_INTS), dtype=np.int64)
        ints[:, k.I_T], ints[:, k.I_STOP] = self.t, self.t_stop
        acct = np.zeros((b, k.N_ACCT))
        acct[:, [k.A_CASH, k.A_EQUITY, k.A_PEAK]] = self.initial_cash
        acct[:, k.A_CASH_FRACTION] = 1.0
        assets = np.zeros((b, k.N_ASSET_ROWS, n))
        self._ints, self._acct, self._assets = ints, acct, assets
        self._bind_views()

        cfg, reward = self.config, self.config.reward
        params = np.zeros(k.N_PARAMS)
        sim_params = pack_sim_params(sim, market.frequency)
        params[: len(sim_params)] = sim_params
        interpreter = self.actions
        kind, size = k.KIND_TARGET, n
        # exact types only: a subclass may map actions differently (it then runs in Python)
        if type(interpreter) is DiscreteActions:
            kind = k.KIND_POSITION if interpreter.mode == "position" else k.KIND_TRADE
            params[k.E_N_LEVELS] = len(interpreter.levels)
            params[k.E_UNIT] = interpreter.unit
            params[k.E_LOW_LEVEL] = interpreter.low_level
        elif type(interpreter) is ContinuousActions:
            kind = k.KIND_CONTINUOUS
        elif type(interpreter) is WeightsActions:
            size = interpreter.size
            if interpreter.transform == "softmax":
                kind = k.KIND_SOFTMAX
                params[k.E_SOFTMAX_SCALE] = interpreter.scale
            else:
                kind = k.KIND_L1_BALL if interpreter.allow_short else k.KIND_SIMPLEX
        params[k.E_KIND] = kind
        params[k.E_N_ASSETS] = n
        params[k.E_PNL], params[k.E_LOG] = reward.pnl, reward.log_return
        params[k.E_DSR] = reward.dsr
        params[k.E_ETA], params[k.E_DOWNSIDE] = reward.dsr_eta, reward.downside
        params[k.E_DRAWDOWN], params[k.E_TURNOVER] = reward.drawdown, reward.turnover
        params[k.E_SCALE], params[k.E_INITIAL_CASH] = reward.scale, self.initial_cash
        params[k.E_RUIN] = self._ruin
        params[k.E_HAS_MAX_DD] = 0.0 if cfg.max_drawdown is None else 1.0
        params[k.E_MAX_DD] = 0.0 if cfg.max_drawdown is None else cfg.max_drawdown
        params[k.E_WINDOW] = cfg.window
        padded = self.observations._padded
        params[k.E_OBS] = 0.0 if padded is None else 1.0
        if padded is None:
            padded = np.zeros((1, 1), dtype=np.float32)
            padded.setflags(write=False)
        self._params, self._padded = params, padded
        self._params_target = params.copy()
        self._params_target[k.E_KIND] = k.KIND_TARGET
        self._kernel_obs = bool(params[k.E_OBS] > 0.0)
        self._python_actions = kind == k.KIND_TARGET  # an interpreter the kernel does not know
        self._interpreter = interpreter  # the interpreter the kind was read from
        self._action_shape = (size,)
        self._obs_size = self.observations.size
        self._scratch = np.zeros((b, n))  # the kernel maps every action here first
        self._one = (  # row 0's action and outputs for the one-row calls (``step_one``)
            np.zeros((1, size)),
            np.zeros(1),
            np.zeros(1, dtype=bool),
            np.zeros(1, dtype=bool),
        )
        self._slots = (k.I_T, k.A_EQUITY, k.A_TURNOVER)
        self._kernel = k.batch_env_step

    # -- episodes -------------------------------------------------------------------------------
    def reset_rows(self, rows: BoolArray, rng: np.random.Generator) -> None:
        """Start new episodes in the rows of the boolean mask (draws starts from ``rng``)."""
        count = int(rows.sum())
        if count == 0:
            return
        first, last = self.range.first, self.range.last
        length = self.config.episode_length
        span_end = last if length is None else last - length + 1
        if self.config.random_start:
            starts = rng.integers(first, span_end + 1, size=count)
        else:
            starts = np.full(count, first, dtype=np.int64)
        stops = np.full(count, last) if length is None else starts + (length - 1)
        self.t[rows] = starts
        self.t_stop[rows] = stops
        self.steps[rows] = 0
        self.state.cash[rows] = self.initial_cash
        self.state.shares[rows] = 0.0
        for arr in (self.target, self.weights, self.basis):
            arr[rows] = 0.0
        self.equity[rows] = self.initial_cash
        self.cash_fraction[rows] = 1.0
        self.upnl[rows] = 0.0
        self.last_turnover[rows] = 0.0
        clear_rows(self.pending, rows)
        self.rewards.reset_rows(rows)
        if self.risk_config is not None:
            for b in np.flatnonzero(rows):
                self.risk[b] = BarRisk(self.risk_config, self.panel.symbols,
                                       initial_cash=self.initial_cash,
                                       shortable=self.sim_config.allow_short,
                                       start=self.panel.index[self.t[b]].to_pydatetime())  # fmt: skip

    def observe(self, rows: BoolArray | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """Observations of every row (or of the rows in the mask)."""
        if rows is None:
            return self.observations.observe(self.t, self.weights, self.cash_fraction, self.upnl)
        return self.observations.observe(
            self.t[rows], self.weights[rows], self.cash_fraction[rows], self.upnl[rows]
        )

    def _bind_views(self) -> None:
        """Point the per-row attributes at the packed arrays (after packing or unpickling)."""
        from tradeforge.envs import kernel as k

        ints, acct, assets = self._ints, self._acct, self._assets
        self.t, self.t_stop, self.steps = ints[:, k.I_T], ints[:, k.I_STOP], ints[:, k.I_STEPS]
        self.state = AccountState(cash=acct[:, k.A_CASH], shares=assets[:, k.S_SHARES])
        self.target = assets[:, k.S_TARGET]
        self.weights = assets[:, k.S_WEIGHTS]
        self.basis = assets[:, k.S_BASIS]
        self.equity = acct[:, k.A_EQUITY]
        self.cash_fraction = acct[:, k.A_CASH_FRACTION]
        self.upnl = acct[:, k.A_UPNL]
        self.last_turnover = acct[:, k.A_TURNOVER]
        self.rewards.mean = acct[:, k.A_MEAN]
        self.rewards.second = acct[:, k.A_SECOND]
        self.rewards.peak = acct[:, k.A_PEAK]
        self._target_row = assets[0, k.S_TARGET]
        self._weights_row = assets[0, k.S_WEIGHTS]

    def __getstate__(self) -> dict[str, Any]:
        # Copies (deepcopy, pickle) do not keep views aliased: the packed arrays hold the state,
        # the views are rebound on load, and the compiled function is looked up again.
        state = self.__dict__.copy()
        if state.get("_kernel") is not None:
            state["_kernel"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._kernel is not None:
            from tradeforge.envs.kernel import batch_env_step

            self._kernel = batch_env_step
            self._bind_views()
            if self._padded.flags.writeable:  # keep the one compiled signature (read-only)
                self._padded.setflags(write=False)

    # -- stepping -------------------------------------------------------------------------------
    def step_one(self, action: Any) -> OneStep:
        """One step of a one-row core: observation, reward, flags and the info values.

        Runs the compiled kernel when ``compiled``, else the batched numpy path.
        """
        if self._kernel is None:
            reward, terminated, truncated = self.step(np.asarray(action))
            return (
                self._first_observation(),
                float(reward[0]),
                bool(terminated[0]),
                bool(truncated[0]),
                float(self.equity[0]),
                int(self.t[0]),
                float(self.last_turnover[0]),
                self.target[0].copy(),
                self.weights[0].copy(),
            )
        buf, reward, terminated, truncated = self._one
        params = self._params
        excess = self.rewards.has_excess  # benchmark-relative terms: in Python after the kernel
        t0, prev_equity = (self.t.copy(), self.equity.copy()) if excess else (self.t, self.equity)
        kind = type(action)
        if self._python_actions or self.actions is not self._interpreter:
            params = self._map_in_python(action)  # e.g. agents.safe's projecting wrapper
        elif kind is np.ndarray:
            if action.dtype.kind not in "iuf":
                params = self._map_in_python(action)
            elif action.shape == self._action_shape or action.size == buf.size == 1:
                buf[0] = action.reshape(-1)
            else:
                params = self._map_in_python(action)
        elif buf.size == 1 and (
            kind is int or kind is float or isinstance(action, (np.integer, np.floating))
        ):
            buf[0, 0] = action
        else:
            params = self._map_in_python(action)
        obs = np.empty((1, self._obs_size), dtype=np.float32)
        code, _row, equity = self._kernel(
            self._ints,
            buf,
            self._stack,
            self._assets,
            self._acct,
            params,
            self._padded,
            obs,
            self.pending,
            self._scratch,
            reward,
            terminated,
            truncated,
        )
        if code != 0:
            self._raise_step_error(code, action, equity)
        if excess:
            reward += self.rewards.excess(t0, prev_equity, self.equity)
        i_t, a_equity, a_turnover = self._slots
        equity_row = self._acct[0]
        return (
            obs[0] if self._kernel_obs else self._first_observation(),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            float(equity_row[a_equity]),
            int(self._ints[0, i_t]),
            float(equity_row[a_turnover]),
            self._target_row.copy(),
            self._weights_row.copy(),
        )

    def _first_observation(self) -> Any:
        obs = self.observe()
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]

    def _map_in_python(self, action: Any) -> FloatArray:
        """Map ``action`` with the (possibly replaced) interpreter; the kernel params to use."""
        target = self.actions.to_weights(np.asarray(action), self.target)
        self.target[:] = target
        params: FloatArray = self._params_target
        return params

    def _raise_step_error(self, code: int, action: Any, equity: float) -> None:
        from tradeforge.envs.kernel import BAD_ACTION

        if code == BAD_ACTION:
            self.actions.to_weights(np.asarray(action), self.target)  # raises the specific error
            raise SimulationError(f"action {action!r} is outside the action space")
        t1 = int(self.t[0]) + 1
        raise SimulationError(
            f"equity is {equity} after the fill at bar {t1} (row 0); "
            "expected a finite value: a held asset has no known price"
        )

    def step_batch(
        self, actions: Any
    ) -> tuple[np.ndarray | None, FloatArray, BoolArray, BoolArray]:
        """One compiled step of every row (``compiled`` only): ``(observations, reward,
        terminated, truncated)``. The observations (B, size) of the new decision bars are
        written by the kernel (a new array each step); None when the kernel does not build them
        (dict observations, or windows above the padded-memory budget: call ``observe()``).
        """
        from tradeforge.envs import kernel as k

        if self._kernel is None:
            raise SimulationError("step_batch needs the compiled kernel (kernel = 'auto'/'numba')")
        n_batch = self.n_batch
        params = self._params
        acts = actions
        mapped_in_kernel = not self._python_actions and self.actions is self._interpreter
        size = self._action_shape[0]
        if mapped_in_kernel:
            if type(acts) is not np.ndarray or acts.dtype.kind not in "iuf":
                mapped_in_kernel = False
            elif acts.shape != (n_batch, size):
                if acts.ndim == 1 and acts.size == n_batch * size:
                    acts = acts.reshape(n_batch, size)
                else:
                    mapped_in_kernel = False
        if mapped_in_kernel:
            acts = np.ascontiguousarray(acts, dtype=np.float64)
        else:  # e.g. agents.safe's projecting wrapper: map in Python, step the targets
            self.target[:] = self.actions.to_weights(np.asarray(actions), self.target)
            params = self._params_target
            acts = np.zeros((n_batch, size))
        obs = (
            np.empty((n_batch, self._obs_size), dtype=np.float32)
            if self._kernel_obs
            else np.empty((n_batch, 1), dtype=np.float32)
        )
        reward = np.empty(n_batch)
        terminated = np.empty(n_batch, dtype=bool)
        truncated = np.empty(n_batch, dtype=bool)
        excess = self.rewards.has_excess  # benchmark-relative terms: in Python after the kernel
        t0, prev_equity = (self.t.copy(), self.equity.copy()) if excess else (self.t, self.equity)
        code, row, equity = k.batch_env_step(
            self._ints,
            acts,
            self._stack,
            self._assets,
            self._acct,
            params,
            self._padded,
            obs,
            self.pending,
            self._scratch,
            reward,
            terminated,
            truncated,
        )
        if code == k.BAD_ACTION:
            self.actions.to_weights(np.asarray(actions), self.target)  # the specific error
            raise SimulationError(
                f"action {actions[row]!r} of row {row} is outside the action space"
            )
        if code != k.OK:
            t1 = int(self.t[row]) + 1
            raise SimulationError(
                f"equity is {equity} after the fill at bar {t1} (row {row}); "
                "expected a finite value: a held asset has no known price"
            )
        if excess:
            reward += self.rewards.excess(t0, prev_equity, self.equity)
        return (obs if self._kernel_obs else None), reward, terminated, truncated

    def step(self, actions: np.ndarray) -> tuple[FloatArray, BoolArray, BoolArray]:
        """Apply one batch of actions; returns (reward, terminated, truncated), each (B,)."""
        if self._kernel is not None:
            if self.n_batch == 1:
                one = self.step_one(actions)
                return np.array([one[1]]), np.array([one[2]]), np.array([one[3]])
            _, reward, terminated, truncated = self.step_batch(actions)
            return reward, terminated, truncated
        target = self.actions.to_weights(actions, self.target)
        t = self.t
        old_shares = self.state.shares
        released = push_target(self.pending, target)
        if self.risk_config is not None:
            released = self._risk_targets(released, t)
        state, res = sim_step(self.state, released, self.market, t, self.sim_config)
        if self.risk_config is not None:
            self._risk_fills(state, res, t)
        self.state = state
        self.target = target
        new_shares = state.shares
        traded = res.traded_shares
        t1 = t + 1
        fill = np.where(traded != 0.0, res.fill_price, 0.0)
        traded_value = np.abs(traded * fill).sum(axis=1)
        self._update_basis(old_shares, new_shares, fill)
        equity = res.equity
        if not np.isfinite(equity).all():
            row = int(np.flatnonzero(~np.isfinite(equity))[0])
            raise SimulationError(
                f"equity is {equity[row]} after the fill at bar {int(t1[row])} (row {row}); "
                "expected a finite value: a held asset has no known price"
            )
        reward = self.rewards.step(res.prev_equity, equity, traded_value, t)
        mark = self.market.mark[t1]
        open_pnl = np.where(new_shares != 0.0, new_shares * (mark - self.basis), 0.0).sum(axis=1)
        safe_equity = np.where(equity > 0.0, equity, 1.0)
        self.upnl = open_pnl / safe_equity
        self.cash_fraction = state.cash / safe_equity
        self.weights = res.weights
        self.equity = equity
        self.last_turnover = traded_value / np.maximum(res.prev_equity, 1e-12)
        self.t = t1
        self.steps += 1
        terminated = equity <= self._ruin
        if self._max_dd is not None:
            terminated |= self.rewards.drawdown(equity) >= self._max_dd
        truncated = (t1 > self.t_stop) & ~terminated
        return reward, terminated, truncated

    # -- the risk engine (config.risk) -----------------------------------------------------------
    def _gate(self, b: int) -> BarRisk:
        gate = self.risk[b]
        if gate is None:
            raise SimulationError(f"row {b} has no risk engine; expected reset() before step()")
        return gate

    def _risk_targets(self, released: FloatArray, t: IntArray) -> FloatArray:
        """Each row's targets through its risk engine (``BarRisk.decide``)."""
        out = np.array(released, dtype=np.float64, copy=True)
        cash, shares = self.state.cash, self.state.shares
        for b in range(self.n_batch):
            tb = int(t[b])
            before = AccountState(cash=cash[b : b + 1].copy(), shares=shares[b : b + 1].copy())

            def simulate(row: FloatArray, tb: int = tb, before: AccountState = before) -> BarFill:
                after, res = sim_step(before, row[None, :], self.market, tb, self.sim_config)
                return _bar_fill(after, res, 0)

            out[b] = self._gate(b).decide(
                self.panel.index[tb].to_pydatetime(), out[b], before.shares[0],
                float(before.cash[0]), self.market.mark[tb], simulate,
            )  # fmt: skip
        return out

    def _risk_fills(self, state: AccountState, res: StepResult, t: IntArray) -> None:
        for b in range(self.n_batch):
            when = self.panel.index[int(t[b]) + 1].to_pydatetime()
            self._gate(b).filled(when, _bar_fill(state, res, b))

    def _update_basis(self, old: FloatArray, new: FloatArray, fill: FloatArray) -> None:
        """Average entry price per position: adds average in, reductions keep it, flips reset it."""
        same_side = old * new > 0.0
        grows = same_side & (np.abs(new) > np.abs(old))
        safe_new = np.where(new != 0.0, new, 1.0)
        averaged = (old * self.basis + (new - old) * fill) / safe_new
        basis = np.where(grows, averaged, np.where(same_side, self.basis, fill))
        self.basis = np.where(new != 0.0, basis, 0.0)


def _bar_fill(state: AccountState, res: StepResult, b: int) -> BarFill:
    fees = res.commission[b] + res.spread[b] + res.slippage[b] + res.impact[b]
    return BarFill(
        res.traded_shares[b], res.fill_price[b], fees, float(state.cash[b]), state.shares[b]
    )


__all__ = ["DecisionRange", "Kernel", "OneStep", "TradingCore"]

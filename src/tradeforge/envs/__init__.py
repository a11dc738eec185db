"""Gymnasium trading environments built on the one simulator (``tradeforge.sim``).

* :class:`TradingEnv`: one asset or a portfolio; actions, observations and rewards are chosen by
  :class:`EnvConfig` (interpreters in ``actions``/``observations``, rewards in ``rewards``).
* :class:`BatchedTradingVecEnv`: many episodes stepped as one numpy batch behind SB3's VecEnv
  (loaded on first use, PEP 562, so ``import tradeforge.envs`` does not import torch).
* :func:`time_splits`: train/validation/test ranges by time with an embargo.

Importing this package registers the env ids with Gymnasium (the Gymnasium convention: after
``import tradeforge.envs``, ``gymnasium.make("tradeforge/SingleAsset-v0")`` works). Only the
ids and the entry points' dotted names go into ``gymnasium.registry``: no data is loaded until
an env is made. :func:`register_envs` does the same explicitly and is idempotent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeforge.envs.actions import (
    ActionInterpreter,
    ContinuousActions,
    DiscreteActions,
    TiltActions,
    WeightsActions,
    make_action_interpreter,
)
from tradeforge.envs.config import EnvConfig, RewardConfig, TiltConfig
from tradeforge.envs.env import TradingEnv
from tradeforge.envs.observations import FeaturesLike, WindowObservations
from tradeforge.envs.registration import register_envs
from tradeforge.envs.splits import Split, Splits, time_splits

if TYPE_CHECKING:
    from tradeforge.envs.vec_env import BatchedTradingVecEnv

register_envs()


def __getattr__(name: str) -> Any:
    if name == "BatchedTradingVecEnv":
        from tradeforge.envs.vec_env import BatchedTradingVecEnv

        return BatchedTradingVecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ActionInterpreter",
    "BatchedTradingVecEnv",
    "ContinuousActions",
    "DiscreteActions",
    "EnvConfig",
    "FeaturesLike",
    "RewardConfig",
    "Split",
    "Splits",
    "TiltActions",
    "TiltConfig",
    "TradingEnv",
    "WeightsActions",
    "WindowObservations",
    "make_action_interpreter",
    "register_envs",
    "time_splits",
]

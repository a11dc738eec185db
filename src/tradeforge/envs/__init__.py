"""Gymnasium trading environments built on the one simulator (``tradeforge.sim``).

* :class:`TradingEnv`: one asset or a portfolio; actions, observations and rewards are chosen by
  :class:`EnvConfig` (interpreters in ``actions``/``observations``, rewards in ``rewards``).
* :class:`BatchedTradingVecEnv`: many episodes stepped as one numpy batch behind SB3's VecEnv.
* :func:`time_splits`: train/validation/test ranges by time with an embargo.
* :func:`register_envs`: registers ``tradeforge/SingleAsset-v0``, ``tradeforge/Portfolio-v0``, ...
"""

from tradeforge.envs.actions import (
    ActionInterpreter,
    ContinuousActions,
    DiscreteActions,
    WeightsActions,
    make_action_interpreter,
)
from tradeforge.envs.config import EnvConfig, RewardConfig
from tradeforge.envs.env import TradingEnv
from tradeforge.envs.observations import FeaturesLike, WindowObservations
from tradeforge.envs.registration import register_envs
from tradeforge.envs.splits import Split, Splits, time_splits
from tradeforge.envs.vec_env import BatchedTradingVecEnv

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
    "TradingEnv",
    "WeightsActions",
    "WindowObservations",
    "make_action_interpreter",
    "register_envs",
    "time_splits",
]

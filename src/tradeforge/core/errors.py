"""The tradeforge error tree.

Every error raised on purpose by tradeforge derives from :class:`TradeforgeError`, and every
message names the bad field, the bad value and what was expected::

    TradeforgeError
    ├── ConfigError              a config file or object is invalid (names the key path)
    ├── DataError                market data problems
    │   ├── SourceError          a vendor or file source failed (HTTP error, bad payload, no key)
    │   ├── UnknownSymbolError   a symbol or dataset is not known
    │   ├── DataValidationError  a validation rule rejected the data (names symbol, time, field)
    │   └── StoreError           the Parquet/DuckDB store cannot read or write
    ├── FeatureError             unknown indicator, bad parameters, pipeline misuse
    │   └── PipelineMismatchError  a policy used with a feature pipeline it was not trained on
    ├── SimulationError          impossible simulator or environment settings, bad actions
    ├── RiskError                risk limits used with inputs they cannot apply to
    ├── AgentError               unknown algorithm, bad hyperparameters, incompatible spaces
    │   └── ArtifactError        a corrupted or mismatched policy artifact
    └── BacktestError            bad weights, windows or baseline settings
"""

from __future__ import annotations


class TradeforgeError(Exception):
    """Root of every error tradeforge raises on purpose."""


class ConfigError(TradeforgeError, ValueError):
    """A configuration is invalid; the message names the key path."""


class DataError(TradeforgeError):
    """Market data cannot be obtained, read or trusted."""


class SourceError(DataError):
    """A data source (vendor API or file dump) failed or returned something unusable."""


class UnknownSymbolError(DataError, KeyError):
    """A symbol or dataset name is not known."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DataValidationError(DataError, ValueError):
    """A validation rule rejected the data."""


class StoreError(DataError):
    """The data store cannot read or write."""


class FeatureError(TradeforgeError, ValueError):
    """A feature spec or pipeline is invalid or misused."""


class PipelineMismatchError(FeatureError):
    """A policy is used with a feature pipeline other than the one it was trained with."""


class SimulationError(TradeforgeError, ValueError):
    """Impossible simulator or environment settings, or an action outside the space."""


class AgentError(TradeforgeError, ValueError):
    """An agent cannot be built or trained as configured."""


class ArtifactError(AgentError):
    """A policy artifact is corrupted, incomplete or mismatched."""


class BacktestError(TradeforgeError, ValueError):
    """A backtest input (weights, windows, baselines) is invalid."""


class RiskError(TradeforgeError, ValueError):
    """Risk limits or checks used with inputs they cannot apply to (shapes, non-finite weights)."""

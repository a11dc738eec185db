"""tradeforge: deep reinforcement learning trading, from research to live, on one machine model."""

__all__ = ["__version__"]

__version__ = "0.1.0"

"""Broker adapters behind ``tradeforge.execution.broker.Broker`` (one module per venue)."""

from tradeforge.execution.brokers.simulated import SimulatedBroker

__all__ = ["SimulatedBroker"]

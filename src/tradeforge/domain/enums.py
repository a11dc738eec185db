"""Enumerations shared by the domain model."""

from __future__ import annotations

from enum import StrEnum


class AssetClass(StrEnum):
    EQUITY = "equity"
    INDEX = "index"
    FX = "fx"
    CRYPTO = "crypto"
    COMMODITY = "commodity"
    MACRO = "macro"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

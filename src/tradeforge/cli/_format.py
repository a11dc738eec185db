"""Numbers in terminal tables: undefined values print as ``-`` with one footnote, never ``nan``."""

from __future__ import annotations

from typing import Any

from tradeforge.backtest.report.html import UNDEFINED, UNDEFINED_NOTE, is_undefined


def num(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``-`` when it is None, NaN or infinite."""
    return UNDEFINED if is_undefined(value) else format(value, spec)


def footnote(cells: list[str]) -> str | None:
    """The footnote to print under a table when any of its ``cells`` was undefined."""
    return UNDEFINED_NOTE if UNDEFINED in cells else None


__all__ = ["footnote", "num"]

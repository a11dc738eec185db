"""``RiskConfig``: every limit of the risk engine, as the experiment YAML ``risk:`` section
carries it, and run-time tightening (only tighter, never looser).

The keys of :class:`~tradeforge.risk.limits.RiskLimits` (``max_position``, ``max_gross``,
``max_turnover``, ``long_only``) keep their meaning: fractions of equity on target weights,
applied by the projection (:meth:`RiskConfig.limits`); the pre-trade checks apply
``max_position``, ``max_gross`` and ``long_only`` to each order too (``max_turnover`` is a
per-decision limit on targets, so only the projection applies it). Every other key is new and
optional; ``None`` disables a limit.

Each field says which way is tighter (its ``tighten`` rule):

* ``lower``: a smaller number is tighter; ``None`` (no limit) is the loosest;
* ``higher``: a larger number is tighter (``duplicate_window_s``, ``buying_power_buffer_bps``);
  ``None`` is the loosest;
* ``true``: ``True`` is tighter (``long_only``); ``superset``: more symbols is tighter
  (``restricted_symbols``); ``action``: ``halted`` is tighter than ``reducing``;
* ``fixed``: cannot change at run time (``flatten_on_kill``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from tradeforge.core.config import FrozenConfig, format_validation_error
from tradeforge.core.errors import RiskError
from tradeforge.domain import symbol_of
from tradeforge.risk.limits import RiskLimits

BreakerAction = Literal["reducing", "halted"]
_ACTION_RANK = {"reducing": 1, "halted": 2}


def _rule(rule: str) -> Any:
    return {"tighten": rule}


class RiskConfig(FrozenConfig):
    """The limits of the risk engine (see the module docstring and ``docs/risk.md``)."""

    # -- target weights (RiskLimits keys: fractions of equity) -------------------------------
    max_position: float | None = Field(default=None, gt=0.0, json_schema_extra=_rule("lower"))
    max_gross: float | None = Field(default=None, gt=0.0, json_schema_extra=_rule("lower"))
    max_turnover: float | None = Field(default=None, gt=0.0, json_schema_extra=_rule("lower"))
    long_only: bool = Field(default=False, json_schema_extra=_rule("true"))
    # -- pre-trade checks ------------------------------------------------------------------
    max_net: float | None = Field(default=None, ge=0.0, json_schema_extra=_rule("lower"))
    max_order_quantity: Decimal | None = Field(
        default=None, gt=0, allow_inf_nan=False, json_schema_extra=_rule("lower")
    )
    max_order_notional: Decimal | None = Field(
        default=None, gt=0, allow_inf_nan=False, json_schema_extra=_rule("lower")
    )
    max_position_notional: Decimal | None = Field(
        default=None, gt=0, allow_inf_nan=False, json_schema_extra=_rule("lower")
    )
    price_collar_bps: float | None = Field(default=None, gt=0.0, json_schema_extra=_rule("lower"))
    max_orders_per_second: int | None = Field(default=None, gt=0, json_schema_extra=_rule("lower"))
    max_orders_per_minute: int | None = Field(default=None, gt=0, json_schema_extra=_rule("lower"))
    duplicate_window_s: float | None = Field(
        default=None, gt=0.0, json_schema_extra=_rule("higher")
    )
    restricted_symbols: frozenset[str] = Field(
        default=frozenset(), json_schema_extra=_rule("superset")
    )
    max_open_orders: int | None = Field(default=None, gt=0, json_schema_extra=_rule("lower"))
    buying_power_buffer_bps: float = Field(default=0.0, ge=0.0, json_schema_extra=_rule("higher"))
    # -- portfolio controls (fractions: 0.05 = 5 %) ----------------------------------------
    stop_loss: float | None = Field(default=None, gt=0.0, lt=1.0, json_schema_extra=_rule("lower"))
    trailing_stop: float | None = Field(
        default=None, gt=0.0, lt=1.0, json_schema_extra=_rule("lower")
    )
    max_daily_loss: float | None = Field(
        default=None, gt=0.0, lt=1.0, json_schema_extra=_rule("lower")
    )
    max_drawdown: float | None = Field(
        default=None, gt=0.0, lt=1.0, json_schema_extra=_rule("lower")
    )
    max_loss_streak: int | None = Field(default=None, gt=0, json_schema_extra=_rule("lower"))
    daily_loss_action: BreakerAction = Field(default="halted", json_schema_extra=_rule("action"))
    drawdown_action: BreakerAction = Field(default="halted", json_schema_extra=_rule("action"))
    loss_streak_action: BreakerAction = Field(default="reducing", json_schema_extra=_rule("action"))
    flatten_on_kill: bool = Field(default=False, json_schema_extra=_rule("fixed"))

    @field_validator("restricted_symbols", mode="after")
    @classmethod
    def _symbols(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(symbol_of(s) for s in value)

    def limits(self) -> RiskLimits:
        """The target-weight limits (:class:`RiskLimits`) this config carries."""
        return RiskLimits(
            max_position=self.max_position, max_gross=self.max_gross,
            max_turnover=self.max_turnover, long_only=self.long_only,
        )  # fmt: skip

    def tighten(self, **changes: Any) -> RiskConfig:
        """A copy with ``changes`` applied, each at least as tight as the current value.

        Raises :class:`RiskError` naming the field, both values and the rule when a change
        would loosen a limit (or change a ``fixed`` one), and for unknown fields.
        """
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise RiskError(
                f"tighten: unknown field(s) {unknown}; expected RiskConfig fields "
                f"({', '.join(sorted(type(self).model_fields))})"
            )
        try:
            new = type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise RiskError(format_validation_error(exc, "tighten", type(self))) from None
        for name in changes:
            old_value, new_value = getattr(self, name), getattr(new, name)
            if not is_tighter_or_equal(name, old_value, new_value):
                rule = tighten_rule(name)
                raise RiskError(
                    f"tighten {name}: {_show(old_value)} -> {_show(new_value)} would loosen the "
                    f"limit; expected a value at least as tight (rule: {rule})"
                )
        return new


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return str(sorted(value))
    return str(value) if isinstance(value, Decimal) else repr(value)


def tighten_rule(name: str) -> str:
    """The ``tighten`` rule of a :class:`RiskConfig` field."""
    extra = RiskConfig.model_fields[name].json_schema_extra
    if not isinstance(extra, dict) or not isinstance(extra.get("tighten"), str):
        raise RiskError(f"RiskConfig.{name} has no tighten rule")  # pragma: no cover
    return str(extra["tighten"])


def is_tighter_or_equal(name: str, old: Any, new: Any) -> bool:
    """True when ``new`` is at least as tight as ``old`` for the field ``name``."""
    rule = tighten_rule(name)
    if rule == "fixed":
        return bool(new == old)
    if rule == "true":
        return bool(new or not old)
    if rule == "superset":
        return bool(frozenset(new) >= frozenset(old))
    if rule == "action":
        return _ACTION_RANK[new] >= _ACTION_RANK[old]
    if old is None:
        return True
    if new is None:
        return False
    return bool(new <= old) if rule == "lower" else bool(new >= old)


__all__ = ["BreakerAction", "RiskConfig", "is_tighter_or_equal", "tighten_rule"]

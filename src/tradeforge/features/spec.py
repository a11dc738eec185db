"""Declarative feature specs (the ``features:`` section of an experiment YAML) and name parsing."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import FeatureError
from tradeforge.features.registry import REGISTRY, Param, ParamValue

MACRO_SERIES: tuple[str, ...] = ("VIX", "WTI")
ScalerKind = Literal["none", "zscore", "robust", "rank"]


class IndicatorSpec(FrozenConfig):
    """One indicator: a registered ``name`` and its ``params`` (missing ones take defaults)."""

    name: str
    params: dict[str, int | float | str] = Field(default_factory=dict)

    def resolved_params(self, where: str = "indicator") -> dict[str, ParamValue]:
        """Parameters with defaults filled in and checked; raises :class:`FeatureError`."""
        if self.name not in REGISTRY:
            raise FeatureError(
                f"{where}.name = {self.name!r}: unknown indicator; allowed: "
                f"{', '.join(sorted(REGISTRY))}"
            )
        declared = REGISTRY[self.name].params
        allowed = [p.name for p in declared]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise FeatureError(
                f"{where}.params: unknown parameter(s) {unknown} for {self.name!r}; "
                f"allowed: {allowed or 'none'}"
            )
        return {
            p.name: _check_param(p, self.params.get(p.name, p.default), where, self.name)
            for p in declared
        }

    def column(self) -> str:
        """The column name, ``<name>_<params>``, e.g. ``macd_hist_12_26_9``."""
        values = self.resolved_params().values()
        return "_".join([self.name, *(_format(v) for v in values)])


def _check_param(p: Param, value: Any, where: str, name: str) -> ParamValue:
    key = f"{where}.params.{p.name}"
    if value is None:
        raise FeatureError(f"{key}: {name!r} needs parameter {p.name!r} (a feature name)")
    if p.kind is str:
        if not isinstance(value, str):
            raise FeatureError(f"{key} = {value!r}: expected a feature name such as 'ret_20'")
        parse_feature_name(value)  # must itself be valid
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeatureError(
            f"{key} = {value!r}: expected {'an integer' if p.kind is int else 'a number'}"
        )
    if p.kind is int and float(value) != int(value):
        raise FeatureError(f"{key} = {value!r}: expected an integer")
    number = int(value) if p.kind is int else float(value)
    if number < p.minimum or (p.kind is float and number <= 0 and p.minimum == 0):
        bound = f">= {p.minimum:g}" if p.kind is int else f"> {p.minimum:g}"
        raise FeatureError(f"{key} = {value!r}: expected a value {bound}")
    return number


def _format(value: ParamValue) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def parse_feature_name(text: str) -> IndicatorSpec:
    """``"rsi_14"`` -> ``IndicatorSpec(name="rsi", params={"n": 14})`` (bare names take defaults)."""
    for name in sorted(REGISTRY, key=len, reverse=True):
        if text == name:
            return IndicatorSpec(name=name)
        if not text.startswith(name + "_"):
            continue
        rest = text[len(name) + 1 :]
        declared = REGISTRY[name].params
        if len(declared) == 1 and declared[0].kind is str:
            return IndicatorSpec(name=name, params={declared[0].name: rest})
        parts = rest.split("_")
        if len(parts) != len(declared):
            continue
        try:
            params: dict[str, int | float | str] = {
                p.name: (int(v) if p.kind is int else float(v))
                for p, v in zip(declared, parts, strict=True)
            }
        except ValueError:
            continue
        spec = IndicatorSpec(name=name, params=params)
        spec.resolved_params(where=repr(text))
        return spec
    raise FeatureError(
        f"feature name {text!r} is not '<indicator>_<params>' for any known indicator; "
        f"allowed indicators: {', '.join(sorted(REGISTRY))}"
    )


class FeatureSpec(FrozenConfig):
    """What features to compute and how to scale them.

    ``scaler`` is fitted only on the pipeline's fit window: ``zscore`` (mean/std), ``robust``
    (median/IQR), ``rank`` (empirical CDF mapped to [-1, 1]) or ``none``. Scaled values are
    clipped to ``[-clip, clip]`` when ``clip`` is set. ``macro`` names slower series (VIX, WTI)
    joined as of each bar's timestamp; a macro value stamped day ``d`` counts as published
    ``macro_delay_days`` later (default 1: the VIX close of ``d`` prints after the equity close of
    ``d``, so the bar of ``d`` must not see it).
    """

    indicators: list[IndicatorSpec] = Field(default_factory=list)
    scaler: ScalerKind = "zscore"
    clip: float | None = 5.0
    macro: list[str] = Field(default_factory=list)
    macro_delay_days: int = Field(default=1, ge=0)

    @field_validator("indicators", mode="before")
    @classmethod
    def _names_allowed(cls, value: Any) -> Any:
        """``indicators`` may list column names (``"rsi_14"``) as well as ``{name, params}``."""
        if isinstance(value, list):
            return [parse_feature_name(v) if isinstance(v, str) else v for v in value]
        return value

    @classmethod
    def default(cls) -> FeatureSpec:
        """A compact daily-bar set for DRL observations: returns, momentum, bands, risk, volume."""
        names = ["logret_1", "logret_5", "logret_20", "rsi_14", "macd_hist_pct_12_26_9",
                 "bb_pctb_20_2", "natr_14", "vol_20", "volume_z_20"]  # fmt: skip
        return cls(indicators=[parse_feature_name(n) for n in names])

    @classmethod
    def from_names(cls, names: list[str], **kwargs: Any) -> FeatureSpec:
        return cls(indicators=[parse_feature_name(n) for n in names], **kwargs)

    def columns(self) -> tuple[str, ...]:
        """Validated column names in order; raises :class:`FeatureError` naming the bad key."""
        cols: list[str] = []
        for i, ind in enumerate(self.indicators):
            ind.resolved_params(where=f"features.indicators[{i}]")
            cols.append(ind.column())
        for i, name in enumerate(self.macro):
            if name.upper() not in MACRO_SERIES:
                raise FeatureError(
                    f"features.macro[{i}] = {name!r}: unknown macro series; allowed: "
                    f"{', '.join(MACRO_SERIES)}"
                )
            cols.append(f"macro_{name.lower()}")
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise FeatureError(f"features.indicators: duplicate columns {dupes}; list each once")
        if self.clip is not None and self.clip <= 0:
            raise FeatureError(f"features.clip = {self.clip!r}: expected a positive number or null")
        return tuple(cols)

    def canonical(self) -> dict[str, Any]:
        """Defaults resolved, so equivalent specs serialize (and hash) identically."""
        return {
            "columns": list(self.columns()),
            "scaler": self.scaler,
            "clip": self.clip,
            "macro": [m.upper() for m in self.macro],
            "macro_delay_days": self.macro_delay_days,
        }

    @property
    def spec_hash(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["MACRO_SERIES", "FeatureSpec", "IndicatorSpec", "ScalerKind", "parse_feature_name"]

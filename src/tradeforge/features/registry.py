"""The registered indicators: name, parameters (with defaults and bounds) and how to build them.

Column names are ``<indicator>_<param values in order>``: ``rsi_14``, ``macd_hist_12_26_9``,
``bb_upper_20_2``. Indicators without parameters keep their bare name (``obv``, ``dow_sin``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.features.builder import Builder
from tradeforge.features.graph import window_sum

ParamValue = int | float | str
BuildFn = Callable[[Builder, Mapping[str, ParamValue]], str]


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int, float or str (str: the name of another feature)
    default: ParamValue | None
    minimum: float = 1.0


@dataclass(frozen=True)
class Indicator:
    name: str
    params: tuple[Param, ...]
    build: BuildFn
    description: str
    fields: tuple[str, ...] = ("close",)


REGISTRY: dict[str, Indicator] = {}


def _register(
    name: str, params: tuple[Param, ...], description: str, fields: tuple[str, ...] = ("close",)
) -> Callable[[BuildFn], BuildFn]:
    def deco(fn: BuildFn) -> BuildFn:
        REGISTRY[name] = Indicator(name, params, fn, description, fields)
        return fn

    return deco


def _i(p: Mapping[str, ParamValue], key: str) -> int:
    return int(p[key])


def _f(p: Mapping[str, ParamValue], key: str) -> float:
    return float(p[key])


def _div(a: FloatArray, b: FloatArray) -> FloatArray:
    out: FloatArray = a / b
    return out


K = Param("k", int, 1)
N14 = Param("n", int, 14, 2)
N20 = Param("n", int, 20, 2)
OHLC = ("open", "high", "low", "close")
HLCV = ("high", "low", "close", "volume")


# returns -----------------------------------------------------------------------------------
@_register("ret", (K,), "simple return over k bars")
def _ret(b: Builder, p: Mapping[str, ParamValue]) -> str:
    c = b.close()
    return b.map("ret", lambda x, y: x / y - 1.0, c, b.lag(c, _i(p, "k")))


@_register("logret", (K,), "log return over k bars")
def _logret(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.log_return(_i(p, "k"))


# trend -------------------------------------------------------------------------------------
@_register("sma", (N20,), "simple moving average of close")
def _sma(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.mean(b.close(), _i(p, "n"))


@_register("ema", (N20,), "exponential moving average of close (seeded by the SMA, as TA-Lib)")
def _ema(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.ema(b.close(), _i(p, "n"))


MACD_PARAMS = (Param("fast", int, 12, 2), Param("slow", int, 26, 2), Param("signal", int, 9, 2))


def _macd_parts(b: Builder, p: Mapping[str, ParamValue]) -> tuple[str, str, str]:
    """TA-Lib alignment: both EMAs start on the same bar (``slow - 1``), the fast one seeded by
    the mean of the ``fast`` closes ending there, so values equal ``talib.MACD`` from the start."""
    c, fast, slow = b.close(), _i(p, "fast"), _i(p, "slow")
    late = b.after(c, slow - fast) if slow > fast else c
    line = b.map("sub", np.subtract, b.ema(late, fast), b.ema(c, slow), kernel="sub")
    signal = b.ema(line, _i(p, "signal"))
    return line, signal, b.map("sub", np.subtract, line, signal, kernel="sub")


@_register("macd", MACD_PARAMS, "MACD line: EMA(fast) - EMA(slow)")
def _macd(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _macd_parts(b, p)[0]


@_register("macd_signal", MACD_PARAMS, "MACD signal line: EMA(signal) of the MACD line")
def _macd_signal(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _macd_parts(b, p)[1]


@_register("macd_hist", MACD_PARAMS, "MACD histogram: line - signal")
def _macd_hist(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _macd_parts(b, p)[2]


@_register("macd_hist_pct", MACD_PARAMS, "MACD histogram divided by close")
def _macd_hist_pct(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.map("div", _div, _macd_parts(b, p)[2], b.close(), kernel="div")


# momentum ----------------------------------------------------------------------------------
@_register("rsi", (N14,), "relative strength index with Wilder smoothing (0-100)")
def _rsi(b: Builder, p: Mapping[str, ParamValue]) -> str:
    n = _i(p, "n")
    d = b.diff(b.close())
    gain = b.wilder(b.map("pos", lambda x: np.maximum(x, 0.0), d, kernel="pos"), n)
    loss = b.wilder(b.map("neg", lambda x: np.maximum(-x, 0.0), d, kernel="neg"), n)

    def rsi(g: FloatArray, lo: FloatArray) -> FloatArray:
        total = g + lo
        return np.where(total > 0, 100.0 * g / total, np.where(np.isnan(total), np.nan, 0.0))

    return b.map("rsi", rsi, gain, loss, kernel="rsi")


# Bollinger ---------------------------------------------------------------------------------
BB_PARAMS = (N20, Param("k", float, 2.0, 0.0))


def _bands(b: Builder, p: Mapping[str, ParamValue]) -> tuple[str, str, str]:
    c, n, k = b.close(), _i(p, "n"), _f(p, "k")
    mid, sd = b.mean(c, n), b.std(c, n, ddof=0)
    upper = b.map(f"add{k!r}x", lambda m, s: m + k * s, mid, sd, kernel="add_scaled", params=(k,))
    lower = b.map(f"sub{k!r}x", lambda m, s: m - k * s, mid, sd, kernel="sub_scaled", params=(k,))
    return upper, mid, lower


@_register("bb_upper", BB_PARAMS, "upper Bollinger band: SMA + k * population std")
def _bb_upper(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _bands(b, p)[0]


@_register("bb_middle", BB_PARAMS, "middle Bollinger band (SMA)")
def _bb_middle(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _bands(b, p)[1]


@_register("bb_lower", BB_PARAMS, "lower Bollinger band: SMA - k * population std")
def _bb_lower(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _bands(b, p)[2]


@_register("bb_pctb", BB_PARAMS, "Bollinger %b: (close - lower) / (upper - lower)")
def _bb_pctb(b: Builder, p: Mapping[str, ParamValue]) -> str:
    upper, _, lower = _bands(b, p)
    return b.map(
        "pctb", lambda c, u, lo: (c - lo) / (u - lo), b.close(), upper, lower, kernel="pctb"
    )


@_register("bb_width", BB_PARAMS, "Bollinger width: (upper - lower) / middle")
def _bb_width(b: Builder, p: Mapping[str, ParamValue]) -> str:
    upper, mid, lower = _bands(b, p)
    return b.map("bbw", lambda u, m, lo: (u - lo) / m, upper, mid, lower)


# volatility --------------------------------------------------------------------------------
@_register("atr", (N14,), "average true range, Wilder smoothing", ("high", "low", "close"))
def _atr(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.wilder(b.true_range(), _i(p, "n"))


@_register("natr", (N14,), "ATR as a percentage of close (TA-Lib NATR)", ("high", "low", "close"))
def _natr(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.map("pct", lambda a, c: 100.0 * a / c, _atr(b, p), b.close(), kernel="pct")


@_register("vol", (N20,), "close-to-close volatility: sample std of 1-bar log returns")
def _vol(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.std(b.log_return(1), _i(p, "n"), ddof=1)


@_register("parkinson", (N20,), "Parkinson high-low volatility", ("high", "low"))
def _parkinson(b: Builder, p: Mapping[str, ParamValue]) -> str:
    hl2 = b.map("lnhl2", lambda h, lo: np.log(h / lo) ** 2, b.src("high"), b.src("low"))
    return b.map("sqrt_park", lambda m: np.sqrt(m / (4.0 * np.log(2.0))), b.mean(hl2, _i(p, "n")))


@_register("garman_klass", (N20,), "Garman-Klass OHLC volatility", OHLC)
def _garman_klass(b: Builder, p: Mapping[str, ParamValue]) -> str:
    def term(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
        out: FloatArray = 0.5 * np.log(h / lo) ** 2 - (2.0 * np.log(2.0) - 1.0) * np.log(c / o) ** 2
        return out

    gk = b.map("gk", term, b.src("open"), b.src("high"), b.src("low"), b.close())
    return b.map("sqrt_pos", lambda m: np.sqrt(np.maximum(m, 0.0)), b.mean(gk, _i(p, "n")))


def _zscore_of(b: Builder, x: str, n: int) -> str:
    mean, sd = b.mean(x, n), b.std(x, n, ddof=0)

    def z(v: FloatArray, m: FloatArray, s: FloatArray) -> FloatArray:
        return np.where(s > 0, (v - m) / s, np.where(np.isnan(s), np.nan, 0.0))

    return b.map("z", z, x, mean, sd, kernel="z")


@_register("zscore", (N20,), "rolling z-score of close")
def _zscore(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _zscore_of(b, b.close(), _i(p, "n"))


# volume ------------------------------------------------------------------------------------
@_register("volume_z", (N20,), "rolling z-score of volume", ("volume",))
def _volume_z(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return _zscore_of(b, b.src("volume"), _i(p, "n"))


@_register(
    "obv",
    (),
    "on-balance volume (TA-Lib convention: starts at the first volume)",
    ("close", "volume"),
)
def _obv(b: Builder, p: Mapping[str, ParamValue]) -> str:
    c = b.close()

    def signed(close: FloatArray, prev: FloatArray, vol: FloatArray) -> FloatArray:
        move = np.sign(close - prev) * vol
        return np.where(np.isnan(prev) & ~np.isnan(close), vol, move)

    return b.running_sum(b.map("obvstep", signed, c, b.lag(c, 1), b.src("volume")))


def _typical(b: Builder) -> str:
    return b.map("tp", lambda h, lo, c: (h + lo + c) / 3.0, b.src("high"), b.src("low"), b.close())


@_register("vwap_dist", (N20,), "close / rolling VWAP of typical price - 1", HLCV)
def _vwap_dist(b: Builder, p: Mapping[str, ParamValue]) -> str:
    v = b.src("volume")
    pv = b.map("mul", np.multiply, _typical(b), v)
    n = _i(p, "n")
    vwap = b.map("div", _div, b.wsum(pv, n), b.wsum(v, n), kernel="div")
    return b.map("rel", lambda c, w: c / w - 1.0, b.close(), vwap)


@_register(
    "volume_below", (N20,), "volume profile: share of window volume traded at or below close", HLCV
)
def _volume_below(b: Builder, p: Mapping[str, ParamValue]) -> str:
    def below(tp: FloatArray, v: FloatArray, c: FloatArray) -> FloatArray:
        at_or_below = np.where(tp <= c[..., -1:], v, 0.0)
        at_or_below = np.where(np.isnan(tp) | np.isnan(c[..., -1:]), np.nan, at_or_below)
        out: FloatArray = window_sum(at_or_below) / window_sum(v)
        return out

    return b.window("vbelow", below, _i(p, "n"), _typical(b), b.src("volume"), b.close())


# calendar ----------------------------------------------------------------------------------
def _cyclic(
    name: str,
    period: float,
    part: Callable[[np.ndarray], Any],
    trig: Callable[[FloatArray], FloatArray],
) -> None:
    def fn(stamps: np.ndarray) -> FloatArray:
        return trig(2.0 * np.pi * np.asarray(part(stamps), dtype=np.float64) / period)

    @_register(name, (), f"calendar: {name.replace('_', ' ')} (period {period:g})")
    def _build(b: Builder, p: Mapping[str, ParamValue]) -> str:
        return b.calendar(name, fn)


def _dayofweek(stamps: np.ndarray) -> np.ndarray:
    days = stamps // 86_400_000_000_000
    return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _month0(stamps: np.ndarray) -> np.ndarray:
    months = stamps.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    return months % 12


_cyclic("dow_sin", 7.0, _dayofweek, np.sin)
_cyclic("dow_cos", 7.0, _dayofweek, np.cos)
_cyclic("month_sin", 12.0, _month0, np.sin)
_cyclic("month_cos", 12.0, _month0, np.cos)


# news sentiment (inputs attached to the panel by tradeforge.features.sentiment) -------------
@_register(
    "news_sentiment",
    (Param("n", int, 1, 1),),
    "mean news score over n bars (0 when no news)",
    ("news_score", "news_count"),
)
def _news_sentiment(b: Builder, p: Mapping[str, ParamValue]) -> str:
    n = _i(p, "n")
    score, count = b.wsum(b.src("news_score"), n), b.wsum(b.src("news_count"), n)
    return b.map(
        "nsent",
        lambda s, c: np.where(c > 0, s / c, np.where(np.isnan(c), np.nan, 0.0)),
        score,
        count,
    )


@_register(
    "news_count", (Param("n", int, 1, 1),), "number of news items over n bars", ("news_count",)
)
def _news_count(b: Builder, p: Mapping[str, ParamValue]) -> str:
    return b.wsum(b.src("news_count"), _i(p, "n"))


# cross-sectional ---------------------------------------------------------------------------
@_register(
    "xrank",
    (Param("of", str, None),),
    "rank of another feature across symbols at each bar, in [0, 1]",
)
def _xrank(b: Builder, p: Mapping[str, ParamValue]) -> str:
    from tradeforge.features.spec import parse_feature_name

    inner = parse_feature_name(str(p["of"]))
    return b.cross_rank(build_indicator(b, inner.name, inner.resolved_params()))


def build_indicator(b: Builder, name: str, params: Mapping[str, ParamValue]) -> str:
    if name not in REGISTRY:
        raise FeatureError(f"unknown indicator {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name].build(b, params)


__all__ = ["REGISTRY", "Indicator", "Param", "ParamValue", "build_indicator"]

"""Offline news sentiment: a small finance lexicon scorer and the per-bar, as-of aggregation.

The lexicon below is our own short word list (written for tradeforge, in the spirit of
finance-specific dictionaries; it is not the Loughran-McDonald list). A text scores
``(positive - negative) / (positive + negative)`` in [-1, 1] (0 when no listed word occurs); a
negator (``not``, ``no``, ``never``, ...) up to three words before a term flips it.

:func:`attach_news` adds two fields to a :class:`BarPanel`: ``news_score`` (sum of item scores)
and ``news_count`` per symbol and bar. An item belongs to the first bar of its symbol whose
*decision time* (the bar's close) is at or after its publication time, so news published after
a bar's close counts in the next bar, never in the bar it missed. The ``news_sentiment_<n>`` and
``news_count_<n>`` features read these fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.features.news import NewsItem


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


POSITIVE: frozenset[str] = _words(
    """beat beats exceeded exceeds surge surged surges soar soared soars jump jumped jumps rally
    rallied rallies gain gained gains record strong stronger strength growth grew grow upgrade
    upgraded upgrades outperform outperformed profit profitable profits rebound rebounded raise
    raised raises boost boosted boosts bullish optimistic improve improved improves improvement
    expand expanded expansion approval approved win wins won breakthrough robust higher rise rose
    rises dividend buyback beating tops topped"""
)
NEGATIVE: frozenset[str] = _words(
    """miss missed misses fall fell falls plunge plunged plunges drop dropped drops slump slumped
    decline declined declines weak weaker weakness loss losses lose lost downgrade downgraded
    downgrades underperform underperformed cut cuts lawsuit sued probe investigation fraud recall
    recalled bearish pessimistic warn warned warning warns layoffs layoff bankruptcy default
    defaulted lower slash slashed halt halted fined penalty shortfall concern concerns
    tumble tumbled tumbles crash crashed delay delayed"""
)
NEGATORS: frozenset[str] = frozenset({"not", "no", "never", "without", "nor", "didn't", "isn't"})
NEGATION_REACH = 3
_WORD = re.compile(r"[a-z][a-z']*")


@dataclass(frozen=True)
class LexiconScorer:
    """Scores a text in [-1, 1] by counting finance lexicon words (offline, deterministic)."""

    positive: frozenset[str] = field(default=POSITIVE)
    negative: frozenset[str] = field(default=NEGATIVE)

    def score(self, text: str) -> float:
        pos = neg = 0
        last_negator = -NEGATION_REACH - 1
        for i, word in enumerate(_WORD.findall(text.lower())):
            if word in NEGATORS:
                last_negator = i
                continue
            sign = 1 if word in self.positive else -1 if word in self.negative else 0
            if sign and i - last_negator <= NEGATION_REACH:
                sign = -sign
            pos += sign > 0
            neg += sign < 0
        return 0.0 if pos + neg == 0 else (pos - neg) / (pos + neg)


def decision_times(index: pd.DatetimeIndex, frequency: str) -> pd.DatetimeIndex:
    """When each bar's information is complete: the session close for daily bars (16:00
    America/New_York on the bar's date), else the bar's start plus its length."""
    if frequency == "1d":
        local = pd.DatetimeIndex(index.date).tz_localize("America/New_York")
        closes: pd.DatetimeIndex = (local + pd.Timedelta(hours=16)).tz_convert("UTC")
        return closes
    try:
        length = pd.Timedelta(frequency)
    except ValueError:
        raise FeatureError(
            f"frequency = {frequency!r}: cannot tell when such bars close; expected '1d' or a "
            "pandas duration such as '1h', '5min'"
        ) from None
    out: pd.DatetimeIndex = index + length
    return out


def aggregate_news(
    panel: BarPanel, items: Iterable[NewsItem], scorer: LexiconScorer | None = None
) -> tuple[FloatArray, FloatArray]:
    """``(news_score, news_count)`` of shape (T, N): sums over the items assigned to each bar.

    Bars where a symbol has no close stay NaN; its news wait for its next bar with a close.
    Items after the panel's last decision time are dropped.
    """
    scorer = scorer if scorer is not None else LexiconScorer()
    closes = decision_times(panel.index, panel.frequency).as_unit("ns").asi8
    valid = ~np.isnan(panel.close)
    score = np.where(valid, 0.0, np.nan)
    count = np.where(valid, 0.0, np.nan)
    rows_of = {s: np.flatnonzero(valid[:, j]) for j, s in enumerate(panel.symbols)}
    col_of = {s: j for j, s in enumerate(panel.symbols)}
    for item in items:
        published = item.published.as_unit("ns").value
        value = scorer.score(item.text)
        for symbol in item.symbols:
            if symbol not in col_of:
                continue
            rows = rows_of[symbol]
            k = int(np.searchsorted(closes[rows], published, side="left"))
            if k == len(rows):
                continue
            score[rows[k], col_of[symbol]] += value
            count[rows[k], col_of[symbol]] += 1.0
    return score, count


def attach_news(
    panel: BarPanel, items: Iterable[NewsItem], scorer: LexiconScorer | None = None
) -> BarPanel:
    """``panel`` with ``news_score`` and ``news_count`` extra fields (see :func:`aggregate_news`)."""
    score, count = aggregate_news(panel, items, scorer)
    return replace(panel, extra={**panel.extra, "news_score": score, "news_count": count})


def fetch_and_attach(
    panel: BarPanel, source: object, symbols: Sequence[str] | None = None
) -> BarPanel:
    """Fetch the news of the panel's symbols over its range from ``source`` and attach them."""
    fetch = getattr(source, "fetch_news", None)
    if fetch is None:
        raise FeatureError(f"news source {source!r} has no fetch_news(symbols, start, end) method")
    closes = decision_times(panel.index, panel.frequency)
    items = fetch(list(symbols or panel.symbols), panel.index[0], closes[-1])
    return attach_news(panel, items)


__all__ = [
    "NEGATIVE",
    "POSITIVE",
    "LexiconScorer",
    "aggregate_news",
    "attach_news",
    "decision_times",
    "fetch_and_attach",
]

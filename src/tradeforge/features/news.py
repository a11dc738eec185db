"""News sources for the optional sentiment family: Alpaca and Polygon news REST endpoints.

Both return :class:`NewsItem` records (UTC publication time, symbols, headline, summary). The
HTTP transport is injectable (``httpx.MockTransport`` in tests), so nothing here needs a network
to be tested; keys come from the environment and never appear in errors or logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pandas as pd

from tradeforge.core.errors import SourceError
from tradeforge.data.sources.http import HttpJsonClient
from tradeforge.data.sources.keys import get_key

log = logging.getLogger(__name__)

MAX_PAGES = 1000


@dataclass(frozen=True)
class NewsItem:
    """One article: when it was published (tz-aware UTC), which symbols it tags, and its text."""

    published: pd.Timestamp
    symbols: tuple[str, ...]
    headline: str
    summary: str = ""
    source: str = ""
    id: str = ""

    @property
    def text(self) -> str:
        return f"{self.headline}. {self.summary}" if self.summary else self.headline


class NewsSource(Protocol):
    """Anything that lists the news tagged with some symbols between two times."""

    def fetch_news(self, symbols: Sequence[str], start: object, end: object) -> list[NewsItem]: ...


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(value: object) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(record: dict[str, Any], key: str, vendor: str) -> Any:
    if key not in record:
        raise SourceError(f"{vendor} news: item without {key!r} field; got keys {sorted(record)}")
    return record[key]


class AlpacaNewsSource:
    """``GET /v1beta1/news`` of Alpaca market data (pages through ``next_page_token``)."""

    base_url = "https://data.alpaca.markets"

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        page_size: int = 50,
    ) -> None:
        key = api_key if api_key is not None else get_key("APCA_API_KEY_ID", "alpaca")
        secret = secret_key if secret_key is not None else get_key("APCA_API_SECRET_KEY", "alpaca")
        self.page_size = page_size
        self._client = HttpJsonClient(
            "alpaca",
            self.base_url,
            headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret},
            key_hint="set APCA_API_KEY_ID and APCA_API_SECRET_KEY",
            transport=transport,
        )

    def fetch_news(self, symbols: Sequence[str], start: object, end: object) -> list[NewsItem]:
        params: dict[str, Any] = {
            "symbols": ",".join(symbols),
            "start": _iso(start),
            "end": _iso(end),
            "limit": self.page_size,
            "sort": "asc",
            "include_content": "false",
        }
        items: list[NewsItem] = []
        for _ in range(MAX_PAGES):
            payload = self._client.get_json("/v1beta1/news", params)
            if not isinstance(payload, dict) or "news" not in payload:
                raise SourceError(
                    "alpaca news: response has no 'news' list; expected {news: [...]}"
                )
            for rec in payload["news"]:
                items.append(
                    NewsItem(
                        published=_utc(_field(rec, "created_at", "alpaca")),
                        symbols=tuple(str(s) for s in rec.get("symbols", [])),
                        headline=str(_field(rec, "headline", "alpaca")),
                        summary=str(rec.get("summary") or ""),
                        source=str(rec.get("source") or ""),
                        id=str(rec.get("id", "")),
                    )
                )
            token = payload.get("next_page_token")
            if not token:
                break
            params = {**params, "page_token": token}
        log.debug("alpaca news: %d items for %s", len(items), ",".join(symbols))
        return items


class PolygonNewsSource:
    """``GET /v2/reference/news`` of Polygon.io, one ticker per request (pages through ``next_url``)."""

    base_url = "https://api.polygon.io"

    def __init__(
        self,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        page_size: int = 1000,
    ) -> None:
        key = api_key if api_key is not None else get_key("POLYGON_API_KEY", "polygon")
        self.page_size = page_size
        self._client = HttpJsonClient(
            "polygon",
            self.base_url,
            params={"apiKey": key},
            key_hint="set POLYGON_API_KEY",
            transport=transport,
        )

    def fetch_news(self, symbols: Sequence[str], start: object, end: object) -> list[NewsItem]:
        items: dict[str, NewsItem] = {}
        for symbol in symbols:
            url = "/v2/reference/news"
            params: dict[str, Any] | None = {
                "ticker": symbol,
                "published_utc.gte": _iso(start),
                "published_utc.lte": _iso(end),
                "order": "asc",
                "sort": "published_utc",
                "limit": self.page_size,
            }
            for _ in range(MAX_PAGES):
                payload = self._client.get_json(url, params)
                if not isinstance(payload, dict) or "results" not in payload:
                    raise SourceError(
                        "polygon news: response has no 'results' list; expected {results: [...]}"
                    )
                for rec in payload["results"]:
                    item = NewsItem(
                        published=_utc(_field(rec, "published_utc", "polygon")),
                        symbols=tuple(str(s) for s in rec.get("tickers", [])),
                        headline=str(_field(rec, "title", "polygon")),
                        summary=str(rec.get("description") or ""),
                        source=str((rec.get("publisher") or {}).get("name", "")),
                        id=str(rec.get("id", "")),
                    )
                    items[item.id or f"{item.published}{item.headline}"] = item
                next_url = payload.get("next_url")
                if not next_url:
                    break
                url, params = str(next_url), None  # the cursor URL carries the query
        return sorted(items.values(), key=lambda i: i.published)


__all__ = ["AlpacaNewsSource", "NewsItem", "NewsSource", "PolygonNewsSource"]

"""A small JSON-over-HTTP client for vendor REST APIs: bounded retries with exponential backoff,
``Retry-After`` honoured, a minimum interval between calls, and error messages that name the
problem and the fix without ever showing a key.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.sources.keys import redact, register_secret

logger = logging.getLogger("tradeforge.data.http")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class HttpJsonClient:
    """GET JSON from one vendor with retries; ``transport`` lets tests replay recorded answers."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        key_hint: str = "",
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        min_interval_s: float = 0.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vendor = vendor
        self.key_hint = key_hint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.min_interval_s = min_interval_s
        self._sleep = sleep
        self._last_call = -float("inf")
        self._secrets = tuple(v for v in (*(headers or {}).values(), *(params or {}).values()))
        for secret in self._secrets:  # headers and default params carry keys: never show them
            register_secret(secret)
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            params=dict(params or {}),
            transport=transport,
            timeout=timeout_s,
            follow_redirects=False,
        )
        self.calls = 0

    def close(self) -> None:
        self._client.close()

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``url`` (absolute or relative to the base URL) and return the decoded JSON."""
        # a paging URL (``next_url``) carries its own query: keep it and add ``params``
        parsed = httpx.URL(url)
        query = {**dict(parsed.params.multi_items()), **dict(params or {})}
        target = parsed.copy_with(query=None)
        attempt = 0
        while True:
            self._throttle()
            self.calls += 1
            try:
                response = self._client.get(target, params=query)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise SourceError(
                        self._clean(
                            f"{self.vendor}: network error after {attempt + 1} attempts "
                            f"({type(exc).__name__}: {exc}); check your connection and retry"
                        )
                    ) from None
                self.wait(attempt, None)
                attempt += 1
                continue
            if response.status_code in RETRY_STATUS and attempt < self.max_retries:
                self.wait(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            return self._decode(response, attempt)

    def _throttle(self) -> None:
        if self.min_interval_s > 0:
            gap = time.monotonic() - self._last_call
            if gap < self.min_interval_s:
                self._sleep(self.min_interval_s - gap)
        self._last_call = time.monotonic()

    def wait(self, attempt: int, retry_after: str | None) -> None:
        delay = retry_delay(attempt, retry_after, self.backoff_s, self.max_wait_s)
        logger.info("%s: retrying in %.2fs (attempt %d)", self.vendor, delay, attempt + 1)
        self._sleep(delay)

    def _decode(self, response: httpx.Response, attempt: int) -> Any:
        status = response.status_code
        where = self._clean(str(response.request.url.copy_with(query=None)))
        if status in (401, 403):
            raise SourceError(
                f"{self.vendor}: the API key was rejected (HTTP {status} for {where}); "
                f"check {self.key_hint or 'your key'} and your plan's permissions"
            )
        if status == 404:
            raise UnknownSymbolError(
                f"{self.vendor}: not found (HTTP 404 for {where}); check the symbol and dates"
            )
        if status == 429:
            raise SourceError(
                f"{self.vendor}: still rate-limited after {attempt + 1} attempts (HTTP 429); "
                "wait and retry, or lower the request rate"
            )
        text = response.text
        if status >= 400:
            raise SourceError(
                self._clean(
                    f"{self.vendor}: HTTP {status} for {where}: {_snippet(text)}; retry later or "
                    "check the request"
                )
            )
        content_type = response.headers.get("content-type", "")
        if "html" in content_type or text.lstrip().lower().startswith(("<!doctype", "<html")):
            raise SourceError(
                f"{self.vendor}: got an HTML page instead of JSON from {where} (HTTP {status}); "
                "the service may be down or the URL wrong; retry later"
            )
        try:
            return response.json()
        except ValueError:
            raise SourceError(
                self._clean(
                    f"{self.vendor}: response from {where} is not valid JSON: {_snippet(text)}"
                )
            ) from None

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)


def retry_delay(
    attempt: int, retry_after: str | None, backoff_s: float, max_wait_s: float
) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's ``Retry-After`` when it sent
    one, else exponential backoff; never more than ``max_wait_s``."""
    parsed = _parse_retry_after(retry_after)
    if parsed is not None:
        return min(max(parsed, 0.0), max_wait_s)
    return float(min(backoff_s * 2**attempt, max_wait_s))


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _snippet(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat[:limit] + ("..." if len(flat) > limit else "")


__all__ = ["RETRY_STATUS", "HttpJsonClient", "retry_delay"]

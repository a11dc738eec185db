"""Golden vendor responses and transport-level fakes shared by the data tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def golden(relative: str) -> Any:
    """A recorded vendor answer (JSON) from tests/fixtures/data."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def golden_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


class Sleeps:
    """A fake ``sleep`` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class ReplayAdapter:
    """A ``requests`` transport adapter answering from a function of the prepared request.

    ``answer(request)`` returns ``(status, body, headers)``; ``body`` is a JSON-able object or
    a string. Every request is kept in ``requests`` for assertions.
    """

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[Any] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        import requests

        self.requests.append(request)
        status, body, headers = self.answer(request)
        response = requests.Response()
        response.status_code = status
        response.url = request.url
        response.request = request
        if isinstance(body, str):
            response._content = body.encode()
            response.headers["content-type"] = "text/html; charset=utf-8"
        else:
            response._content = json.dumps(body).encode()
            response.headers["content-type"] = "application/json"
        response.headers.update(headers or {})
        response.reason = {200: "OK", 403: "Forbidden", 429: "Too Many Requests"}.get(status, "")
        return response

    def close(self) -> None:
        pass


def replay_session(answer: Any) -> tuple[Any, ReplayAdapter]:
    """A real ``requests.Session`` whose HTTP(S) traffic goes to a :class:`ReplayAdapter`."""
    import requests

    session = requests.Session()
    adapter = ReplayAdapter(answer)
    session.mount("https://", adapter)  # type: ignore[arg-type]
    session.mount("http://", adapter)  # type: ignore[arg-type]
    return session, adapter

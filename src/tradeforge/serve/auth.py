"""Who may call the service: an API key for scripts, a signed session cookie for browsers.

* Scripts send the key from ``$TRADEFORGE_API_KEY`` as ``Authorization: Bearer KEY`` or
  ``X-API-Key: KEY``; it is compared in constant time (``hmac.compare_digest``).
* Browsers post the key to the login form once and get a session cookie (``HttpOnly``,
  ``SameSite=Strict``, path ``/``): a payload ``{"exp": ..., "csrf": ...}`` and its HMAC-SHA256
  under a secret derived from the key and a per-process salt, so a restart or a new key logs
  everybody out and nobody can forge or extend a session.
* State-changing requests that ride on the cookie must also carry the session's CSRF token
  (header ``X-CSRF-Token`` or form field ``csrf_token``): a cross-site form cannot read it.
  Requests with the key in a header need no CSRF token: a browser never adds that header by itself.

:class:`Authenticator` holds the key; :func:`require_auth` and :func:`require_csrf` are the FastAPI
dependencies every route but ``/healthz`` uses (the app stores the authenticator on
``app.state.auth``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from tradeforge.core.errors import ConfigError

KEY_ENV = "TRADEFORGE_API_KEY"
SESSION_COOKIE = "tf_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class Principal:
    """Who made a request: ``via`` is ``key`` (a header) or ``session`` (the cookie)."""

    via: str
    csrf: str = ""


class Authenticator:
    """Checks API keys and issues/reads session cookies (module docstring)."""

    def __init__(
        self, api_key: str, *, session_ttl_s: float = 12 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if len(api_key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{KEY_ENV} has {len(api_key)} characters; expected at least {MIN_KEY_LENGTH} "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        self._key = api_key.encode()
        self._secret = hashlib.sha256(b"tradeforge-session|" + self._key +
                                      secrets.token_bytes(16)).digest()  # fmt: skip
        self.session_ttl_s = session_ttl_s
        self._clock = clock

    @classmethod
    def from_env(cls, env: str = KEY_ENV, **kwargs: float) -> Authenticator:
        key = os.environ.get(env, "")
        if not key:
            raise ConfigError(f"${env} is not set; expected the service's API key "
                              f"(at least {MIN_KEY_LENGTH} characters)")  # fmt: skip
        return cls(key, **kwargs)  # type: ignore[arg-type]

    @property
    def api_key(self) -> str:
        return self._key.decode()

    def check_key(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._key)

    # -- sessions ---------------------------------------------------------------------------------
    def issue_session(self) -> tuple[str, str]:
        """A new session cookie value and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        body = json.dumps({"exp": self._clock() + self.session_ttl_s, "csrf": csrf},
                          separators=(",", ":")).encode()  # fmt: skip
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}", csrf

    def read_session(self, cookie: str) -> Principal | None:
        """The session in ``cookie``, or None when it is forged, malformed or expired."""
        payload, _, signature = cookie.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires, csrf = float(body["exp"]), str(body["csrf"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < self._clock():
            return None
        return Principal("session", csrf)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    # -- requests ---------------------------------------------------------------------------------
    def principal(self, request: Request) -> Principal | None:
        """Who sent ``request``: a key header first, then the session cookie."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token and self.check_key(token.strip()):
            return Principal("key")
        api_key = request.headers.get("x-api-key")
        if api_key and self.check_key(api_key):
            return Principal("key")
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.read_session(cookie) if cookie else None


def _authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def require_auth(request: Request) -> Principal:
    """FastAPI dependency: the request's principal, or 401 (with ``WWW-Authenticate``)."""
    principal = _authenticator(request).principal(request)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid credentials: send Authorization: Bearer <key>, "
            "X-API-Key: <key>, or log in at /login",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


async def require_csrf(request: Request) -> Principal:
    """FastAPI dependency for state-changing routes: authenticated, and a cookie session must
    also present its CSRF token (header or form field); 403 otherwise."""
    principal = await require_auth(request)
    if principal.via == "key":
        return principal
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent, principal.csrf):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"CSRF token missing or wrong: send the session's token as {CSRF_HEADER} "
            f"or the form field {CSRF_FIELD}",
        )
    return principal


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "KEY_ENV",
    "SESSION_COOKIE",
    "Authenticator",
    "Principal",
    "require_auth",
    "require_csrf",
]

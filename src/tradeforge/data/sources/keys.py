"""API keys: read from the environment or a ``.env`` file, never from configs, never logged."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tradeforge.core.errors import SourceError

_MASK = "***"


def get_key(env_var: str, vendor: str, dotenv_path: Path | None = None) -> str:
    """The value of ``env_var`` from the environment, else from ``.env`` in the working directory.

    The key is never placed into ``os.environ`` and never appears in messages.
    """
    value = os.environ.get(env_var)
    if not value:
        path = dotenv_path if dotenv_path is not None else Path.cwd() / ".env"
        if path.is_file():
            from dotenv import dotenv_values

            value = dotenv_values(path).get(env_var) or None
    if not value:
        raise SourceError(
            f"{vendor} needs an API key in ${env_var}, which is not set; export {env_var}=... "
            "or add it to a .env file in the working directory (keys never go in configs)"
        )
    register_secret(value)
    return value


_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so :func:`redact` and :class:`RedactingFilter` hide it."""
    if len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """``text`` with every known secret replaced by ``***``."""
    for secret in sorted({*_SECRETS, *extra}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, _MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that hides every registered secret in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger_name: str = "tradeforge") -> None:
    """Hide registered secrets in log output (idempotent).

    A filter on a logger only sees records created on that very logger, so the filter goes on
    the handlers of the root logger (where records from every library end up, e.g. ``httpx``
    logging request URLs that carry Alpha Vantage's ``apikey``) and on the named loggers.
    """
    targets: list[logging.Filterer] = [
        *logging.getLogger().handlers,
        logging.getLogger(logger_name),
        *(logging.getLogger(name) for name in _CHATTY_LOGGERS),
    ]
    for target in targets:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


_CHATTY_LOGGERS: tuple[str, ...] = ("httpx", "httpcore", "urllib3.connectionpool", "yfinance")


__all__ = ["RedactingFilter", "get_key", "install_log_redaction", "redact", "register_secret"]

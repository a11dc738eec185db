"""Structured one-line JSON logs for the service, with secrets redacted.

Call :func:`configure_logging` once at start-up (calling it again replaces the previous set-up)::

    from tradeforge.monitor.logs import bind_context, configure_logging, get_logger, log_context

    configure_logging(run_id="2026-11-30T14:30Z-paper", level="INFO")
    register_secret(api_key)  # the service's own API key never reaches a log line
    log = get_logger(__name__)
    with log_context(correlation_id="tf-ppo-20261130T1430", strategy="ppo"):
        log.info("order submitted", symbol="AAPL", qty=3)

Every line, from structlog loggers and from stdlib loggers alike (uvicorn, apscheduler, httpx),
is one JSON object with ``ts`` (UTC ISO-8601, microseconds), ``level``, ``event``, ``run_id``,
``logger`` and whatever context is bound through :mod:`structlog.contextvars`.

Redaction runs last, on every line: values under keys that look like secrets (``key``,
``secret``, ``password``, ``token``, ``authorization``, ``api_key``), ``Bearer``/``Basic``
credentials, Alpaca key ids (``PK``/``AK`` + 18) and secrets (40 mixed-case characters), and any
value registered with :func:`register_secret` become ``[REDACTED]``.

For uvicorn, start it with ``log_config=None`` so it does not install its own handlers after
this module has routed its loggers to the JSON handler.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from tradeforge.core.errors import ConfigError

__all__ = [
    "REDACTED",
    "bind_context",
    "clear_context",
    "configure_logging",
    "get_logger",
    "log_context",
    "redact_text",
    "redact_value",
    "register_secret",
    "reset_logging",
    "unbind_context",
]

REDACTED = "[REDACTED]"

# Third-party loggers that often come with their own handlers; they are routed to the root
# handler so their lines are JSON too.
_ROUTED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "apscheduler",
    "httpx",
    "httpcore",
    "fastapi",
)
_MIN_SECRET_LEN = 4
_SECRET_KEY = re.compile(r"key|secret|password|passwd|token|authorization|api_key", re.IGNORECASE)
_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Authorization: Bearer abc", "bearer abc", "Basic dXNlcjpwYXNz"
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    # "api_key=abc", "token: abc", "password='abc'" inside free text and query strings
    (
        re.compile(
            r"\b((?:api[_-]?key|apikey|secret(?:[_-]?key)?|password|passwd|access[_-]?token|token)"
            r"[\"']?\s*[=:]\s*[\"']?)(?!\[REDACTED\])[^\s\"'&,;}]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # Alpaca API key ids: PK/AK + 18 upper-case alphanumerics
    (re.compile(r"\b(?:PK|AK)[A-Z0-9]{18}\b"), REDACTED),
    # Alpaca secret keys: 40 characters mixing upper, lower and digits (plain hex hashes stay)
    (
        re.compile(
            r"\b(?=[A-Za-z0-9]{0,39}[A-Z])(?=[A-Za-z0-9]{0,39}[a-z])(?=[A-Za-z0-9]{0,39}[0-9])"
            r"[A-Za-z0-9]{40}\b"
        ),
        REDACTED,
    ),
)
# Keys whose values are never redacted by name (the record's own fields).
_STRUCTURAL_KEYS = frozenset({"ts", "level", "event", "run_id", "logger"})
_KEY_ORDER = ("ts", "level", "event", "run_id", "logger")
_HANDLER_MARK = "_tradeforge_json_handler"

_secrets_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secret(value: str) -> None:
    """Redact ``value`` wherever it appears in a log line from now on (e.g. the API key).

    Values shorter than 4 characters are refused: redacting them would blank ordinary words.
    """
    global _secrets
    if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
        length = len(value) if isinstance(value, str) else type(value).__name__
        raise ConfigError(
            f"register_secret value (length {length}) is too short or not a string; "
            f"expected a string of at least {_MIN_SECRET_LEN} characters"
        )
    with _secrets_lock:
        if value not in _secrets:
            # longest first, so a secret containing another is replaced whole
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def redact_text(text: str) -> str:
    """``text`` with registered secrets and credential-looking substrings replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside ``value``; mappings also lose values under secret-looking keys."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_secret_key(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {
        key: (
            REDACTED if key not in _STRUCTURAL_KEYS and _is_secret_key(key) else redact_value(value)
        )
        for key, value in event_dict.items()
    }


def _format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        moment = datetime.fromtimestamp(record.created, UTC)
    else:
        moment = datetime.now(UTC)
    event_dict["ts"] = _format_ts(moment)
    return event_dict


def _run_id_adder(run_id: str) -> Processor:
    def add_run_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("run_id", run_id)
        return event_dict

    return add_run_id


def _drop_noise(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn's ANSI duplicate of the message
    return event_dict


def _order_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict[key] for key in _KEY_ORDER if key in event_dict}
    ordered.update((k, v) for k, v in event_dict.items() if k not in ordered)
    return ordered


def _resolve_level(level: str | int) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        resolved = logging.getLevelNamesMapping().get(level.upper())
        if resolved is not None:
            return resolved
    raise ConfigError(
        f"configure_logging level = {level!r} is not a logging level; "
        "expected DEBUG, INFO, WARNING, ERROR or CRITICAL (or an int)"
    )


def configure_logging(
    *,
    run_id: str,
    level: str | int = "INFO",
    stream: TextIO | None = None,
    json: bool = True,
) -> None:
    """Route structlog and stdlib logging to one handler on ``stream`` (default ``sys.stderr``).

    ``json=False`` renders readable console lines instead (development). Calling it again
    replaces the handler it installed before, so no line is ever written twice.
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError(f"configure_logging run_id = {run_id!r}; expected a non-empty string")
    numeric_level = _resolve_level(level)
    timestamper: Processor = _add_timestamp
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        _run_id_adder(run_id),
    ]
    renderer: Processor
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        final += [structlog.processors.format_exc_info, _redact, _order_keys]
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        final += [_redact]
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(),
            _drop_noise,
        ],
        processors=[*final, renderer],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    _remove_own_handlers(root)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        for existing in list(routed.handlers):
            routed.removeHandler(existing)
        routed.propagate = True
        routed.setLevel(logging.NOTSET)  # the level is the root's (uvicorn sets its own)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _remove_own_handlers(logger: logging.Logger) -> None:
    for existing in list(logger.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            logger.removeHandler(existing)
            existing.close()


def reset_logging() -> None:
    """Remove the handler :func:`configure_logging` installed and restore structlog defaults."""
    _remove_own_handlers(logging.getLogger())
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def get_logger(name: str | None = None) -> Any:
    """A structlog logger (keyword context, ``.bind()``) that writes through the JSON handler."""
    return structlog.stdlib.get_logger(name)


def bind_context(**values: Any) -> None:
    """Bind ``values`` (e.g. ``correlation_id``) to every line logged from this context on."""
    structlog.contextvars.bind_contextvars(**values)


def unbind_context(*keys: str) -> None:
    """Stop adding ``keys`` to log lines of this context."""
    structlog.contextvars.unbind_contextvars(*keys)


def clear_context() -> None:
    """Drop every value bound in this context."""
    structlog.contextvars.clear_contextvars()


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind ``values`` for the ``with`` block; earlier values of the same keys come back after."""
    with structlog.contextvars.bound_contextvars(**values):
        yield

"""Alert payloads, sink configs and the senders that deliver one alert to one channel.

Three senders, one contract — ``send(alert) -> None`` or raise :class:`AlertDeliveryError`:

- :class:`JsonWebhookSender` POSTs the alert as JSON (``format: json``);
- :class:`SlackWebhookSender` POSTs ``{"text": ..., "blocks": [...]}`` (``format: slack``;
  Slack, Mattermost and other Slack-compatible incoming webhooks);
- :class:`SmtpSender` mails it with :mod:`smtplib` (STARTTLS and login optional; the password is
  read from the environment variable named in the config, at send time).

Errors say whether a retry can help (``retryable``): timeouts, refused connections, HTTP 5xx,
408 and 429 and SMTP 4xx can; other HTTP 4xx, a missing password and SMTP 5xx cannot. No error
text carries a webhook URL's path or query (they hold the token), nor the SMTP password.
"""

from __future__ import annotations

import json
import math
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal, Protocol, get_args
from urllib.parse import urlsplit

import httpx
from pydantic import field_validator, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import TradeforgeError
from tradeforge.monitor.logs import redact_text

__all__ = [
    "Alert",
    "AlertConnectionError",
    "AlertDeliveryError",
    "AlertError",
    "AlertHTTPStatusError",
    "AlertSender",
    "AlertTimeoutError",
    "FieldValue",
    "JsonWebhookSender",
    "Severity",
    "SlackWebhookSender",
    "SmtpSender",
    "SmtpSink",
    "WebhookSink",
    "redact_url",
]

Severity = Literal["info", "warning", "critical"]
FieldValue = str | float | int
SEVERITIES: tuple[str, ...] = get_args(Severity)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_SLACK_TEXT_MAX = 2900
_BODY_EXCERPT = 200


class AlertError(TradeforgeError, ValueError):
    """An alert or alert manager is used with invalid inputs (bad severity, empty key, ...)."""


class AlertDeliveryError(TradeforgeError):
    """One attempt to deliver an alert to one channel failed."""

    def __init__(self, channel: str, message: str, *, retryable: bool) -> None:
        super().__init__(redact_text(f"{channel}: {message}"))
        self.channel = channel
        self.retryable = retryable


class AlertHTTPStatusError(AlertDeliveryError):
    """The webhook answered with a status outside 2xx."""

    def __init__(self, channel: str, message: str, *, status: int) -> None:
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        super().__init__(channel, message, retryable=retryable)
        self.status = status


class AlertTimeoutError(AlertDeliveryError):
    """The channel did not answer within ``timeout_s``."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(channel, message, retryable=True)


class AlertConnectionError(AlertDeliveryError):
    """The channel could not be reached (refused, reset, DNS, TLS)."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(channel, message, retryable=True)


@dataclass(frozen=True, eq=True)
class Alert:
    """One notification. ``key`` deduplicates: the same key inside the cooldown is sent once."""

    key: str
    severity: Severity
    title: str
    text: str = ""
    fields: dict[str, FieldValue] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise AlertError(f"Alert key = {self.key!r}; expected a non-empty string")
        if self.severity not in SEVERITIES:
            raise AlertError(
                f"Alert severity = {self.severity!r}; expected one of {', '.join(SEVERITIES)}"
            )
        if not isinstance(self.title, str) or not self.title.strip():
            raise AlertError(f"Alert title = {self.title!r}; expected a non-empty string")
        if not isinstance(self.text, str):
            raise AlertError(f"Alert text = {self.text!r}; expected a string")
        for name, value in self.fields.items():
            if not isinstance(name, str) or not isinstance(value, str | int | float):
                raise AlertError(
                    f"Alert fields[{name!r}] = {value!r}; expected str keys and str, int or "
                    "float values"
                )
        if self.created_at.tzinfo is None:
            raise AlertError(
                f"Alert created_at = {self.created_at!r} is naive; expected a timezone-aware time"
            )
        object.__setattr__(self, "fields", dict(self.fields))
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))

    def to_json_dict(self) -> dict[str, object]:
        """The JSON webhook body (non-finite floats become strings so the JSON stays valid)."""
        return {
            "source": "tradeforge",
            "key": self.key,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "fields": {name: _json_safe(value) for name, value in self.fields.items()},
            "created_at": self.created_at.isoformat(),
        }


def _json_safe(value: FieldValue) -> FieldValue:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def redact_url(url: str) -> str:
    """``scheme://host[:port]/***``: the path, query and user info of a webhook hold its token."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    hidden = parts.path not in ("", "/") or bool(parts.query) or bool(parts.fragment)
    return f"{parts.scheme or '?'}://{host}" + ("/***" if hidden else "")


class WebhookSink(FrozenConfig):
    """One webhook channel: ``format: json`` (generic) or ``slack`` (Slack-compatible)."""

    name: str
    url: str
    format: Literal["json", "slack"] = "json"

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"webhook name {value!r} is not a channel name; expected 1-64 letters, digits, "
                "'_', '.' or '-' (it becomes a metric label)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"webhook url {redact_url(value)!r} (path hidden) is not usable; expected an "
                "http:// or https:// URL with a host"
            )
        return value


class SmtpSink(FrozenConfig):
    """The e-mail channel. ``password_env`` names the environment variable holding the password."""

    name: str = "email"
    host: str
    port: int = 587
    sender: str
    recipients: list[str]
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"email name {value!r} is not a channel name; expected 1-64 letters, digits, "
                "'_', '.' or '-'"
            )
        return value

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"smtp port {value} is out of range; expected 1..65535")
        return value

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("smtp host is empty; expected a host name or IP address")
        return value

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(f"smtp sender {value!r} is not an e-mail address (no '@')")
        return value

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("smtp recipients is empty; expected at least one e-mail address")
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"smtp recipients {bad!r} are not e-mail addresses (no '@')")
        return value

    @field_validator("password_env")
    @classmethod
    def _check_password_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            # never echo the value: it may be a password pasted in by mistake
            raise ValueError(
                "smtp password_env must be the NAME of an environment variable (letters, digits, "
                "'_'; not starting with a digit), never the password itself"
            )
        return value

    @model_validator(mode="after")
    def _check_login(self) -> SmtpSink:
        if (self.username is None) != (self.password_env is None):
            raise ValueError(
                f"smtp username = {self.username!r} and password_env = {self.password_env!r}: "
                "set both to log in, or neither"
            )
        return self


class AlertSender(Protocol):
    """Delivers one alert to one channel, or raises :class:`AlertDeliveryError`."""

    @property
    def channel(self) -> str: ...

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class _WebhookSender:
    """POST a body built from the alert; 2xx is success."""

    def __init__(
        self, sink: WebhookSink, *, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._sink = sink
        self._shown_url = redact_url(sink.url)
        self._client = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    @property
    def channel(self) -> str:
        return self._sink.name

    @property
    def shown_url(self) -> str:
        """The URL as it may appear in errors and logs."""
        return self._shown_url

    def body(self, alert: Alert) -> dict[str, object]:
        raise NotImplementedError

    def send(self, alert: Alert) -> None:
        payload = json.dumps(self.body(alert), allow_nan=False).encode("utf-8")
        try:
            response = self._client.post(
                self._sink.url,
                content=payload,
                headers={"Content-Type": "application/json", "User-Agent": "tradeforge-alerts"},
            )
        except httpx.TimeoutException as exc:
            raise AlertTimeoutError(
                self.channel, f"POST {self._shown_url} timed out ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise AlertConnectionError(
                self.channel, f"POST {self._shown_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if not 200 <= response.status_code < 300:
            excerpt = response.text[:_BODY_EXCERPT].replace("\n", " ")
            raise AlertHTTPStatusError(
                self.channel,
                f"POST {self._shown_url} returned HTTP {response.status_code}"
                + (f": {excerpt}" if excerpt else ""),
                status=response.status_code,
            )

    def close(self) -> None:
        self._client.close()


class JsonWebhookSender(_WebhookSender):
    """Generic webhook: the alert as a JSON object (see :meth:`Alert.to_json_dict`)."""

    def body(self, alert: Alert) -> dict[str, object]:
        return alert.to_json_dict()


_SLACK_ICON = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackWebhookSender(_WebhookSender):
    """Slack-compatible webhook: ``text`` (the fallback every client shows) plus ``blocks``."""

    def body(self, alert: Alert) -> dict[str, object]:
        head = f"{_SLACK_ICON[alert.severity]} *[{alert.severity.upper()}] {_slack_escape(alert.title)}*"
        text = head + (f"\n{_slack_escape(alert.text)}" if alert.text else "")
        blocks: list[dict[str, object]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SLACK_TEXT_MAX]}}
        ]
        if alert.fields:
            blocks.append(
                {
                    "type": "section",
                    "fields": [
                        {
                            "type": "mrkdwn",
                            "text": f"*{_slack_escape(name)}*\n{_slack_escape(str(value))}"[:1900],
                        }
                        for name, value in list(alert.fields.items())[:10]
                    ],
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"key `{_slack_escape(alert.key)}` · {alert.created_at.isoformat()}",
                    }
                ],
            }
        )
        return {"text": text[:_SLACK_TEXT_MAX], "blocks": blocks}


class SmtpSender:
    """E-mail through an SMTP server (:class:`email.message.EmailMessage`)."""

    def __init__(self, sink: SmtpSink, *, timeout_s: float) -> None:
        self._sink = sink
        self._timeout_s = timeout_s

    @property
    def channel(self) -> str:
        return self._sink.name

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail for ``alert``: subject ``[SEVERITY] title``, plain-text body."""
        message = EmailMessage()
        message["Subject"] = f"[{alert.severity.upper()}] {alert.title}"
        message["From"] = self._sink.sender
        message["To"] = ", ".join(self._sink.recipients)
        lines = [alert.text, ""] if alert.text else []
        lines += [f"{name}: {value}" for name, value in alert.fields.items()]
        lines += ["", f"key: {alert.key}", f"severity: {alert.severity}"]
        lines += [f"created_at: {alert.created_at.isoformat()}"]
        message.set_content("\n".join(lines).strip() + "\n")
        return message

    def _password(self) -> str | None:
        if self._sink.password_env is None:
            return None
        password = os.environ.get(self._sink.password_env)
        if not password:
            raise AlertDeliveryError(
                self.channel,
                f"environment variable {self._sink.password_env} (smtp password_env) is not set; "
                "export the SMTP password there",
                retryable=False,
            )
        return password

    def send(self, alert: Alert) -> None:
        password = self._password()
        where = f"smtp {self._sink.host}:{self._sink.port}"
        try:
            with smtplib.SMTP(self._sink.host, self._sink.port, timeout=self._timeout_s) as smtp:
                if self._sink.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._sink.username is not None and password is not None:
                    smtp.login(self._sink.username, password)
                smtp.send_message(self.message(alert))
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertDeliveryError(
                self.channel, f"{where}: login refused ({exc.smtp_code})", retryable=False
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise AlertDeliveryError(
                self.channel,
                f"{where}: recipients refused: {sorted(exc.recipients)}",
                retryable=False,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise AlertDeliveryError(
                self.channel,
                f"{where}: server answered {exc.smtp_code} {_smtp_text(exc.smtp_error, password)}",
                retryable=400 <= exc.smtp_code < 500,
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise AlertConnectionError(self.channel, f"{where}: disconnected: {exc}") from None
        except smtplib.SMTPException as exc:
            raise AlertDeliveryError(
                self.channel, f"{where}: {type(exc).__name__}: {exc}", retryable=False
            ) from None
        except TimeoutError:
            raise AlertTimeoutError(
                self.channel, f"{where}: no answer within {self._timeout_s} s"
            ) from None
        except ssl.SSLError as exc:
            raise AlertConnectionError(self.channel, f"{where}: TLS failed: {exc}") from None
        except OSError as exc:
            raise AlertConnectionError(
                self.channel, f"{where}: {type(exc).__name__}: {exc.strerror or exc}"
            ) from None

    def close(self) -> None:
        return None


def _smtp_text(raw: bytes | str, password: str | None) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if password:
        text = text.replace(password, "***")
    return text[:_BODY_EXCERPT]

"""In-process alerts: dedup by key with a cooldown, delivered off the caller's thread.

::

    config = AlertsConfig(webhooks=[WebhookSink(name="ops", url=..., format="slack")])
    alerts = AlertManager(config, AlertStore(home / "alerts.sqlite"))
    alerts.notify(Alert(key="kill_switch", severity="critical", title="Trading halted",
                        text="kill switch engaged by operator", fields={"reason": "manual"}))
    ...
    alerts.close()  # waits up to 10 s for queued deliveries

``notify`` never blocks on the network: it checks the cooldown in memory and queues one delivery
per channel. Each channel has its own worker thread, so a dead mail server does not delay the
webhook. A delivery is tried ``retries`` times in all, sleeping ``backoff_s``, then twice that,
and so on between tries; retries stop early on errors that cannot heal (HTTP 4xx other than
408/425/429, refused login, a missing password). Every outcome lands in the :class:`AlertStore`
and is reported to ``on_delivery(channel, outcome)`` (e.g. a Prometheus counter).

The cooldown counts from the last notification that was sent *or attempted* for the key, and
its state lives in the store, so a restart inside the cooldown still suppresses.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tradeforge.core.clock import Clock, LiveClock
from tradeforge.core.config import FrozenConfig
from tradeforge.monitor.alert_sinks import (
    Alert,
    AlertDeliveryError,
    AlertError,
    AlertSender,
    JsonWebhookSender,
    SlackWebhookSender,
    SmtpSender,
    SmtpSink,
    WebhookSink,
    redact_url,
)
from tradeforge.monitor.alert_store import SUPPRESSED_CHANNEL, AlertRecord, AlertStore
from tradeforge.monitor.logs import redact_text, register_secret

__all__ = ["AlertManager", "AlertsConfig", "DeliveryOutcome", "OnDelivery"]

DeliveryOutcome = Literal["sent", "failed", "suppressed"]
OnDelivery = Callable[[str, DeliveryOutcome], None]
NO_CHANNEL = "none"
_log = logging.getLogger(__name__)
_MIN_REGISTERED_PATH = 8


class AlertsConfig(FrozenConfig):
    """Where alerts go and how hard delivery tries.

    ``retries`` is the number of attempts per channel, the first included; the wait between
    attempts starts at ``backoff_s`` and doubles.
    """

    webhooks: list[WebhookSink] = Field(default_factory=list)
    email: SmtpSink | None = None
    cooldown_s: float = 300.0
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    queue_size: int = 1000

    @field_validator("cooldown_s", "backoff_s")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"value {value} must be >= 0 seconds")
        return value

    @field_validator("timeout_s")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"timeout_s {value} must be > 0 seconds")
        return value

    @field_validator("retries")
    @classmethod
    def _check_retries(cls, value: int) -> int:
        if not 1 <= value <= 20:
            raise ValueError(f"retries {value} is out of range; expected 1..20 attempts in all")
        return value

    @field_validator("queue_size")
    @classmethod
    def _check_queue_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"queue_size {value} must be >= 1")
        return value

    @model_validator(mode="after")
    def _unique_channels(self) -> AlertsConfig:
        names = [sink.name for sink in self.webhooks]
        if self.email is not None:
            names.append(self.email.name)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        reserved = sorted({name for name in names if name in (SUPPRESSED_CHANNEL, NO_CHANNEL)})
        if duplicates or reserved:
            raise ValueError(
                f"channel names {duplicates or reserved} clash; every webhook name and the "
                f"email name must be unique and not {NO_CHANNEL!r}"
            )
        return self


def build_senders(config: AlertsConfig) -> list[AlertSender]:
    """One sender per configured channel, webhooks first."""
    senders: list[AlertSender] = []
    for sink in config.webhooks:
        cls = SlackWebhookSender if sink.format == "slack" else JsonWebhookSender
        senders.append(cls(sink, timeout_s=config.timeout_s))
    if config.email is not None:
        senders.append(SmtpSender(config.email, timeout_s=config.timeout_s))
    return senders


class _Lane:
    """A worker thread draining a bounded FIFO of tasks; knows when it is idle."""

    def __init__(self, name: str, maxsize: int, *, drain_on_stop: bool) -> None:
        self.name = name
        self._drain_on_stop = drain_on_stop
        self._maxsize = maxsize
        self._tasks: deque[Callable[[], None]] = deque()
        self._pending = 0
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"alerts-{name}", daemon=True)
        self._thread.start()

    def submit(self, task: Callable[[], None]) -> bool:
        with self._cond:
            if self._stopping or self._pending >= self._maxsize:
                return False
            self._tasks.append(task)
            self._pending += 1
            self._cond.notify_all()
        return True

    def wait_idle(self, deadline: float) -> bool:
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._tasks and not self._stopping:
                    self._cond.wait()
                if self._stopping and (not self._drain_on_stop or not self._tasks):
                    if self._tasks:
                        _log.warning(
                            "alert lane %s stopped with %d delivery(ies) abandoned",
                            self.name,
                            len(self._tasks),
                        )
                    self._pending -= len(self._tasks)
                    self._tasks.clear()
                    self._cond.notify_all()
                    return
                task = self._tasks.popleft()
            try:
                task()
            except Exception:
                _log.exception("alert lane %s: task failed", self.name)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()


class AlertManager:
    """Deduplicates alerts by key and delivers them in the background.

    ``clock`` (default: the wall clock) times the cooldown and the delivery stamps.
    ``on_delivery(channel, outcome)`` runs on a worker thread after every outcome; suppressed
    alerts report channel ``"*"``. ``senders`` replaces the senders built from ``config``
    (tests, custom channels).
    """

    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStore,
        clock: Clock | None = None,
        on_delivery: OnDelivery | None = None,
        *,
        senders: list[AlertSender] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock: Clock = clock if clock is not None else LiveClock()
        self._on_delivery = on_delivery
        self._cooldown = timedelta(seconds=config.cooldown_s)
        self._register_secrets(config)
        self._senders = senders if senders is not None else build_senders(config)
        self._lock = threading.Lock()
        self._closed = False
        self._last = store.last_notified()
        self._stop = threading.Event()
        self._book = _Lane("store", 4 * config.queue_size, drain_on_stop=True)
        self._lanes = {
            sender.channel: _Lane(sender.channel, config.queue_size, drain_on_stop=False)
            for sender in self._senders
        }

    @staticmethod
    def _register_secrets(config: AlertsConfig) -> None:
        """Make the log redaction hide webhook tokens (httpx logs request URLs)."""
        for sink in config.webhooks:
            shown = redact_url(sink.url)
            if shown.endswith("/***"):
                secret_part = sink.url[len(shown) - len("/***") :]
                if len(secret_part) >= _MIN_REGISTERED_PATH:
                    register_secret(secret_part)
        email = config.email
        if email is not None and email.password_env is not None:
            password = os.environ.get(email.password_env, "")
            if len(password) >= 4:
                register_secret(password)

    @property
    def channels(self) -> list[str]:
        return [sender.channel for sender in self._senders]

    def notify(self, alert: Alert) -> bool:
        """Queue ``alert`` for every channel; False when its key is inside the cooldown.

        Never blocks on the network or the disk. A suppressed alert is recorded as such.
        """
        if not isinstance(alert, Alert):
            raise AlertError(f"notify(alert = {alert!r}); expected an Alert")
        alert_id = uuid.uuid4().hex
        with self._lock:
            if self._closed:
                _log.warning("alert %s dropped: the alert manager is closed", alert.title)
                return False
            now = self._clock.now()
            last = self._last.get(alert.key)
            suppressed = last is not None and now - last < self._cooldown
            if not suppressed:
                self._last[alert.key] = now
        if suppressed:
            self._book.submit(lambda: self._record_suppressed(alert, alert_id))
            return False
        self._book.submit(lambda: self._store.mark_notified(alert.key, now))
        if not self._lanes:
            self._book.submit(lambda: self._record_no_channel(alert, alert_id))
        for sender in self._senders:
            lane = self._lanes[sender.channel]
            if not lane.submit(partial(self._deliver, sender, alert, alert_id)):
                error = f"{sender.channel}: delivery queue full ({lane.pending} pending); dropped"
                _log.error("alert %s: %s", alert.key, error)
                self._book.submit(partial(self._finish, alert, alert_id, sender.channel, 0, error))
        return True

    def _deliver(self, sender: AlertSender, alert: Alert, alert_id: str) -> None:
        error: str | None = None
        attempts = 0
        for attempt in range(self._config.retries):
            if attempt:
                delay = self._config.backoff_s * 2 ** (attempt - 1)
                if self._stop.wait(delay):
                    error = f"{error} (retries abandoned: alert manager closing)"
                    break
            attempts += 1
            try:
                sender.send(alert)
            except AlertDeliveryError as exc:
                error = str(exc)
                if not exc.retryable:
                    break
            except Exception as exc:  # a sender bug must not kill the lane
                error = redact_text(f"{sender.channel}: {type(exc).__name__}: {exc}")
                break
            else:
                error = None
                break
        self._finish(alert, alert_id, sender.channel, attempts, error)

    def _finish(
        self, alert: Alert, alert_id: str, channel: str, attempts: int, error: str | None
    ) -> None:
        status: DeliveryOutcome = "sent" if error is None else "failed"
        if error is not None:
            _log.warning(
                "alert %s not delivered to %s after %d attempt(s): %s",
                alert.key,
                channel,
                attempts,
                error,
            )
        self._store.record(
            alert,
            alert_id=alert_id,
            channel=channel,
            status=status,
            attempts=attempts,
            error=error,
            delivered_at=self._clock.now(),
        )
        self._report(channel, status)

    def _record_suppressed(self, alert: Alert, alert_id: str) -> None:
        self._store.record(
            alert, alert_id=alert_id, channel=SUPPRESSED_CHANNEL, status="suppressed", attempts=0
        )
        self._report(SUPPRESSED_CHANNEL, "suppressed")

    def _record_no_channel(self, alert: Alert, alert_id: str) -> None:
        self._finish(alert, alert_id, NO_CHANNEL, 0, "no alert channel is configured")

    def _report(self, channel: str, outcome: DeliveryOutcome) -> None:
        if self._on_delivery is None:
            return
        try:
            self._on_delivery(channel, outcome)
        except Exception:
            _log.exception("alert on_delivery callback failed for %s/%s", channel, outcome)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery and record is done; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        # channels first: their outcomes are written through their own lane, then the book
        done = all(lane.wait_idle(deadline) for lane in self._lanes.values())
        return self._book.wait_idle(deadline) and done

    def close(self, timeout: float = 10.0) -> bool:
        """Stop accepting alerts, give queued ones up to ``timeout`` seconds, stop the workers.

        Returns False when deliveries were still pending at the deadline (they are abandoned;
        retries waiting on their back-off give up at once). The store stays open: its owner
        closes it.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        drained = self.flush(timeout)
        self._stop.set()
        for lane in (*self._lanes.values(), self._book):
            lane.stop(timeout=max(self._config.timeout_s, 1.0))
        for sender in self._senders:
            sender.close()
        return drained

    def recent(self, limit: int = 50) -> list[AlertRecord]:
        """The newest delivery records, newest first (for the dashboard)."""
        return self._store.recent(limit)

    def failures(self, limit: int = 50) -> list[AlertRecord]:
        """The newest failed deliveries, newest first."""
        return self._store.failures(limit)

    def __enter__(self) -> AlertManager:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

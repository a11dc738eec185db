"""JSON logs: one object per line with ts/level/event/run_id, stdlib too, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradeforge.core.errors import ConfigError
from tradeforge.monitor.logs import (
    bind_context,
    clear_context,
    configure_logging,
    get_logger,
    log_context,
    redact_text,
    register_secret,
    reset_logging,
)

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ROUTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "apscheduler")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_level = root.level
    saved_routed = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in ROUTED
    }
    out = io.StringIO()
    configure_logging(run_id="run-42", stream=out)
    yield out
    clear_context()
    reset_logging()
    root.setLevel(saved_level)
    for name, (handlers, propagate) in saved_routed.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_json_with_the_four_fields(stream: io.StringIO) -> None:
    log = get_logger("tradeforge.test")
    before = datetime.now(UTC)
    log.info("bar decided", symbol="AAPL", qty=3)
    log.warning("multi\nline %s", "message")
    logging.getLogger("apscheduler.scheduler").warning("job missed")
    after = datetime.now(UTC)
    raw = stream.getvalue().splitlines()
    parsed = lines(stream)
    assert len(raw) == 3
    for line in parsed:
        assert {"ts", "level", "event", "run_id"} <= set(line)
        assert line["run_id"] == "run-42"
        assert TS.match(line["ts"]), line["ts"]
        stamp = datetime.fromisoformat(line["ts"])
        assert before - timedelta(milliseconds=1) <= stamp <= after + timedelta(milliseconds=1)
    assert parsed[0] == {
        "ts": parsed[0]["ts"],
        "level": "info",
        "event": "bar decided",
        "run_id": "run-42",
        "logger": "tradeforge.test",
        "symbol": "AAPL",
        "qty": 3,
    }
    assert parsed[1]["event"] == "multi\nline message"
    assert (parsed[2]["level"], parsed[2]["logger"]) == ("warning", "apscheduler.scheduler")
    assert list(parsed[0])[:4] == ["ts", "level", "event", "run_id"]


def test_uvicorn_stdlib_logs_are_json_even_with_its_own_handlers() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    saved = (list(uvicorn_error.handlers), uvicorn_error.propagate)
    plain = io.StringIO()
    uvicorn_error.addHandler(logging.StreamHandler(plain))  # what uvicorn's dictConfig installs
    uvicorn_error.propagate = False
    out = io.StringIO()
    try:
        configure_logging(run_id="run-7", stream=out)
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200
        )
    finally:
        reset_logging()
        uvicorn_error.handlers[:] = saved[0]
        uvicorn_error.propagate = saved[1]
    first, second = lines(out)
    assert plain.getvalue() == ""
    assert first["event"] == "Uvicorn running on http://127.0.0.1:8000"
    assert (first["logger"], first["level"], first["run_id"]) == ("uvicorn.error", "info", "run-7")
    assert second["event"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'


def test_bound_context_appears_on_structlog_and_stdlib_lines(stream: io.StringIO) -> None:
    log = get_logger("tradeforge.execution")
    bind_context(strategy="ppo", model_version="7")
    with log_context(correlation_id="tf-ppo-20261130T1430-0"):
        log.info("order submitted")
        logging.getLogger("httpx").info("HTTP Request: POST /v2/orders")
    log.info("after")
    first, second, third = lines(stream)
    for line in (first, second):
        assert line["correlation_id"] == "tf-ppo-20261130T1430-0"
        assert (line["strategy"], line["model_version"]) == ("ppo", "7")
    assert "correlation_id" not in third
    assert third["strategy"] == "ppo"


def test_worker_threads_carry_run_id(stream: io.StringIO) -> None:
    thread = threading.Thread(target=lambda: logging.getLogger("alerts").error("sink down"))
    thread.start()
    thread.join()
    [line] = lines(stream)
    assert (line["run_id"], line["event"], line["level"]) == ("run-42", "sink down", "error")


def test_registered_secret_and_bearer_values_never_appear(stream: io.StringIO) -> None:
    api_key = "tf-api-7Hq2ZxVb91"
    register_secret(api_key)
    log = get_logger("tradeforge.serve")
    log.info(f"service key is {api_key}")
    log.info("request", headers={"Authorization": "Bearer abc"}, note=f"x-{api_key}-y")
    logging.getLogger("uvicorn.error").warning("client sent Authorization: Bearer abc")
    logging.getLogger("httpx").info("retry with %s", {"api_key": api_key, "n": 1})
    try:
        raise RuntimeError(f"auth failed for {api_key}")
    except RuntimeError:
        log.exception("broker call failed")
    try:
        raise ValueError(f"job saw {api_key}")
    except ValueError:
        logging.getLogger("apscheduler.executors").exception("job crashed")
    logging.getLogger("tradeforge.x").info("extra", extra={"password": "pw1", "strategy": "ppo"})
    text = stream.getvalue()
    assert api_key not in text
    assert "Bearer abc" not in text
    parsed = lines(stream)
    assert len(parsed) == 7
    assert parsed[0]["event"] == "service key is [REDACTED]"
    assert parsed[1]["headers"] == {"Authorization": "[REDACTED]"}
    assert parsed[1]["note"] == "x-[REDACTED]-y"
    assert parsed[2]["event"] == "client sent Authorization: Bearer [REDACTED]"
    assert "RuntimeError: auth failed for [REDACTED]" in parsed[4]["exception"]
    assert "ValueError: job saw [REDACTED]" in parsed[5]["exception"]
    assert (parsed[6]["password"], parsed[6]["strategy"]) == ("[REDACTED]", "ppo")


def test_values_under_secret_looking_keys_are_redacted(stream: io.StringIO) -> None:
    get_logger("t").info(
        "config loaded",
        api_key="k1",
        ALPACA_SECRET_KEY="s1",
        smtp_password="p1",
        auth={"Token": "t1", "user": "bot"},
        symbols=["AAPL"],
    )
    [line] = lines(stream)
    assert line["api_key"] == "[REDACTED]"
    assert line["ALPACA_SECRET_KEY"] == "[REDACTED]"
    assert line["smtp_password"] == "[REDACTED]"
    assert line["auth"] == {"Token": "[REDACTED]", "user": "bot"}
    assert line["symbols"] == ["AAPL"]


def test_alpaca_key_patterns_are_redacted_but_hex_hashes_stay() -> None:
    key_id = "PK" + "A1B2C3D4E5F6G7H8J9"  # PK + 18 upper-case alphanumerics
    secret = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d"  # 40 mixed-case characters
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = redact_text(f"id={key_id} secret {secret} commit {sha} url ?api_key=zz&x=1")
    assert text == f"id=[REDACTED] secret [REDACTED] commit {sha} url ?api_key=[REDACTED]&x=1"


def test_configure_twice_adds_no_duplicate_handler(stream: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging(run_id="run-43", stream=second)
    get_logger("t").info("once")
    ours = [
        h for h in logging.getLogger().handlers if getattr(h, "_tradeforge_json_handler", False)
    ]
    assert len(ours) == 1
    assert stream.getvalue() == ""
    [line] = lines(second)
    assert (line["event"], line["run_id"]) == ("once", "run-43")


def test_level_filters_structlog_and_stdlib(stream: io.StringIO) -> None:
    configure_logging(run_id="run-42", level="WARNING", stream=stream)
    get_logger("t").info("hidden")
    logging.getLogger("uvicorn.error").info("hidden too")
    get_logger("t").warning("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]


def test_console_mode_is_not_json_and_still_redacts(stream: io.StringIO) -> None:
    out = io.StringIO()
    configure_logging(run_id="run-42", stream=out, json=False)
    get_logger("t").info("hello", token="t0psecret")
    text = out.getvalue()
    assert "hello" in text
    assert "t0psecret" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"level = 'LOUD' is not a logging level"):
        configure_logging(run_id="r", level="LOUD")
    with pytest.raises(ConfigError, match=r"run_id = ''"):
        configure_logging(run_id="")
    with pytest.raises(ConfigError, match=r"length 2"):
        register_secret("ab")

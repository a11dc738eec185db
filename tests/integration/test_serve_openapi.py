"""Schemathesis against the real service's OpenAPI: generated requests to every operation, with
and without credentials, never get a 5xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alpaca")

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tradeforge.execution.node import NodeConfig
from tradeforge.experiment.paper import PaperConfig
from tradeforge.serve.app import create_app
from tradeforge.serve.auth import Authenticator
from tradeforge.serve.config import ReplayConfig, ServeConfig
from tradeforge.serve.runtime import TradingService
from tradeforge.testing.programs import numpy_program

KEY = "schemathesis-key-0123456789"
EXAMPLES = 25


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("openapi")
    config = ServeConfig(policy=str(Path(state) / "unused"), state_dir=str(state),
                         replay=ReplayConfig(start="2010-01-04", end="2010-03-31",
                                             bar_interval_s=0.2),
                         paper=PaperConfig(node=NodeConfig(strategy_id="swing")))  # fmt: skip
    with TradingService(config, numpy_program()) as service:
        deadline = time.monotonic() + 60.0  # /readyz answers 503 until the broker connects
        while not service.readiness()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        yield TestClient(create_app(service, Authenticator(KEY)))


def _check(client: TestClient, operation: Any, authed: bool, failures: list[str]) -> None:
    """Send EXAMPLES generated requests to ``operation``; collect any 5xx in ``failures``."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        headers = {k: v for k, v in kwargs.pop("headers").items()
                   if k.lower() not in ("connection", "accept-encoding")}  # fmt: skip
        if authed:
            headers["X-API-Key"] = KEY
        answer = client.request(headers=headers, follow_redirects=False, **kwargs)
        if answer.status_code >= 500:
            failures.append(f"{kwargs['method']} {kwargs['url']} -> "
                            f"{answer.status_code}: {answer.text[:200]}")  # fmt: skip
        if not authed and operation.path != "/healthz":
            assert answer.status_code == 401, (operation.path, answer.status_code)

    run()


def test_no_generated_request_gets_a_server_error(client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    for operation in operations:
        for authed in (True, False):
            _check(client, operation, authed, failures)
    assert failures == []

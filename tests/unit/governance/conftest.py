"""Fixtures for the governance tests: a real sqlite MLflow store, an audit log, and the tiny
trained PPO artifact of the agent tests (``agent_helpers``, reused, trained once a session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agents"))

from agent_helpers import (  # noqa: F401 (fixtures are found by name)
    _mlflow_template,
    artifact_copy,
    mlflow_uri,
    trained_artifact,
)


@pytest.fixture
def audit(tmp_path: Path):
    from tradeforge.audit import AuditLog

    log = AuditLog(tmp_path / "audit" / "audit.db")
    yield log
    log.close()

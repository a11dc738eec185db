"""Fixtures for the agent tests; the helpers themselves live in ``agent_helpers`` (a unique module
name, so test files can import them whichever other ``conftest`` was imported first)."""

from agent_helpers import (  # noqa: F401 (fixtures are found by name)
    _mlflow_template,
    _one_torch_thread,
    artifact_copy,
    mlflow_uri,
    train_factory,
    trained_artifact,
    val_factory,
)

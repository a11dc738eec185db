"""A real MLflow sqlite registry for tests of the model lifecycle and the ``models`` CLI."""

from __future__ import annotations

from pathlib import Path


def make_registry_store(path: Path, name: str = "spy-ppo", versions: int = 3,
                        tags: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A migrated sqlite store at ``path`` with model ``name`` v1..v``versions`` (each with
    ``tags``; its source a folder next to the store) and the last version as ``challenger``."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(name)
    for version in range(1, versions + 1):
        client.create_model_version(name, source=str(path.parent / f"v{version}"),
                                    tags=dict(tags or {}))  # fmt: skip
    client.set_registered_model_alias(name, "challenger", str(versions))
    return path


__all__ = ["make_registry_store"]

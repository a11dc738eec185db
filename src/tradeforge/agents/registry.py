"""MLflow model registry for policy artifacts: register, list versions, aliases, load.

A registered version points at the artifact directory logged to an MLflow run (``policy/``), so
the registry holds exactly the directory :func:`tradeforge.agents.load_policy` reads, manifest
included. Three aliases have a meaning in tradeforge: ``challenger`` (trained, waiting for
review), ``champion`` (the one to trade) and ``previous_champion`` (the champion that the last
:meth:`PolicyRegistry.promote` replaced, which :meth:`PolicyRegistry.rollback` restores). Works
with a local store (``sqlite:///.../mlflow.db``) and ``mlflow-skinny``; no MLflow server is
needed. The default store, shared by experiment runs (``tracking: {register: true}``) and
``tradeforge models``, is :func:`default_registry_uri`: ``$TRADEFORGE_REGISTRY_URI``, else
``sqlite:///$TRADEFORGE_HOME/registry/mlflow.db`` (``~/.tradeforge`` when unset).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeforge.agents.artifact import read_json, verify_manifest
from tradeforge.core.errors import AgentError, ArtifactError

if TYPE_CHECKING:
    from tradeforge.agents.ensemble import EnsemblePolicy
    from tradeforge.agents.policy import LoadedPolicy

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
SHADOW = "shadow"
CANARY = "canary"
LIFECYCLE_ALIASES = (CHALLENGER, SHADOW, CANARY, CHAMPION, PREVIOUS_CHAMPION)
UNKNOWN = "unknown"
ARTIFACT_PATH = "policy"
REGISTRY_URI_ENV = "TRADEFORGE_REGISTRY_URI"
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
_VERSION_ALIAS = re.compile(r"^v\d+$")


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version of a policy."""

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


def default_registry_uri() -> str:
    """``$TRADEFORGE_REGISTRY_URI`` when set, else a sqlite store in the tradeforge home:
    ``sqlite:///$TRADEFORGE_HOME/registry/mlflow.db`` (``~/.tradeforge`` when unset), an
    absolute path, so every run and ``tradeforge models`` find it from any directory."""
    explicit = os.environ.get(REGISTRY_URI_ENV)
    if explicit:
        return explicit
    home = Path(os.environ.get("TRADEFORGE_HOME") or Path.home() / ".tradeforge")
    return f"sqlite:///{(home / 'registry' / 'mlflow.db').resolve()}"


def _mlflow_error() -> type[Exception]:
    from mlflow.exceptions import MlflowException

    return MlflowException


class PolicyRegistry:
    """Policy versions in an MLflow model registry.

    ``uri`` is the tracking store (default :func:`default_registry_uri`), also used as registry
    store unless ``registry_uri`` is given. Runs created by :meth:`register` (when the artifact
    was not logged by training already) go to ``experiment``, their files under
    ``artifact_root`` (default: an ``mlartifacts`` folder next to a sqlite database). A sqlite
    store that does not exist is created (its folder too), unless ``create=False``: then it is
    refused, for commands that only read or move aliases.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        registry_uri: str | None = None,
        experiment: str = "tradeforge",
        artifact_root: Path | None = None,
        create: bool = True,
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:  # pragma: no cover - mlflow-skinny is a dependency
            raise AgentError(f"PolicyRegistry needs mlflow-skinny installed: {exc}") from None
        uri = uri or default_registry_uri()
        for store in dict.fromkeys((uri, registry_uri or uri)):
            path = _sqlite_path(store)
            if path is None or path.is_file():
                continue
            if not create:
                raise AgentError(
                    f"registry uri = {store!r}: no MLflow store at {str(path)!r}; expected an "
                    f"existing store (register a model first, or pass another uri / set "
                    f"{REGISTRY_URI_ENV})"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self.registry_uri = registry_uri or uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.client = MlflowClient(tracking_uri=uri, registry_uri=self.registry_uri)

    # -- writing ----------------------------------------------------------------------------------
    def register(
        self,
        artifact_dir: Path,
        name: str,
        *,
        run_id: str | None = None,
        alias: str | None = CHALLENGER,
        tags: dict[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Register a verified artifact directory as a new version of ``name``.

        With ``run_id`` (e.g. ``TrainResult.mlflow_run_id``) the version points at that run's
        ``policy/`` artifacts, logging them first when the run has none; without, a new run is
        created that holds them. ``alias`` (default ``challenger``) is moved to the new version.
        """
        artifact_dir = Path(artifact_dir)
        files = verify_manifest(artifact_dir)
        spec = read_json(artifact_dir, "spec.json")
        metrics = (
            read_json(artifact_dir, "metrics.json")
            if (artifact_dir / "metrics.json").is_file()
            else {}
        )
        error = _mlflow_error()
        try:
            if run_id is None:
                run_id = self._new_run(artifact_dir)
            elif not self.client.list_artifacts(run_id, ARTIFACT_PATH):
                self.client.log_artifacts(run_id, str(artifact_dir), ARTIFACT_PATH)
            self._ensure_model(name)
            version_tags = {
                "algo": str(spec.get("algo")),
                "feature_hash": str(spec.get("feature_hash")),
                **_metric_tags(metrics),
                **provenance_tags(artifact_dir, files),
                **(tags or {}),
            }
            mv = self.client.create_model_version(
                name,
                source=f"runs:/{run_id}/{ARTIFACT_PATH}",
                run_id=run_id,
                tags=version_tags,
            )
        except error as exc:
            raise AgentError(f"cannot register {str(artifact_dir)!r} as {name!r}: {exc}") from exc
        version = int(mv.version)
        if alias is not None:
            self.set_alias(name, alias, version)
        log.info("registered %s version %d (run %s)", name, version, run_id)
        return self.get(name, version)

    def set_tags(self, name: str, version: int, tags: dict[str, str]) -> None:
        """Set (or overwrite) tags on ``version`` of ``name`` (e.g. gate results)."""
        self.get(name, version)
        try:
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(version), key, str(value))
        except _mlflow_error() as exc:
            raise AgentError(f"cannot tag {name} v{version}: {exc}") from exc

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` (e.g. ``challenger`` or ``champion``) at ``version`` of ``name``."""
        if not _ALIAS.match(alias) or _VERSION_ALIAS.match(alias) or alias == "latest":
            raise AgentError(
                f"alias = {alias!r} is not valid; expected letters, digits, '_' or '-' starting "
                "with a letter (not 'latest' or 'v<number>'), e.g. 'challenger' or 'champion'"
            )
        self.get(name, version)  # names the known versions when it does not exist
        try:
            self.client.set_registered_model_alias(name, alias, str(version))
        except _mlflow_error() as exc:
            raise AgentError(f"cannot set alias {alias!r} on {name} v{version}: {exc}") from exc

    def promote(self, name: str, version: int | str | None = None) -> ModelVersionInfo:
        """Make ``version`` (a number or an alias; default: the current challenger) the champion.

        The champion it replaces (if another version) becomes ``previous_champion``, so that
        :meth:`rollback` can restore it. Returns the new champion.
        """
        target = self.get(name, CHALLENGER if version is None else version).version
        current = self.aliases(name).get(CHAMPION)
        if current is not None and current != target:
            self.set_alias(name, PREVIOUS_CHAMPION, current)
        self.set_alias(name, CHAMPION, target)
        return self.get(name, target)

    def rollback(self, name: str) -> ModelVersionInfo:
        """Point ``champion`` back at ``previous_champion`` and drop that alias.

        One step back: a second rollback needs another :meth:`promote` first. Returns the
        restored champion; raises :class:`AgentError` naming the aliases when there is no
        ``previous_champion``.
        """
        aliases = self.aliases(name)
        previous = aliases.get(PREVIOUS_CHAMPION)
        if previous is None:
            raise AgentError(
                f"{name!r} has no alias {PREVIOUS_CHAMPION!r} to roll back to; aliases: "
                f"{_alias_list(aliases)}; expected a champion replaced by an earlier promote"
            )
        self.set_alias(name, CHAMPION, previous)
        self.delete_alias(name, PREVIOUS_CHAMPION)
        log.info("rolled back %s: champion v%s -> v%d", name, aliases.get(CHAMPION), previous)
        return self.get(name, previous)

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(name, alias)
        except _mlflow_error() as exc:
            raise AgentError(f"cannot delete alias {alias!r} of {name!r}: {exc}") from exc

    # -- reading ----------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Registered model names."""
        return sorted(m.name for m in self.client.search_registered_models())

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version number of ``name`` (e.g. ``{"champion": 2, "challenger": 3}``)."""
        self._require_model(name)
        return self._aliases(name)

    def versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of ``name``, oldest first."""
        self._require_model(name)
        found = self.client.search_model_versions(f"name = '{_quote(name)}'")
        aliases = self._aliases(name)
        out = [_info(mv, aliases) for mv in found]
        return sorted(out, key=lambda v: v.version)

    def get(self, name: str, ref: int | str) -> ModelVersionInfo:
        """A version by number (``3``, ``"3"``) or alias (``"champion"``)."""
        self._require_model(name)
        aliases = self._aliases(name)
        error = _mlflow_error()
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            try:
                mv = self.client.get_model_version(name, str(int(ref)))
            except error:
                known = [v.version for v in self.versions(name)]
                raise AgentError(
                    f"{name!r} has no version {ref}; versions: {known or 'none'}"
                ) from None
            return _info(mv, aliases)
        if ref not in aliases:
            raise AgentError(f"{name!r} has no alias {ref!r}; aliases: {_alias_list(aliases)}")
        return self.get(name, aliases[ref])

    def download(self, name: str, ref: int | str, dst: Path) -> Path:
        """Copy a version's artifact directory to ``dst`` and verify its manifest."""
        info = self.get(name, ref)
        dst = Path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        try:
            import mlflow.artifacts

            path = mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=str(dst), tracking_uri=self.uri
            )
        except _mlflow_error() as exc:
            raise ArtifactError(
                f"cannot download {name} v{info.version} from {info.source}: {exc}"
            ) from exc
        local = Path(path)
        verify_manifest(local)
        return local

    def load(
        self, name: str, ref: int | str = CHAMPION, dst: Path | None = None
    ) -> LoadedPolicy | EnsemblePolicy:
        """Download (to ``dst`` or a temporary folder) and load a registered policy."""
        import tempfile

        from tradeforge.agents.policy import load_policy

        target = Path(dst) if dst is not None else Path(tempfile.mkdtemp(prefix="tradeforge-"))
        return load_policy(self.download(name, ref, target))

    # -- internals --------------------------------------------------------------------------------
    def _new_run(self, artifact_dir: Path) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            root = self.artifact_root or _default_artifact_root(self.uri)
            location = root.resolve().as_uri() if root is not None else None
            experiment_id = self.client.create_experiment(
                self.experiment, artifact_location=location
            )
        else:
            experiment_id = found.experiment_id
        run = self.client.create_run(experiment_id, run_name=f"register-{artifact_dir.name}")
        run_id: str = run.info.run_id
        self.client.log_artifacts(run_id, str(artifact_dir), ARTIFACT_PATH)
        self.client.set_terminated(run_id)
        return run_id

    def _ensure_model(self, name: str) -> None:
        if not self._exists(name):
            self.client.create_registered_model(name)

    def _exists(self, name: str) -> bool:
        try:
            self.client.get_registered_model(name)
        except _mlflow_error():
            return False
        return True

    def _require_model(self, name: str) -> None:
        if not self._exists(name):
            raise AgentError(
                f"registered model {name!r} not found in {self.registry_uri}; "
                f"known: {', '.join(self.names()) or 'none'}"
            )

    def _aliases(self, name: str) -> dict[str, int]:
        model = self.client.get_registered_model(name)
        return {str(k): int(v) for k, v in dict(model.aliases or {}).items()}


def provenance_tags(artifact_dir: Path, files: dict[str, str] | None = None) -> dict[str, str]:
    """Tags that say where a version came from, set by :meth:`PolicyRegistry.register`:

    * ``git_commit``: the commit of the tradeforge working tree registering it (``unknown``
      outside a git checkout); ``artifact_git_commit``: the one recorded at training
      (``version.json``), when known;
    * ``data_checksum``: SHA-256 over the manifest digests of ``data.json`` (the train,
      validation and test ranges the policy saw) and ``config.json`` (its training
      configuration, data section included): it names the data the policy was fitted on by
      its ranges and source, not by the bytes of the bars;
    * ``feature_pipeline_hash``: the fitted pipeline's ``content_hash`` (from ``spec.json``);
    * ``registered_by``: the operating-system user registering it (the trainer, whom a second
      approver must differ from).
    """
    import getpass
    import hashlib

    from tradeforge.agents.artifact import git_sha

    directory = Path(artifact_dir)
    files = files if files is not None else verify_manifest(directory)
    digest = hashlib.sha256()
    for name in ("data.json", "config.json"):
        digest.update(f"{name}:{files.get(name, 'absent')}\n".encode())
    spec = read_json(directory, "spec.json")
    version = read_json(directory, "version.json") if (directory / "version.json").is_file() else {}
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a container without a passwd entry)
        user = UNKNOWN
    out = {
        "git_commit": git_sha() or UNKNOWN,
        "data_checksum": digest.hexdigest(),
        "feature_pipeline_hash": str(spec.get("feature_hash") or UNKNOWN),
        "registered_by": user or UNKNOWN,
    }
    trained_at = version.get("git_sha") if isinstance(version, dict) else None
    if trained_at:
        out["artifact_git_commit"] = str(trained_at)
    return out


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` uri (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _default_artifact_root(uri: str) -> Path | None:
    path = _sqlite_path(uri)
    return path.parent / "mlartifacts" if path is not None else None


def _alias_list(aliases: dict[str, int]) -> str:
    return ", ".join(f"{k}=v{v}" for k, v in sorted(aliases.items())) or "none"


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _metric_tags(metrics: Any) -> dict[str, str]:
    validation = metrics.get("validation", {}) if isinstance(metrics, dict) else {}
    return {f"validation.{k}": f"{float(v):.6g}" for k, v in validation.items()}


def _info(mv: Any, aliases: dict[str, int]) -> ModelVersionInfo:
    version = int(mv.version)
    return ModelVersionInfo(
        name=str(mv.name),
        version=version,
        run_id=mv.run_id,
        source=str(mv.source),
        aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
        tags={str(k): str(v) for k, v in dict(mv.tags or {}).items()},
        created_at=(
            datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, tz=UTC)
            if getattr(mv, "creation_timestamp", None)
            else None
        ),
    )


__all__ = [
    "CANARY",
    "CHALLENGER",
    "CHAMPION",
    "LIFECYCLE_ALIASES",
    "PREVIOUS_CHAMPION",
    "REGISTRY_URI_ENV",
    "SHADOW",
    "ModelVersionInfo",
    "PolicyRegistry",
    "default_registry_uri",
    "provenance_tags",
]

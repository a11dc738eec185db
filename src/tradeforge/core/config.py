"""Configuration base: frozen pydantic models that reject unknown keys, loaded from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tradeforge.core.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="FrozenConfig")


class FrozenConfig(BaseModel):
    """Base for every ``<Component>Config``: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """The keys the section holding ``loc`` accepts (None when the section is not a model)."""
    current = model
    for part in loc[:-1]:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        info = current.model_fields.get(str(part))
        current = _model_in(info.annotation) if info is not None else None
    return sorted(current.model_fields) if current is not None else None


def format_validation_error(
    error: ValidationError, source: str, model: type[BaseModel] | None = None
) -> str:
    """One readable line per problem, each naming the key path, the value and the expectation."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        value = item.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, tuple(item["loc"]))
            message = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        lines.append(f"{source}: {path} = {shown}: {message}")
    return "\n".join(lines)


def validate_config(model: type[ConfigT], raw: Any, source: str = "config") -> ConfigT:
    """Validate ``raw`` into ``model``, raising :class:`ConfigError` that names every bad key."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, model)) from None


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path`` (an empty file is ``{}``)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(file)!r} does not exist; pass the path to a YAML file")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def load_yaml_config(path: str | Path, model: type[ConfigT]) -> ConfigT:
    """Read a YAML file into a frozen config model."""
    return validate_config(model, read_yaml_mapping(path), source=str(path))


def load_yaml_section(
    path: str | Path, model: type[ConfigT], key: str, overrides: dict[str, Any] | None = None
) -> ConfigT:
    """``model`` from a YAML file that holds it at the top level or under ``key``, with
    ``overrides`` (top-level keys of the model) applied before validation."""
    raw = read_yaml_mapping(path)
    section = isinstance(raw.get(key), dict)
    body = {**(raw[key] if section else raw), **(overrides or {})}
    return validate_config(model, body, source=f"{path}:{key}" if section else str(path))

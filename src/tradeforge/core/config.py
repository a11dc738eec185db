"""Configuration base: frozen pydantic models that reject unknown keys, loaded from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tradeforge.core.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="FrozenConfig")


class FrozenConfig(BaseModel):
    """Base for every ``<Component>Config``: immutable, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def format_validation_error(error: ValidationError, source: str) -> str:
    """One readable line per problem, each naming the key path, the value and the expectation."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        value = item.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"{source}: {path} = {shown}: {item['msg']}")
    return "\n".join(lines)


def validate_config(model: type[ConfigT], raw: Any, source: str = "config") -> ConfigT:
    """Validate ``raw`` into ``model``, raising :class:`ConfigError` that names every bad key."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_yaml_config(path: str | Path, model: type[ConfigT]) -> ConfigT:
    """Read a YAML file into a frozen config model."""
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
    return validate_config(model, raw, source=str(file))

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tradeforge.core.clock import TestClock
from tradeforge.core.config import FrozenConfig, load_yaml_config
from tradeforge.core.errors import ConfigError


class Inner(FrozenConfig):
    window: int = 10


class Outer(FrozenConfig):
    name: str
    inner: Inner = Inner()


def test_unknown_key_names_the_key_path(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("name: x\ninner:\n  windw: 3\n")
    with pytest.raises(ConfigError, match=r"inner\.windw"):
        load_yaml_config(file, Outer)


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("name: x\ninner:\n  window: ten\n")
    with pytest.raises(ConfigError, match=r"inner\.window = 'ten'"):
        load_yaml_config(file, Outer)


def test_config_is_frozen_and_loads(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("name: x\ninner:\n  window: 5\n")
    cfg = load_yaml_config(file, Outer)
    assert cfg.inner.window == 5
    with pytest.raises(ValueError, match="frozen"):
        cfg.name = "y"  # type: ignore[misc]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml_config(tmp_path / "nope.yaml", Outer)


def test_test_clock_moves_only_forward() -> None:
    clock = TestClock(datetime(2020, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(days=1)) == datetime(2020, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(days=-1))
    with pytest.raises(ValueError, match="naive"):
        TestClock(datetime(2020, 1, 1))


def test_unknown_nested_key_lists_the_allowed_keys_of_its_section() -> None:
    from pydantic import Field

    from tradeforge.core.config import FrozenConfig, validate_config

    class Inner(FrozenConfig):
        window: int = 10
        action: str = "discrete"

    class Outer(FrozenConfig):
        env: Inner = Inner()
        items: list[Inner] = Field(default_factory=list)

    with pytest.raises(
        ConfigError, match=r"env\.windw = 10: unknown key; allowed keys: action, window"
    ):
        validate_config(Outer, {"env": {"windw": 10}})
    with pytest.raises(
        ConfigError, match=r"items\.0\.x = 1: unknown key; allowed keys: action, window"
    ):
        validate_config(Outer, {"items": [{"x": 1}]})

"""``agent.device``: auto picks CUDA only where torch sees it; cuda without a GPU is a ConfigError
naming the field; a config written for a GPU still loads on a machine without one."""

from __future__ import annotations

import pytest
import torch

from tradeforge.agents.config import AgentConfig
from tradeforge.core.config import validate_config
from tradeforge.core.errors import ConfigError


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_device_defaults_to_auto_and_auto_is_cpu_without_a_gpu(no_gpu: None) -> None:
    agent = AgentConfig()
    assert agent.device == "auto"
    assert agent.torch_device() == "cpu"
    assert AgentConfig(device="cpu").torch_device() == "cpu"


def test_auto_is_cuda_where_torch_sees_a_gpu(a_gpu: None) -> None:
    assert AgentConfig(device="auto").torch_device() == "cuda"
    assert AgentConfig(device="cpu").torch_device() == "cpu"  # an explicit cpu stays on cpu
    assert AgentConfig(device="cuda").torch_device() == "cuda"


def test_cuda_without_a_gpu_names_the_field_and_value(no_gpu: None) -> None:
    agent = AgentConfig(device="cuda")  # loads (an artifact's config from a GPU machine)
    with pytest.raises(ConfigError, match=r"agent\.device = 'cuda': torch sees no CUDA device"):
        agent.torch_device()


def test_auto_matches_this_machine() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert AgentConfig().torch_device() == expected


def test_an_unknown_device_is_rejected_at_load() -> None:
    with pytest.raises(ConfigError, match="device"):
        validate_config(AgentConfig, {"device": "tpu"}, source="agent")

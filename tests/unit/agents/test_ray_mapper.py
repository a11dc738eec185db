"""``RayMapper``: one Ray task per item, results in the items' order, a task's error raised as
itself, tasks that map again from inside a task (a fold mapping its seeds) on 2 CPUs."""

from __future__ import annotations

import sys
import time

import pytest

from tradeforge.agents.mapper import RayMapper, task_name
from tradeforge.core.errors import AgentError

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """2 CPUs; this module's functions ship by value (workers cannot import a test module)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20)
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _slow_square(x: int) -> int:
    time.sleep(0.05 * (3 - x))  # the first item finishes last
    return x * x


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise AgentError(f"item = {x}: expected anything but 2")
    time.sleep(0.2)
    return x


def _pid_pairs(x: int) -> list[tuple[int, int]]:
    """From inside a task: map two more tasks; (item, pid) of each."""
    return RayMapper().map(_item_pid, [10 * x, 10 * x + 1])


def _item_pid(x: int) -> tuple[int, int]:
    import os

    time.sleep(0.1)
    return x, os.getpid()


def test_ray_mapper_keeps_the_items_order(local_ray):
    assert RayMapper().map(_slow_square, [0, 1, 2, 3]) == [0, 1, 4, 9]
    assert RayMapper().map(_slow_square, []) == []
    offset = 7
    assert RayMapper().map(lambda x: x + offset, [1, 2]) == [8, 9]  # closures ship too


def test_ray_mapper_raises_the_tasks_own_error(local_ray):
    with pytest.raises(AgentError, match="item = 2: expected anything but 2") as info:
        RayMapper().map(_fail_on_two, [0, 1, 2, 3])
    assert type(info.value) is AgentError  # the task's exception, not a Ray wrapper
    assert isinstance(info.value.__cause__, ray.exceptions.RayTaskError)  # remote traceback
    assert "_fail_on_two" in str(info.value.__cause__)
    assert RayMapper().map(_slow_square, [2]) == [4]  # the instance still works afterwards


def test_tasks_map_tasks_of_their_own_on_two_cpus(local_ray):
    import os

    # 3 outer tasks each waiting on 2 inner ones: only possible if a waiting task frees its CPU
    out = RayMapper().map(_pid_pairs, [0, 1, 2])
    assert [[x for x, _ in pairs] for pairs in out] == [[0, 1], [10, 11], [20, 21]]
    assert os.getpid() not in {pid for pairs in out for _, pid in pairs}


def test_ray_mapper_needs_an_initialised_ray(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(AgentError, match="Ray is not initialised in this process"):
        RayMapper().map(_slow_square, [1])


def test_task_names_say_what_runs():
    assert task_name(_slow_square) == f"{__name__}._slow_square"
    assert task_name(RayMapper()) == "tradeforge.agents.mapper.RayMapper"

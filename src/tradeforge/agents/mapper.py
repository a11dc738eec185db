"""Where independent training work runs: a ``Mapper`` applies one function to many items.

``train_agent`` maps its seeds and ``train_ensemble`` its members x seeds through a mapper:
:class:`SerialMapper` (the default) calls the function here, item after item, as a list
comprehension would; :class:`RayMapper` runs each call as a Ray task (Ray core) on the Ray
instance this process is connected to, one CPU each, no retries, and returns the results in
the items' order. A task's exception is raised here as itself (its remote traceback chained
as the cause) and the other tasks still running are cancelled.

The function and the items must pickle (Ray uses cloudpickle: closures are fine); the function
is put in the object store once and shared by every task. A Ray task may map again (a fold task
mapping its seeds): a task blocked waiting for its own tasks gives its CPU back meanwhile.

Example::

    import ray
    from tradeforge.agents.mapper import RayMapper

    ray.init(num_cpus=2)
    squares = RayMapper().map(lambda x: x * x, [1, 2, 3])  # [1, 4, 9]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tradeforge.core.errors import AgentError

T = TypeVar("T")
R = TypeVar("R")


class Mapper(Protocol):
    """``map(fn, items)`` -> ``[fn(item) for item in items]``, wherever the calls run."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


@dataclass(frozen=True)
class SerialMapper:
    """Every call in this process, one after another (today's behaviour; the default)."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


@dataclass(frozen=True)
class RayMapper:
    """Every call as a Ray task (``num_cpus`` each, ``max_retries`` retries on a worker crash)
    on the Ray instance already initialised in this process (a driver after ``ray.init`` or a
    Ray task); results in the items' order."""

    num_cpus: float = 1.0
    max_retries: int = 0

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        ray = _initialised_ray()
        if not items:
            return []
        task = ray.remote(num_cpus=self.num_cpus, max_retries=self.max_retries)(_apply)
        task = task.options(name=task_name(fn))
        fn_ref = ray.put(fn)
        refs = [task.remote(fn_ref, item) for item in items]
        index = {ref: k for k, ref in enumerate(refs)}
        results: dict[int, R] = {}
        pending = list(refs)
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            try:
                results[index[finished[0]]] = ray.get(finished[0])
            except ray.exceptions.RayTaskError as err:
                for ref in pending:
                    ray.cancel(ref)
                cause = getattr(err, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from err
                raise
        return [results[k] for k in range(len(refs))]


def task_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of the function (or of a callable object's class): the tasks' name
    in Ray's dashboard and timeline."""
    named: Any = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(named, '__module__', '?')}.{getattr(named, '__qualname__', repr(named))}"


def _initialised_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise AgentError(
            "RayMapper: the ray package is not installed; expected "
            "`pip install 'tradeforge[scale]'` (ray core)"
        ) from exc
    if not ray.is_initialized():
        raise AgentError(
            "RayMapper.map: Ray is not initialised in this process; expected ray.init() (or "
            "tradeforge.experiment.compute.ray_session) before mapping"
        )
    return ray


@dataclass
class RecordingMapper:
    """:class:`SerialMapper` that also keeps every item it was asked to map, in order (to see
    which members and seeds a run fans out, e.g. in tests)."""

    items: list[Any] = field(default_factory=list)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        self.items.extend(items)
        return SerialMapper().map(fn, items)


__all__ = ["Mapper", "RayMapper", "RecordingMapper", "SerialMapper", "task_name"]

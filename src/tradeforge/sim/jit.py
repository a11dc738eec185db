"""``jit``: numba compilation whose on-disk cache is keyed on the kernel sources.

numba's own ``cache=True`` keys a cached function on its own file only: a cached caller keeps
running the old copy of a callee in another file (the env kernel inlines
``sim.kernel.account_step``) after that file changes. ``jit`` adds a digest of every source file
the function's module depends on to the cache key: the module itself and, transitively, every
module of the same top-level package it imports (read from the import statements with ``ast``,
so nothing is imported). A changed rule anywhere in those files changes the key, the old
entry is never loaded, and the kernel is compiled afresh.

numba is optional: without it ``jit`` returns the function unchanged (plain Python). Nothing is
compiled, read or written at decoration (import) time: the cache locates its folder, and the
digest is computed, on the first call.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast, overload

_F = TypeVar("_F", bound=Callable[..., Any])

_numba: Any
try:  # numba is an optional accelerator
    import numba as _numba
except ImportError:  # pragma: no cover - exercised only without numba
    _numba = None

NUMBA_AVAILABLE: bool = _numba is not None


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (None when it is not a plain source module)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported_modules(path: Path, module: str, root: str) -> set[str]:
    """Modules under the package ``root`` that the source at ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != root:
                continue
            for alias in node.names:
                # ``from pkg import sub`` names a submodule when pkg/sub.py exists; any other
                # name comes from ``base`` itself
                sub = f"{base}.{alias.name}"
                found.add(sub if _module_file(sub) else base)
    return found


@functools.cache
def kernel_sources(module: str) -> tuple[Path, ...]:
    """The source files ``module``'s compiled code may depend on: its own file and those of the
    modules of its top-level package it imports, transitively (sorted, without duplicates)."""
    root = module.split(".")[0]
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imported_modules(path, name, root) - seen.keys())
    return tuple(sorted(set(seen.values())))


def sources_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (any change in any of them changes it)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def module_digest(module: str) -> str:
    """``sources_digest(kernel_sources(module))``: the part of the cache key ``jit`` adds."""
    return sources_digest(kernel_sources(module))


def _source_keyed_cache(py_func: Callable[..., Any], options: tuple[Any, ...] = ()) -> Any:
    """A numba ``FunctionCache`` whose index key also holds ``module_digest`` of the function's
    module and the compile ``options`` (e.g. the error model: the same source compiled two ways
    is two entries), created on first use (numba's own cache locator touches the disk)."""
    from numba.core import caching

    function_cache: Any = caching.FunctionCache

    class SourceKeyedCache(function_cache):  # type: ignore[misc]
        def _index_key(self, sig: Any, codegen: Any) -> Any:
            parent: Any = super()
            base = parent._index_key(sig, codegen)
            return (*base, ("kernel-sources", module_digest(py_func.__module__)), options)

    make_cache: Any = SourceKeyedCache

    class LazyCache:
        """Builds the cache on the dispatcher's first load or save."""

        def __init__(self) -> None:
            self._cache: Any = None

        @property
        def real(self) -> Any:
            if self._cache is None:
                self._cache = make_cache(py_func)
            return self._cache

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            return self.real.load_overload(sig, target_context)

        def save_overload(self, sig: Any, data: Any) -> None:
            self.real.save_overload(sig, data)

        def flush(self) -> None:
            self.real.flush()

        @property
        def cache_path(self) -> str:
            return str(self.real.cache_path)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name == "_cache":
                raise AttributeError(name)
            return getattr(self.real, name)

    return LazyCache()


@overload
def jit(fn: _F, *, error_model: str = ..., inline: str = ...) -> _F: ...


@overload
def jit(fn: None = None, *, error_model: str = ..., inline: str = ...) -> Callable[[_F], _F]: ...


def jit(fn: _F | None = None, *, error_model: str = "python", inline: str = "never") -> Any:
    """``numba.njit(nogil=True)`` with the source-keyed disk cache (module docstring) when numba
    is importable, else ``fn`` unchanged. Compilation happens on the first call.

    Use as ``@jit`` or ``@jit(error_model="numpy", inline="always")``: with numpy's error model a
    float division by zero gives inf/NaN as in numpy (no Python exception check), which also
    lets LLVM vectorize loops that divide; kernels that must equal numpy code bit for bit use
    it. ``inline="always"`` inlines the function into compiled callers (numba IR level): no call
    and no reference counting of its array arguments per call, which dominates small per-row
    steps; it still compiles on its own when called from Python.
    """

    def wrap(func: _F) -> _F:
        if _numba is None:  # pragma: no cover - exercised only without numba
            return func
        compiled: Any = _numba.njit(nogil=True, error_model=error_model, inline=inline)(func)
        options = (("error_model", error_model), ("inline", inline))
        compiled._cache = _source_keyed_cache(func, options)
        return cast(_F, compiled)

    if fn is None:
        return wrap
    return wrap(fn)


__all__ = ["NUMBA_AVAILABLE", "jit", "kernel_sources", "module_digest", "sources_digest"]

"""The compiled-kernel cache is keyed on the kernel sources: a changed rule is never run stale.

numba's own cache keys a function on its own file only, so a cached caller kept the old copy of
a callee it inlines from another file. ``tradeforge.sim.jit`` adds a digest of every source file
of the package the function's module imports (transitively) to the key.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import pytest

from tradeforge.sim.jit import NUMBA_AVAILABLE, kernel_sources, module_digest, sources_digest

SIM = Path(importlib.import_module("tradeforge.sim").__file__ or "").parent


def test_kernel_sources_follow_the_imports_of_the_kernels() -> None:
    env = kernel_sources("tradeforge.envs.kernel")
    backtest = kernel_sources("tradeforge.backtest.engine_kernel")
    for needed in ("kernel.py", "costs.py", "config.py", "jit.py"):
        assert SIM / needed in env
        assert SIM / needed in backtest
    assert SIM.parent / "envs" / "kernel.py" in env
    assert SIM.parent / "backtest" / "engine_kernel.py" in backtest
    assert SIM / "step.py" not in env  # only what the kernels import
    assert module_digest("tradeforge.envs.kernel") == sources_digest(env)


def test_digest_changes_with_any_source_text(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("X = 1\n")
    b.write_text("Y = 2\n")
    before = sources_digest([a, b])
    assert sources_digest([b, a]) == before  # order does not matter
    b.write_text("Y = 3\n")
    assert sources_digest([a, b]) != before


RULES = """
from tradeforge.sim.jit import jit


@jit
def rule(x):
    return x + {step}
"""

LOOP = """
from tradeforge.sim.jit import jit
from {pkg}.rules import rule


@jit
def run(x):
    return rule(x) * 2.0
"""


def _fresh_import(pkg: str) -> object:
    for name in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return importlib.import_module(f"{pkg}.loop")


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
def test_an_edited_callee_recompiles_its_cached_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = f"tf_jit_probe_{uuid.uuid4().hex[:8]}"
    root = tmp_path / pkg
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "rules.py").write_text(RULES.format(step="1.0"))
    (root / "loop.py").write_text(LOOP.format(pkg=pkg))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loop = _fresh_import(pkg)
        assert loop.run(1.0) == 4.0  # type: ignore[attr-defined]  # compiled and cached
        assert root / "rules.py" in kernel_sources(f"{pkg}.loop")
        # the rule changes in its own file; the caller's file does not
        (root / "rules.py").write_text(RULES.format(step="10.0"))
        loop = _fresh_import(pkg)
        assert loop.run(1.0) == 22.0  # type: ignore[attr-defined]  # not the cached 4.0
        # unchanged sources load from the cache again
        loop = _fresh_import(pkg)
        assert loop.run(1.0) == 22.0  # type: ignore[attr-defined]
        assert sum(loop.run.stats.cache_hits.values()) == 1  # type: ignore[attr-defined]
    finally:
        for name in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
            del sys.modules[name]


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
def test_jit_takes_numpys_error_model() -> None:
    """``@jit(error_model="numpy")`` divides by zero as numpy does; plain ``@jit`` raises."""
    from tradeforge.sim.jit import jit

    def ratio(a: float, b: float) -> float:
        return a / b

    assert jit(error_model="numpy")(ratio)(1.0, 0.0) == float("inf")
    with pytest.raises(ZeroDivisionError):
        jit(ratio)(1.0, 0.0)

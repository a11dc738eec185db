"""The feature graph's buffer pool (``features.workspace``): it hands back what it was given,
refuses anything that something still in use can read, and never changes a value: transforms
on a pool full of garbage give the same bits, and the caller's inputs and saved states are
never pooled."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tradeforge.data.bundled import load_bundled_panel
from tradeforge.features import FeaturePipeline, FeatureSpec, kernels, workspace
from tradeforge.features.builder import Builder
from tradeforge.features.graph import Context

SHAPE = (300, 40)  # 96,000 bytes: above MIN_POOLED_BYTES


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    workspace.clear()
    yield
    workspace.clear()


def _poison_pool() -> int:
    """Fill every pooled buffer with a value no feature can produce; returns how many."""
    pool = workspace._pool()
    count = 0
    for stack in pool.free.values():
        for arr in stack:
            arr.fill(-7.25e300)
            count += 1
    return count


def test_take_returns_released_buffers_and_clear_frees_them() -> None:
    a = workspace.take(SHAPE)
    assert a.shape == SHAPE
    assert a.dtype == np.float64
    assert a.flags.c_contiguous
    assert workspace.release([a], []) == 1
    assert workspace.pooled_bytes() == a.nbytes
    assert workspace.take(SHAPE) is a  # reused, no fresh memory
    assert workspace.pooled_bytes() == 0
    assert workspace.take(SHAPE) is not a
    workspace.release([a], [])
    workspace.clear()
    assert workspace.pooled_bytes() == 0
    assert workspace.take(SHAPE) is not a
    assert workspace.take((5,)).shape == (5,)  # other ranks: plain np.empty


def test_release_refuses_what_may_still_be_read() -> None:
    base = np.zeros(SHAPE)
    refused = [
        base[:, :20],  # a view (and not contiguous)
        np.zeros(SHAPE, dtype=np.float32),
        np.zeros((10, 10)),  # too small to bother
        np.zeros(SHAPE, order="F"),
        np.zeros(SHAPE[0] * SHAPE[1]),  # 1-d
    ]
    ro = np.zeros(SHAPE)
    ro.flags.writeable = False
    refused.append(ro)
    assert workspace.release(refused, []) == 0
    kept = np.zeros(SHAPE)
    view = kept[10:20]  # something in use reads part of it
    assert workspace.release([kept], workspace.in_use([view])) == 0
    twice = np.zeros(SHAPE)
    assert workspace.release([twice, twice], []) == 0  # listed twice: never pooled twice
    assert workspace.pooled_bytes() == 0
    assert workspace.release([base], workspace.in_use([kept, "not an array", np.empty(0)])) == 1


def test_release_stops_at_the_byte_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = [np.zeros(SHAPE) for _ in range(4)]
    monkeypatch.setattr(workspace, "MAX_POOLED_BYTES", 2 * arrays[0].nbytes)
    assert workspace.release(arrays, []) == 2
    assert workspace.pooled_bytes() == 2 * arrays[0].nbytes


def test_a_new_shape_takes_over_a_full_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [np.zeros(SHAPE) for _ in range(2)]
    monkeypatch.setattr(workspace, "MAX_POOLED_BYTES", 2 * old[0].nbytes)
    assert workspace.release(old, []) == 2
    new = np.zeros((SHAPE[0] + 1, SHAPE[1]))
    assert workspace.release([new], []) == 1  # the earlier shape's buffers were dropped
    assert workspace.pooled_bytes() == new.nbytes
    assert workspace.take(SHAPE) is not old[0]
    assert workspace.take(new.shape) is new


def test_transforms_on_a_garbage_pool_give_the_same_bits() -> None:
    panel = load_bundled_panel(["SP500", "AAPL", "MSFT"])
    spec = FeatureSpec.default().model_copy(update={"scaler": "none"})
    first = FeaturePipeline(spec).transform(panel).values
    if kernels.available():  # the compiled path takes and gives back buffers
        assert workspace.pooled_bytes() > 0
    assert _poison_pool() == sum(len(s) for s in workspace._pool().free.values())
    second = FeaturePipeline(spec).transform(panel).values
    np.testing.assert_array_equal(first.view(np.int64), second.view(np.int64))
    assert not np.shares_memory(first, second)
    assert not (second == -7.25e300).any()
    head, state = FeaturePipeline(spec).raw(panel.iloc(slice(0, 5000)))
    _poison_pool()
    tail, _ = FeaturePipeline(spec).raw(panel.iloc(slice(5000, None)), state)
    both = np.concatenate([head, tail])
    np.testing.assert_array_equal(both.view(np.int64), first.view(np.int64))


@pytest.mark.parametrize("with_same", [True, False])
def test_inputs_outputs_and_states_are_never_pooled(with_same: bool) -> None:
    """A graph whose map returns its input unchanged (an output, or an intermediate dropped
    after its last user), a lag and a window as outputs: after the run, poisoning the pool
    changes none of the caller's arrays."""
    rng = np.random.default_rng(2)
    close = 100.0 + rng.normal(size=SHAPE).cumsum(axis=0)
    b = Builder()
    c = b.close()
    same = b.map("same", lambda x: x, c)  # the very input array, as a "new" value
    lagged = b.lag(same, 3)
    logret = b.log_return(1)
    mean = b.mean(b.map("pos", lambda x: np.maximum(x, 0.0), logret, kernel="pos"), 5)
    outputs = [same, lagged, mean] if with_same else [lagged, mean]
    ctx = Context({"close": close}, None)
    snapshot = close.copy()
    values, state = b.graph.run(ctx, outputs)
    kept = [v.copy() for v in values]
    saved = {k: {f: a.copy() for f, a in st.items()} for k, st in state.items()}
    if kernels.available():
        assert workspace.pooled_bytes() > 0  # the dropped intermediates were pooled
    _poison_pool()
    np.testing.assert_array_equal(close, snapshot)
    if with_same:
        assert values[0] is close  # the map's output is the input itself: never pooled
    for got, want in zip(values, kept, strict=True):
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
    for key, node_state in state.items():
        for name, arr in node_state.items():
            np.testing.assert_array_equal(arr, saved[key][name], err_msg=f"{key} {name}")

"""Reusable float64 buffers for the feature graph's large intermediate arrays.

A batch transform of a large panel creates dozens of (T, N) intermediates (each 5 MB for 500
symbols x 1,258 bars). Fresh memory from the operating system costs a page fault and a page of
zeroes per 4 KiB on first touch, and the C allocator hands large freed blocks back to the system
when a transform ends, so every transform paid that again: about 40% of the default set's CPU
time on such a panel, more than the arithmetic of several features. The compiled kernels
(``features.kernels``) take their output buffers from a small per-thread pool (:func:`take`)
and the graph gives back the intermediates it drops (:func:`release`), so a second transform of
the same shape touches no fresh pages. Values are never affected: a buffer is handed out only
to be overwritten entirely.

What is pooled: C-contiguous, 2-d float64 arrays that own their memory, between
``MIN_POOLED_BYTES`` and ``MAX_ARRAY_BYTES`` each, up to ``MAX_POOLED_BYTES`` per thread
(about 50 intermediates of the 500 x 1,258 benchmark; when a buffer would not fit, those of
other shapes are dropped first, so a new panel shape takes over the pool). ``release`` refuses any array whose
memory overlaps one that stays in use (the caller names them: the graph's inputs, its live
values and every saved state), so a buffer is never pooled while something can still read it.
:func:`clear` frees this thread's pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from tradeforge.core.types import FloatArray

MIN_POOLED_BYTES = 1 << 16  # smaller arrays come cheaply from the allocator's free lists
MAX_ARRAY_BYTES = 1 << 26  # larger ones are not kept (64 MiB)
MAX_POOLED_BYTES = 1 << 28  # per thread (256 MiB)

_LOCAL = threading.local()


class _Pool:
    def __init__(self) -> None:
        self.free: dict[tuple[int, int], list[FloatArray]] = {}
        self.nbytes = 0

    def drop_other_shapes(self, key: tuple[int, int]) -> None:
        for other in [k for k in self.free if k != key]:
            self.nbytes -= sum(a.nbytes for a in self.free.pop(other))


def _pool() -> _Pool:
    pool: _Pool | None = getattr(_LOCAL, "pool", None)
    if pool is None:
        pool = _Pool()
        _LOCAL.pool = pool
    return pool


def take(shape: tuple[int, ...]) -> FloatArray:
    """An uninitialised C-contiguous float64 array of ``shape`` (a pooled one when this thread
    has one of that shape; the caller overwrites every element)."""
    if len(shape) == 2:
        pool = _pool()
        key = (int(shape[0]), int(shape[1]))
        stack = pool.free.get(key)
        if stack:
            arr = stack.pop()
            pool.nbytes -= arr.nbytes
            return arr
    return np.empty(shape)


def _bounds(a: np.ndarray) -> tuple[int, int]:
    """[low, high) byte addresses a non-empty array's elements can touch."""
    lo = hi = int(a.ctypes.data)
    if a.flags.c_contiguous:
        return lo, lo + a.nbytes
    for n, s in zip(a.shape, a.strides, strict=True):
        if s >= 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    return lo, hi + a.itemsize


def in_use(arrays: Iterable[object]) -> list[tuple[int, int]]:
    """The memory ranges of ``arrays`` (anything that is not a non-empty ndarray is skipped),
    for :func:`release`'s ``keep``."""
    return [_bounds(a) for a in arrays if isinstance(a, np.ndarray) and a.size]


def poolable(a: object) -> bool:
    """Whether ``release`` may keep ``a`` at all (before the overlap check)."""
    return (
        isinstance(a, np.ndarray)
        and a.dtype == np.float64
        and a.ndim == 2
        and a.flags.owndata
        and a.flags.c_contiguous
        and a.flags.writeable
        and MIN_POOLED_BYTES <= a.nbytes <= MAX_ARRAY_BYTES
    )


def release(arrays: Iterable[object], keep: list[tuple[int, int]]) -> int:
    """Give ``arrays`` (no longer used by the caller) back to this thread's pool, except those
    that cannot be pooled or whose memory overlaps a range of ``keep`` (:func:`in_use` of
    everything that stays in use) or another array of ``arrays``. Returns how many were
    pooled."""
    chosen: list[np.ndarray] = [a for a in arrays if isinstance(a, np.ndarray) and poolable(a)]
    if not chosen:
        return 0
    ranges = [_bounds(a) for a in chosen]
    pool = _pool()
    pooled = 0
    for i, a in enumerate(chosen):
        lo, hi = ranges[i]
        if any(lo < k_hi and k_lo < hi for k_lo, k_hi in keep):
            continue
        if any(lo < o_hi and o_lo < hi for j, (o_lo, o_hi) in enumerate(ranges) if j != i):
            continue
        key = (a.shape[0], a.shape[1])
        if pool.nbytes + a.nbytes > MAX_POOLED_BYTES:
            pool.drop_other_shapes(key)  # buffers of an earlier panel's shape go first
            if pool.nbytes + a.nbytes > MAX_POOLED_BYTES:
                break
        pool.free.setdefault(key, []).append(a)
        pool.nbytes += a.nbytes
        pooled += 1
    return pooled


def pooled_bytes() -> int:
    """Bytes this thread's pool holds."""
    return _pool().nbytes


def clear() -> None:
    """Free every buffer this thread's pool holds."""
    _LOCAL.pool = _Pool()


__all__ = [
    "MAX_ARRAY_BYTES",
    "MAX_POOLED_BYTES",
    "MIN_POOLED_BYTES",
    "clear",
    "in_use",
    "poolable",
    "pooled_bytes",
    "release",
    "take",
]

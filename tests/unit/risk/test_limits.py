"""tradeforge.risk: the projection onto position, gross, long-only and turnover limits, for one
decision and for a whole weights path (NaN = hold)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tradeforge.risk
from tradeforge.core.errors import TradeforgeError
from tradeforge.risk import RiskError, RiskLimits, project_path, project_weights, violations

TOL = 1e-9


def check_row(w: np.ndarray, prev: np.ndarray | None, limits: RiskLimits) -> None:
    """Every limit holds for ``w`` (turnover measured from ``prev``)."""
    if limits.max_position is not None:
        assert np.all(np.abs(w) <= limits.max_position + TOL)
    if limits.long_only:
        assert np.all(w >= -TOL)
    if limits.max_gross is not None:
        assert np.abs(w).sum() <= limits.max_gross + TOL
    if limits.max_turnover is not None and prev is not None:
        assert np.abs(w - prev).sum() <= limits.max_turnover + TOL


limits_strategy = st.builds(
    RiskLimits,
    max_position=st.one_of(st.none(), st.floats(0.05, 2.0)),
    max_gross=st.one_of(st.none(), st.floats(0.1, 3.0)),
    max_turnover=st.one_of(st.none(), st.floats(0.01, 2.0)),
    long_only=st.booleans(),
)
vectors = st.integers(1, 8).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-10, 10), min_size=n, max_size=n),
        st.lists(st.floats(-10, 10), min_size=n, max_size=n),
    )
)


@st.composite
def paths(draw: st.DrawFn, nan: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """A (T, N) weights path, some rows all-NaN and some cells NaN, and an optional start."""
    t, n = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    w = draw(hnp.arrays(np.float64, (t, n), elements=st.floats(-3, 3)))
    if nan:
        cells = draw(hnp.arrays(np.bool_, (t, n), elements=st.booleans()))
        rows = draw(hnp.arrays(np.bool_, t, elements=st.booleans()))
        w[cells & draw(st.booleans())] = np.nan
        w[rows] = np.nan
    initial = draw(st.one_of(st.none(), hnp.arrays(np.float64, n, elements=st.floats(-3, 3))))
    return w, initial


def _reference_of(initial: np.ndarray | None, n: int, limits: RiskLimits) -> np.ndarray:
    if initial is None:
        return np.zeros(n)
    return project_weights(initial, None, limits.model_copy(update={"max_turnover": None}))


# -- one decision ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(vectors, limits_strategy)
def test_projection_never_exceeds_limits_and_leaves_feasible_targets_alone(pair, limits):
    target, raw_prev = (np.array(v) for v in pair)
    prev = project_weights(raw_prev, None, limits)  # a feasible previous portfolio
    check_row(prev, None, limits)
    w = project_weights(target, prev, limits)
    check_row(w, prev, limits)
    np.testing.assert_allclose(project_weights(w, prev, limits), w, atol=1e-9)  # idempotent
    assert violations(w, prev, limits) == {"position": 0, "gross": 0, "turnover": 0}


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(0.1, 3.0))
def test_gross_projection_is_the_nearest_feasible_point(pair, gross):
    target = np.array(pair[0])
    limits = RiskLimits(max_position=1.0, max_gross=gross)
    w = project_weights(target, None, limits)
    rng = np.random.default_rng(0)
    # no random feasible point near it is closer to the target than the projection
    others = project_weights(w + rng.normal(0, 0.3, size=(200, w.size)), None, limits)
    distances = np.linalg.norm(target - others, axis=1)
    assert np.linalg.norm(target - w) <= distances.min() + 1e-7


def test_projection_examples():
    limits = RiskLimits(max_position=0.5, max_gross=1.0)
    np.testing.assert_allclose(
        project_weights(np.array([2.0, -2.0, 0.1]), None, limits), [0.5, -0.5, 0.0], atol=1e-12
    )
    np.testing.assert_allclose(project_weights(np.array([0.9, 0.3]), None, limits), [0.5, 0.3])
    # gross 1.4 > 1: soft threshold by 0.2 (the Euclidean projection), not a rescale
    np.testing.assert_allclose(
        project_weights(np.array([0.5, 0.9]), None, RiskLimits(max_gross=1.0)), [0.3, 0.7]
    )
    np.testing.assert_allclose(
        project_weights(np.array([0.3, -0.2]), None, RiskLimits(long_only=True)), [0.3, 0.0]
    )
    turn = RiskLimits(max_turnover=0.2)
    np.testing.assert_allclose(
        project_weights(np.array([1.0, 0.0]), np.array([0.0, 1.0]), turn), [0.1, 0.9]
    )
    batch = project_weights(np.array([[3.0, 0.0], [0.2, 0.2]]), None, RiskLimits(max_position=1.0))
    np.testing.assert_allclose(batch, [[1.0, 0.0], [0.2, 0.2]])
    np.testing.assert_array_equal(project_weights(np.array([np.nan, 0.4]), None, limits), [0, 0.4])
    with pytest.raises(RiskError, match="previous weights have 2 assets; expected 3"):
        project_weights(np.ones(3), np.ones(2), turn)


def test_violations_name_each_broken_limit():
    limits = RiskLimits(max_position=0.5, max_gross=1.0, max_turnover=0.3, long_only=True)
    assert violations(np.array([0.6, 0.6]), np.zeros(2), limits) == {
        "position": 1,
        "gross": 1,
        "turnover": 1,
    }
    assert violations(np.array([0.2, -0.1]), np.array([0.2, 0.0]), limits) == {
        "position": 1,  # short under long_only
        "gross": 0,
        "turnover": 0,
    }
    assert violations(np.array([0.5, 0.5]), None, limits)["turnover"] == 0


def test_limits_reject_non_positive_caps_and_unknown_keys():
    with pytest.raises(ValueError, match="greater than 0"):
        RiskLimits(max_gross=0.0)
    with pytest.raises(ValueError, match="Extra inputs"):
        RiskLimits.model_validate({"max_grss": 1.0})
    assert issubclass(RiskError, TradeforgeError)
    assert issubclass(RiskError, ValueError)


# -- a whole path ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(paths(), limits_strategy)
def test_projected_path_rows_satisfy_every_limit_given_the_previous_row(path, limits):
    weights, initial = path
    out = project_path(weights, limits, initial)
    assert out.shape == weights.shape
    reference = _reference_of(initial, weights.shape[1], limits)
    for t in range(len(weights)):
        if np.isnan(weights[t]).all():
            assert np.isnan(out[t]).all()  # no decision: nothing traded
            continue
        # a NaN cell only where the input held that asset, and it holds the reference weight
        assert not np.any(np.isnan(out[t]) & ~np.isnan(weights[t]))
        effective = np.where(np.isnan(out[t]), reference, out[t])
        check_row(effective, reference, limits)
        reference = effective


@settings(max_examples=200, deadline=None)
@given(paths(), limits_strategy)
def test_path_projection_is_idempotent(path, limits):
    weights, initial = path
    once = project_path(weights, limits, initial)
    twice = project_path(once, limits, initial)
    np.testing.assert_array_equal(np.isnan(twice), np.isnan(once))
    np.testing.assert_allclose(twice, once, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(paths(nan=False), limits_strategy)
def test_path_without_holds_equals_projecting_each_row_from_the_last(path, limits):
    weights, initial = path
    out = project_path(weights, limits, initial)
    prev = initial if initial is not None else np.zeros(weights.shape[1])
    for t in range(len(weights)):
        expected = project_weights(weights[t], prev, limits)
        np.testing.assert_allclose(out[t], expected, atol=1e-12)
        prev = expected


@settings(max_examples=100, deadline=None)
@given(
    st.integers(2, 40),
    st.integers(1, 6),
    st.floats(0.1, 1.0),
    st.floats(0.05, 0.5),
    st.integers(0, 2**32 - 1),
)
def test_a_path_inside_the_limits_is_unchanged(t, n, gross, turnover, seed):
    rng = np.random.default_rng(seed)
    limits = RiskLimits(max_position=gross, max_gross=gross, max_turnover=turnover)
    # each row moves a fraction ``a`` of the way to a random point inside the gross ball: the
    # rows stay inside it (convexity) and each step's turnover is at most a * 2 * 0.99 * gross
    a = min(1.0, 0.99 * turnover / (2 * gross))
    inside = np.zeros((t, n))
    prev = np.zeros(n)
    for i in range(t):
        q = rng.normal(size=n)
        q *= 0.99 * gross * rng.random() / np.abs(q).sum()
        prev = inside[i] = (1 - a) * prev + a * q
    out = project_path(inside, limits)
    np.testing.assert_allclose(out, inside, rtol=0, atol=1e-12)


def test_turnover_path_moves_towards_the_target_by_the_limit_per_bar():
    limits = RiskLimits(max_turnover=0.2)
    target = np.tile([1.0, 0.0], (4, 1))
    # from cash, as a backtest starts: 0.2 of turnover per decision
    np.testing.assert_allclose(
        project_path(target, limits), [[0.2, 0.0], [0.4, 0.0], [0.6, 0.0], [0.8, 0.0]]
    )
    # from a given portfolio: the L1 step is split across both assets
    np.testing.assert_allclose(
        project_path(target[:2], limits, initial=np.array([0.0, 1.0])), [[0.1, 0.9], [0.2, 0.8]]
    )
    # an all-NaN row holds: no trade, and the next decision starts from the last target
    held = np.array([[1.0, 0.0], [np.nan, np.nan], [1.0, 0.0]])
    out = project_path(held, limits)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[[0, 2]], [[0.2, 0.0], [0.4, 0.0]])


def test_held_cells_stay_held_unless_the_limits_need_them_to_move():
    limits = RiskLimits(max_gross=1.0)
    weights = np.array([[0.5, 0.5], [np.nan, 0.4], [np.nan, 0.9], [np.nan, np.nan]])
    out = project_path(weights, limits)
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    # asset 0 held at 0.5: 0.5 + 0.4 is inside the gross limit, the hold stays a hold
    assert np.isnan(out[1, 0])
    assert out[1, 1] == 0.4
    # 0.5 + 0.9 = 1.4 > 1: the held asset must be cut too, so it gets an explicit target
    np.testing.assert_allclose(out[2], [0.3, 0.7])
    assert np.isnan(out[3]).all()
    # a held asset starts from cash when nothing was decided before
    first = project_path(np.array([[np.nan, 2.0]]), RiskLimits(max_position=1.0))
    assert np.isnan(first[0, 0])
    assert first[0, 1] == 1.0


def test_batched_and_row_by_row_paths_agree_on_real_scale_inputs():
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 0.6, size=(500, 8))
    weights[rng.random(500) < 0.3] = np.nan  # hold rows only: the batched path
    limits = RiskLimits(max_position=0.3, max_gross=1.0)
    batched = project_path(weights, limits)
    expected = np.full_like(weights, np.nan)
    for t in np.flatnonzero(~np.isnan(weights).all(axis=1)):
        expected[t] = project_weights(weights[t], None, limits)
    np.testing.assert_array_equal(batched, expected)


def test_path_errors_name_the_bad_input():
    limits = RiskLimits(max_gross=1.0)
    with pytest.raises(RiskError, match=r"shape \(3,\); expected a \(bars, assets\) path"):
        project_path(np.ones(3), limits)
    with pytest.raises(RiskError, match=r"initial weights have shape \(3,\); expected \(2,\)"):
        project_path(np.ones((4, 2)), limits, initial=np.ones(3))
    with pytest.raises(RiskError, match=r"initial weights = \[nan, 0\.0\]; expected finite"):
        project_path(np.ones((4, 2)), limits, initial=np.array([np.nan, 0.0]))
    bad = np.zeros((4, 2))
    bad[2, 1] = np.inf
    with pytest.raises(RiskError, match=r"weights\[2, 1\] = inf; expected a finite weight or NaN"):
        project_path(bad, limits)


def test_the_limits_api_is_exported_from_its_home():
    limits_api = ["RiskError", "RiskLimits", "project_path", "project_weights", "violations"]
    assert set(limits_api) <= set(tradeforge.risk.__all__)
    for name in limits_api:
        home = "tradeforge.core.errors" if name == "RiskError" else "tradeforge.risk.limits"
        assert getattr(tradeforge.risk, name).__module__ == home

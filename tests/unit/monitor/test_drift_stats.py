"""PSI, KS and long-run spread: values checked by hand and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from tradeforge.core.errors import ConfigError
from tradeforge.monitor.stats import (
    bin_fractions,
    effective_size,
    ks_pvalue,
    ks_statistic,
    lag1_autocorrelation,
    long_run_std,
    padded_bins,
    psi,
    psi_columns,
    psi_of,
)


def test_psi_matches_the_formula_by_hand() -> None:
    actual = np.array([0.2, 0.3, 0.5])
    expected = np.array([0.3, 0.3, 0.4])
    by_hand = (0.2 - 0.3) * math.log(0.2 / 0.3) + (0.5 - 0.4) * math.log(0.5 / 0.4)
    assert psi(actual, expected) == pytest.approx(by_hand, rel=1e-12)
    assert psi(expected, expected) == 0.0


def test_psi_floors_an_empty_bin_at_epsilon() -> None:
    value = psi(np.array([0.0, 1.0]), np.array([0.5, 0.5]), epsilon=1e-4)
    by_hand = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2.0)
    assert value == pytest.approx(by_hand, rel=1e-12)


def test_psi_refuses_mismatched_bins() -> None:
    with pytest.raises(ConfigError, match="3 bins, expected has 2"):
        psi(np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.5]))


def test_bin_fractions_use_left_closed_bins_and_drop_nan() -> None:
    edges = np.array([0.0, 1.0])
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan])
    np.testing.assert_allclose(bin_fractions(values, edges), [0.2, 0.4, 0.4])


def test_vectorised_psi_equals_the_per_column_psi_with_padded_bins_and_nans() -> None:
    rng = np.random.default_rng(1)
    edges = [
        np.quantile(rng.standard_normal(1000), np.linspace(0, 1, 11)[1:-1]),
        np.array([0.5]),
        np.array([]),
    ]
    fractions = [np.full(10, 0.1), np.array([0.4, 0.6]), np.array([1.0])]
    data = rng.standard_normal((300, 3)) + np.array([0.3, 0.0, 0.0])
    data[5, 0] = np.nan
    e, f = padded_bins(edges, fractions)
    got = psi_columns(data, e, f)
    want = [psi_of(data[:, j], edges[j], fractions[j], 1e-4) for j in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] > 0.05
    assert got[2] == 0.0
    assert np.isnan(psi_columns(np.full((4, 3), np.nan), e, f)).all()


def test_ks_statistic_against_fine_normal_quantiles_matches_scipy() -> None:
    levels = np.linspace(0, 1, 2001)
    quantiles = sps.norm.ppf(np.clip(levels, 1e-9, 1 - 1e-9))
    x = np.random.default_rng(2).normal(0.2, 1.0, 400)
    want = sps.kstest(x, "norm").statistic
    assert ks_statistic(x, levels, quantiles) == pytest.approx(want, abs=1e-3)


def test_ks_statistic_of_a_point_mass_reference() -> None:
    levels = np.array([0.0, 0.5, 1.0])
    quantiles = np.array([1.0, 1.0, 1.0])
    assert ks_statistic(np.array([1.0, 1.0]), levels, quantiles) == 0.0
    assert ks_statistic(np.array([0.0, 1.0]), levels, quantiles) == pytest.approx(0.5)


def test_ks_pvalue_is_the_exact_one_sample_distribution_at_the_effective_size() -> None:
    assert ks_pvalue(0.1, 200.0) == pytest.approx(sps.kstwo.sf(0.1, 200), rel=1e-12)
    # 400 live values with rho = 0.6 weigh like 100; combined with 10,000 reference values
    n_eff = effective_size(400, 10_000, 0.6)
    assert n_eff == pytest.approx(100 * 10_000 / 10_100)
    assert effective_size(400, 10_000, -0.3) == pytest.approx(400 * 10_000 / 10_400)
    assert math.isnan(ks_pvalue(math.nan, 10))


def test_long_run_std_of_an_ar1_stream_is_near_its_theoretical_value() -> None:
    rng = np.random.default_rng(3)
    rho, n = 0.8, 20_000
    x = np.empty(n)
    x[0] = 0.0
    for t in range(1, n):
        x[t] = rho * x[t - 1] + rng.standard_normal()
    theory = math.sqrt(1.0 / (1.0 - rho) ** 2)  # long-run sd of an AR(1) with unit innovations
    assert long_run_std(x) == pytest.approx(theory, rel=0.1)
    assert lag1_autocorrelation(x) == pytest.approx(rho, abs=0.02)
    white = rng.standard_normal(20_000)
    assert long_run_std(white) == pytest.approx(1.0, rel=0.05)

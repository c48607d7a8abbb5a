"""Regressions found by the fuzz suite (tests/fuzz/test_fuzz_theory.py), one per finding.

Each call used to return inf/NaN, warn, or raise a raw exception type (OverflowError,
ZeroDivisionError, an invalid cast) for finite input.  Now it returns the representable answer
(homogeneous functions compute at unit scale) or raises a ValueError naming the arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sgdnoise import theory
from sgdnoise._validate import NonFiniteResultError


def _quiet(f):
    def g(x):
        with np.errstate(all="ignore"):
            return f(np.float64(x))
    return g


# ---------------------------------------------------------------------------------------------
# representable answers that used to overflow
# ---------------------------------------------------------------------------------------------


def test_scale_invariant_gains_of_huge_and_tiny_matrices():
    assert theory.gain_ratio(1e300 * np.eye(1), 1e300 * np.eye(1)) == 1.0  # was inf
    assert theory.hessian_noise_gain(np.array([[1e300]])) == 1.0         # was OverflowError
    assert theory.hessian_noise_gain(np.array([[1e-320]])) == 1.0        # was ZeroDivisionError
    H = np.diag([3.0, 1.0])
    assert theory.gain_bounds(np.ldexp(H, 900)) == theory.gain_bounds(H)
    Sigma = np.diag([1.0, 2.0])
    assert (theory.alignment(np.ldexp(H, -900), np.ldexp(Sigma, 1000))
            == theory.alignment(H, Sigma))


def test_indicator_is_bilinear_exactly_or_refused():
    H, Sigma = np.diag([3.0, 1.0]), np.diag([1.0, 2.0])
    assert theory.indicator(np.ldexp(H, 600), np.ldexp(Sigma, -600)) == theory.indicator(H, Sigma)
    with pytest.raises(NonFiniteResultError, match=r"H and Sigma.*Tr\(HΣ\)"):
        theory.indicator(1e300 * np.eye(1), 1e300 * np.eye(1))  # Tr(HΣ) = 1e600


def test_ols_slope_of_extreme_magnitudes():
    x, y = np.array([0.0, 0.0, 1e103]), np.array([1e-20, 0.0, 1e206])
    want = np.ldexp(theory.ols_slope(np.ldexp(x, -342), np.ldexp(y, -684)), 342)
    assert theory.ols_slope(x, y) == want  # was inf/NaN with an overflow warning
    assert theory.ols_slope(np.array([0.0, 0.0, 0.0, 1e300]), np.ones(4)) == 0.0


def test_epoch_spectrum_of_huge_C_is_finite():
    big = theory.epoch_noise_spectrum(1.0, 1e300, 10**9)  # C·M overflowed
    assert_allclose(big, 1e300 * theory.epoch_noise_spectrum(1.0, 1.0, 10**9), rtol=1e-15)
    assert np.isfinite(theory.epoch_noise_spectrum(1.7e308, 1.0, 7))  # ω + π overflowed


def test_epoch_autocorrelation_of_huge_float_lags_is_zero():
    assert theory.epoch_autocorrelation(1e300, 1.0, 10) == 0.0  # was an invalid integer cast


def test_discrete_covariance_with_zero_steps_ignores_overflowing_curvature():
    H, S = np.array([[1e300]]), np.array([[0.0]])
    assert np.all(theory.discrete_covariance(H, S, 1e300, 0) == 0.0)
    with pytest.raises(ValueError, match="num_steps"):
        theory.discrete_covariance(H, np.eye(1), 1e300, 3)


def test_critical_dimension_with_tiny_batch_is_finite():
    assert theory.critical_dimension(B=1e-309, eta=1.0, h_star=1.0) == 2.0


# ---------------------------------------------------------------------------------------------
# results beyond float64: a ValueError naming the arguments
# ---------------------------------------------------------------------------------------------

BEYOND_FLOAT64 = [
    pytest.param(lambda: theory.ar2_impulse_response(np.array([1e-300, 5e-301, 1e9]), 1e300, 0.0,
                                                     num_steps=3000), "lam", id="impulse-eta-lam"),
    pytest.param(lambda: theory.ar2_impulse_response(np.array([1.0, 0.5, 1e300]), 1.0, 0.0,
                                                     num_steps=3000), "lam", id="impulse-growth"),
    pytest.param(lambda: theory.critical_dimension(B=1.0, eta=1.0, h_star=1e-309), "B",
                 id="critical-dimension"),
    pytest.param(lambda: theory.phi(B=1.0, eta=1.0, h_star=1e-320), "h_star", id="phi"),
    pytest.param(lambda: theory.escape_exponent(B=1.0, eta=1.0, h_star=1e-320), "h_star",
                 id="escape-exponent"),
    pytest.param(lambda: theory.linear_regression_noise_covariance(np.eye(1), np.array([1e300]),
                                                                   0.0), "e", id="lr-noise"),
    pytest.param(lambda: theory.linear_regression_gradient_second_moment(
        np.eye(1), np.array([1e300]), 0.0), "e", id="lr-moment"),
    pytest.param(lambda: theory.noise_trace_linear_regression(np.eye(2), np.array([1e300, 0.0]),
                                                              0.0), "delta_theta",
                 id="noise-trace"),
    pytest.param(lambda: theory.kramers_rate(np.diag([1e300, 1e300]), np.diag([-1e10, 1e-10]),
                                             1.0, T=1.0), "hess_min", id="kramers-prefactor"),
    pytest.param(lambda: theory.stationary_density_1d(np.ones(2), np.array([0.0, 1e-320]), B=1.0,
                                                      eta=1.0, h_star=1.0), "theta",
                 id="density-narrow-grid"),
    pytest.param(lambda: theory.stationary_density_sde_1d(np.array([0.0, 1.0]), np.ones(2),
                                                          np.full(2, 5e-324)), "diffusion",
                 id="sde-density-tiny-diffusion"),
    pytest.param(lambda: theory.DoubleWell(1.0, 1.0).loss(1e300), "theta", id="double-well-loss"),
    pytest.param(lambda: theory.DoubleWell(1.0, 1e308), "a", id="double-well-a"),
    pytest.param(lambda: theory.effective_curvature(np.array([1e-320, 1e-320]), np.ones(2)),
                 "M_ii", id="effective-curvature"),
    pytest.param(lambda: theory.fit_exponent(np.array([1.0, 1.0, 5e-324]), np.ones(3),
                                             rel_floor=0.0), "M_ii", id="fit-exponent-kappa"),
    pytest.param(lambda: theory.fit_exponent(np.array([1.0, 1.0, 2.0]), np.full(3, 5e-324)),
                 "M_ii", id="fit-exponent-underflow"),
    pytest.param(lambda: theory.gain_bounds(np.array([[0.0, 1.0], [1.0, 1e-320]])), "H",
                 id="gain-bounds"),
    pytest.param(lambda: theory.stationary_covariance_discrete(np.array([[1.1272515627567184e-287]]),
                                                               np.eye(1), 1e-37), "eta",
                 id="stationary-covariance"),
    pytest.param(lambda: theory.weight_variance_iid(1e-320, 1.0, 0.1, 0.0), "lam", id="iid"),
    pytest.param(lambda: theory.max_curvatures(np.full((1, 2, 2), 1e308)), "h",
                 id="max-curvature-2e308"),
    pytest.param(lambda: theory.kronecker_layer_moments(
        np.zeros((3, 2, 2)), np.array([[0.0, 1e300], [0.0, 0.0], [0.0, 0.0]]),
        np.array([[0.0, 1e9], [1e171, 0.0], [0.0, 0.0]]), per_sample_bound=False),
        "delta", id="kronecker-mean-gradient"),
    pytest.param(lambda: theory.velocity_variance_iid(1e-11, 1e308, 1e10, 0.0), "eta",
                 id="iid-velocity"),
    pytest.param(lambda: theory.mean_first_passage_time_1d(
        _quiet(lambda x: -x), _quiet(lambda x: 1.0), 0.0, 0.0, 1e300), "drift",
        id="passage-overflow"),
    pytest.param(lambda: theory.mean_first_passage_time_1d(
        _quiet(lambda x: -x), _quiet(lambda x: 1.0), 0.0, 0.0, 1e-320), "b",
        id="passage-empty-interval"),
]


@pytest.mark.parametrize(("call", "argument"), BEYOND_FLOAT64)
def test_result_beyond_float64_is_a_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()


def test_stiff_first_passage_is_refused_after_max_evaluations():
    with pytest.raises(ValueError, match=r"max_evaluations = 2000\b"):
        theory.mean_first_passage_time_1d(_quiet(lambda x: 1e10 * x), _quiet(lambda x: 1.0),
                                          0.0, 0.0, 10.0, max_evaluations=2000)


@pytest.mark.parametrize(("a", "b"), [(0.0, -1.0), (0.0, 1.0), (0.5, 0.5)])
def test_yule_walker_without_stationary_solution_is_a_value_error(a, b):
    """A root on the unit circle used to raise KeyError or IndexError from the sympy solve."""
    with pytest.raises(ValueError, match=r"\ba and b\b"):
        theory.yule_walker_ar2(a, b, 1.0)
    with pytest.raises(ValueError, match=r"\ba and b\b"):
        theory.stationary_covariance_ar2(a, b, 0.0)


def test_first_passage_over_a_tiny_interval_does_not_divide_by_zero():
    """The solver's relative error scale vanished with the state (a division-by-zero warning);
    now the solver's failure on the underflowing state is a ValueError naming the arguments."""
    with pytest.raises(ValueError, match=r"drift, diffusion, a and b.*integral failed"):
        theory.mean_first_passage_time_1d(_quiet(lambda x: -x),
                                          _quiet(lambda x: 0.1 + 0.1 * x * x),
                                          0.0, 0.0, 1.3426855452049976e-204)

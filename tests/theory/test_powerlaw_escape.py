"""Tests for sgdnoise.theory._powerlaw_escape (SPEC part C): power-law stationary law, exact
first-passage quadrature, escape-rate asymptotics and the Arrhenius alternatives."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.stats import ortho_group

from sgdnoise.theory import _powerlaw_escape
from sgdnoise.theory._powerlaw_escape import (
    DoubleWell,
    arrhenius_rate_frozen_noise,
    critical_dimension,
    escape_exponent,
    escape_rate,
    escape_rate_1d,
    kramers_rate,
    linear_regression_passage_time_1d,
    mean_first_passage_time_1d,
    noise_trace_linear_regression,
    phi,
    saddle_geometry,
    stationary_density_1d,
    stationary_density_sde_1d,
    temperature,
)
from sgdnoise.theory._symbolic import linear_regression_noise_covariance

# ----------------------------------------------------------------------------------------------
# scalar parameters
# ----------------------------------------------------------------------------------------------


def test_scalar_parameters():
    B, eta, h = 4.0, 0.1, 2.0
    assert_allclose(temperature(B=B, eta=eta, h_star=h), 0.05)
    assert_allclose(phi(B=B, eta=eta, h_star=h), 21.0)
    assert_allclose(escape_exponent(B=B, eta=eta, h_star=h, n=1), 20.5)
    assert_allclose(escape_exponent(B=B, eta=eta, h_star=h, n=np.array([1, 2, 3])),
                    [20.5, 20.0, 19.5])
    n_c = critical_dimension(B=B, eta=eta, h_star=h)
    assert_allclose(n_c, 42.0)
    assert_allclose(escape_exponent(B=B, eta=eta, h_star=h, n=n_c), 0.0, atol=1e-12)


def test_scalar_parameters_accept_sympy():
    B, eta, h, n = sp.symbols("B eta h n", positive=True)
    assert sp.simplify(phi(B=B, eta=eta, h_star=h) - (1 + B / (eta * h))) == 0
    assert sp.simplify(escape_exponent(B=B, eta=eta, h_star=h, n=n)
                       - (B / (eta * h) + 1 - n / 2)) == 0
    n_c = critical_dimension(B=B, eta=eta, h_star=h)
    assert sp.simplify(escape_exponent(B=B, eta=eta, h_star=h, n=n_c)) == 0
    rate = escape_rate_1d(h, -2 * h, 3, B=B, eta=eta)
    assert isinstance(rate, sp.Expr)


# ----------------------------------------------------------------------------------------------
# stationary densities (C2)
# ----------------------------------------------------------------------------------------------


def _double_well_loss(x):
    return 0.5 + (x * x - 1) ** 2


def test_power_law_density_is_exact_for_noise_proportional_to_loss():
    B, eta, h = 1.0, 0.05, 8.0
    T = float(temperature(B=B, eta=eta, h_star=h))
    theta = np.linspace(-2.5, 2.5, 801)
    p = stationary_density_1d(_double_well_loss, theta, B=B, eta=eta, h_star=h)
    assert_allclose(np.trapezoid(p, theta), 1.0, rtol=1e-13)
    p_sde = stationary_density_sde_1d(theta, lambda x: -4 * x * (x * x - 1),
                                      lambda x: T * _double_well_loss(x))
    assert_allclose(p_sde, p, rtol=1e-9, atol=1e-12 * p.max())
    # array input: same power law
    assert_allclose(stationary_density_1d(_double_well_loss(theta), theta, B=B, eta=eta, h_star=h),
                    p, rtol=1e-13)


def test_sde_density_with_grid_arrays_is_second_order():
    """Trapezoid integration of μ/D on grid values: the error falls fourfold per halving."""
    T = 0.2
    errors = []
    for num in (101, 201, 401):
        theta = np.linspace(-2.0, 2.0, num)
        exact = stationary_density_1d(_double_well_loss, theta, B=1.0, eta=T / 8.0, h_star=8.0)
        approx = stationary_density_sde_1d(theta, -4 * theta * (theta**2 - 1),
                                           T * _double_well_loss(theta))
        errors.append(np.max(np.abs(approx - exact)) / exact.max())
    assert 3.0 < errors[0] / errors[1] < 5.0
    assert 3.0 < errors[1] / errors[2] < 5.0


def test_sde_density_other_noise_laws():
    theta = np.linspace(-3, 3, 601)
    L = 1.0 + 0.5 * theta**2
    # constant D: Gibbs law exp(−L/D)
    D = 0.3
    gibbs = stationary_density_sde_1d(theta, lambda x: -x, lambda x: D)
    ref = np.exp(-L / D)
    assert_allclose(gibbs, ref / np.trapezoid(ref, theta), rtol=1e-9)
    # D = T L^α, α ≠ 1: L^{−α} exp(−L^{1−α}/(T(1−α))), not a power law
    T, alpha = 0.2, 2.0
    law = stationary_density_sde_1d(theta, lambda x: -x,
                                    lambda x: T * (1.0 + 0.5 * x**2) ** alpha)
    ref = L**-alpha * np.exp(-(L ** (1 - alpha)) / (T * (1 - alpha)))
    assert_allclose(law, ref / np.trapezoid(ref, theta), rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# mean first-passage time
# ----------------------------------------------------------------------------------------------


def test_mfpt_closed_forms():
    # zero drift, constant D: ((b − a)² − (x0 − a)²)/(2D)
    D = 0.7
    x0 = np.array([0.0, 0.5, 1.0, 2.0])
    t = mean_first_passage_time_1d(lambda x: 0.0, lambda x: D, x0, 0.0, 2.0)
    assert_allclose(t, (4.0 - x0**2) / (2 * D), rtol=1e-10, atol=1e-14)
    # constant drift μ, constant D, s = μ/D:
    # T(x0) = [(b − x0) − (e^{−s(x0−a)} − e^{−s(b−a)})/s]/μ
    mu, D, a, b = -0.8, 0.5, 0.0, 2.0
    x0 = np.array([0.0, 0.3, 1.5])
    s = mu / D
    exact = ((b - x0) - (np.exp(-s * (x0 - a)) - np.exp(-s * (b - a))) / s) / mu
    assert_allclose(mean_first_passage_time_1d(lambda x: mu, lambda x: D, x0, a, b), exact,
                    rtol=1e-9)
    # mirrored problem (b < a) gives the same times
    mirrored = mean_first_passage_time_1d(lambda x: -mu, lambda x: D, -x0, -a, -b)
    assert_allclose(mirrored, exact, rtol=1e-9)


def test_mfpt_vectorised_over_start_and_target():
    T = 0.1

    def drift(x):
        return -4 * x * (x * x - 1)

    def diffusion(x):
        return T * _double_well_loss(x)

    b = np.array([0.0, -0.5, -1.0])
    x0 = np.array([1.0, 1.0, 1.5])
    together = mean_first_passage_time_1d(drift, diffusion, x0, 3.0, b)
    one_by_one = [mean_first_passage_time_1d(drift, diffusion, x, 3.0, bb)
                  for x, bb in zip(x0, b, strict=True)]
    assert_allclose(together, one_by_one, rtol=1e-9)
    starts = np.linspace(2.9, 0.1, 8)
    times = mean_first_passage_time_1d(drift, diffusion, starts, 3.0, 0.0)
    assert np.all(np.diff(times) < 0)  # closer to the absorbing end: shorter


def test_mfpt_matches_nested_quadrature_in_log_space():
    """Brute force: the double integral with scipy.integrate.quad, the exponent of the inner
    integrand formed as a difference of log L (D = T L, Φ = −log L / T)."""
    T, a, x0, b = 0.1, 3.0, 1.0, 0.0

    def inner(y):
        def integrand(z):
            return np.exp((np.log(_double_well_loss(y)) - np.log(_double_well_loss(z))) / T) \
                / (T * _double_well_loss(z))
        return integrate.quad(integrand, y, a, epsabs=0, epsrel=1e-12, limit=200)[0]

    brute = integrate.quad(inner, b, x0, epsabs=0, epsrel=1e-11, limit=200)[0]
    fast = mean_first_passage_time_1d(lambda x: -4 * x * (x * x - 1),
                                      lambda x: T * _double_well_loss(x), x0, a, b)
    assert_allclose(fast, brute, rtol=1e-8)


def test_mfpt_survives_large_barriers():
    """1/T = 200: the MFPT is ~1e62, far beyond exp(Φ) of a naive evaluation at 1/T = 1000+
    (here exp(ΔΦ) alone is c^{200}); the quadrature stays finite and on the Kramers law."""
    dw = DoubleWell(L0=0.5, a=1.0)
    ep = dw.escape_parameters()
    invT = 200.0
    T = 1 / invT
    t = mean_first_passage_time_1d(lambda x: -4 * x * (x * x - 1),
                                   lambda x: T * _double_well_loss(x), 1.0, 3.0, -1.0)
    kappa = escape_rate_1d(ep.h_star, ep.h_saddle, ep.c, B=1.0, eta=T / ep.h_star)
    assert np.isfinite(t) and t > 1e60
    assert abs(t * kappa - 1) < 2e-3


# ----------------------------------------------------------------------------------------------
# escape rates (C3, C4)
# ----------------------------------------------------------------------------------------------


def _double_well_mfpt(dw: DoubleWell, T: float, target: float) -> float:
    """Exact MFPT of the (reduced) double-well SDE from θ* = 1; reflecting far out at 3."""
    Tn = dw.reduced_temperature(T)
    L0, a = dw.L0, dw.a
    return mean_first_passage_time_1d(lambda x: -4 * a * x * (x * x - 1),
                                      lambda x: Tn * (L0 + a * (x * x - 1) ** 2), 1.0, 3.0, target)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_power_law_rate_is_the_weak_noise_limit_of_the_exact_mfpt(n):
    """κ·MFPT → 1 as T → 0 (Kramers' corrections are O(T)): the error shrinks at least
    by a quarter per halving of T and is below 1 % at 1/T = 40.  Absorbing at the other minimum
    the MFPT is 1/κ; at the saddle point itself it is 1/(2κ)."""
    dw = DoubleWell(L0=0.5, a=1.0, n=n)
    ep = dw.escape_parameters()
    errors = []
    for invT in (10.0, 20.0, 40.0):
        T = 1 / invT
        kappa = escape_rate(ep.hess_min, ep.hess_saddle, ep.c, B=1.0, eta=T / ep.h_star,
                            h_star=ep.h_star)
        errors.append(abs(kappa * _double_well_mfpt(dw, T, -1.0) - 1))
        assert abs(2 * kappa * _double_well_mfpt(dw, T, 0.0) - 1) < 3 * errors[-1] + 0.01
    assert errors[1] < 0.75 * errors[0] and errors[2] < 0.75 * errors[1]
    assert errors[2] < 0.01


def test_escape_rate_reduces_to_1d_and_follows_the_exponent():
    h, hs, B, eta = 8.0, -4.0, 2.0, 0.05
    c = np.array([1.5, 2.0, 4.0])
    one = escape_rate_1d(h, hs, c, B=B, eta=eta)
    assert_allclose(escape_rate(h, hs, c, B=B, eta=eta, h_star=h), one, rtol=1e-13)
    assert_allclose(one, np.sqrt(h * abs(hs)) / (2 * np.pi) * c ** -(0.5 + B / (eta * h)),
                    rtol=1e-13)
    for n in (1, 2, 3, 5):
        Hm = np.diag([h] * n)
        Hs = np.diag([hs] + [h] * (n - 1))
        kappa = escape_rate(Hm, Hs, c, B=B, eta=eta, h_star=h)
        slope = np.diff(np.log(kappa)) / np.diff(np.log(c))
        assert_allclose(slope, -escape_exponent(B=B, eta=eta, h_star=h, n=n), rtol=1e-12)
        # one more outlier direction: the exponent falls by 1/2 (claim C4)
        Hm1 = np.diag([h] * (n + 1))
        Hs1 = np.diag([hs] + [h] * n)
        ratio = escape_rate(Hm1, Hs1, c, B=B, eta=eta, h_star=h) / kappa
        assert_allclose(ratio, c**0.5, rtol=1e-12)


def test_escape_rate_is_basis_independent_and_restricts_to_outliers():
    rng = np.random.default_rng(5)
    D, n = 6, 2
    h, B, eta = 4.0, 1.0, 0.1
    # outliers h and 3h at the minimum, a bulk of small curvatures that does not change
    Hm = np.diag([h, 3 * h, 0.01, 0.02, 0.03, 0.04])
    Hs = np.diag([-h, 2 * h, 0.01, 0.02, 0.03, 0.04])
    Q = ortho_group.rvs(D, random_state=rng)
    c = 2.5
    rotated = escape_rate(Q @ Hm @ Q.T, Q @ Hs @ Q.T, c, B=B, eta=eta, h_star=h, n=n)
    reference = h / (2 * np.pi) * np.sqrt(h * 3 * h / (h * 2 * h)) \
        * c ** -escape_exponent(B=B, eta=eta, h_star=h, n=n)
    assert_allclose(rotated, reference, rtol=1e-10)
    geometry = saddle_geometry(Q @ Hm @ Q.T, Q @ Hs @ Q.T, n=n)
    assert_allclose(geometry.h_escape, -h, rtol=1e-10)
    assert geometry.hess_min.shape == (2, 2)


def test_reduced_temperature_matches_transverse_integrals():
    """n = 2: ∫ T L p dy / ∫ p dy over the harmonic direction, p = L^{−1−1/T}, equals
    T V(θ₀)/(1 − T/2) at every θ₀ (quadrature over y ∈ ℝ)."""
    dw = DoubleWell(L0=0.5, a=1.0, n=2)
    T = 0.15
    for x in (-0.3, 0.0, 0.7, 1.0, 1.8):
        def loss(y, x=x):
            return dw.loss(np.array([x, y]))

        weight = integrate.quad(lambda y: loss(y) ** (-1 - 1 / T), -np.inf, np.inf,
                                epsabs=0, epsrel=1e-12)[0]
        conductance = integrate.quad(lambda y: T * loss(y) ** (-1 / T), -np.inf, np.inf,
                                     epsabs=0, epsrel=1e-12)[0]
        V = dw.loss(np.array([x, 0.0]))
        assert_allclose(conductance / weight, dw.reduced_temperature(T) * V, rtol=1e-9)


def test_arrhenius_alternatives():
    h, hs, B, eta = 8.0, -4.0, 1.0, 0.01
    T = float(temperature(B=B, eta=eta, h_star=h))
    L_min = 0.5
    c = np.array([1.001, 1.5, 3.0, 10.0])
    frozen = arrhenius_rate_frozen_noise(h, hs, c, B=B, eta=eta, h_star=h)
    # frozen noise = constant temperature T L(θ*) with the linear barrier (c − 1) L(θ*)
    assert_allclose(frozen, kramers_rate(h, hs, (c - 1) * L_min, T=T * L_min), rtol=1e-12)
    assert_allclose(kramers_rate(h, hs, 0.3, T=0.1),
                    np.sqrt(h * abs(hs)) / (2 * np.pi) * np.exp(-3.0), rtol=1e-13)
    power = escape_rate_1d(h, hs, c, B=B, eta=eta)
    # the laws agree to first order in the barrier (log c ≈ c − 1) and diverge beyond
    ratio = power / frozen
    assert abs(ratio[0] - 1) < 0.01
    assert np.all(np.diff(ratio) > 0) and ratio[-1] > 1e30


def test_kramers_rate_is_the_weak_noise_limit_for_gradient_langevin():
    """GLD with constant D = T on the same double well: κ_Arrhenius · MFPT → 1."""
    dw = DoubleWell(L0=0.5, a=1.0)
    ep = dw.escape_parameters()
    errors = []
    for T in (0.1, 0.05, 0.025):
        t = mean_first_passage_time_1d(lambda x: -4 * x * (x * x - 1), lambda x, T=T: T,
                                       1.0, 3.0, -1.0)
        errors.append(abs(t * kramers_rate(ep.h_star, ep.h_saddle, 1.0, T=T) - 1))
    assert errors[1] < 0.75 * errors[0] and errors[2] < 0.75 * errors[1]
    assert errors[2] < 0.02


# ----------------------------------------------------------------------------------------------
# the double well
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3])
def test_double_well_derivatives(n):
    dw = DoubleWell(L0=0.3, a=1.5, n=n, k=2.0)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4, n))
    eps = 1e-6
    basis = np.eye(n)
    fd = np.stack([(dw.loss(theta + eps * e) - dw.loss(theta - eps * e)) / (2 * eps)
                   for e in basis], axis=-1)
    assert_allclose(dw.gradient(theta), fd, rtol=1e-7, atol=1e-7)
    fd_h = np.stack([(dw.gradient(theta + eps * e) - dw.gradient(theta - eps * e)) / (2 * eps)
                     for e in basis], axis=-1)
    assert_allclose(dw.hessian(theta), fd_h, rtol=1e-6, atol=1e-6)
    ep = dw.escape_parameters()
    assert (ep.h_star, ep.h_saddle) == (12.0, -6.0)
    assert_allclose(ep.c, 1.8 / 0.3)
    assert_allclose(np.diag(ep.hess_min), [12.0] + [2.0] * (n - 1))
    assert_allclose(np.diag(ep.hess_saddle), [-6.0] + [2.0] * (n - 1))
    theta_min = np.zeros(n)
    theta_min[0] = 1.0
    assert_allclose(dw.gradient(theta_min), 0.0, atol=1e-15)
    assert DoubleWell(L0=1.0, a=2.0).k == 16.0


# ----------------------------------------------------------------------------------------------
# C1: linear regression
# ----------------------------------------------------------------------------------------------


@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(1, 6), sigma2=st.floats(0.0, 3.0))
def test_noise_trace_exact_form_and_gap_bound(seed, dim, sigma2):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim))
    H = A @ A.T + 0.1 * np.eye(dim)
    delta = rng.normal(size=dim)
    nt = noise_trace_linear_regression(H, delta, sigma2)
    Sigma1 = linear_regression_noise_covariance(H, delta, sigma2)
    assert np.isclose(nt.exact, np.trace(Sigma1), rtol=1e-12)
    assert np.isclose(nt.loss, 0.5 * (delta @ H @ delta + sigma2), rtol=1e-12)
    assert np.isclose(nt.decoupled, 2 * nt.loss * np.trace(H), rtol=1e-12)
    assert nt.exact >= nt.decoupled
    assert nt.relative_gap <= nt.gap_bound * (1 + 1e-12)
    assert nt.gap_bound <= np.linalg.eigvalsh(H)[-1] / np.trace(H) * (1 + 1e-12)


def test_noise_trace_where_decoupling_is_exact_and_where_not():
    H = np.diag([2.0, 1.0, 0.5])
    at_min = noise_trace_linear_regression(H, np.zeros(3), 1.0)
    assert at_min.exact == at_min.decoupled and at_min.relative_gap == 0.0
    # 1-D, no label noise: 𝒩 = 4Lh, twice the decoupled value
    one = noise_trace_linear_regression([[1.5]], [0.7], 0.0)
    assert_allclose(one.exact, 2 * one.decoupled, rtol=1e-14)
    # x, y ~ N(0, 1) independent (θ* = 0, σ² = 1): Σ₁ = 4L − 1
    theta = np.array([[0.0], [1.0], [3.0]])
    xy = noise_trace_linear_regression([[1.0]], theta, 1.0)
    assert_allclose(xy.exact, 4 * xy.loss - 1, rtol=1e-14)
    # isotropic H in D dimensions: gap ≤ 1/D
    D = 50
    iso = noise_trace_linear_regression(np.eye(D), np.ones(D), 0.0)
    assert_allclose(iso.relative_gap, 1 / D, rtol=1e-12)


def test_noise_trace_monte_carlo():
    """Empirical E‖g‖² − ‖E g‖² over n Gaussian samples.  The plug-in estimator's error is
    dominated by the mean of ‖g‖², whose standard error std(‖g‖²)/√n is estimated from the
    sample (the ‖ḡ‖² correction is O(1/n)); 5 standard errors are allowed."""
    rng = np.random.default_rng(1)
    D, n, sigma2 = 3, 400_000, 0.5
    A = rng.normal(size=(D, D))
    H = A @ A.T / D + 0.2 * np.eye(D)
    delta = rng.normal(size=D)
    x = rng.multivariate_normal(np.zeros(D), H, size=n)
    residual = x @ delta - np.sqrt(sigma2) * rng.standard_normal(n)
    g = x * residual[:, None]
    sq = np.sum(g**2, axis=1)
    estimate = sq.mean() - np.sum(g.mean(axis=0) ** 2)
    se = sq.std(ddof=1) / np.sqrt(n)
    assert abs(estimate - noise_trace_linear_regression(H, delta, sigma2).exact) <= 5 * se


def test_linear_regression_passage_times():
    c = np.array([2.0, 5.0, 20.0, 80.0])
    h, sigma2, B, eta = 1.0, 1.0, 1.0, 0.1
    dec = linear_regression_passage_time_1d(c, h=h, sigma2=sigma2, B=B, eta=eta)
    exa = linear_regression_passage_time_1d(c, h=h, sigma2=sigma2, B=B, eta=eta, noise="exact")
    assert np.all(np.diff(dec) > 0) and np.all(exa < dec)
    slope_dec = np.diff(np.log(dec)) / np.diff(np.log(c))
    slope_exa = np.diff(np.log(exa)) / np.diff(np.log(c))
    expo = escape_exponent(B=B, eta=eta, h_star=h, n=1)
    # decoupled noise: the local slope climbs to B/(ηh) + 1/2 from below
    assert np.all(np.diff(slope_dec) > 0) and abs(slope_dec[-1] - expo) < 0.2
    # exact noise: the slope falls towards B/(2ηh) + 1/2
    assert np.all(np.diff(slope_exa) < 0) and slope_exa[-1] < expo - 4
    assert slope_exa[-1] > B / (2 * eta * h) + 0.5
    # same as the generic quadrature
    b = np.sqrt(sigma2 * (c[1] - 1) / h)
    T = eta * h / B
    direct = mean_first_passage_time_1d(lambda d: -h * d,
                                        lambda d: T * 0.5 * (h * d * d + sigma2), 0.0, 0.0, b)
    # both integrate with solver tolerance 1e-10, split at different points
    assert_allclose(dec[1], direct, rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# validation and documentation
# ----------------------------------------------------------------------------------------------

_GRID = np.linspace(-1, 1, 5)
BAD_INPUTS = [
    ("B", lambda: phi(B=0.0, eta=0.1, h_star=1.0)),
    ("eta", lambda: temperature(B=1.0, eta=-0.1, h_star=1.0)),
    ("h_star", lambda: critical_dimension(B=1.0, eta=0.1, h_star=np.nan)),
    ("n", lambda: escape_exponent(B=1.0, eta=0.1, h_star=1.0, n=0)),
    ("theta", lambda: stationary_density_1d(np.ones(5), _GRID[::-1], B=1, eta=0.1, h_star=1)),
    ("L", lambda: stationary_density_1d(-np.ones(5), _GRID, B=1, eta=0.1, h_star=1)),
    ("L", lambda: stationary_density_1d(np.ones(4), _GRID, B=1, eta=0.1, h_star=1)),
    ("B", lambda: stationary_density_1d(np.ones(5), _GRID, B=-1, eta=0.1, h_star=1)),
    ("diffusion", lambda: stationary_density_sde_1d(_GRID, np.zeros(5), np.zeros(5))),
    ("drift", lambda: stationary_density_sde_1d(_GRID, lambda x: np.nan * x, lambda x: 1.0 + 0 * x)),
    ("h_saddle", lambda: escape_rate_1d(1.0, 1.0, 2.0, B=1, eta=0.1)),
    ("c", lambda: escape_rate_1d(1.0, -1.0, 0.5, B=1, eta=0.1)),
    ("h_star", lambda: escape_rate_1d(-1.0, -1.0, 2.0, B=1, eta=0.1)),
    ("hess_min", lambda: escape_rate(np.array([[1.0, 2.0], [0.0, 1.0]]), -np.eye(2), 2.0,
                                     B=1, eta=0.1, h_star=1)),
    ("hess_saddle", lambda: escape_rate(np.eye(2), -np.eye(2), 2.0, B=1, eta=0.1, h_star=1)),
    ("hess_saddle", lambda: escape_rate(np.eye(2), -np.eye(3), 2.0, B=1, eta=0.1, h_star=1)),
    ("hess_min", lambda: escape_rate(-np.eye(2), np.diag([-1.0, 1.0]), 2.0, B=1, eta=0.1,
                                     h_star=1)),
    ("n", lambda: escape_rate(np.eye(2), np.diag([-1.0, 1.0]), 2.0, B=1, eta=0.1, h_star=1, n=3)),
    ("c", lambda: escape_rate(1.0, -1.0, 1.0, B=1, eta=0.1, h_star=1)),
    ("delta_L", lambda: kramers_rate(1.0, -1.0, -0.5, T=0.1)),
    ("T", lambda: kramers_rate(1.0, -1.0, 0.5, T=0.0)),
    ("c", lambda: arrhenius_rate_frozen_noise(1.0, -1.0, 0.9, B=1, eta=0.1, h_star=1)),
    ("drift", lambda: mean_first_passage_time_1d(1.0, lambda x: 1.0, 0.5, 0.0, 1.0)),
    ("diffusion", lambda: mean_first_passage_time_1d(lambda x: 0.0, lambda x: -1.0, 0.5, 0.0, 1.0)),
    ("drift", lambda: mean_first_passage_time_1d(lambda x: np.inf, lambda x: 1.0, 0.5, 0.0, 1.0)),
    ("x0", lambda: mean_first_passage_time_1d(lambda x: 0.0, lambda x: 1.0, 2.0, 0.0, 1.0)),
    ("b", lambda: mean_first_passage_time_1d(lambda x: 0.0, lambda x: 1.0, 0.0, 0.0,
                                             np.array([1.0, -1.0]))),
    ("rtol", lambda: mean_first_passage_time_1d(lambda x: 0.0, lambda x: 1.0, 0.5, 0.0, 1.0,
                                                rtol=1e-16)),
    ("L0", lambda: DoubleWell(L0=0.0, a=1.0)),
    ("a", lambda: DoubleWell(L0=1.0, a=-1.0)),
    ("n", lambda: DoubleWell(L0=1.0, a=1.0, n=0)),
    ("k", lambda: DoubleWell(L0=1.0, a=1.0, n=2, k=-1.0)),
    ("theta", lambda: DoubleWell(L0=1.0, a=1.0, n=2).loss(np.ones(3))),
    ("T", lambda: DoubleWell(L0=1.0, a=1.0, n=3).reduced_temperature(1.0)),
    ("H", lambda: noise_trace_linear_regression(np.ones((2, 3)), np.ones(2), 1.0)),
    ("delta_theta", lambda: noise_trace_linear_regression(np.eye(2), np.ones(3), 1.0)),
    ("sigma2", lambda: noise_trace_linear_regression(np.eye(2), np.ones(2), -1.0)),
    ("noise", lambda: linear_regression_passage_time_1d(2.0, h=1, sigma2=1, B=1, eta=0.1,
                                                        noise="both")),
    ("c", lambda: linear_regression_passage_time_1d(1.0, h=1, sigma2=1, B=1, eta=0.1)),
    ("sigma2", lambda: linear_regression_passage_time_1d(2.0, h=1, sigma2=0, B=1, eta=0.1)),
]


@pytest.mark.parametrize(("name", "call"), BAD_INPUTS)
def test_bad_input_raises_value_error_naming_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_every_public_function_cites_its_source():
    for name in _powerlaw_escape.__all__:
        obj = getattr(_powerlaw_escape, name)
        doc = inspect.getdoc(obj) or ""
        assert doc, name
        if inspect.isfunction(obj):
            assert "References" in doc and "2105.09557" in doc, name
            assert ".. math::" in doc, name

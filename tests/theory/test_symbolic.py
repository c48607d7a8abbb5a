"""Tests for sgdnoise.theory._symbolic: sympy identities, their numeric companions, bad input."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose

from sgdnoise.theory import _symbolic
from sgdnoise.theory._symbolic import (
    commutator_identity,
    linear_regression_gradient_moments,
    linear_regression_gradient_second_moment,
    linear_regression_noise_covariance,
    logistic_gradient_identity,
    logistic_noise_factor,
    ols_exponent_identity,
    ols_slope,
    variance_identity,
)


def _is_zero_matrix(A: sp.Matrix) -> bool:
    return all(sp.simplify(entry) == 0 for entry in A)


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    A = rng.standard_normal((dim, dim))
    return A @ A.T / dim + 0.5 * np.eye(dim)


# ----------------------------------------------------------------------------------------------
# symbolic identities vanish
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dim", "num_samples"), [(1, 1), (2, 2), (2, 4), (3, 3)])
def test_variance_identity_is_zero(dim, num_samples):
    residual = variance_identity(dim=dim, num_samples=num_samples)
    assert residual.shape == (dim, dim)
    assert _is_zero_matrix(residual)


@pytest.mark.parametrize(("dim", "num_samples"), [(2, 2), (2, 3), (3, 2)])
def test_commutator_identity_is_zero(dim, num_samples):
    residual = commutator_identity(dim=dim, num_samples=num_samples)
    assert residual.shape == (dim, dim)
    assert _is_zero_matrix(residual)


def test_commutator_identity_with_numeric_constant():
    assert _is_zero_matrix(commutator_identity(dim=2, num_samples=3, c=sp.Rational(3, 7)))


def test_commutator_is_generically_nonzero():
    """The identity is not vacuous: [M, H] itself does not vanish for non-commuting h_p."""
    h1 = sp.Matrix([[1, 0], [0, 0]])
    h2 = sp.Matrix([[1, 1], [1, 1]])
    H = (h1 + h2) / 2
    M = (h1 * h1 + h2 * h2) / 2
    assert not _is_zero_matrix(M * H - H * M)


@pytest.mark.parametrize("num_points", [2, 3, 5])
def test_ols_exponent_identity_is_zero(num_points):
    assert ols_exponent_identity(num_points=num_points) == 0


def test_ols_slope_matches_polyfit_and_exponent_identity_numerically():
    rng = np.random.default_rng(11)
    log_lam = rng.uniform(-6.0, 0.0, size=40)
    log_kappa = 0.3 * log_lam + rng.normal(scale=0.5, size=40)
    slope_k = ols_slope(log_lam, log_kappa)
    assert_allclose(slope_k, np.polyfit(log_lam, log_kappa, 1)[0], rtol=1e-12)
    gamma_fit = ols_slope(log_lam, log_lam + log_kappa)
    assert_allclose(gamma_fit, 1.0 + slope_k, rtol=1e-12)


def test_ols_slope_on_sympy_lists():
    x = sp.symbols("a b c", real=True)
    y = [2 * x_i + 5 for x_i in x]
    assert sp.simplify(ols_slope(x, y) - 2) == 0


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_linear_regression_residuals_are_zero(dim):
    moments = linear_regression_gradient_moments(dim=dim)
    assert moments["E_ggT"].shape == (dim, dim)
    assert _is_zero_matrix(moments["residual"])
    assert _is_zero_matrix(moments["residual_2L"])
    S, e, sigma2 = moments["S"], moments["e"], moments["sigma2"]
    assert _is_zero_matrix(moments["g_mean"] - S * e)
    assert sp.expand(moments["loss"] - ((e.T * S * e)[0, 0] + sigma2) / 2) == 0
    closed_second_moment = 2 * S * e * e.T * S + (e.T * S * e)[0, 0] * S + sigma2 * S
    assert _is_zero_matrix(moments["E_ggT"] - closed_second_moment)


def test_linear_regression_at_optimum_gives_sigma2_times_hessian():
    moments = linear_regression_gradient_moments(dim=2)
    at_optimum = moments["Sigma1"].subs({e_i: 0 for e_i in moments["e"]})
    assert _is_zero_matrix(at_optimum - moments["sigma2"] * moments["S"])


def test_symbolic_moments_match_numeric_functions():
    dim = 3
    moments = linear_regression_gradient_moments(dim=dim)
    S_num = np.array([[2.0, 0.5, -0.25], [0.5, 1.5, 0.125], [-0.25, 0.125, 0.75]])
    e_num = np.array([0.5, -1.25, 2.0])
    sigma2_num = 0.375
    values = {moments["sigma2"]: sp.Rational(3, 8)}
    for i in range(dim):
        values[moments["e"][i]] = sp.nsimplify(e_num[i])
        for j in range(dim):
            values[moments["S"][i, j]] = sp.nsimplify(S_num[i, j])

    def to_numpy(A):
        return np.array(A.subs(values).tolist(), dtype=np.float64)

    assert_allclose(
        to_numpy(moments["E_ggT"]),
        linear_regression_gradient_second_moment(S_num, e_num, sigma2_num),
        rtol=1e-13,
    )
    assert_allclose(
        to_numpy(moments["Sigma1"]),
        linear_regression_noise_covariance(S_num, e_num, sigma2_num),
        rtol=1e-13,
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_logistic_gradient_identity_is_zero(dim):
    residual = logistic_gradient_identity(dim=dim)
    assert residual.shape == (dim, dim)
    assert _is_zero_matrix(residual)


# ----------------------------------------------------------------------------------------------
# numeric companions against Monte Carlo and finite differences
# ----------------------------------------------------------------------------------------------


def test_linear_regression_noise_covariance_monte_carlo():
    rng = np.random.default_rng(20260207)
    dim, num_draws = 3, 200_000
    S = _random_covariance(rng, dim)
    e = rng.normal(size=dim)
    sigma2 = 0.7
    x = rng.multivariate_normal(np.zeros(dim), S, size=num_draws)
    noise = rng.normal(scale=np.sqrt(sigma2), size=num_draws)
    G = x * (x @ e - noise)[:, None]  # g = x (xᵀe − ε), one row per draw

    centred = G - G.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]  # (n, D, D)
    Sigma1_hat = products.mean(axis=0)
    standard_error = products.std(axis=0, ddof=1) / np.sqrt(num_draws)
    deviation = np.abs(Sigma1_hat - linear_regression_noise_covariance(S, e, sigma2))
    assert np.all(deviation <= 5.0 * standard_error), deviation / standard_error

    raw = G[:, :, None] * G[:, None, :]
    second_hat = raw.mean(axis=0)
    second_se = raw.std(axis=0, ddof=1) / np.sqrt(num_draws)
    deviation = np.abs(second_hat - linear_regression_gradient_second_moment(S, e, sigma2))
    assert np.all(deviation <= 5.0 * second_se), deviation / second_se


def test_noise_covariance_equals_second_moment_minus_mean_outer():
    rng = np.random.default_rng(3)
    S = _random_covariance(rng, 4)
    e = rng.normal(size=4)
    g_mean = S @ e
    assert_allclose(
        linear_regression_noise_covariance(S, e, 0.2),
        linear_regression_gradient_second_moment(S, e, 0.2) - np.outer(g_mean, g_mean),
        rtol=1e-13,
        atol=1e-14,
    )


def _logistic_loss(w, x, y):
    """ℓ = log(1 + e^z) − y z, written so that it accepts complex w (complex-step derivative)."""
    z = w @ x
    return np.log(1.0 + np.exp(z)) - y * z


def _complex_step_gradient(w, x, y, step=1e-30):
    eye = np.eye(w.size)
    return np.array(
        [_logistic_loss(w + 1j * step * eye[i], x, y).imag / step for i in range(w.size)]
    )


def _finite_difference_hessian(w, x, y, delta=1e-5):
    eye = np.eye(w.size)
    columns = [
        (_complex_step_gradient(w + delta * eye[j], x, y)
         - _complex_step_gradient(w - delta * eye[j], x, y)) / (2 * delta)
        for j in range(w.size)
    ]
    h = np.stack(columns, axis=1)
    return 0.5 * (h + h.T)


@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_logistic_noise_factor_matches_numeric_derivatives(y):
    rng = np.random.default_rng(5)
    for _ in range(5):
        w = rng.normal(scale=0.7, size=4)
        x = rng.normal(size=4)
        q = 1.0 / (1.0 + np.exp(-(w @ x)))
        g = _complex_step_gradient(w, x, y)
        h = _finite_difference_hessian(w, x, y)
        lhs = np.outer(g, g)
        rhs = logistic_noise_factor(q, y) * h
        assert_allclose(lhs, rhs, rtol=1e-6, atol=1e-8 * np.abs(lhs).max())


def test_logistic_noise_factor_broadcasts_and_hard_label_limits():
    q = np.array([0.1, 0.5, 0.9])
    factor = logistic_noise_factor(q[:, None], np.array([0.0, 1.0]))
    assert factor.shape == (3, 2)
    assert factor.dtype == np.float64
    assert_allclose(factor[:, 0], q / (1 - q), rtol=1e-14)
    assert_allclose(factor[:, 1], (1 - q) / q, rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# invalid input
# ----------------------------------------------------------------------------------------------

_S_OK = np.eye(3)
_E_OK = np.ones(3)

INVALID = [
    (linear_regression_noise_covariance, (np.ones((3, 2)), _E_OK, 0.1), "S"),
    (linear_regression_noise_covariance, (np.triu(np.ones((3, 3))), _E_OK, 0.1), "S"),
    (linear_regression_noise_covariance, (np.diag([1.0, np.nan, 1.0]), _E_OK, 0.1), "S"),
    (linear_regression_noise_covariance, (np.diag([1.0, -1.0, 1.0]), _E_OK, 0.1), "S"),
    (linear_regression_noise_covariance, (_S_OK, np.ones(2), 0.1), "e"),
    (linear_regression_noise_covariance, (_S_OK, np.ones((3, 1)), 0.1), "e"),
    (linear_regression_noise_covariance, (_S_OK, np.array([1.0, np.nan, 0.0]), 0.1), "e"),
    (linear_regression_noise_covariance, (_S_OK, _E_OK, -0.1), "sigma2"),
    (linear_regression_noise_covariance, (_S_OK, _E_OK, np.nan), "sigma2"),
    (linear_regression_gradient_second_moment, (np.ones(3), _E_OK, 0.1), "S"),
    (linear_regression_gradient_second_moment, (_S_OK, _E_OK, -1.0), "sigma2"),
    (logistic_noise_factor, (0.0, 1.0), "q"),
    (logistic_noise_factor, (1.0, 1.0), "q"),
    (logistic_noise_factor, (np.array([0.5, 1.5]), 1.0), "q"),
    (logistic_noise_factor, (np.nan, 1.0), "q"),
    (logistic_noise_factor, (0.5, 2.0), "y"),
    (logistic_noise_factor, (0.5, np.nan), "y"),
    (logistic_noise_factor, (np.full(3, 0.5), np.zeros(2)), "y"),
    (variance_identity, (0,), "dim"),
    (variance_identity, (2, 0), "num_samples"),
    (commutator_identity, (1.5,), "dim"),
    (ols_exponent_identity, (1,), "num_points"),
    (ols_slope, ([1.0], [1.0]), "x"),
    (ols_slope, ([1.0, 2.0], [1.0]), "y"),
    (ols_slope, ([1.0, 1.0], [1.0, 2.0]), "x"),
    (linear_regression_gradient_moments, (0,), "dim"),
    (logistic_gradient_identity, (0,), "dim"),
]


@pytest.mark.parametrize(
    ("func", "args", "name"),
    INVALID,
    ids=[f"{func.__name__}-{name}-{k}" for k, (func, _, name) in enumerate(INVALID)],
)
def test_invalid_input_raises_value_error_naming_argument(func, args, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        func(*args)


# ----------------------------------------------------------------------------------------------
# module hygiene
# ----------------------------------------------------------------------------------------------


def test_all_lists_public_functions_and_each_cites_its_source():
    public = {
        name
        for name, obj in vars(_symbolic).items()
        if inspect.isfunction(obj)
        and obj.__module__ == _symbolic.__name__
        and not name.startswith("_")
    }
    assert set(_symbolic.__all__) == public
    for name in _symbolic.__all__:
        doc = inspect.getdoc(getattr(_symbolic, name))
        assert doc is not None and "References\n----------" in doc, name
        assert "arXiv:2602.05600" in doc, name

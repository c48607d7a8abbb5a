"""Tests for sgdnoise.theory._symbolic_cd: the sympy derivations of parts C and D vanish against
the closed forms, and agree with the numeric functions at random points."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose

from sgdnoise.theory import _symbolic_cd
from sgdnoise.theory._epoch_noise import (
    epoch_noise_spectrum,
    weight_variance_epoch,
    weight_variance_epoch_flat_limit,
    weight_variance_iid,
)
from sgdnoise.theory._powerlaw_escape import escape_rate
from sgdnoise.theory._symbolic_cd import (
    ar2_variance_derivation,
    epoch_autocorrelation_derivation,
    epoch_flat_limit_derivation,
    epoch_spectrum_derivation,
    epoch_variance_sgd_derivation,
    escape_rate_time_change,
    escape_rate_time_change_1d,
    ito_time_change,
    momentum_forms_identity,
    noise_trace_identity,
    stationary_covariance_ar2,
    yule_walker_ar2,
)

RNG_SEED = 20240607


@pytest.fixture(scope="module")
def flat_limit():
    return epoch_flat_limit_derivation()


# ----------------------------------------------------------------------------------------------
# part D
# ----------------------------------------------------------------------------------------------


def test_weight_variance_solves_ar2_recursion():
    lam, C, eta, beta = sp.symbols("lam C eta beta", positive=True)
    P = stationary_covariance_ar2(a=1 + beta - eta * lam, b=-beta, noise=eta**2 * C)
    assert sp.simplify(P[0, 0] - weight_variance_iid(lam, C, eta, beta)) == 0
    # P also solves the discrete Lyapunov equation of the state (x_k, x_{k−1})
    A = sp.Matrix([[1 + beta - eta * lam, -beta], [1, 0]])
    Q = sp.Matrix([[eta**2 * C, 0], [0, 0]])
    assert all(sp.simplify(e) == 0 for e in P - A * P * A.T - Q)


def test_ar2_variance_derivation_residuals_vanish():
    out = ar2_variance_derivation()
    for key in ("residual", "velocity_residual", "correlation_time_residual"):
        assert out[key] == 0, key


def test_yule_walker_at_random_points():
    rng = np.random.default_rng(RNG_SEED)
    a_s, b_s, s_s = sp.symbols("a b s")
    yw = yule_walker_ar2(a_s, b_s, s_s)
    for _ in range(5):
        beta = rng.uniform(0, 0.95)
        eta = rng.uniform(0.01, 1.0)
        lam = rng.uniform(0.01, 0.99) * 2 * (1 + beta) / eta
        C = rng.uniform(0.1, 3.0)
        value = float(yw["gamma0"].subs({a_s: 1 + beta - eta * lam, b_s: -beta,
                                         s_s: eta**2 * C}))
        assert_allclose(value, weight_variance_iid(lam, C, eta, beta), rtol=1e-12)


def test_momentum_forms_identity():
    assert all(r == 0 for r in momentum_forms_identity(5))


def test_epoch_autocorrelation_derivation():
    out = epoch_autocorrelation_derivation()
    M, h, C = out["symbols"]
    assert out["sum_rule"] == 0
    assert sp.simplify(out["R"] + C * (M - h) / (M * (M - 1))) == 0
    assert sp.simplify(out["pair_covariance"] + C / (M - 1)) == 0


def test_epoch_spectrum_derivation_at_random_points():
    out = epoch_spectrum_derivation()
    omega, M, C = out["symbols"]
    derived = sp.lambdify((omega, M, C), out["derived"], "numpy")
    closed = sp.lambdify((omega, M, C), out["closed_form"], "numpy")
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        w = rng.uniform(-np.pi, np.pi)
        m = int(rng.integers(2, 40))
        c = rng.uniform(0.1, 5.0)
        value = complex(derived(w, m, c))
        assert abs(value.imag) < 1e-9 * m
        assert_allclose(value.real, epoch_noise_spectrum(w, c, m), rtol=1e-8, atol=1e-10 * m)
        assert_allclose(closed(w, m, c), epoch_noise_spectrum(w, c, m), rtol=1e-12, atol=1e-14)


def test_epoch_flat_limit_derivation(flat_limit):
    assert flat_limit["residual"] == 0
    beta, M, h, _ = flat_limit["symbols"]
    # δ₀(h) = [h − 2β(1 − βʰ)/(1 − β²)]/(2(1 − β)²), as in the module docstring
    expected = (h - 2 * beta * (1 - beta**h) / (1 - beta**2)) / (2 * (1 - beta) ** 2)
    assert sp.simplify(flat_limit["delta"] - expected) == 0
    # numeric agreement with the function, at random points
    variance = sp.lambdify((beta, M), flat_limit["variance"], "numpy")
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(10):
        b = rng.uniform(0.0, 0.95)
        m = int(rng.integers(2, 200))
        eta, C = rng.uniform(0.01, 1.0), rng.uniform(0.1, 2.0)
        assert_allclose(eta**2 * C * variance(b, m), weight_variance_epoch_flat_limit(C, eta, b, m),
                        rtol=1e-9)


def test_epoch_variance_sgd_derivation_at_random_points():
    out = epoch_variance_sgd_derivation()
    lam_s, C_s, eta_s, M_s = out["symbols"]
    variance = sp.lambdify((lam_s, C_s, eta_s, M_s), out["variance"], "numpy")
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        eta = rng.uniform(0.01, 1.0)
        lam = rng.uniform(0.02, 1.98) / eta
        C = rng.uniform(0.1, 3.0)
        M = int(rng.integers(2, 60))
        assert_allclose(variance(lam, C, eta, M), weight_variance_epoch(lam, C, eta, 0.0, M),
                        rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# part C
# ----------------------------------------------------------------------------------------------


def test_ito_time_change():
    out = ito_time_change()
    for key in ("generator_residual", "quadratic_variation_residual", "ito_drift_residual",
                "ito_diffusion_residual", "flux_tau", "flux_t", "flux_family"):
        assert out[key] == 0, key
    _, T, L = out["symbols"]
    assert sp.simplify(out["exponent_ito"] + 1 + 1 / T) == 0
    assert sp.simplify(out["exponent_stratonovich"] + sp.Rational(1, 2) + 1 / T) == 0
    assert sp.simplify(out["density_t"] - L ** (-1 - 1 / T)) == 0


def test_escape_rate_time_change_1d():
    assert escape_rate_time_change_1d()["ratio"] == 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_escape_rate_time_change_nd(n):
    out = escape_rate_time_change(n)
    assert out["ratio"] == 1
    # numeric agreement with escape_rate on diagonal Hessians at a random point
    rng = np.random.default_rng(RNG_SEED + n)
    h_star, L_min, L_s, B, eta = out["symbols"]
    h_min = rng.uniform(1.0, 5.0, size=n)
    h_sad = np.concatenate([[-rng.uniform(0.5, 3.0)], rng.uniform(1.0, 5.0, size=n - 1)])
    values = {h_star: 3.0, L_min: 0.4, L_s: 1.1, B: 2.0, eta: 0.05}
    values.update(dict(zip(out["hess_min"], h_min, strict=True)))
    values.update({sym: val for sym, val in zip(out["hess_saddle"], h_sad, strict=True)
                   if isinstance(sym, sp.Symbol)})
    values[-out["hess_saddle"][0]] = -h_sad[0]
    derived = float(out["rate"].subs(values))
    numeric = escape_rate(np.diag(h_min), np.diag(h_sad), 1.1 / 0.4, B=2.0, eta=0.05,
                          h_star=3.0)
    assert_allclose(derived, numeric, rtol=1e-12)


@pytest.mark.parametrize("dim", [1, 2])
def test_noise_trace_identity(dim):
    out = noise_trace_identity(dim)
    assert out["trace_residual"] == 0
    if dim == 1:
        assert out["one_dim_residual"] == 0


# ----------------------------------------------------------------------------------------------
# validation and documentation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "call"), [
    ("num_steps", lambda: momentum_forms_identity(1)),
    ("n", lambda: escape_rate_time_change(0)),
    ("dim", lambda: noise_trace_identity(0)),
])
def test_bad_input_raises_value_error_naming_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_every_public_function_cites_its_source():
    for name in _symbolic_cd.__all__:
        doc = inspect.getdoc(getattr(_symbolic_cd, name)) or ""
        assert "References" in doc and ("2105.09557" in doc or "2306.05300" in doc), name

"""Closed forms of spec part B (claims B1, B2): worked examples, limits, accuracy near the removable
singularities, vectorisation, the sympy derivations (evaluated against the numeric functions at
random points) and one table of invalid inputs.

Tolerances: every comparison is between two float64 evaluations of the same exact quantity, so
the tolerances are round-off bounds (a few hundred ulps of the largest entry involved).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose
from scipy.linalg import solve_continuous_lyapunov, solve_discrete_lyapunov

from sgdnoise import theory
from sgdnoise.theory import (
    aligned_gain_lower_bound,
    alignment,
    discrete_covariance,
    discrete_covariance_symbolic,
    discrete_expected_loss_increase,
    discrete_loss_increase_symbolic,
    discrete_lyapunov_identity,
    gain_bounds,
    gain_ratio,
    haar_orthogonal,
    hessian_noise_gain,
    hessian_noise_gain_identity,
    indicator,
    isotropic_counterpart,
    ou_covariance,
    ou_covariance_symbolic,
    ou_expected_loss_increase,
    ou_loss_increase_series,
    ou_loss_increase_small_t,
    ou_loss_increase_symbolic,
    ou_lyapunov_identity,
    stationary_covariance_discrete,
)

EPS = np.finfo(np.float64).eps


def _rotated(lam, Sigma_eig, seed):
    """(H, Σ) = (Q diag(λ) Qᵀ, Q Σ_eig Qᵀ) for a Haar Q: Σ_eig is Σ in H's eigenbasis."""
    Q = haar_orthogonal(len(lam), seed)
    H = (Q * np.asarray(lam, dtype=float)) @ Q.T
    S = Q @ np.asarray(Sigma_eig, dtype=float) @ Q.T
    return 0.5 * (H + H.T), 0.5 * (S + S.T)


def _random_covariance(rng, D):
    A = rng.standard_normal((D, D))
    return A @ A.T / D


def _is_zero_matrix(A):
    return all(sp.simplify(entry) == 0 for entry in A)


def _by_name(expr):
    return {s.name: s for s in expr.free_symbols}


# ----------------------------------------------------------------------------------------------
# B2: indicator, gain, bounds, alignment
# ----------------------------------------------------------------------------------------------


def test_indicator_is_trace_of_product():
    rng = np.random.default_rng(0)
    H = _random_covariance(rng, 4)
    Sigma = _random_covariance(rng, 4)
    assert indicator(H, Sigma) == pytest.approx(np.trace(H @ Sigma), rel=1e-13)


def test_isotropic_counterpart_keeps_the_trace_and_has_unit_gain():
    rng = np.random.default_rng(1)
    Sigma = _random_covariance(rng, 5)
    bar = isotropic_counterpart(Sigma)
    assert_allclose(bar, np.trace(Sigma) / 5 * np.eye(5), rtol=0, atol=0)
    H = _random_covariance(rng, 5)
    assert gain_ratio(H, bar) == pytest.approx(1.0, rel=1e-13)
    # r = Tr(HΣ)/Tr(HΣ̄) by definition
    assert gain_ratio(H, Sigma) == pytest.approx(indicator(H, Sigma) / indicator(H, bar),
                                                 rel=1e-13)


def test_gain_bounds_are_attained_by_extreme_eigenvectors():
    lam = np.array([10.0, 1.0, 0.5, 0.1])
    H, _ = _rotated(lam, np.eye(4), seed=3)
    Q = np.linalg.eigh(H)[1]
    top, bottom = np.outer(Q[:, -1], Q[:, -1]), np.outer(Q[:, 0], Q[:, 0])
    lo, hi = gain_bounds(H)
    assert lo == pytest.approx(4 * 0.1 / lam.sum(), rel=1e-13)
    assert hi == pytest.approx(4 * 10.0 / lam.sum(), rel=1e-13)
    assert gain_ratio(H, top) == pytest.approx(hi, rel=1e-12)
    assert gain_ratio(H, bottom) == pytest.approx(lo, rel=1e-12)


def test_alignment_of_a_simple_top_eigenvector():
    rng = np.random.default_rng(4)
    H, _ = _rotated([3.0, 2.0, 1.0], np.eye(3), seed=5)
    Sigma = _random_covariance(rng, 3)
    u1 = np.linalg.eigh(H)[1][:, -1]
    a = u1 @ Sigma @ u1 / np.trace(Sigma)
    assert alignment(H, Sigma) == pytest.approx(a, rel=1e-12)
    r = gain_ratio(H, Sigma)
    assert aligned_gain_lower_bound(H, Sigma) == pytest.approx(a * 3 * 3.0 / 6.0, rel=1e-12)
    assert r >= aligned_gain_lower_bound(H, Sigma) * (1 - 1e-12)


def test_alignment_with_a_degenerate_top_eigenvalue_takes_the_best_direction():
    """λ₁ = 2 twice: a is the largest share of Tr Σ along a unit vector of the top eigenspace,
    independent of the basis eigh picks inside it, and the B2 bound still holds (here tightly)."""
    H = np.diag([2.0, 2.0, 1.0])
    Sigma = np.diag([0.0, 1.0, 0.0])
    assert alignment(H, Sigma) == pytest.approx(1.0, rel=1e-14)
    # the projector average Tr(P₁Σ)/(m Tr Σ) would give 1/2: the chosen definition is larger
    assert gain_ratio(H, Sigma) == pytest.approx(aligned_gain_lower_bound(H, Sigma), rel=1e-13)
    # a rotation inside the eigenspace (any basis) and a joint rotation of (H, Σ) change nothing
    Q = haar_orthogonal(3, 7)
    for R in (np.block([[haar_orthogonal(2, 8), np.zeros((2, 1))], [np.zeros((1, 2)), 1.0]]), Q):
        H_r, S_r = R @ H @ R.T, R @ Sigma @ R.T
        assert alignment(H_r, S_r) == pytest.approx(1.0, rel=1e-12)
    # a split far below rtol counts as degenerate; one above it does not
    near = np.diag([2.0, 2.0 * (1 - 1e-14), 1.0])
    assert alignment(near, Sigma) == pytest.approx(1.0, rel=1e-12)
    assert alignment(near, Sigma, rtol=0.0) == pytest.approx(0.0, abs=1e-12)


def test_aligned_bound_needs_a_psd_hessian():
    H = np.diag([1.0, 0.5, -0.2])
    Sigma = np.diag([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"\bH\b"):
        aligned_gain_lower_bound(H, Sigma)
    # and the bound indeed fails for this indefinite H: r < a D λ₁ / Tr H
    a = alignment(H, Sigma)
    assert gain_ratio(H, Sigma) < a * 3 * 1.0 / np.trace(H)


def test_hessian_noise_gain_examples():
    assert hessian_noise_gain(np.eye(4) * 3.0) == pytest.approx(1.0, rel=1e-14)
    H, _ = _rotated([1.0, 0.0, 0.0, 0.0], np.eye(4), seed=9)
    assert hessian_noise_gain(H) == pytest.approx(4.0, rel=1e-12)  # rank one: r = D
    H, _ = _rotated([4.0, 1.0, 0.2], np.eye(3), seed=10)
    assert hessian_noise_gain(H) == pytest.approx(gain_ratio(H, 0.3 * H), rel=1e-12)
    assert hessian_noise_gain(H) == pytest.approx(3 * (16 + 1 + 0.04) / 5.2**2, rel=1e-12)


# ----------------------------------------------------------------------------------------------
# B1, continuous time
# ----------------------------------------------------------------------------------------------


def test_ou_covariance_in_the_eigenbasis_and_lyapunov_limit():
    rng = np.random.default_rng(11)
    lam = np.array([2.0, 0.5, 0.1])
    S_eig = _random_covariance(rng, 3)
    H, Sigma = _rotated(lam, S_eig, seed=12)
    t = 0.7
    s = lam[:, None] + lam[None, :]
    expected_eig = S_eig * (1 - np.exp(-s * t)) / s
    Q = haar_orthogonal(3, 12)  # the eigenvectors used by _rotated
    assert_allclose(ou_covariance(H, Sigma, t), Q @ expected_eig @ Q.T, rtol=1e-12, atol=1e-14)
    # t → ∞: the solution of HC + CH = Σ
    C_inf = solve_continuous_lyapunov(H, Sigma)
    assert_allclose(ou_covariance(H, Sigma, 500.0), C_inf, rtol=1e-10, atol=1e-12)


def test_ou_covariance_at_the_removable_singularity():
    """λ_i + λ_j = 0 gives t Σ_ij exactly, and values near it are continuous to round-off."""
    Sigma = np.array([[2.0, 0.3], [0.3, 1.0]])
    t = 1.5
    C = ou_covariance(np.diag([1.0, -1.0]), Sigma, t)
    assert C[0, 1] == pytest.approx(t * 0.3, rel=1e-15)
    near = ou_covariance(np.diag([1.0, -1.0 + 1e-9]), Sigma, t)
    assert near[0, 1] == pytest.approx(t * 0.3 * (1 - 0.5e-9 * t), rel=1e-14)
    # tiny rates: (1 − e^{−st})/s = t(1 − st/2 + (st)²/6 − …) to full precision
    for s_half in (1e-10, 1e-14, 1e-300):
        value = ou_covariance(np.eye(1) * s_half, np.eye(1), t)[0, 0]
        x = 2 * s_half * t
        assert value == pytest.approx(t * (1 - x / 2 + x * x / 6), rel=4 * EPS)
    assert ou_covariance(np.zeros((2, 2)), Sigma, t) == pytest.approx(t * Sigma, rel=1e-15)


def test_ou_loss_increase_closed_forms_agree_for_any_sign():
    rng = np.random.default_rng(13)
    lam = np.array([1.5, 0.2, 0.0, -0.3])
    H, Sigma = _rotated(lam, _random_covariance(rng, 4), seed=14)
    t = np.array([0.0, 0.1, 1.0, 3.0])
    C = ou_covariance(H, Sigma, t)
    via_cov = 0.5 * np.einsum("ij,tji->t", H, C)
    from scipy.linalg import expm

    quarter = np.array([0.25 * np.trace((np.eye(4) - expm(-2 * H * ti)) @ Sigma) for ti in t])
    value = ou_expected_loss_increase(H, Sigma, t)
    assert_allclose(value, via_cov, rtol=1e-12, atol=1e-15)
    assert_allclose(value, quarter, rtol=1e-12, atol=1e-15)
    assert value[0] == 0.0


def test_ou_vectorisation_shapes_and_scalar_output():
    H = np.diag([1.0, 0.3])
    Sigma = np.eye(2)
    assert ou_covariance(H, Sigma, 0.5).shape == (2, 2)
    assert ou_covariance(H, Sigma, [0.5, 1.0]).shape == (2, 2, 2)
    assert ou_covariance(H, Sigma, np.ones((3, 4))).shape == (3, 4, 2, 2)
    assert isinstance(ou_expected_loss_increase(H, Sigma, 0.5), float)
    assert isinstance(ou_loss_increase_small_t(H, Sigma, 0.5), float)
    times = np.linspace(0, 2, 5)
    stacked = ou_expected_loss_increase(H, Sigma, times)
    assert stacked.shape == (5,)
    assert_allclose(stacked, [ou_expected_loss_increase(H, Sigma, float(s)) for s in times],
                    rtol=1e-15)
    assert_allclose(ou_covariance(H, Sigma, times)[3], ou_covariance(H, Sigma, times[3]),
                    rtol=1e-15)
    assert_allclose(ou_loss_increase_small_t(H, Sigma, times), 0.5 * times * 1.3, rtol=1e-15)


def test_ou_overflow_for_a_negative_eigenvalue_raises():
    with pytest.raises(ValueError, match=r"\bt\b"):
        ou_covariance(np.diag([1.0, -1.0]), np.eye(2), 1e4)
    with pytest.raises(ValueError, match=r"\bt\b"):
        ou_expected_loss_increase(np.diag([1.0, -1.0]), np.eye(2), 1e4)


# ----------------------------------------------------------------------------------------------
# B1, discrete time
# ----------------------------------------------------------------------------------------------


def test_discrete_first_steps_and_indicator():
    rng = np.random.default_rng(15)
    H, _ = _rotated([2.0, 0.5, 0.1], np.eye(3), seed=16)
    S = _random_covariance(rng, 3)
    eta = 0.2
    A = np.eye(3) - eta * H
    assert_allclose(discrete_covariance(H, S, eta, 0), np.zeros((3, 3)), atol=0)
    assert_allclose(discrete_covariance(H, S, eta, 1), S, rtol=1e-13, atol=1e-15)
    assert_allclose(discrete_covariance(H, S, eta, 2), S + A @ S @ A, rtol=1e-13, atol=1e-15)
    # one step: the expected loss increase is half the indicator Tr(HS)
    assert discrete_expected_loss_increase(H, S, eta, 1) == pytest.approx(
        0.5 * indicator(H, S), rel=1e-13)
    assert discrete_expected_loss_increase(H, S, eta, 0) == 0.0
    ks = np.array([0, 1, 5, 40])
    assert_allclose(discrete_expected_loss_increase(H, S, eta, ks),
                    0.5 * np.einsum("ij,kji->k", H, discrete_covariance(H, S, eta, ks)),
                    rtol=1e-12)
    # keyword form, as used by the claims
    assert discrete_covariance(H, S, eta=eta, num_steps=[3, 4]).shape == (2, 3, 3)
    assert isinstance(discrete_expected_loss_increase(H, S, eta=eta, num_steps=3), float)


def test_discrete_covariance_where_rho_products_equal_one():
    """λ = 0 (ρ = 1) and ηλ = 2 (ρ = −1): ρ_iρ_j = ±1, the sum is k or alternates."""
    eta = 0.5
    H = np.diag([0.0, 4.0])
    S = np.array([[1.0, 0.4], [0.4, 2.0]])
    for k in (1, 2, 7, 10):
        C = discrete_covariance(H, S, eta, k)
        assert C[0, 0] == pytest.approx(k * 1.0, rel=1e-14)
        assert C[1, 1] == pytest.approx(k * 2.0, rel=1e-14)
        assert C[0, 1] == pytest.approx(0.4 * (1 - (-1) ** k) / 2, abs=1e-15)


def test_discrete_covariance_is_accurate_near_rho_one():
    """ηλ = 1e-12 over 10⁴ steps: Σ_{j<k} ρ^{2j} = k − u k(k−1)/2 + O(u²k³), u = 1 − ρ²."""
    eta, lam, k = 1.0, 1e-12, 10_000
    u = 2 * eta * lam - (eta * lam) ** 2
    value = discrete_covariance(np.eye(1) * lam, np.eye(1), eta, k)[0, 0]
    assert value == pytest.approx(k - u * k * (k - 1) / 2, rel=8 * EPS)


def test_discrete_covariance_overflow_raises():
    with pytest.raises(ValueError, match=r"\bnum_steps\b"):
        discrete_covariance(np.diag([1.0, 30.0]), np.eye(2), 1.0, 10**6)
    with pytest.raises(ValueError, match=r"\bnum_steps\b"):
        discrete_expected_loss_increase(np.diag([1.0, -30.0]), np.eye(2), 1.0, 10**6)


def test_stationary_covariance_solves_the_discrete_lyapunov_equation():
    rng = np.random.default_rng(17)
    H, _ = _rotated([3.0, 1.0, 0.05], np.eye(3), seed=18)
    S = _random_covariance(rng, 3)
    eta = 0.6  # ηλ_max = 1.8 < 2: ρ₁ = −0.8 oscillates
    A = np.eye(3) - eta * H
    P = stationary_covariance_discrete(H, S, eta)
    assert_allclose(P, solve_discrete_lyapunov(A, S), rtol=1e-10, atol=1e-12)
    assert_allclose(P, A @ P @ A + S, rtol=1e-11, atol=1e-12)
    with pytest.raises(ValueError, match=r"\beta\b"):
        stationary_covariance_discrete(H, S, 0.7)
    with pytest.raises(ValueError, match=r"\beta\b"):  # ηλ = 2 exactly: ρ = −1, no limit
        stationary_covariance_discrete(np.diag([4.0, 1.0]), np.eye(2), 0.5)
    with pytest.raises(ValueError, match=r"\bH\b"):
        stationary_covariance_discrete(np.diag([1.0, 0.0]), np.eye(2), 0.1)


# ----------------------------------------------------------------------------------------------
# sympy derivations, and the numeric functions at random points
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_ou_covariance_symbolic_derivation(dim):
    out = ou_covariance_symbolic(dim)
    assert out["residual"].shape == (dim, dim)
    assert _is_zero_matrix(out["residual"])
    kernel, c, t = out["kernel"], out["c"], out["t"]
    assert sp.simplify(kernel.subs(c, 0) - t) == 0
    assert sp.simplify(kernel.subs(c, 3) - (1 - sp.exp(-3 * t)) / 3) == 0
    assert sp.simplify(kernel.subs(c, -2) - (sp.exp(2 * t) - 1) / 2) == 0


def test_ou_lyapunov_identity_vanishes():
    out = ou_lyapunov_identity()
    assert out["ode_residual"] == sp.zeros(2, 2)
    assert out["initial_value"] == sp.zeros(2, 2)
    H = out["H"]
    assert sp.simplify(H - H.T) == sp.zeros(2, 2)


def test_ou_loss_increase_symbolic_matches_closed_form_and_numeric():
    expr = ou_loss_increase_symbolic(3)
    sym = _by_name(expr)
    lam = [sp.Symbol(f"lam_{i}", positive=True) for i in range(3)]
    t = sp.Symbol("t", positive=True)
    Sig = [sp.Symbol(f"Sigma_{i}_{i}", real=True) for i in range(3)]
    quarter = sum(Sig[i] * (1 - sp.exp(-2 * lam[i] * t)) for i in range(3)) / 4
    assert sp.simplify(expr - quarter) == 0
    rng = np.random.default_rng(19)
    for seed in range(5):
        lam_v = 10.0 ** rng.uniform(-2, 1, size=3)
        S_eig = _random_covariance(rng, 3)
        t_v = float(rng.uniform(0.01, 5.0))
        H, Sigma = _rotated(lam_v, S_eig, seed=100 + seed)
        values = {sym["t"]: t_v}
        for i in range(3):
            values[sym[f"lam_{i}"]] = lam_v[i]
            values[sym[f"Sigma_{i}_{i}"]] = S_eig[i, i]
        exact = float(expr.subs(values))
        assert ou_expected_loss_increase(H, Sigma, t_v) == pytest.approx(exact, rel=1e-12)


def test_ou_loss_increase_series_starts_with_the_indicator():
    """½Tr(H Cov_t) = (t/2) Tr(HΣ) − (t²/2) Tr(H²Σ) + O(t³); the numeric small-t form is the
    first term."""
    series = ou_loss_increase_series(2, order=3)
    sym = _by_name(series)
    t = sym["t"]
    lam = [sym[f"lam_{i}"] for i in range(2)]
    Sig = [sym[f"Sigma_{i}_{i}"] for i in range(2)]
    first = sum(lam[i] * Sig[i] for i in range(2)) / 2
    second = -sum(lam[i] ** 2 * Sig[i] for i in range(2)) / 2
    assert sp.expand(series.coeff(t, 1) - first) == 0
    assert sp.expand(series.coeff(t, 2) - second) == 0
    assert series.coeff(t, 0) == 0
    H, Sigma = _rotated([0.7, 0.2], np.diag([1.3, 0.4]), seed=20)
    value = float(series.coeff(t, 1).subs({lam[0]: 0.7, lam[1]: 0.2, Sig[0]: 1.3, Sig[1]: 0.4}))
    assert ou_loss_increase_small_t(H, Sigma, 1.0) == pytest.approx(value, rel=1e-13)


@pytest.mark.parametrize("dim", [1, 2])
def test_discrete_covariance_symbolic_derivation(dim):
    out = discrete_covariance_symbolic(dim)
    assert _is_zero_matrix(out["residual"])


def test_discrete_symbolic_agrees_with_numeric_at_random_points():
    out = discrete_covariance_symbolic(2)
    Cov, lam, S, eta, k = out["sum"], out["lam"], out["S"], out["eta"], out["k"]
    loss = discrete_loss_increase_symbolic(2)
    rng = np.random.default_rng(21)
    for seed in range(5):
        lam_v = 10.0 ** rng.uniform(-2, 0.5, size=2)
        eta_v = float(rng.uniform(0.05, 1.9 / lam_v.max()))
        k_v = int(rng.integers(1, 60))
        S_eig = _random_covariance(rng, 2)
        values = {lam[0]: lam_v[0], lam[1]: lam_v[1], eta: eta_v, k: k_v,
                  S[0, 0]: S_eig[0, 0], S[0, 1]: S_eig[0, 1], S[1, 1]: S_eig[1, 1]}
        exact_eig = np.array(Cov.subs(values).evalf(30), dtype=float)
        numeric = discrete_covariance(np.diag(lam_v), S_eig, eta_v, k_v)
        assert_allclose(numeric, exact_eig, rtol=1e-11, atol=1e-13 * np.abs(exact_eig).max())
        H, S_rot = _rotated(lam_v, S_eig, seed=200 + seed)
        assert discrete_expected_loss_increase(H, S_rot, eta_v, k_v) == pytest.approx(
            float(loss.subs(values).evalf(30)), rel=1e-11)


def test_discrete_lyapunov_identity_vanishes():
    out = discrete_lyapunov_identity()
    for key in ("recursion_residual", "initial_value", "stationary_residual"):
        assert out[key] == sp.zeros(2, 2), key


@pytest.mark.parametrize("dim", [2, 3])
def test_hessian_noise_gain_identity_vanishes(dim):
    assert hessian_noise_gain_identity(dim) == 0


# ----------------------------------------------------------------------------------------------
# invalid input: a ValueError that names the argument
# ----------------------------------------------------------------------------------------------

_EYE2 = np.eye(2)
_ASYM = np.array([[1.0, 2.0], [0.0, 1.0]])
_NAN2 = np.array([[1.0, np.nan], [np.nan, 1.0]])
_INDEF = np.diag([1.0, -1.0])

BAD_INPUTS = [
    ("H", lambda: theory.indicator(np.ones((2, 3)), _EYE2)),
    ("H", lambda: theory.indicator(_ASYM, _EYE2)),
    ("H", lambda: theory.indicator(_NAN2, _EYE2)),
    ("Sigma", lambda: theory.indicator(_EYE2, _INDEF)),
    ("Sigma", lambda: theory.indicator(_EYE2, np.eye(3))),
    ("Sigma", lambda: theory.indicator(_EYE2, _ASYM)),
    ("Sigma", lambda: theory.isotropic_counterpart(_INDEF)),
    ("Sigma", lambda: theory.isotropic_counterpart(np.ones(3))),
    ("H", lambda: theory.gain_ratio(-_EYE2, _EYE2)),
    ("H", lambda: theory.gain_ratio(_INDEF, _EYE2)),
    ("Sigma", lambda: theory.gain_ratio(_EYE2, np.zeros((2, 2)))),
    ("H", lambda: theory.gain_bounds(np.zeros((2, 2)))),
    ("H", lambda: theory.gain_bounds(_ASYM)),
    ("Sigma", lambda: theory.alignment(_EYE2, np.zeros((2, 2)))),
    ("rtol", lambda: theory.alignment(_EYE2, _EYE2, rtol=-1.0)),
    ("H", lambda: theory.aligned_gain_lower_bound(np.zeros((2, 2)), _EYE2)),
    ("H", lambda: theory.hessian_noise_gain(-_EYE2)),
    ("t", lambda: theory.ou_covariance(_EYE2, _EYE2, -1.0)),
    ("t", lambda: theory.ou_covariance(_EYE2, _EYE2, [1.0, np.nan])),
    ("t", lambda: theory.ou_covariance(_EYE2, _EYE2, "soon")),
    ("Sigma", lambda: theory.ou_covariance(_EYE2, _INDEF, 1.0)),
    ("t", lambda: theory.ou_expected_loss_increase(_EYE2, _EYE2, [-0.5])),
    ("H", lambda: theory.ou_expected_loss_increase(_ASYM, _EYE2, 1.0)),
    ("t", lambda: theory.ou_loss_increase_small_t(_EYE2, _EYE2, np.inf)),
    ("S", lambda: theory.discrete_covariance(_EYE2, _INDEF, 0.1, 3)),
    ("S", lambda: theory.discrete_covariance(_EYE2, np.eye(3), 0.1, 3)),
    ("eta", lambda: theory.discrete_covariance(_EYE2, _EYE2, 0.0, 3)),
    ("eta", lambda: theory.discrete_covariance(_EYE2, _EYE2, -0.1, 3)),
    ("eta", lambda: theory.discrete_covariance(_EYE2, _EYE2, np.nan, 3)),
    ("num_steps", lambda: theory.discrete_covariance(_EYE2, _EYE2, 0.1, -1)),
    ("num_steps", lambda: theory.discrete_covariance(_EYE2, _EYE2, 0.1, 2.5)),
    ("num_steps", lambda: theory.discrete_covariance(_EYE2, _EYE2, 0.1, [1.0, 2.0])),
    ("num_steps", lambda: theory.discrete_covariance(_EYE2, _EYE2, 0.1, True)),
    ("num_steps", lambda: theory.discrete_expected_loss_increase(_EYE2, _EYE2, 0.1, [3, -2])),
    ("eta", lambda: theory.discrete_expected_loss_increase(_EYE2, _EYE2, "fast", 3)),
    ("eta", lambda: theory.stationary_covariance_discrete(_EYE2, _EYE2, 2.5)),
    ("S", lambda: theory.stationary_covariance_discrete(_EYE2, _NAN2, 0.1)),
    ("dim", lambda: theory.ou_covariance_symbolic(0)),
    ("order", lambda: theory.ou_loss_increase_series(2, order=1)),
    ("dim", lambda: theory.discrete_covariance_symbolic(1.5)),
    ("dim", lambda: theory.hessian_noise_gain_identity(0)),
]


@pytest.mark.parametrize(("argument", "call"), BAD_INPUTS,
                         ids=[f"{arg}-{i}" for i, (arg, _) in enumerate(BAD_INPUTS)])
def test_invalid_input_raises_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()

"""Property tests of spec part B (claims B1, B2) on random (H, Σ) pairs.

Every assertion is a theorem about the drawn pair; tolerances absorb floating-point round-off
only and are scaled to the quantities compared (backward errors of eigh and of the GEMMs, or the
number of steps of a loop), except where a test checks a rate, whose tolerance comes from the
next term of the expansion (derived in the test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.integrate import quad_vec
from scipy.linalg import expm

from sgdnoise.sim.families import log_uniform_spectrum, random_symmetric
from sgdnoise.theory import (
    aligned_gain_lower_bound,
    alignment,
    discrete_covariance,
    discrete_expected_loss_increase,
    gain_bounds,
    gain_ratio,
    haar_orthogonal,
    hessian_noise_gain,
    indicator,
    isotropic_counterpart,
    ou_covariance,
    ou_expected_loss_increase,
    ou_loss_increase_small_t,
    stationary_covariance_discrete,
)
from sgdnoise.verify.strategies import NOISE_KINDS, psd_noise_pairs

EPS = np.finfo(np.float64).eps
#: Examples per property: a quarter of the active profile's budget ("ci": 25, "dev": 250).
FEW = max(10, settings.default.max_examples // 4)
SEEDS = st.integers(0, 2**32 - 1)
#: Times for the quadrature checks: 0, or in [1e-6, 5] (subnormal t stalls adaptive quadrature).
TIMES = st.one_of(st.just(0.0), st.floats(1e-6, 5.0))


def _lam(H):
    """Eigenvalues of H, descending."""
    return np.linalg.eigvalsh(H)[::-1]


# ----------------------------------------------------------------------------------------------
# B2
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=8, max_zero_eigenvalues=1))
def test_gain_lies_within_its_bounds(pair):
    H, Sigma = pair
    D = H.shape[0]
    r = gain_ratio(H, Sigma)
    lo, hi = gain_bounds(H)
    # r = D Σ_ij H_ij Σ_ij / (Tr H Tr Σ): a sum of D² products, error ≤ D² ε (Σ|H||Σ|) ≤ D² ε ·
    # D λ₁ Tr Σ, relative to the scale hi = D λ₁ / Tr H of the bounds
    tol = 4 * D**3 * EPS * hi
    assert lo - tol <= r <= hi + tol
    assert -tol <= lo <= 1 + tol <= hi + 2 * tol  # r(Σ̄) = 1 is always feasible


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=8, max_zero_eigenvalues=1))
def test_gain_is_at_least_the_aligned_lower_bound(pair):
    H, Sigma = pair
    D = H.shape[0]
    bound = aligned_gain_lower_bound(H, Sigma)
    hi = gain_bounds(H)[1]
    assert 0 <= alignment(H, Sigma) <= 1
    assert bound <= hi * (1 + 4 * D * EPS)
    assert gain_ratio(H, Sigma) >= bound - 4 * D**3 * EPS * hi


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(kinds=("proportional",), max_dim=8, max_zero_eigenvalues=2))
def test_noise_proportional_to_h_gives_the_hessian_gain(pair):
    H, Sigma = pair
    D = H.shape[0]
    r_h = hessian_noise_gain(H)
    assert gain_ratio(H, Sigma) == _approx(r_h, 8 * D**2 * EPS)
    # and it is ≥ 1 (Cauchy–Schwarz), ≤ D (r ≤ Dλ₁/Tr H ≤ D for PSD H)
    assert 1 - 8 * D * EPS <= r_h <= D * (1 + 8 * D * EPS)


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=8, max_zero_eigenvalues=1))
def test_isotropic_noise_has_unit_gain(pair):
    H, Sigma = pair
    D = H.shape[0]
    assert gain_ratio(H, isotropic_counterpart(Sigma)) == _approx(1.0, 8 * D * EPS)
    assert gain_ratio(H, np.eye(D)) == _approx(1.0, 8 * D * EPS)


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=6, max_zero_eigenvalues=1), seed=SEEDS,
       t=st.floats(0.0, 10.0), k=st.integers(0, 50))
def test_joint_rotation_invariance(pair, seed, t, k):
    H, Sigma = pair
    D = H.shape[0]
    Q = haar_orthogonal(D, seed)
    H_r, S_r = Q @ H @ Q.T, Q @ Sigma @ Q.T
    rel = 64 * D**2 * EPS
    hi = gain_bounds(H)[1]
    assert abs(gain_ratio(H_r, S_r) - gain_ratio(H, Sigma)) <= rel * hi
    assert abs(indicator(H_r, S_r) - indicator(H, Sigma)) <= rel * _lam(H)[0] * np.trace(Sigma)
    assert abs(alignment(H_r, S_r) - alignment(H, Sigma)) <= 1e-6  # eigenvector conditioning
    assert_allclose(gain_bounds(H_r), gain_bounds(H), rtol=0, atol=rel * hi)
    t = t / _lam(H)[0]
    scale_ou = np.trace(Sigma) * max(t, 1e-300)
    assert_allclose(ou_covariance(H_r, S_r, t), Q @ ou_covariance(H, Sigma, t) @ Q.T,
                    rtol=0, atol=rel * scale_ou)
    assert abs(ou_expected_loss_increase(H_r, S_r, t)
               - ou_expected_loss_increase(H, Sigma, t)) <= rel * np.trace(Sigma)
    eta = 1.0 / _lam(H)[0]
    assert abs(discrete_expected_loss_increase(H_r, S_r, eta, k)
               - discrete_expected_loss_increase(H, Sigma, eta, k)) <= (
        rel * (k + 1) * _lam(H)[0] * np.trace(Sigma))


def _approx(value, rel):
    return pytest.approx(value, rel=rel, abs=0)


# ----------------------------------------------------------------------------------------------
# B1, continuous time
# ----------------------------------------------------------------------------------------------


def _quadrature(H, Sigma, t):
    """∫₀ᵗ e^{−Hs} Σ e^{−Hs} ds by adaptive quadrature of scipy's expm (brute force)."""
    if t == 0:
        return np.zeros_like(H)

    def integrand(s):
        E = expm(-H * s)
        return E @ Sigma @ E

    value, _ = quad_vec(integrand, 0.0, t, epsabs=0.0, epsrel=1e-11, norm="max")
    return value


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=4, max_zero_eigenvalues=1), tau=TIMES)
def test_ou_covariance_matches_quadrature(pair, tau):
    H, Sigma = pair
    t = tau / _lam(H)[0]
    ref = _quadrature(H, Sigma, t)
    # quadrature to relative 1e-11 of the largest entry (requested), expm to ~1e-14
    assert_allclose(ou_covariance(H, Sigma, t), ref, rtol=0,
                    atol=1e-10 * max(float(np.abs(ref).max()), 1e-300))


@settings(max_examples=FEW)
@given(seed=SEEDS, D=st.integers(1, 4), t=TIMES)
def test_ou_covariance_matches_quadrature_for_indefinite_h(seed, D, t):
    rng = np.random.default_rng(seed)
    H = random_symmetric(rng.uniform(-1.0, 1.0, size=D), rng=rng)
    A = rng.standard_normal((D, D))
    Sigma = A @ A.T
    ref = _quadrature(H, Sigma, t)
    assert_allclose(ou_covariance(H, Sigma, t), ref, rtol=0,
                    atol=1e-10 * max(float(np.abs(ref).max()), 1e-300))


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=8, max_zero_eigenvalues=1), tau=st.floats(1e-6, 2.0))
def test_ou_small_t_form_has_relative_error_of_order_t(pair, tau):
    """0 ≤ (t/2)Tr(HΣ) − E[L_t − L*] ≤ λ₁t · (t/2)Tr(HΣ), since x − x²/2 ≤ 1 − e^{−x} ≤ x."""
    H, Sigma = pair
    D = H.shape[0]
    lam1 = _lam(H)[0]
    t = tau / lam1
    small = ou_loss_increase_small_t(H, Sigma, t)
    exact = ou_expected_loss_increase(H, Sigma, t)
    # round-off: both are sums of D² (resp. D) products, ≤ D² ε λ₁ t Tr Σ each
    tol = 16 * D**2 * EPS * lam1 * t * np.trace(Sigma)
    assert -tol <= small - exact <= lam1 * t * small + tol


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=6, kinds=("independent", "aligned", "low_rank")))
def test_ou_small_t_rate_constant(pair):
    """small − exact = (t²/2) Tr(H²Σ) − (t³/3) Tr(H³Σ) + …: at λ₁t = 10⁻⁴ the ratio to the first
    term is 1 within (2/3)λ₁t ≤ 7e-5; round-off of the difference is ≲ D² ε/(λ₁t) ≈ 1e-10."""
    H, Sigma = pair
    t = 1e-4 / _lam(H)[0]
    diff = ou_loss_increase_small_t(H, Sigma, t) - ou_expected_loss_increase(H, Sigma, t)
    leading = 0.5 * t**2 * float(np.einsum("ij,ji->", H @ H, Sigma))
    assert abs(diff / leading - 1.0) <= 1e-4


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=8))
def test_ou_loss_increase_tends_to_a_quarter_of_the_trace(pair):
    H, Sigma = pair
    lam = _lam(H)
    t = 60.0 / lam[-1]  # e^{−2λt} ≤ e^{−120}
    assert ou_expected_loss_increase(H, Sigma, t) == _approx(0.25 * np.trace(Sigma),
                                                            16 * H.shape[0] * EPS)
    assert ou_expected_loss_increase(H, Sigma, [t, 2 * t]) == _approx(
        [0.25 * np.trace(Sigma)] * 2, 16 * H.shape[0] * EPS)


# ----------------------------------------------------------------------------------------------
# B1, discrete time
# ----------------------------------------------------------------------------------------------


def _loop_sum(H, S, eta, k):
    """Σ_{j<k} A^j S A^j with A = I − ηH, accumulating A^j explicitly (brute force)."""
    D = H.shape[0]
    A = np.eye(D) - eta * H
    power = np.eye(D)
    total = np.zeros((D, D))
    for _ in range(k):
        total += power @ S @ power.T
        power = A @ power
    return total


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=6, max_zero_eigenvalues=1), step=st.floats(0.01, 2.4),
       k=st.integers(0, 80))
def test_discrete_covariance_equals_the_loop_sum(pair, step, k):
    """Stable (ηλ₁ < 2) and unstable (up to ηλ₁ = 2.4, growth 1.4^k) steps alike."""
    H, S = pair
    D = H.shape[0]
    eta = step / _lam(H)[0]
    ref = _loop_sum(H, S, eta, k)
    scale = max(float(np.abs(ref).max()), np.trace(S))
    # each of k steps loses ~D ε of the largest entry in both evaluations
    assert_allclose(discrete_covariance(H, S, eta, k), ref, rtol=0,
                    atol=64 * D * (k + 1) * EPS * scale)
    assert abs(discrete_expected_loss_increase(H, S, eta, k) - 0.5 * np.trace(H @ ref)) <= (
        64 * D * (k + 1) * EPS * scale * _lam(H)[0] * D)


def _first_order_coefficient(H, Sigma, t):
    r"""Coefficient c of Cov_k/η = Cov_t + η c + O(η²) for S = η²Σ, t = ηk, in H's basis.

    With s = λ_i + λ_j, p = λ_iλ_j: (ρ_iρ_j)^k = e^{−st}(1 + ηt(p − s²/2) + O(η²)) and
    η/(1 − ρ_iρ_j) = (1/s)(1 + ηp/s + O(η²)), so
    c_ij = Σ̃_ij [(1 − e^{−st}) p/s² − e^{−st} t (p − s²/2)/s].
    """
    lam, V = np.linalg.eigh(H)
    S_eig = V.T @ Sigma @ V
    s = lam[:, None] + lam[None, :]
    p = lam[:, None] * lam[None, :]
    decay = np.exp(-s * t)
    c = S_eig * ((1 - decay) * p / s**2 - decay * t * (p - s**2 / 2) / s)
    return V @ c @ V.T


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=4, decades=(0.5, 2.0)), tau=st.floats(0.1, 5.0))
def test_discrete_tends_to_ou_at_rate_eta(pair, tau):
    """S = η²Σ, t = ηk: Cov_k/η − Cov_t = η c + O(η²).  At ηλ₁ = 10⁻⁴ the O(η²) term is below
    1% of ‖c‖ + λ₁‖Cov_t‖ (relative size ηλ₁(1 + λ₁t)² ≤ 4e-3); round-off of the difference,
    divided by η, is ≲ 1e-11 λ₁‖Cov_t‖."""
    H, Sigma = pair
    lam1 = _lam(H)[0]
    eta = 1e-4 / lam1
    k = round(tau * 1e4)
    t = k * eta
    ou = ou_covariance(H, Sigma, t)
    discrete = discrete_covariance(H, eta**2 * Sigma, eta, k) / eta
    coef = _first_order_coefficient(H, Sigma, t)
    gap = np.linalg.norm((discrete - ou) / eta - coef)
    assert gap <= 0.01 * (np.linalg.norm(coef) + lam1 * np.linalg.norm(ou))
    # and the O(η) error itself is visible: it is not below the O(η²) remainder
    assert np.linalg.norm(discrete - ou) <= eta * (2 * np.linalg.norm(coef)
                                                   + 0.01 * lam1 * np.linalg.norm(ou))


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(max_dim=6), step=st.floats(0.05, 1.95))
def test_stationary_covariance_is_the_limit_of_the_discrete_one(pair, step):
    H, S = pair
    lam = _lam(H)
    eta = step / lam[0]
    rho_max = np.abs(1.0 - eta * lam).max()
    k = int(np.ceil(50.0 / -np.log(rho_max**2)))  # ρ^{2k} ≤ e^{−50}
    P = stationary_covariance_discrete(H, S, eta)
    scale = float(np.abs(P).max())
    assert_allclose(discrete_covariance(H, S, eta, k), P, rtol=0, atol=1e-10 * scale)
    A = np.eye(H.shape[0]) - eta * H
    assert_allclose(A @ P @ A + S, P, rtol=0, atol=1e-10 * scale)


@settings(max_examples=FEW)
@given(pair=psd_noise_pairs(min_dim=3, max_dim=6, decades=(2.0, 4.0),
                            kinds=("independent", "aligned", "low_rank")),
       k=st.integers(1, 5))
def test_indicator_orders_the_loss_increase_of_noise_structures_B1(pair, k):
    """B1: at matched Tr S, the structures {isotropic, diag, full, H-aligned} rank by Tr(HS) as by
    the expected loss increase after k steps.

    With A = I − ηH commuting with H and 0 ≤ ηλ ≤ ηλ₁ = 0.02:
    ½ Σ_{j<k} Tr(H A^{2j} S) lies in [k (1 − ηλ₁)^{2(k−1)}, k] · ½ Tr(HS), so two structures
    whose indicators differ by more than the factor f = (1 − ηλ₁)^{−2(k−1)} ≤ 1.18 are ordered
    the same way by their loss increase; at k = 1 the two orders coincide exactly.
    """
    H, Sigma = pair
    D = H.shape[0]
    lam, V = np.linalg.eigh(H)
    trace = np.trace(Sigma)
    u1 = V[:, -1]
    structures = {
        "isotropic": isotropic_counterpart(Sigma),
        "diag": np.diag(np.diag(Sigma)),
        "full": Sigma,
        "H-aligned": trace * np.outer(u1, u1),
    }
    eta = 0.02 / lam[-1]
    factor = (1 - eta * lam[-1]) ** (-2 * (k - 1))
    ind = {name: indicator(H, S) for name, S in structures.items()}
    loss = {name: discrete_expected_loss_increase(H, S, eta, k) for name, S in structures.items()}
    for name, S in structures.items():
        assert np.trace(S) == _approx(trace, 4 * D * EPS)
        lower = 0.5 * k * ind[name] / factor
        upper = 0.5 * k * ind[name]
        tol = 64 * D * k * EPS * lam[-1] * trace
        assert lower - tol <= loss[name] <= upper + tol
    compared = set()
    for a in structures:
        for b in structures:
            if ind[a] > factor * ind[b] * (1 + 1e-12) + 1e-300:
                assert loss[a] > loss[b], (a, b, ind, loss)
                compared.add((a, b))
    # the top-eigenvector noise maximises the indicator at fixed trace, and for these
    # ill-conditioned H (D λ₁/Tr H ≥ 6/5.01 > f) it always beats isotropic noise
    assert ind["H-aligned"] >= max(ind.values()) * (1 - 1e-12)
    assert ("H-aligned", "isotropic") in compared


def test_noise_kinds_are_all_drawn():
    """The strategy reaches every structure (so the properties above cover them)."""
    seen = set()

    @settings(max_examples=60, derandomize=True, database=None)
    @given(pair=psd_noise_pairs(max_dim=4))
    def collect(pair):
        H, Sigma = pair
        D = H.shape[0]
        if np.allclose(Sigma, Sigma[0, 0] * np.eye(D), rtol=1e-12, atol=0):
            seen.add("isotropic")
        elif np.allclose(Sigma @ H, H @ Sigma, atol=1e-9 * np.abs(Sigma).max()
                         * np.abs(H).max()):
            seen.add("commuting")
        elif np.linalg.matrix_rank(Sigma, tol=1e-9 * np.abs(Sigma).max()) < D:
            seen.add("low_rank")
        else:
            seen.add("independent")

    collect()
    assert seen == {"isotropic", "commuting", "low_rank", "independent"}
    assert len(NOISE_KINDS) == 5


def test_strategy_validates_its_arguments():
    with pytest.raises(ValueError, match=r"\bkinds\b"):
        psd_noise_pairs(kinds=("sideways",))
    with pytest.raises(ValueError, match=r"\bkinds\b"):
        psd_noise_pairs(kinds="aligned")
    with pytest.raises(ValueError, match=r"\bmax_dim\b"):
        psd_noise_pairs(min_dim=4, max_dim=3)
    with pytest.raises(ValueError, match=r"\bmax_zero_eigenvalues\b"):
        psd_noise_pairs(max_dim=3, max_zero_eigenvalues=3)
    with pytest.raises(ValueError, match=r"\bdecades\b"):
        psd_noise_pairs(decades=-1.0)
    with pytest.raises(ValueError, match=r"\bnoise_decades\b"):
        psd_noise_pairs(noise_decades=(3.0, 1.0))
    # the spectrum helper the strategy draws from is log-uniform over the requested decades
    lam = log_uniform_spectrum(5, rng=0, decades=3.0)
    assert lam[0] / lam[-1] == _approx(1e3, 1e-12)

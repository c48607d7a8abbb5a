"""Extreme magnitudes, null spaces, impossible κ* and degenerate spectra in sgdnoise.theory.

Each test starts from a reproducer: finite input that used to give inf/NaN with only a warning,
a fitted exponent decided by round-off, a "guaranteed" interval that was not, or a raw
ZeroDivisionError.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sgdnoise import backends, theory
from sgdnoise._validate import (
    NonFiniteResultError,
    check_finite_result,
    check_psd_stack,
    pow2_exponent,
    scale_pow2,
)
from sgdnoise.sim.models import MLP


def _kronecker_case(seed: int = 0, N: int = 7, out: int = 3, inn: int = 4):
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((N, out, 2))
    G = np.einsum("pik,pjk->pij", L, L)
    return G, rng.standard_normal((N, inn)), rng.standard_normal((N, out))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def test_pow2_exponent_leaves_ordinary_magnitudes_alone():
    assert pow2_exponent(np.ones(3)) == 0
    assert pow2_exponent(np.zeros(3)) == 0
    assert pow2_exponent(np.array([])) == 0
    assert pow2_exponent(2.0**64 * 0.99) == 0
    assert pow2_exponent(2.0**-64) == 0
    e = pow2_exponent(1e300)
    assert 0.5 <= 1e300 * 2.0**-e < 1.0
    e = pow2_exponent(np.array([1e-300, -3e-310]))
    assert 0.5 <= 1e-300 * 2.0**-e < 1.0


def test_scaling_by_powers_of_two_is_exact():
    x = np.random.default_rng(1).standard_normal(50)
    assert_array_equal(scale_pow2(scale_pow2(x, 700), -700), x)


def test_check_finite_result_raises_value_and_floating_point_error():
    assert check_finite_result(np.ones(2), "x", "y") is not None
    for exc in (ValueError, FloatingPointError, NonFiniteResultError):
        with pytest.raises(exc, match=r"\bG and a\b.*\bM\b"):
            check_finite_result(np.array([1.0, np.inf]), "G and a", "M")


# ---------------------------------------------------------------------------------------------
# moments: exact power-of-two scaling, or a named error
# ---------------------------------------------------------------------------------------------


def test_kronecker_moments_overflow_is_refused_by_name():
    """Reproducer: kronecker_layer_moments(G*1e200, a*1e50) gave inf/NaN with a RuntimeWarning."""
    G, a, _ = _kronecker_case()
    with pytest.raises(NonFiniteResultError, match=r"G and a.*M = E_p"):
        theory.kronecker_layer_moments(G * 1e200, a * 1e50)


def test_kronecker_moments_of_extreme_but_representable_input_are_exact():
    """G·2⁶⁰⁰ and a·2⁻⁴⁰⁰: G² overflows unscaled, yet H, M, K, Σ₁ are representable."""
    G, a, delta = _kronecker_case()
    ref = theory.kronecker_layer_moments(G, a, delta)
    big = theory.kronecker_layer_moments(np.ldexp(G, 600), np.ldexp(a, -400),
                                         np.ldexp(delta, 300))
    assert_array_equal(big.H, np.ldexp(ref.H, 600 - 800))
    assert_array_equal(big.M, np.ldexp(ref.M, 1200 - 1600))
    assert_array_equal(big.K, np.ldexp(ref.K, 1200 - 1600))
    assert_array_equal(big.kappa_max, np.ldexp(ref.kappa_max, 600 - 800))
    assert_array_equal(big.Sigma1, np.ldexp(ref.Sigma1, 600 - 800))
    assert_array_equal(big.g_mean, np.ldexp(ref.g_mean, 300 - 400))


def test_kronecker_helpers_and_diagonals_scale_exactly():
    G, a, delta = _kronecker_case(2)
    e_G, e_a, e_d = 700, -450, 400
    Gs, as_, ds = np.ldexp(G, e_G), np.ldexp(a, e_a), np.ldexp(delta, e_d)
    assert_array_equal(theory.kronecker_max_curvatures(Gs, as_),
                       np.ldexp(theory.kronecker_max_curvatures(G, a), e_G + 2 * e_a))
    assert_array_equal(theory.kronecker_hessians(Gs, as_),
                       np.ldexp(theory.kronecker_hessians(G, a), e_G + 2 * e_a))
    assert_array_equal(theory.kronecker_hessian_diagonal(Gs, as_),
                       np.ldexp(theory.kronecker_hessian_diagonal(G, a), e_G + 2 * e_a))
    assert_array_equal(theory.kronecker_second_moment_diagonal(Gs, as_),
                       np.ldexp(theory.kronecker_second_moment_diagonal(G, a),
                                2 * e_G + 4 * e_a))
    assert_array_equal(theory.kronecker_gradient_variance(ds, as_),
                       np.ldexp(theory.kronecker_gradient_variance(delta, a), 2 * (e_d + e_a)))
    with pytest.raises(ValueError, match="G and a"):
        theory.kronecker_second_moment_diagonal(np.ldexp(G, 600), a)


def test_dense_moments_scale_exactly_or_refuse():
    h = theory.kronecker_hessians(*_kronecker_case(3)[:2])
    grads = np.random.default_rng(3).standard_normal(h.shape[:2])
    ref = theory.dense_layer_moments(h, grads)
    small = theory.dense_layer_moments(np.ldexp(h, -520), np.ldexp(grads, 500))
    assert_array_equal(small.H, np.ldexp(ref.H, -520))
    assert_array_equal(small.kappa_max, np.ldexp(ref.kappa_max, -520))
    assert_array_equal(small.Sigma1, np.ldexp(ref.Sigma1, 1000))
    with pytest.raises(ValueError, match=r"\bh\b.*M = E_p"):
        theory.hessian_moments(np.ldexp(h, 520))
    with pytest.raises(ValueError, match=r"\bgrads\b"):
        theory.gradient_covariance(np.ldexp(grads, 1020))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_mlp_layer_factors_overflow_is_refused_by_name(backend):
    """Reproducer: MLP((5,4,3),'relu').layer_factors(w*1e160, x, y, 0) returned inf/NaN."""
    if backend not in backends.available():
        pytest.skip(f"backend {backend!r} is not available here")
    model = MLP((5, 4, 3), "relu")
    rng = np.random.default_rng(0)
    w = model.init(rng)
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, 6)
    G, _, delta = model.layer_factors(w, x, y, 0, backend=backend)  # ordinary input: finite
    assert np.all(np.isfinite(G)) and np.all(np.isfinite(delta))
    with pytest.raises(NonFiniteResultError, match=r"\bw and x\b.*layer factor"):
        model.layer_factors(w * 1e160, x, y, 0, backend=backend)


# ---------------------------------------------------------------------------------------------
# bounds
# ---------------------------------------------------------------------------------------------


def test_loewner_sandwich_with_zero_M_is_refused():
    """Reproducer: loewner_sandwich(1e3·I, 0, 1.0) overflowed in a division by ‖M‖ = 0."""
    with pytest.raises(ValueError, match=r"\bM\b is zero while H is not"):
        theory.loewner_sandwich(1e3 * np.eye(2), np.zeros((2, 2)), 1.0)
    zero = theory.loewner_sandwich(np.zeros((2, 2)), np.zeros((2, 2)), 1.0)
    assert (zero.lower, zero.upper) == (0.0, 0.0)


def test_loewner_sandwich_margin_beyond_float64_is_refused():
    with pytest.raises(ValueError, match=r"\bM\b.*lower margin"):
        theory.loewner_sandwich(1e3 * np.eye(2), 1e-305 * np.eye(2))


def test_loewner_sandwich_is_scale_invariant_exactly():
    h = theory.kronecker_hessians(*_kronecker_case(4)[:2])
    H, M = theory.hessian_moments(h)
    kappa = float(theory.max_curvatures(h).max())
    ref = theory.loewner_sandwich(H, M, kappa)
    # the margins are invariant under (sH, s²M, sκ*): computed at unit scale, bit for bit
    for e in (200, -250):
        big = theory.loewner_sandwich(np.ldexp(H, e), np.ldexp(M, 2 * e), np.ldexp(kappa, e))
        assert (big.lower, big.upper) == (ref.lower, ref.upper)


def test_diagonal_wedge_overflow_is_refused():
    with pytest.raises(ValueError, match=r"\blam\b.*λ_i²"):
        theory.diagonal_wedge(np.array([1e200, 1.0]), np.ones(2), 1e200)


# ---------------------------------------------------------------------------------------------
# commutation
# ---------------------------------------------------------------------------------------------


def _pair(seed: int = 0, D: int = 6):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((D, D))
    B = rng.standard_normal((D, D))
    return A @ A.T, B + B.T


def test_commutation_metrics_of_huge_C_is_finite():
    """Reproducer: commutation_metrics(C*1e300/abs(C).max(), H) overflowed in a square."""
    C, H = _pair()
    ref = theory.commutation_metrics(C, H)
    rep = theory.commutation_metrics(C * 1e300 / np.abs(C).max(), H)
    assert_allclose(rep.epsilon, ref.epsilon, rtol=1e-12)
    assert_allclose(rep.ratio, ref.ratio, rtol=1e-12)
    assert_allclose(rep.baseline.samples, ref.baseline.samples, rtol=1e-12)


def test_commutation_metrics_are_invariant_to_extreme_scales():
    C, H = _pair(1)
    ref = theory.commutation_metrics(C, H, rng=3)
    basis = theory.eigenbasis(np.ldexp(H, -900))
    rep = theory.commutation_metrics(np.ldexp(C, 1000), np.ldexp(H, -900), rng=3, basis=basis)
    # the same metrics up to the eigensolver's round-off (it sees H at another scale)
    for got, want in ((rep.epsilon, ref.epsilon), (rep.ratio, ref.ratio),
                      (rep.diagonal_energy, ref.diagonal_energy),
                      (rep.windows["top"], ref.windows["top"]),
                      (rep.baseline.samples, ref.baseline.samples)):
        assert_allclose(got, want, rtol=1e-12)
    # without an eigensolver on a rescaled H the scaling is exact
    assert theory.commutation_error(np.ldexp(C, 1000), H) == theory.commutation_error(C, H)
    eig_C, eig_H = np.linalg.eigvalsh(C), np.linalg.eigvalsh(H)
    assert (theory.expected_random_commutator(np.ldexp(eig_C, 1000), np.ldexp(eig_H, -1000))
            == theory.expected_random_commutator(eig_C, eig_H))


def test_commutation_metrics_with_identity_has_an_undefined_ratio():
    """Reproducer: commutation_metrics(I, I) raised ZeroDivisionError (zero baseline)."""
    rep = theory.commutation_metrics(np.eye(2), np.eye(2))
    assert rep.ratio is None and rep.spearman is None
    assert rep.epsilon == 0.0 and rep.baseline.mean == 0.0
    C, H = _pair(2, D=20)
    for c_, h_ in ((3.3 * np.eye(20), H), (C, 0.7 * np.eye(20))):
        for num_baseline in (0, 8):
            rep = theory.commutation_metrics(c_, h_, num_baseline=num_baseline)
            assert rep.ratio is None and rep.spearman is None
            assert rep.epsilon <= 1e-14 and rep.baseline.expected_rms <= 1e-14


def test_commutation_ratio_stays_defined_for_generic_pairs():
    C, H = _pair(3)
    rep = theory.commutation_metrics(C, H)
    assert rep.ratio == rep.epsilon / rep.baseline.mean


def test_commutation_metrics_accepts_its_own_basis():
    C, H = _pair(4)
    basis = theory.eigenbasis(H)
    assert (theory.commutation_metrics(C, H, basis=basis).epsilon
            == theory.commutation_metrics(C, H).epsilon)


# ---------------------------------------------------------------------------------------------
# noise covariance and PSD checks
# ---------------------------------------------------------------------------------------------


def test_noise_covariance_accepts_round_off_and_numpy_bools():
    Sigma1 = np.diag([1.0, 1e-3, 0.0]) + 1e-12 * np.eye(3)[::-1]  # symmetric, PSD to round-off
    Sigma1[2, 2] = -1e-12
    assert_allclose(theory.noise_covariance(Sigma1, 4, replacement=np.bool_(True)), Sigma1 / 4)
    assert_allclose(theory.noise_covariance(Sigma1, 4, N=10, replacement=False),
                    Sigma1 * (6 / (4 * 9)))


def test_require_psd_checks_symmetry_before_either_triangle():
    """Reproducer: the eigensolver read one triangle, so the filled triangle decided."""
    upper = np.triu(np.ones((3, 3)))[None]  # lower triangle of ones' eigenvalues: PSD
    for h in (upper, np.transpose(upper, (0, 2, 1))):
        with pytest.raises(ValueError, match="symmetric"):
            theory.require_psd(h)
        with pytest.raises(ValueError, match="symmetric"):
            check_psd_stack(h, "h")


# ---------------------------------------------------------------------------------------------
# fits: the eigenvalue floor (dead units) and the guaranteed interval
# ---------------------------------------------------------------------------------------------


def _dead_input_layer(seed: int = 0, dead=(2, 5)):
    """A Kronecker layer whose inputs 2 and 5 are always 0 (dead ReLU units of the previous
    layer): H has an exact null space of dimension out·len(dead)."""
    rng = np.random.default_rng(seed)
    N, out, inn = 200, 6, 8
    L = rng.standard_normal((N, out, 3))
    G = np.einsum("pik,pjk->pij", L, L)
    a = rng.standard_normal((N, inn)) * np.logspace(0, -1.5, inn)
    a[:, list(dead)] = 0.0
    return G, a


def test_fit_exponent_drops_null_space_round_off():
    """Reproducer: round-off eigenvalues of the null space gave γ ≈ 1.86 instead of ≈ 1.10."""
    G, a = _dead_input_layer()
    lm = theory.kronecker_layer_moments(G, a)
    eb = theory.eigenbasis(lm.H)
    M_ii = eb.diagonal(lm.M)
    fit = theory.fit_exponent(eb.lam, M_ii, kappa_star=lm.kappa_star)
    # reference: the same fit on the range of H only (the null space removed by hand)
    live = eb.lam > 1e-8 * eb.lam[0]
    assert live.sum() == 36
    ref = theory.fit_exponent(eb.lam[live], M_ii[live], kappa_star=lm.kappa_star)
    assert fit.gamma == ref.gamma and fit.fit.num_points == 36
    assert 0 < fit.num_below_floor == fit.fit.num_below_floor <= 12
    assert fit.interval_guaranteed
    contaminated = theory.fit_exponent(eb.lam, M_ii, kappa_star=lm.kappa_star, rel_floor=0.0)
    assert contaminated.num_below_floor == 0 and contaminated.gamma - fit.gamma > 0.5


def test_floored_fit_does_not_depend_on_round_off():
    G, a = _dead_input_layer()
    gammas = []
    for perm in (np.arange(len(G)), np.random.default_rng(1).permutation(len(G))):
        lm = theory.kronecker_layer_moments(G[perm], a[perm])
        eb = theory.eigenbasis(lm.H)
        gammas.append(theory.fit_exponent(eb.lam, eb.diagonal(lm.M)).gamma)
    assert_allclose(gammas[0], gammas[1], rtol=1e-10)


def test_fit_power_law_floor_and_protocols():
    lam = np.array([1.0, 0.5, 0.1, 1e-11, 3e-17, -1e-17])
    y = np.abs(lam) ** 1.5
    for protocol in ("top", "layerwise"):
        fit = theory.fit_power_law(lam, y, protocol=protocol, trim_percentile=0.0,
                                   keep_fraction=1.0)
        assert fit.num_below_floor == 2 and set(fit.index) == {0, 1, 2}
        assert_allclose(fit.slope, 1.5, rtol=1e-12)
    assert theory.fit_power_law(lam, y, top=3).num_below_floor == 0


def test_impossible_kappa_star_is_refused():
    """Reproducer: κ* = 0.01 < λ_max = 1 gave a 'guaranteed' interval (2, 2) around γ = 1.5."""
    lam = np.array([1.0, 0.5, 0.2, 0.1])
    with pytest.raises(ValueError, match=r"kappa_star.*lam_max"):
        theory.fit_exponent(lam, lam**1.5, kappa_star=0.01)
    fit = theory.fit_exponent(lam, lam**1.5, kappa_star=1.0)  # κ* = λ_max is possible
    assert fit.interval_guaranteed and fit.interval[0] <= fit.gamma <= fit.interval[1]


def test_indefinite_hessians_leave_the_interval_unguaranteed():
    """κ_eff above κ* (indefinite h_p): the interval is reported, but not as a guarantee, and
    here γ indeed falls outside it."""
    h = np.stack([np.diag([0.69, -0.7, 2.98]), np.diag([2.89, 1.11, 0.9])])
    lm = theory.dense_layer_moments(h)
    eb = theory.eigenbasis(lm.H)
    M_ii = eb.diagonal(lm.M)
    assert np.any(M_ii / eb.lam > lm.kappa_star)  # the A2 wedge is violated
    fit = theory.fit_exponent(eb.lam, M_ii, kappa_star=lm.kappa_star)
    assert not fit.interval_guaranteed
    assert not (fit.interval[0] <= fit.gamma <= fit.interval[1])
    # PSD members (|h_p|): guaranteed, and it does contain γ
    psd = theory.dense_layer_moments(np.abs(h))
    eb = theory.eigenbasis(psd.H)
    fit = theory.fit_exponent(eb.lam, eb.diagonal(psd.M), kappa_star=psd.kappa_star,
                              kappa_upper=eb.diagonal(psd.K) / eb.lam)
    assert fit.interval_guaranteed and fit.interval[0] <= fit.gamma <= fit.interval[1]


def test_interval_without_upper_bounds_is_guaranteed_and_unbounded_above():
    lam = np.array([1.0, 0.5, 0.2, 0.1])
    fit = theory.fit_exponent(lam, lam**1.5)
    assert fit.interval_guaranteed and fit.interval[1] == np.inf
    bad = theory.fit_exponent(lam, lam**2.5)  # κ_eff < λ_i: impossible for symmetric h_p
    assert not bad.interval_guaranteed

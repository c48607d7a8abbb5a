"""Property tests of spec part A (claims A1, A2, A3, A5) on the random families.

Every assertion is a theorem about the drawn family.  Tolerances only absorb floating-point
round-off and are scaled to the matrices' norms (backward errors of eigh and of the GEMMs);
the two Monte-Carlo checks use a fixed seed and the standard error of the sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from sgdnoise.sim.families import (
    WINDOW_BREAKING_EXPONENTS,
    commuting_pair,
    identical_hessians,
    kronecker_family,
    log_uniform_spectrum,
    noncommuting_pair,
    population_kronecker,
    population_wishart,
    random_psd,
    rank_one_equal_curvature,
    window_breaking_family,
)
from sgdnoise.theory import (
    PROTOCOLS,
    commutation_error,
    dense_layer_moments,
    diagonal_wedge,
    eigenbasis,
    expected_random_commutator,
    fit_exponent,
    fit_power_law,
    haar_orthogonal,
    hessian_moments,
    kronecker_hessians,
    kronecker_layer_moments,
    loewner_sandwich,
    max_curvatures,
    monotone_condition,
    random_commutation_baseline,
)
from sgdnoise.verify.strategies import (
    PSD_FAMILIES,
    commuting_pairs,
    kronecker_factors,
    noncommuting_pairs,
    per_sample_hessian_families,
    psd_matrices,
    spectra,
    window_breaking_families,
)

EPS = np.finfo(np.float64).eps
#: Examples per property: a quarter of the active profile's budget ("ci": 25, "dev": 250).
FEW = max(10, settings.default.max_examples // 4)
SEEDS = st.integers(0, 2**32 - 1)

ANY_SYMMETRIC = per_sample_hessian_families(max_dim=6, max_samples=20, families=PSD_FAMILIES,
                                            psd=False)
ANY_PSD = per_sample_hessian_families(max_dim=6, max_samples=20, families=PSD_FAMILIES)


# ----------------------------------------------------------------------------------------------
# round-off bounds
# ----------------------------------------------------------------------------------------------


def _norm(A):
    return float(np.linalg.norm(A, 2))


def _c(D):
    """Constant of the backward-error bounds: eigh and GEMMs of size D err by O(D·eps)."""
    return 8 * D * D * EPS


def _log_roundoff(H, M, lam, M_ii):
    """Bounds on the round-off in log λ_i and in log κ_eff,i = log(M_ii/λ_i) (see test_families)."""
    c = _c(H.shape[0])
    nH, nM = _norm(H), _norm(M)
    return c * nH / np.abs(lam), c * (nM / np.abs(M_ii) + 2 * nH / np.abs(lam))


def _ols_weights(x):
    xc = x - x.mean()
    return xc / float(xc @ xc)


def _weights_roundoff(x, c):
    """Bound (first order, fourfold) on the floating-point error of Σ_i w_i c_i with the OLS
    weights w = (x − x̄)/Σ_j (x_j − x̄)², from centring x, summing squares and the dot product."""
    n = x.size
    xc = x - x.mean()
    sxx = float(xc @ xc)
    w = xc / sxx
    dxc = 2 * EPS * (np.abs(x) + abs(x.mean()))
    dsxx = 2 * float(np.abs(xc) @ dxc) + n * EPS * sxx
    dw = dxc / sxx + np.abs(w) * dsxx / sxx
    c = np.abs(c)
    return 4 * (float(dw @ c) + 2 * n * EPS * float(np.abs(w) @ c))


def _ols_roundoff(x, y):
    """Bound on the floating-point error of the OLS slope of y on x (y is centred too)."""
    w = _ols_weights(x)
    return _weights_roundoff(x, y - y.mean()) + 8 * EPS * float(np.abs(w) @ (np.abs(y) + abs(y.mean())))


def _slope_tolerance(lam, kappa_eff, dx, dy):
    """Doubled first-order bound on the change of the OLS slope of log κ_eff on log λ when log λ_i
    moves by dx_i and log κ_eff,i by dy_i, plus the floating-point evaluation of the slope."""
    x, y = np.log(lam), np.log(kappa_eff)
    w = _ols_weights(x)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(w @ y)
    db_dx = (np.abs(y - y.mean()) + 2 * abs(b) * np.abs(xc)) / sxx
    return 2 * float(np.abs(w) @ dy + db_dx @ dx) + 2 * _ols_roundoff(x, y)


def _resolved(lam):
    """The window's log-λ spread is far above round-off, so its OLS slope is well posed."""
    x = np.log(lam)
    return bool(np.ptp(x) > 1e-6 * (1 + np.abs(x).max()))


def _good(lam, M_ii, floor=1e-8):
    """Directions whose eigenvalue is resolved well above round-off."""
    return (lam > floor * lam.max()) & (M_ii > 0)


@st.composite
def windows(draw, n):
    """Keyword arguments of a fit window: protocol, top and the layerwise trimming."""
    protocol = draw(st.sampled_from(PROTOCOLS))
    kwargs = {"protocol": protocol, "top": draw(st.one_of(st.none(), st.integers(2, max(2, n))))}
    if protocol == "layerwise":
        kwargs["trim_percentile"] = draw(st.floats(0.0, 20.0))
        kwargs["keep_fraction"] = draw(st.floats(0.3, 1.0))
    return kwargs


def _fit_or_reject(fit, *args, **kwargs):
    """Run a fit; reject the example when the window keeps fewer than two distinct points."""
    try:
        return fit(*args, **kwargs)
    except ValueError as exc:
        if any(s in str(exc) for s in ("usable point", "distinct", "round-off")):
            reject()
        raise


# ----------------------------------------------------------------------------------------------
# A1: Loewner sandwich
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(h=ANY_SYMMETRIC)
def test_loewner_lower_side_holds_for_any_symmetric_family_A1(h):
    H, M = hessian_moments(h)
    margins = loewner_sandwich(H, M)
    assert margins.lower >= -_c(H.shape[0])
    # the gap is the per-sample variance E_p[(h_p − H)²]
    centred = h - H
    variance = np.einsum("pij,pjk->ik", centred, centred) / h.shape[0]
    scale = _c(H.shape[0]) * float(np.mean(np.linalg.norm(centred, axis=(1, 2)) ** 2) + _norm(M))
    assert np.abs(M - H @ H - variance).max() <= scale


@settings(max_examples=FEW)
@given(h=ANY_PSD)
def test_loewner_upper_side_holds_for_psd_families_A1(h):
    H, M = hessian_moments(h)
    kappa_star = float(max_curvatures(h).max())
    margins = loewner_sandwich(H, M, kappa_star)
    rtol = _c(H.shape[0]) * (1 + kappa_star * _norm(H) / _norm(M))
    assert margins.lower >= -rtol and margins.upper >= -rtol
    assert margins.holds(rtol)


# ----------------------------------------------------------------------------------------------
# A2: diagonal wedge, with the per-sample bound K = E_p[κ_max(p) h_p]
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(h=ANY_SYMMETRIC)
def test_wedge_lower_side_holds_for_any_symmetric_family_A2(h):
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    M_ii = eb.diagonal(M)
    slack = _c(H.shape[0]) * (_norm(M) + _norm(H) ** 2)
    assert np.all(eb.lam**2 <= M_ii + slack)


@settings(max_examples=FEW)
@given(h=ANY_PSD)
def test_wedge_holds_with_per_sample_bound_for_psd_families_A2(h):
    moments = dense_layer_moments(h)
    eb = eigenbasis(moments.H)
    M_ii, K_ii = eb.diagonal(moments.M), eb.diagonal(moments.K)
    kappa_star = moments.kappa_star
    wedge = diagonal_wedge(eb.lam, M_ii, kappa_star, K_ii)
    slack = _c(h.shape[1]) * (_norm(moments.M) + _norm(moments.H) ** 2
                              + kappa_star * _norm(moments.H) + _norm(moments.K))
    rtol = slack / max(float(np.abs(M_ii).max()), np.finfo(np.float64).tiny)
    assert wedge.violations(rtol) == {"lower": 0, "upper": 0, "upper_per_sample": 0}
    # the per-sample bound is never weaker than κ* λ_i
    assert np.all(K_ii <= kappa_star * eb.lam + slack)


# ----------------------------------------------------------------------------------------------
# A3: the exponent identity, the guaranteed interval, and when γ ∈ [1, 2] is a theorem
# ----------------------------------------------------------------------------------------------


@settings(max_examples=2 * FEW)
@given(h=ANY_SYMMETRIC, data=st.data())
def test_exponent_identity_on_any_window_A3(h, data):
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    window = data.draw(windows(lam.size), label="window")
    fit = _fit_or_reject(fit_power_law, lam, M_ii, **window)
    idx = fit.index
    x, y = np.log10(lam[idx]), np.log10(M_ii[idx])
    # the identity is algebraic; checking it in floating point needs a resolved spread of log λ
    assume(_resolved(lam[idx]))
    k = np.log10(M_ii[idx] / lam[idx])
    w = _ols_weights(x)
    kappa_slope = float(w @ (k - k.mean()))  # slope of log κ_eff, computed independently
    # log10(M/λ) and log10 M − log10 λ differ by the rounding of the logs and of the division
    split = 4 * EPS * (np.abs(x) + np.abs(y) + np.abs(k) + 1)
    tol = _ols_roundoff(x, y) + _ols_roundoff(x, k) + float(np.abs(w) @ split)
    assert abs(fit.slope - (1.0 + kappa_slope)) <= tol
    ef = fit_exponent(lam, M_ii, **window)
    assert abs(ef.identity_residual) <= tol
    assert abs(ef.kappa_slope - kappa_slope) <= tol
    assert ef.gamma == fit.slope
    assert ef.in_unit_range == (0.0 <= ef.kappa_slope <= 1.0)


@settings(max_examples=2 * FEW)
@given(h=ANY_PSD, data=st.data())
def test_guaranteed_interval_contains_gamma_on_any_window_A3(h, data):
    moments = dense_layer_moments(h)
    eb = eigenbasis(moments.H)
    lam, M_ii, K_ii = eb.lam, eb.diagonal(moments.M), eb.diagonal(moments.K)
    good = _good(lam, M_ii)
    assume(good.sum() >= 2)
    lam, M_ii, K_ii = lam[good], M_ii[good], K_ii[good]
    window = data.draw(windows(lam.size), label="window")
    kappa_star = moments.kappa_star
    fit = _fit_or_reject(fit_exponent, lam, M_ii, kappa_star=kappa_star,
                         kappa_upper=np.maximum(K_ii, 0.0) / lam, **window)
    idx = fit.fit.index
    lam_w, kappa_eff = lam[idx], M_ii[idx] / lam[idx]
    assume(_resolved(lam_w))
    upper = np.maximum(np.minimum(kappa_star, np.maximum(K_ii[idx], 0.0) / lam_w), lam_w)
    # the wedge bounds on κ_eff hold up to round-off ...
    excess = np.maximum.reduce([np.zeros_like(lam_w), np.log(lam_w / kappa_eff),
                                np.log(kappa_eff / upper)])
    _, dy = _log_roundoff(moments.H, moments.M, lam_w, M_ii[idx])
    assert np.all(excess <= dy)
    # ... and γ_fit is in the interval up to that excess (the slope is linear in log κ_eff) and
    # the floating-point evaluation of the fitted slope and of the interval's endpoints
    x = np.log(lam_w)
    bounds = np.maximum(np.abs(np.log(lam_w)), np.abs(np.log(upper)))
    tol = (float(np.abs(_ols_weights(x)) @ excess)
           + _ols_roundoff(np.log10(lam_w), np.log10(M_ii[idx])) + _weights_roundoff(x, bounds))
    lo, hi = fit.interval
    assert lo - tol <= fit.gamma <= hi + tol


def _assert_gamma_in_unit_range_by_monotone_condition(H, M, lam, M_ii, fit):
    """The sufficient condition holds (up to round-off), hence 0 ≤ κ_eff slope ≤ 1."""
    dx, dy = _log_roundoff(H, M, lam, M_ii)
    idx = fit.fit.index
    k = np.log(M_ii[idx] / lam[idx])
    assert np.all(np.isfinite(k))
    log_tol = 2 * float((dx[idx] + dy[idx]).max())
    assert monotone_condition(lam[idx], M_ii[idx] / lam[idx], tol=log_tol)
    tol = _slope_tolerance(lam[idx], M_ii[idx] / lam[idx], dx[idx], dy[idx])
    assert -tol <= fit.kappa_slope <= 1 + tol
    assert 1 - tol <= fit.gamma <= 2 + tol


@settings(max_examples=FEW)
@given(H0=psd_matrices(max_dim=6, decades=(1.0, 4.0)), N=st.integers(1, 10), data=st.data())
def test_identical_family_satisfies_condition_and_unit_range_A3(H0, N, data):
    h = identical_hessians(H0, N)
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    good = _good(lam, M_ii)
    lam, M_ii = lam[good], M_ii[good]
    fit = _fit_or_reject(fit_exponent, lam, M_ii, **data.draw(windows(lam.size)))
    _assert_gamma_in_unit_range_by_monotone_condition(H, M, lam, M_ii, fit)


@settings(max_examples=FEW)
@given(D=st.integers(2, 6), extra=st.integers(0, 10), seed=SEEDS, kappa=st.floats(0.1, 10.0),
       decades=st.floats(1.0, 4.0), data=st.data())
def test_rank_one_family_satisfies_condition_and_unit_range_A3(D, extra, seed, kappa, decades,
                                                               data):
    h = rank_one_equal_curvature(D, D + extra, rng=seed, kappa=kappa, decades=decades)
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    good = _good(lam, M_ii)
    assume(good.sum() >= 2)
    lam, M_ii = lam[good], M_ii[good]
    fit = _fit_or_reject(fit_exponent, lam, M_ii, **data.draw(windows(lam.size)))
    _assert_gamma_in_unit_range_by_monotone_condition(H, M, lam, M_ii, fit)


@settings(max_examples=FEW)
@given(S=psd_matrices(max_dim=8, decades=(1.0, 6.0)), rank=st.integers(1, 4), data=st.data())
def test_rank_r_population_satisfies_condition_and_unit_range_A3(S, rank, data):
    """Family (iii) with exact population moments: h = Σ_k x_k x_kᵀ, x_k ~ N(0, S)."""
    H, M = population_wishart(S, rank)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    fit = _fit_or_reject(fit_exponent, lam, M_ii, **data.draw(windows(lam.size)))
    _assert_gamma_in_unit_range_by_monotone_condition(H, M, lam, M_ii, fit)


@settings(max_examples=FEW)
@given(g=st.floats(1e-3, 1e3), S=psd_matrices(max_dim=8, decades=(1.0, 6.0)), data=st.data())
def test_single_output_kronecker_population_satisfies_condition_A3(g, S, data):
    """Family (iv), one output (binary logistic): h = g · a aᵀ with a ~ N(0, S)."""
    H, M = population_kronecker(np.array([[g]]), S)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    fit = _fit_or_reject(fit_exponent, lam, M_ii, **data.draw(windows(lam.size)))
    _assert_gamma_in_unit_range_by_monotone_condition(H, M, lam, M_ii, fit)


@settings(max_examples=FEW)
@given(g=spectra(min_dim=1, max_dim=4, decades=(0.5, 3.0)),
       s=spectra(min_dim=1, max_dim=4, decades=(0.5, 4.0)), seed=SEEDS)
def test_kronecker_population_full_window_in_unit_range_A3(g, s, seed):
    """Family (iv), any G ≻ 0: over the full product grid of eigen-directions,
    slope(log κ_eff) = (Var log g + Cov(log s, f)) / (Var log g + Var log s) ∈ [0, 1]."""
    assume(g.size * s.size >= 2 and (g.size >= 2 or s.size >= 2))
    rng = np.random.default_rng(seed)
    VG, VS = haar_orthogonal(g.size, rng), haar_orthogonal(s.size, rng)
    G, S = (VG * g) @ VG.T, (VS * s) @ VS.T
    H, M = population_kronecker(G, S)
    V, lam = np.kron(VG, VS), np.kron(g, s)  # H's eigenbasis: the product grid
    assert np.abs(H @ V - V * lam).max() <= _c(lam.size) * _norm(H)
    M_ii = np.einsum("ij,ij->j", V, M @ V)
    fit = fit_exponent(lam, M_ii)
    assert fit.fit.num_points == lam.size
    dx, dy = _log_roundoff(H, M, lam, M_ii)
    tol = _slope_tolerance(lam, M_ii / lam, dx, dy)
    var_g, var_s = np.log(g).var(), np.log(s).var()
    assert var_g / (var_g + var_s) - tol <= fit.kappa_slope <= 1 + tol
    assert 1 - tol <= fit.gamma <= 2 + tol


@settings(max_examples=FEW)
@given(h=window_breaking_families(side="either", max_dim=6, max_samples=20), data=st.data())
def test_family_v_breaks_naive_unit_range_while_interval_holds_A3(h, data):
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    kappa_star = float(max_curvatures(h).max())
    window = data.draw(windows(lam.size), label="window")
    fit = _fit_or_reject(fit_exponent, lam, M_ii, kappa_star=kappa_star, **window)
    idx = fit.fit.index
    assume(_resolved(lam[idx]))  # two distinct counts, not a round-off split of a tie
    dx, dy = _log_roundoff(H, M, lam, M_ii)
    tol = _slope_tolerance(lam[idx], M_ii[idx] / lam[idx], dx[idx], dy[idx])
    assert tol < 1e-6
    gamma = min(WINDOW_BREAKING_EXPONENTS.values(), key=lambda g: abs(g - fit.gamma))
    assert abs(fit.gamma - gamma) <= tol
    assert not (1.0 <= fit.gamma <= 2.0)  # a naive "always in [1, 2]" fails ...
    assert not fit.in_unit_range
    lo, hi = fit.interval  # ... while the guaranteed interval holds
    x = np.log(lam[idx])
    bounds = np.maximum(np.abs(x), abs(np.log(kappa_star)))
    assert lo - tol - _weights_roundoff(x, bounds) <= fit.gamma <= hi + tol + _weights_roundoff(x, bounds)


def test_fit_exponent_reports_monotone_condition_for_identical_hessians_A3():
    """For h_p = H the condition holds exactly (κ_eff = λ); the flag should say so."""
    flags = []
    for seed in range(10):
        S = random_psd(log_uniform_spectrum(5, rng=seed, decades=3.0), rng=seed + 100)
        H, M = hessian_moments(identical_hessians(S, 3))
        eb = eigenbasis(H)
        flags.append(fit_exponent(eb.lam, eb.diagonal(M)).monotone_condition)
    assert all(flags)


def test_fit_exponent_refuses_or_brackets_a_tied_window_A3():
    h = window_breaking_family(4, 11, rng=11, side="above")
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    assert np.ptp(np.log(eb.lam[:2])) <= 1e-14  # a repeated eigenvalue of H
    try:
        fit = fit_exponent(eb.lam, eb.diagonal(M), kappa_star=float(max_curvatures(h).max()),
                           top=2)
    except ValueError:
        return
    lo, hi = fit.interval
    assert lo <= fit.gamma <= hi


# ----------------------------------------------------------------------------------------------
# Kronecker path = dense path
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(factors=kronecker_factors(max_out=4, max_in=4, max_samples=20, psd=False))
def test_kronecker_moments_equal_dense_moments(factors):
    G, a, delta = factors
    N, out, inn = G.shape[0], G.shape[1], a.shape[1]
    h = kronecker_hessians(G, a)
    grads = (delta[:, :, None] * a[:, None, :]).reshape(N, out * inn)  # g_p = δ_p ⊗ a_p
    fast = kronecker_layer_moments(G, a, delta)
    ref = dense_layer_moments(h, grads)
    c = 4 * (N + out * inn) * EPS
    abs_h = np.abs(h)
    abs_g = np.abs(grads)
    bound_H = c * abs_h.mean(axis=0)
    bound_M = c * np.einsum("pij,pjk->ik", abs_h, abs_h) / N
    kappa_bound = _c(out * inn) * np.linalg.norm(h, axis=(1, 2))
    bound_K = np.einsum("p,pij->ij", c * np.abs(ref.kappa_max) + kappa_bound, abs_h) / N
    g_abs_mean = abs_g.mean(axis=0)
    bound_S = c * (abs_g.T @ abs_g / N + np.outer(g_abs_mean, g_abs_mean))
    assert np.all(np.abs(fast.H - ref.H) <= bound_H + 1e-300)
    assert np.all(np.abs(fast.M - ref.M) <= bound_M + 1e-300)
    assert np.all(np.abs(fast.kappa_max - ref.kappa_max) <= kappa_bound + 1e-300)
    assert np.all(np.abs(fast.K - ref.K) <= bound_K + 1e-300)
    assert np.all(np.abs(fast.Sigma1 - ref.Sigma1) <= bound_S + 1e-300)
    assert np.all(np.abs(fast.g_mean - ref.g_mean) <= c * g_abs_mean + 1e-300)
    assert fast.num_samples == ref.num_samples == N


def test_kronecker_moments_agree_across_backends(backend):
    if backend not in ("numpy", "cupy"):
        pytest.skip(f"kronecker_layer_moments has no {backend!r} path")
    G, a = kronecker_family(3, 4, 50, rng=0)
    delta = np.random.default_rng(1).standard_normal((50, 3))
    ref = kronecker_layer_moments(G, a, delta, backend="numpy")
    other = kronecker_layer_moments(G, a, delta, backend=backend, chunk=7)
    for name in ("H", "M", "K", "Sigma1"):
        A, B = getattr(ref, name), getattr(other, name)
        assert np.abs(A - B).max() <= 64 * EPS * G.shape[0] * np.abs(A).max()


# ----------------------------------------------------------------------------------------------
# A5: the commutator identity, commuting and non-commuting pairs, the random baseline
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(h=ANY_SYMMETRIC, c=st.floats(1e-3, 1e3))
def test_commutator_identity_cM_equals_c_variance_A5(h, c):
    """If C = cM then [C, H] = c[Var_p(h), H], Var_p(h) = E_p[(h_p − H)²] (as [H², H] = 0)."""
    H, M = hessian_moments(h)
    centred = h - H
    variance = np.einsum("pij,pjk->ik", centred, centred) / h.shape[0]
    C = c * M
    lhs = C @ H - H @ C
    rhs = c * (variance @ H - H @ variance)
    spread = float(np.mean(np.linalg.norm(centred, axis=(1, 2)) ** 2))
    bound = c * _c(H.shape[0]) * _norm(H) * (_norm(M) + spread + _norm(H) ** 2)
    assert np.abs(lhs - rhs).max() <= bound


@settings(max_examples=FEW)
@given(pair=commuting_pairs(max_dim=8))
def test_commuting_pairs_have_zero_commutation_error_A5(pair):
    C, H = pair
    assert commutation_error(C, H) <= _c(C.shape[0])


@settings(max_examples=FEW)
@given(pair=noncommuting_pairs(max_dim=8))
def test_commutation_error_is_bounded_by_sqrt_two_A5(pair):
    """Böttcher–Wenzel: ‖XY − YX‖_F ≤ √2 ‖X‖_F ‖Y‖_F."""
    C, H = pair
    assert 0.0 <= commutation_error(C, H) <= np.sqrt(2.0) * (1 + _c(C.shape[0]))


def test_noncommuting_pairs_sit_at_the_random_baseline_A5():
    """Given the spectra, ε² of a non-commuting pair has mean expected_random_commutator²."""
    ratios = []
    for seed in range(400):
        C, H = noncommuting_pair(6, rng=seed, decades=2.0)
        rms = expected_random_commutator(np.linalg.eigvalsh(C), np.linalg.eigvalsh(H))
        ratios.append((commutation_error(C, H) / rms) ** 2)
    ratios = np.asarray(ratios)
    se = ratios.std(ddof=1) / np.sqrt(ratios.size)
    assert abs(ratios.mean() - 1.0) <= 4 * se
    # and a commuting pair sits far below it
    C, H = commuting_pair(6, rng=0, decades=2.0)
    rms = expected_random_commutator(np.linalg.eigvalsh(C), np.linalg.eigvalsh(H))
    assert commutation_error(C, H) <= 1e-10 * rms


@pytest.mark.parametrize("D", [2, 5, 9])
def test_monte_carlo_baseline_matches_closed_form_rms_A5(D):
    C, H = noncommuting_pair(D, rng=D, decades=2.0)
    base = random_commutation_baseline(C, H, num_samples=3000, rng=0)
    squares = base.samples**2
    se = squares.std(ddof=1) / np.sqrt(squares.size)
    assert abs(squares.mean() - base.expected_rms**2) <= 4 * se
    assert base.seed == 0


# ----------------------------------------------------------------------------------------------
# the strategies themselves
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(lam=spectra(min_dim=2, max_dim=8, decades=(1.0, 4.0)),
       lam_decay=spectra(min_dim=3, max_dim=5, decay=(0.5, 2.0)))
def test_spectra_are_positive_descending_and_span_the_decades(lam, lam_decay):
    for x in (lam, lam_decay):
        assert np.all(x > 0) and np.all(np.diff(x) <= 0)
    assert 2 <= lam.size <= 8 and 3 <= lam_decay.size <= 5
    assert 1.0 - 1e-12 <= np.log10(lam[0] / lam[-1]) <= 4.0 + 1e-12


@settings(max_examples=FEW)
@given(h=per_sample_hessian_families(min_dim=2, max_dim=5, min_samples=3, max_samples=7,
                                     families=PSD_FAMILIES))
def test_family_strategy_respects_bounds_and_psd(h):
    N, D, _ = h.shape
    assert 2 <= D <= 5 and 3 <= N <= 7
    assert np.array_equal(h, np.swapaxes(h, 1, 2))
    eig = np.linalg.eigvalsh(h)
    assert np.all(eig[:, 0] >= -_c(D) * np.abs(eig).max(axis=1))


@settings(max_examples=FEW)
@given(factors=kronecker_factors(max_out=3, max_in=2, max_samples=5))
def test_kronecker_factor_strategy_shapes(factors):
    G, a, delta = factors
    N, out, _ = G.shape
    assert 1 <= out <= 3 and 1 <= a.shape[1] <= 2 and 1 <= N <= 5
    assert a.shape[0] == N and delta.shape == (N, out)
    assert np.all(np.linalg.eigvalsh(G)[:, 0] >= -_c(out) * np.abs(G).max())


BAD_STRATEGY_BOUNDS = [
    ("min_dim", lambda: spectra(min_dim=0)),
    ("max_dim", lambda: spectra(min_dim=5, max_dim=3)),
    ("decades", lambda: spectra(decades=(3.0, 1.0))),
    ("decades", lambda: spectra(decades=(0.0, 1.0))),
    ("decades", lambda: spectra(decades=(1.0, 2.0, 3.0))),
    ("decay", lambda: spectra(decay=-1.0)),
    ("spectrum", lambda: psd_matrices(spectrum=[1.0, -1.0])),
    ("max_dim", lambda: commuting_pairs(max_dim=0)),
    ("decades", lambda: noncommuting_pairs(decades=-1.0)),
    ("families", lambda: per_sample_hessian_families(families=("bogus",))),
    ("families", lambda: per_sample_hessian_families(families="identical")),
    ("families", lambda: per_sample_hessian_families(families=("symmetric",), psd=True)),
    ("psd", lambda: per_sample_hessian_families(psd="yes")),
    ("max_samples", lambda: per_sample_hessian_families(min_samples=4, max_samples=2)),
    ("max_out", lambda: kronecker_factors(max_out=0)),
    ("max_in", lambda: kronecker_factors(max_in=1.5)),
    ("side", lambda: window_breaking_families(side="middle")),
    ("min_dim", lambda: window_breaking_families(min_dim=1)),
    ("max_samples", lambda: window_breaking_families(min_dim=3, max_samples=3)),
]


@pytest.mark.parametrize(("argument", "build"), BAD_STRATEGY_BOUNDS,
                         ids=[f"{arg}-{i}" for i, (arg, _) in enumerate(BAD_STRATEGY_BOUNDS)])
def test_strategies_reject_bad_bounds_naming_the_argument(argument, build):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        build()

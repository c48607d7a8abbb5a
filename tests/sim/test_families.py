"""Tests for sgdnoise.sim.families: shapes, symmetry, PSD, determinism, exact exponents, bad input.

Tolerances are round-off bounds scaled to the matrices' norms (eigh and GEMM backward errors);
Monte-Carlo checks of population moments use the standard error of a fixed-seed sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sgdnoise.sim.families import (
    WINDOW_BREAKING_EXPONENTS,
    commuting_pair,
    identical_hessians,
    kronecker_family,
    kronecker_family_hessians,
    log_uniform_spectrum,
    noncommuting_pair,
    population_kronecker,
    population_linear_regression,
    population_wishart,
    random_psd,
    random_rank_r,
    random_symmetric,
    rank_one_equal_curvature,
    symmetric_hessians,
    window_breaking_family,
    wishart_hessians,
)
from sgdnoise.theory import (
    PROTOCOLS,
    commutation_error,
    eigenbasis,
    fit_exponent,
    hessian_moments,
    kronecker_hessians,
    max_curvatures,
    monotone_condition,
)

EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _diagonals(h):
    """H, M and the eigenbasis diagonals λ_i, M_ii (descending λ)."""
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    return H, M, eb.lam, eb.diagonal(M)


def _log_roundoff(H, M, lam, M_ii):
    """Bounds on the round-off in log λ_i and in log κ_eff,i = log(M_ii/λ_i).

    eigh is backward stable (error ~ D·eps·‖H‖ in λ_i and in the Rayleigh quotients behind M_ii),
    and M's GEMMs err by ~ D·eps·E‖h_p‖² ≤ D²·eps·‖M‖; 8·D² covers the constants.
    """
    D = H.shape[0]
    c = 8 * D * D * EPS
    nH, nM = np.linalg.norm(H, 2), np.linalg.norm(M, 2)
    dx = c * nH / np.abs(lam)
    dy = c * (nM / np.abs(M_ii) + 2 * nH / np.abs(lam))
    return dx, dy


def _slope_tolerance(lam, kappa_eff, dx, dy):
    """First-order bound (doubled) on how far the OLS slope of log κ_eff on log λ can move when
    each log λ_i moves by dx_i and each log κ_eff,i by dy_i, plus the OLS evaluation itself."""
    x, y = np.log(lam), np.log(kappa_eff)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx
    w = np.abs(xc) / sxx
    db_dx = (np.abs(y - y.mean()) + 2 * abs(b) * np.abs(xc)) / sxx
    return 2 * float(w @ dy + db_dx @ dx) + 64 * EPS * float(w @ (np.abs(y) + np.abs(x)) + 1)


def _well_conditioned(lam, M_ii, floor=1e-8):
    return (lam > floor * lam.max()) & (M_ii > 0)


def _exponent_with_tolerance(h, **window):
    """fit_exponent on the well-conditioned directions of h, and a round-off bound for γ."""
    H, M, lam, M_ii = _diagonals(h)
    good = _well_conditioned(lam, M_ii)
    lam, M_ii = lam[good], M_ii[good]
    fit = fit_exponent(lam, M_ii, kappa_star=float(max_curvatures(h).max()), **window)
    dx, dy = _log_roundoff(H, M, lam, M_ii)
    idx = fit.fit.index
    tol = _slope_tolerance(lam[idx], M_ii[idx] / lam[idx], dx[idx], dy[idx])
    return fit, tol, lam, M_ii, (dx, dy)


def _two_step(build):
    """Run ``build(rng)`` with one Generator, so a builder calling two constructors is seeded once."""
    return lambda seed: build(np.random.default_rng(seed))


PSD_BUILDERS = {
    "identical": _two_step(lambda rng: identical_hessians(
        random_psd(log_uniform_spectrum(4, rng=rng), rng=rng), 5)),
    "rank_one": lambda seed: rank_one_equal_curvature(4, 9, rng=seed, kappa=2.5),
    "rank_r": lambda seed: random_rank_r(5, 7, rng=seed, rank=3, spectrum_decades=1.5),
    "kronecker_softmax": lambda seed: kronecker_family_hessians(3, 2, 6, rng=seed),
    "kronecker_logistic": lambda seed: kronecker_family_hessians(1, 4, 6, rng=seed),
    "kronecker_gauss_newton": lambda seed: kronecker_family_hessians(
        2, 3, 6, rng=seed, gauss_newton_rank=1),
    "window_below": lambda seed: window_breaking_family(4, 11, rng=seed, side="below"),
    "window_above": lambda seed: window_breaking_family(4, 11, rng=seed, side="above"),
    "wishart": _two_step(lambda rng: wishart_hessians(
        random_psd(log_uniform_spectrum(3, rng=rng), rng=rng), 8, rng=rng, rank=2)),
}
SYMMETRIC_BUILDERS = {
    "symmetric": lambda seed: symmetric_hessians(4, 6, rng=seed),
    "kronecker_residual": lambda seed: kronecker_family_hessians(
        2, 2, 6, rng=seed, gauss_newton_rank=2, residual=1.0),
}
ALL_BUILDERS = {**PSD_BUILDERS, **SYMMETRIC_BUILDERS}


# ----------------------------------------------------------------------------------------------
# shapes, symmetry, PSD, determinism
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_BUILDERS))
def test_families_are_float64_stacks_of_exactly_symmetric_matrices(name):
    h = ALL_BUILDERS[name](3)
    assert h.dtype == np.float64 and h.ndim == 3 and h.shape[1] == h.shape[2]
    assert np.all(np.isfinite(h))
    assert_array_equal(h, np.swapaxes(h, 1, 2))


@pytest.mark.parametrize("name", sorted(PSD_BUILDERS))
def test_psd_families_are_psd(name):
    h = PSD_BUILDERS[name](4)
    D = h.shape[1]
    eig = np.linalg.eigvalsh(h)
    scale = np.abs(eig).max(axis=1)
    assert np.all(eig.min(axis=1) >= -8 * D * EPS * scale)


@pytest.mark.parametrize("name", sorted(ALL_BUILDERS))
def test_families_are_deterministic_in_the_seed(name):
    build = ALL_BUILDERS[name]
    assert_array_equal(build(11), build(11))
    assert_array_equal(build(np.random.default_rng(11)), build(11))
    assert not np.array_equal(build(11), build(12))


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: log_uniform_spectrum(6, rng=0), (6,)),
        (lambda: random_psd(np.ones(3), rng=0), (3, 3)),
        (lambda: random_symmetric(np.array([-1.0, 2.0]), rng=0), (2, 2)),
        (lambda: identical_hessians(np.eye(3), 4), (4, 3, 3)),
        (lambda: rank_one_equal_curvature(3, 5, rng=0), (5, 3, 3)),
        (lambda: random_rank_r(3, 5, rng=0, rank=3), (5, 3, 3)),
        (lambda: kronecker_family_hessians(2, 3, 5, rng=0), (5, 6, 6)),
        (lambda: window_breaking_family(3, 4, rng=0), (4, 3, 3)),
        (lambda: symmetric_hessians(2, 1, rng=0), (1, 2, 2)),
        (lambda: wishart_hessians(np.eye(2), 3, rng=0), (3, 2, 2)),
    ],
)
def test_shapes(build, shape):
    out = build()
    assert out.shape == shape and out.dtype == np.float64


# ----------------------------------------------------------------------------------------------
# spectra and matrices of given spectrum
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("D", [1, 2, 7])
@pytest.mark.parametrize("decades", [0.5, 3.0, 12.0])
def test_log_uniform_spectrum_spans_exactly_the_decades(D, decades):
    lam = log_uniform_spectrum(D, rng=5, decades=decades, lam_max=2.0)
    assert lam.shape == (D,) and np.all(lam > 0)
    assert np.all(np.diff(lam) <= 0)
    assert lam[0] == 2.0
    if D >= 2:
        assert_allclose(np.log10(lam[0] / lam[-1]), decades, rtol=1e-13)


def test_power_law_spectrum_is_exact_without_jitter():
    lam = log_uniform_spectrum(6, rng=0, decay=1.5, lam_max=3.0)
    assert_allclose(lam, 3.0 * np.arange(1, 7) ** -1.5, rtol=1e-14)


def test_power_law_jitter_stays_within_its_width():
    base = np.arange(1, 9) ** -1.0
    lam = log_uniform_spectrum(8, rng=4, decay=1.0, jitter=0.2)
    assert np.all(np.diff(lam) <= 0)
    assert lam.max() <= 10**0.1 * base.max() and lam.min() >= 10**-0.1 * base.min()
    assert not np.allclose(lam, base)


def test_random_psd_has_the_given_spectrum():
    spectrum = log_uniform_spectrum(6, rng=1, decades=4)
    A = random_psd(spectrum, rng=2)
    assert_allclose(np.linalg.eigvalsh(A)[::-1], spectrum, rtol=0,
                    atol=8 * 6 * EPS * spectrum.max())


def test_random_symmetric_keeps_negative_eigenvalues():
    spectrum = np.array([3.0, 1.0, -0.5, -2.0])
    A = random_symmetric(spectrum, rng=3)
    assert_allclose(np.linalg.eigvalsh(A)[::-1], spectrum, rtol=0, atol=32 * EPS * 3.0)


def test_pairs_are_positive_definite_with_the_requested_spread_and_commuting_pairs_commute():
    C, H = commuting_pair(6, rng=0)
    assert commutation_error(C, H) <= 64 * 6 * EPS
    C2, H2 = noncommuting_pair(6, rng=0)
    for A in (C, H, C2, H2):
        assert np.linalg.eigvalsh(A).min() > 0
    # the spectra still span the requested decades
    for A in (C2, H2):
        eig = np.linalg.eigvalsh(A)
        assert_allclose(np.log10(eig[-1] / eig[0]), 3.0, rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# exact limits of A3: γ = 2 for identical Hessians, γ = 1 for rank-one equal curvature
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_identical_hessians_give_gamma_two(seed, protocol):
    H0 = random_psd(log_uniform_spectrum(6, rng=seed, decades=3.0), rng=seed)
    h = identical_hessians(H0, 7)
    H, M = hessian_moments(h)
    assert_allclose(M, H0 @ H0, rtol=0, atol=8 * 6 * EPS * np.linalg.norm(H0, 2) ** 2)
    fit, tol, lam, M_ii, (dx, dy) = _exponent_with_tolerance(h, protocol=protocol)
    assert tol < 1e-6  # the round-off bound is informative here
    assert abs(fit.gamma - 2.0) <= tol
    assert abs(fit.kappa_slope - 1.0) <= tol
    assert monotone_condition(lam, M_ii / lam, tol=2 * float(dy.max()))
    assert fit.interval[0] - tol <= fit.gamma <= fit.interval[1] + tol


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kappa", [0.3, 1.0, 7.0])
def test_rank_one_equal_curvature_gives_gamma_one(seed, kappa):
    h = rank_one_equal_curvature(5, 12, rng=seed, kappa=kappa, decades=3.0)
    eig = np.linalg.eigvalsh(h)
    assert_allclose(eig[:, -1], kappa, rtol=16 * EPS * 5)
    assert_allclose(eig[:, :-1], 0.0, atol=16 * EPS * 5 * kappa)
    H, M = hessian_moments(h)
    assert_allclose(M, kappa * H, rtol=0, atol=8 * 5 * EPS * kappa * np.linalg.norm(H, 2))
    fit, tol, lam, M_ii, (dx, dy) = _exponent_with_tolerance(h)
    assert tol < 1e-6
    assert abs(fit.gamma - 1.0) <= tol
    assert monotone_condition(lam, M_ii / lam, tol=2 * float(dy.max()))
    assert fit.interval[0] - tol <= fit.gamma <= fit.interval[1] + tol


def test_rank_one_family_is_anisotropic():
    h = rank_one_equal_curvature(6, 400, rng=0, decades=4.0)
    lam = np.linalg.eigvalsh(h.mean(axis=0))
    assert lam[0] / lam[-1] < 1e-2


# ----------------------------------------------------------------------------------------------
# family (iii) and (iv) structure
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_random_rank_r_has_rank_r_and_bounded_spectrum(rank):
    spread = 1.5
    h = random_rank_r(4, 10, rng=rank, rank=rank, spectrum_decades=spread)
    eig = np.linalg.eigvalsh(h)[:, ::-1]
    nonzero, zero = eig[:, :rank], eig[:, rank:]
    assert np.all(nonzero <= 1 + 64 * EPS) and np.all(nonzero >= 10**-spread * (1 - 1e-12))
    assert np.all(np.abs(zero) <= 64 * EPS)


def test_softmax_kronecker_factors_are_cross_entropy_hessians():
    G, a = kronecker_family(4, 3, 9, rng=0)
    assert G.shape == (9, 4, 4) and a.shape == (9, 3)
    # diag(q) − qqᵀ: rows sum to zero, trace 1 − ‖q‖², PSD
    assert_allclose(G.sum(axis=2), 0.0, atol=16 * EPS)
    assert np.all(np.linalg.eigvalsh(G).min(axis=1) >= -16 * EPS)
    trace = np.trace(G, axis1=1, axis2=2)
    assert np.all((trace > 0) & (trace < 1))


def test_logistic_and_gauss_newton_kronecker_factors():
    G, _ = kronecker_family(1, 2, 20, rng=1)
    assert np.all((G > 0) & (G <= 0.25))
    G, _ = kronecker_family(4, 2, 20, rng=1, gauss_newton_rank=2)
    eig = np.linalg.eigvalsh(G)
    assert np.all(eig[:, :2] <= 64 * EPS * eig[:, -1:])  # rank ≤ 2
    assert np.all(eig.min(axis=1) >= -64 * EPS * eig[:, -1])


def test_kronecker_family_hessians_match_factors():
    G, a = kronecker_family(2, 3, 5, rng=8, gauss_newton_rank=1)
    assert_array_equal(kronecker_family_hessians(2, 3, 5, rng=8, gauss_newton_rank=1),
                       kronecker_hessians(G, a))


def test_kronecker_inputs_are_anisotropic():
    _, a = kronecker_family(1, 4, 4000, rng=2, decades=3.0)
    eig = np.linalg.eigvalsh(a.T @ a / a.shape[0])
    assert eig[0] / eig[-1] < 1e-2


# ----------------------------------------------------------------------------------------------
# family (v): the finite-window exponent leaves [1, 2], the guaranteed interval does not fail
# ----------------------------------------------------------------------------------------------


WINDOW_CASES = [  # (D, N, seed, protocol); "layerwise" trims points, so it needs larger D
    *[(D, N, seed, "top") for D, N, seed in [(2, 3, 0), (4, 11, 1), (6, 40, 2), (5, 6, 3)]],
    (8, 60, 4, "layerwise"),
    (12, 200, 5, "layerwise"),
]


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize(("D", "N", "seed", "protocol"), WINDOW_CASES)
def test_window_breaking_family_exits_unit_range(side, D, N, seed, protocol):
    h = window_breaking_family(D, N, rng=seed, side=side)
    fit, tol, lam, M_ii, _ = _exponent_with_tolerance(h, protocol=protocol)
    gamma = WINDOW_BREAKING_EXPONENTS[side]
    assert tol < 1e-6
    assert abs(fit.gamma - gamma) <= tol
    assert fit.gamma < 1 if side == "below" else fit.gamma > 2
    assert not fit.in_unit_range
    lo, hi = fit.interval
    assert lo - tol <= fit.gamma <= hi + tol


@pytest.mark.parametrize("side", ["below", "above"])
def test_window_breaking_family_holds_on_every_top_window(side):
    h = window_breaking_family(6, 30, rng=4, side=side)
    H, M, lam, M_ii = _diagonals(h)
    for top in range(2, 7):
        if np.ptp(lam[:top]) <= 1e-8 * lam[0]:
            continue  # a window of equal λ has no slope
        fit, tol, *_ = _exponent_with_tolerance(h, top=top)
        assert tol < 1e-6
        assert abs(fit.gamma - WINDOW_BREAKING_EXPONENTS[side]) <= tol


def test_window_breaking_curvatures_are_rank_one_per_direction():
    h = window_breaking_family(4, 13, rng=5, side="above")
    eig = np.linalg.eigvalsh(h)
    assert np.all(np.abs(eig[:, :-1]) <= 16 * EPS * eig[:, -1:])
    kappas = np.unique(np.round(eig[:, -1], 12))
    assert 2 <= kappas.size <= 4


# ----------------------------------------------------------------------------------------------
# exact population moments, checked against fixed-seed Monte Carlo within standard errors
# ----------------------------------------------------------------------------------------------


def _assert_within_standard_errors(samples, expected, num_se=5.0):
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - expected) <= num_se * se + 1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("rank", [1, 2])
def test_population_wishart_matches_monte_carlo(rank):
    S = random_psd(np.array([2.0, 0.5, 0.1]), rng=0)
    h = wishart_hessians(S, 40_000, rng=1, rank=rank)
    H, M = population_wishart(S, rank)
    _assert_within_standard_errors(h, H)
    _assert_within_standard_errors(h @ h, M)


def test_population_kronecker_matches_monte_carlo():
    G0 = random_psd(np.array([1.0, 0.2]), rng=3)
    S = random_psd(np.array([1.0, 0.3]), rng=4)
    rng = np.random.default_rng(5)
    a = rng.multivariate_normal(np.zeros(2), S, size=40_000)
    h = kronecker_hessians(np.broadcast_to(G0, (a.shape[0], 2, 2)), a)
    H, M = population_kronecker(G0, S)
    _assert_within_standard_errors(h, H)
    _assert_within_standard_errors(h @ h, M)


def test_population_linear_regression_is_rank_one_wishart_and_monotone():
    S = random_psd(log_uniform_spectrum(5, rng=6, decades=3), rng=7)
    H, M = population_linear_regression(S)
    H1, M1 = population_wishart(S, 1)
    assert_array_equal(H, H1)
    assert_array_equal(M, M1)
    assert_allclose(M, 2 * S @ S + np.trace(S) * S, rtol=1e-14)
    eb = eigenbasis(H)
    M_ii = eb.diagonal(M)
    assert_allclose(M_ii / eb.lam, 2 * eb.lam + np.trace(S), rtol=1e-10)


# ----------------------------------------------------------------------------------------------
# invalid input: one table, each error names its argument
# ----------------------------------------------------------------------------------------------

_S_BAD = np.array([[1.0, 0.0], [0.0, -1.0]])
_ASYM = np.array([[1.0, 2.0], [0.0, 1.0]])

BAD_INPUTS = [
    ("D", lambda: log_uniform_spectrum(0, rng=0)),
    ("D", lambda: log_uniform_spectrum(2.5, rng=0)),
    ("decades", lambda: log_uniform_spectrum(3, rng=0, decades=0)),
    ("decades", lambda: log_uniform_spectrum(3, rng=0, decades=-1.0)),
    ("decades", lambda: log_uniform_spectrum(3, rng=0, decades=np.inf)),
    ("decades", lambda: log_uniform_spectrum(3, rng=0, decades=500.0)),
    ("decay", lambda: log_uniform_spectrum(3, rng=0, decay=0.0)),
    ("decay", lambda: log_uniform_spectrum(3, rng=0, decay=np.nan)),
    ("lam_max", lambda: log_uniform_spectrum(3, rng=0, lam_max=0.0)),
    ("jitter", lambda: log_uniform_spectrum(3, rng=0, jitter=-0.1)),
    ("rng", lambda: log_uniform_spectrum(3, rng="seed")),
    ("rng", lambda: log_uniform_spectrum(3, rng=-1)),
    ("spectrum", lambda: random_psd([1.0, -1.0], rng=0)),
    ("spectrum", lambda: random_psd([[1.0]], rng=0)),
    ("spectrum", lambda: random_psd([1.0, np.nan], rng=0)),
    ("spectrum", lambda: random_symmetric([], rng=0)),
    ("rng", lambda: random_psd([1.0], rng=None)),
    ("D", lambda: commuting_pair(0, rng=0)),
    ("decades", lambda: noncommuting_pair(2, rng=0, decades=0.0)),
    ("H", lambda: identical_hessians(_ASYM, 3)),
    ("H", lambda: identical_hessians(np.ones(3), 3)),
    ("H", lambda: identical_hessians(np.full((2, 2), np.nan), 3)),
    ("N", lambda: identical_hessians(np.eye(2), 0)),
    ("N", lambda: identical_hessians(np.eye(2), True)),
    ("kappa", lambda: rank_one_equal_curvature(3, 4, rng=0, kappa=0.0)),
    ("N", lambda: rank_one_equal_curvature(3, 0, rng=0)),
    ("decades", lambda: rank_one_equal_curvature(3, 4, rng=0, decades=-2.0)),
    ("rank", lambda: random_rank_r(3, 4, rng=0, rank=4)),
    ("rank", lambda: random_rank_r(3, 4, rng=0, rank=0)),
    ("spectrum_decades", lambda: random_rank_r(3, 4, rng=0, spectrum_decades=-1.0)),
    ("D", lambda: symmetric_hessians(0, 2, rng=0)),
    ("out", lambda: kronecker_family(0, 2, 3, rng=0)),
    ("inn", lambda: kronecker_family(2, 0, 3, rng=0)),
    ("N", lambda: kronecker_family(2, 2, 0, rng=0)),
    ("gauss_newton_rank", lambda: kronecker_family(2, 2, 3, rng=0, gauss_newton_rank=0)),
    ("residual", lambda: kronecker_family(2, 2, 3, rng=0, residual=-1.0)),
    ("decades", lambda: kronecker_family(2, 2, 3, rng=0, decades=0.0)),
    ("D", lambda: window_breaking_family(1, 5, rng=0)),
    ("N", lambda: window_breaking_family(3, 3, rng=0)),
    ("side", lambda: window_breaking_family(3, 5, rng=0, side="middle")),
    ("S", lambda: wishart_hessians(_S_BAD, 3, rng=0)),
    ("S", lambda: wishart_hessians(_ASYM, 3, rng=0)),
    ("rank", lambda: wishart_hessians(np.eye(2), 3, rng=0, rank=0)),
    ("rank", lambda: population_wishart(np.eye(2), rank=0)),
    ("S", lambda: population_wishart(np.ones((2, 3)))),
    ("S", lambda: population_linear_regression(_S_BAD)),
    ("G", lambda: population_kronecker(_ASYM, np.eye(2))),
    ("S", lambda: population_kronecker(np.eye(2), _S_BAD)),
]


@pytest.mark.parametrize(("argument", "call"), BAD_INPUTS,
                         ids=[f"{arg}-{i}" for i, (arg, _) in enumerate(BAD_INPUTS)])
def test_bad_inputs_raise_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()

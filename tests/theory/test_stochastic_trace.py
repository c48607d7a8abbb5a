"""Stochastic traces and SLQ densities: within their stated errors of the exact values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdnoise import theory
from sgdnoise.theory import (
    LowRankFactors,
    kronecker_layer_operators,
    slq_density,
    trace_estimate,
    trace_product,
)


def _spectrum_matrix(rng, D, lam):
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    return (Q * lam) @ Q.T, Q


@pytest.fixture(scope="module")
def psd_pair():
    rng = np.random.default_rng(0)
    D = 150
    lam = (1.0 + np.arange(D)) ** -1.2
    A, Q = _spectrum_matrix(rng, D, lam)
    B = (Q * (lam**1.5 + 0.01 * rng.random(D))) @ Q.T
    B = 0.5 * (B + B.T)
    return A, B


def _check_calibrated(fn, exact, seeds):
    """Over many fixed seeds: unbiased (the pooled mean within 4 pooled standard errors), the
    stated standard error matches the spread of the estimates, and ≥ 90 % of the estimates lie
    within 3 of their own standard errors."""
    res = [fn(s) for s in seeds]
    est = np.array([r.estimate for r in res])
    se = np.array([r.standard_error for r in res])
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    z = (est - exact) / se
    pooled_se = np.sqrt(np.sum(se**2)) / se.size
    assert abs(est.mean() - exact) < 4 * pooled_se
    assert 0.7 < est.std(ddof=1) / np.sqrt(np.mean(se**2)) < 1.4
    assert np.mean(np.abs(z) < 3) >= 0.9


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_estimates_are_within_their_standard_errors(psd_pair, method):
    A, _ = psd_pair
    _check_calibrated(lambda s: trace_estimate(A, num_probes=45, rng=s, method=method),
                      np.trace(A), range(100))


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_of_a_product_within_its_standard_error(psd_pair, method):
    A, B = psd_pair
    _check_calibrated(lambda s: trace_product(A, B, num_probes=45, rng=s, method=method),
                      np.trace(A @ B), range(100))


def test_hutch_plus_plus_beats_hutchinson_on_a_decaying_spectrum(psd_pair):
    A, _ = psd_pair
    se_h = np.mean([trace_estimate(A, num_probes=60, rng=s).standard_error for s in range(10)])
    se_pp = np.mean([trace_estimate(A, num_probes=60, rng=s, method="hutch++").standard_error
                     for s in range(10)])
    assert se_pp < 0.5 * se_h


def test_trace_estimates_on_layer_operators():
    """Tr H, Tr M, Tr(HΣ₁) of a dense layer (the part-B indicator), against the dense moments."""
    rng = np.random.default_rng(1)
    N, out, inn, r = 80, 4, 8, 3
    B = rng.standard_normal((N, r, out))
    L = rng.standard_normal((N, r, r))
    L = L @ np.swapaxes(L, 1, 2)
    a = rng.standard_normal((N, inn))
    delta = rng.standard_normal((N, out))
    ops = kronecker_layer_operators(LowRankFactors(B, L), a, delta)
    G = np.swapaxes(B, 1, 2) @ L @ B
    ref = theory.kronecker_layer_moments(0.5 * (G + np.swapaxes(G, 1, 2)), a, delta)
    for op, exact in ((ops.H, np.trace(ref.H)), (ops.M, np.trace(ref.M))):
        est = trace_estimate(op, num_probes=200, rng=2)
        assert abs(est.estimate - exact) < 4 * est.standard_error
        assert est.num_products == 200
    ind = trace_product(ops.H, ops.Sigma1, num_probes=200, rng=3)
    exact = theory.indicator(ref.H, ref.Sigma1)
    assert abs(ind.estimate - exact) < 4 * ind.standard_error


def test_hutchinson_is_exact_for_diagonal_matrices():
    A = np.diag(np.arange(1.0, 9.0))
    est = trace_estimate(A, num_probes=3, rng=0)
    assert est.estimate == pytest.approx(36.0) and est.standard_error == pytest.approx(0.0)


@pytest.mark.parametrize("steps", [12, 40])
def test_slq_wasserstein_distance_within_the_stated_error(steps):
    rng = np.random.default_rng(4)
    D = 300
    lam = np.concatenate([rng.gamma(0.5, 0.2, D - 20), 3.0 + rng.random(20)])
    A, _ = _spectrum_matrix(rng, D, lam)
    for seed in range(5):
        dens = slq_density(A, num_probes=12, num_steps=steps, rng=seed)
        W = dens.wasserstein_distance(lam)
        assert W <= dens.wasserstein_error(), (seed, W, dens.wasserstein_error())
        assert dens.lower <= lam.min() + 1e-8 and dens.upper >= lam.max() - 1e-8
        assert dens.num_products == 12 * steps


def test_slq_moments_and_density():
    rng = np.random.default_rng(5)
    D = 200
    lam = np.linspace(-1.0, 2.0, D) ** 3
    A, _ = _spectrum_matrix(rng, D, lam)
    dens = slq_density(A, num_probes=40, num_steps=20, rng=1)
    m, se = dens.moments((0, 1, 2, 3))
    exact = np.array([1.0, lam.mean(), (lam**2).mean(), (lam**3).mean()])
    assert m[0] == pytest.approx(1.0, abs=1e-12) and se[0] < 1e-12
    assert np.all(np.abs(m[1:] - exact[1:]) < 4 * se[1:])
    x = np.linspace(-3, 10, 4001)
    rho = dens.density(x, 0.05)
    assert np.trapezoid(rho, x) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(x * rho, x) == pytest.approx(m[1], rel=1e-3, abs=1e-4)
    F, F_se = dens.cdf([-2.0, 0.0, 9.0])
    assert F[0] == 0.0 and F[2] == pytest.approx(1.0)
    assert F_se[0] == 0.0 and F_se[1] > 0


def test_slq_is_exact_when_the_krylov_space_closes():
    """A matrix with 4 distinct eigenvalues: every probe's Krylov space closes at 4 steps, the
    quadrature is exact and the only error left is the probe sampling."""
    rng = np.random.default_rng(6)
    lam = np.repeat([0.5, 1.0, 2.0, 4.0], 25)
    A, _ = _spectrum_matrix(rng, 100, lam)
    dens = slq_density(A, num_probes=10, num_steps=8, rng=0)
    assert dens.closed.all() and dens.quadrature_error_bound() == 0.0
    m, se = dens.moments((1, 2, 5))
    assert np.all(np.abs(m - [lam.mean(), (lam**2).mean(), (lam**5).mean()]) < 4 * se + 1e-12)


@settings(max_examples=15)
@given(D=st.integers(5, 60), steps=st.integers(1, 12), probes=st.integers(2, 6),
       seed=st.integers(0, 2**16))
def test_slq_weights_are_probability_measures(D, steps, probes, seed):
    rng = np.random.default_rng(seed)
    lam = rng.standard_normal(D)
    A, _ = _spectrum_matrix(rng, D, lam)
    dens = slq_density(A, num_probes=probes, num_steps=min(steps, D), rng=seed)
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, rtol=1e-10)
    assert dens.nodes.min() >= lam.min() - 1e-8 and dens.nodes.max() <= lam.max() + 1e-8
    assert dens.wasserstein_distance(lam) <= dens.upper - dens.lower + 1e-12


def test_slq_on_layer_operators_runs_blocked():
    rng = np.random.default_rng(7)
    N, out, inn = 40, 3, 6
    G = rng.standard_normal((N, out, out))
    G = G @ np.swapaxes(G, 1, 2)
    a = rng.standard_normal((N, inn))
    ops = kronecker_layer_operators(G, a, block=4)
    ref = theory.kronecker_layer_moments(G, a)
    dens = slq_density(ops.M, num_probes=6, num_steps=10, rng=0)
    lam = np.linalg.eigvalsh(ref.M)
    assert dens.wasserstein_distance(lam) <= dens.wasserstein_error()


BAD = [
    (lambda A: trace_estimate(A, num_probes=1, rng=0), "num_probes"),
    (lambda A: trace_estimate(A, num_probes=5, rng=0, method="hutch++"), "num_probes"),
    (lambda A: trace_estimate(A, num_probes=5, rng=0, method="xtrace"), "method"),
    (lambda A: trace_estimate(A, num_probes=5, rng=-3), "rng"),
    (lambda A: trace_product(A, np.eye(4), num_probes=5, rng=0), "same dimension"),
    (lambda A: slq_density(A, num_probes=0, num_steps=3, rng=0), "num_probes"),
    (lambda A: slq_density(A, num_probes=2, num_steps=11, rng=0), "num_steps"),
    (lambda A: slq_density(A, num_probes=2, num_steps=3, rng=0, bounds=(1.0, 0.0)), "bounds"),
    (lambda A: slq_density(A, num_probes=2, num_steps=3, rng=0, reorthogonalize=1),
     "reorthogonalize"),
    (lambda A: slq_density(A, num_probes=2, num_steps=3, rng=0).density(0.0, 0.0), "sigma"),
    (lambda A: slq_density(A, num_probes=2, num_steps=3, rng=0).moments(1.5), "powers"),
    (lambda A: slq_density(A, num_probes=2, num_steps=3, rng=0).wasserstein_distance([1.0]),
     "eigenvalues"),
]


@pytest.mark.parametrize(("call", "name"), BAD)
def test_invalid_arguments_name_themselves(call, name):
    A = np.diag(np.arange(1.0, 11.0))
    with pytest.raises(ValueError, match=name):
        call(A)

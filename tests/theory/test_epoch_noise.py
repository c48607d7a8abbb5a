"""Tests for sgdnoise.theory._epoch_noise (SPEC part D): closed forms against recursions,
explicit covariance sums, and a simulation with without-replacement batch noise."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sgdnoise.theory import _epoch_noise
from sgdnoise.theory._epoch_noise import (
    ar2_impulse_response,
    correlation_time,
    crossover_curvature,
    epoch_autocorrelation,
    epoch_noise_spectrum,
    excess_loss,
    excess_loss_constant_variance,
    loss_variance,
    stationary_variance_correlated,
    velocity_variance_epoch,
    velocity_variance_iid,
    weight_variance_epoch,
    weight_variance_epoch_flat_limit,
    weight_variance_epoch_profile,
    weight_variance_iid,
)

# ----------------------------------------------------------------------------------------------
# brute-force references
# ----------------------------------------------------------------------------------------------


def _recursion(lam: float, eta: float, beta: float, num_steps: int) -> np.ndarray:
    """G(j) by the AR(2) recursion G(j) = a G(j−1) − β G(j−2), G(0) = 1, G(−1) = 0."""
    a = 1.0 + beta - eta * lam
    G = np.zeros(num_steps)
    G[0] = 1.0
    if num_steps > 1:
        G[1] = a
    for j in range(2, num_steps):
        G[j] = a * G[j - 1] - beta * G[j - 2]
    return G


def _decay_steps(lam: float, eta: float, beta: float) -> int:
    """Steps after which |G| is below 1e-18 relative: spectral radius ρ, ρ^n ≤ 1e-18 / n³."""
    a = 1.0 + beta - eta * lam
    rho = max(abs(r) for r in np.roots([1.0, -a, beta]))
    if rho < 1e-3:  # G vanishes (a = β = 0) or decays faster than 1e-3 per step
        return 50
    n = int(np.ceil(np.log(1e-22) / np.log(rho))) + 50
    return max(n, 50)


def _direct_epoch_variance(lam, C, eta, beta, M, m, output="weight"):
    """η² cᵀ Σ_ξ c with the explicit block-diagonal epoch covariance of every past noise.

    x_n = −η Σ_p G(n−1−p) ξ_p for the weight at step n = E·M + m (noise index 0 starts an epoch),
    and v_n = x_n − x_{n−1} has coefficients G(n−1−p) − G(n−2−p).  Enough epochs are kept that
    the neglected response is below 1e-18 (see _decay_steps).
    """
    num_epochs = _decay_steps(lam, eta, beta) // M + 2
    n = num_epochs * M + m
    G = _recursion(lam, eta, beta, n + 1)
    lags = n - 1 - np.arange(n)
    coef = G[lags]
    if output == "velocity":
        prev = np.where(lags >= 1, G[np.maximum(lags - 1, 0)], 0.0)
        coef = coef - prev
    total_epochs = -(-n // M)
    coef = np.concatenate([coef, np.zeros(total_epochs * M - n)]).reshape(total_epochs, M)
    block = C * (M / (M - 1) * np.eye(M) - np.ones((M, M)) / (M - 1))
    return eta**2 * np.einsum("ei,ij,ej->", coef, block, coef)


PARAMS = [  # (lam, eta, beta, M): β = 0; real roots; complex roots; negative a; M = 2
    (1.0, 0.1, 0.0, 5),
    (0.3, 0.2, 0.6, 7),
    (2.0, 0.5, 0.9, 4),
    (3.5, 0.5, 0.2, 6),
    (0.8, 1.0, 0.0, 2),
    (0.05, 0.3, 0.3, 10),
]

betas = st.one_of(st.just(0.0), st.floats(0.0, 0.95))
fractions = st.floats(0.01, 0.99)  # ηλ as a fraction of the stable range 2(1+β)
batches_per_epoch = st.integers(2, 25)

# ----------------------------------------------------------------------------------------------
# D1: autocorrelation and spectrum
# ----------------------------------------------------------------------------------------------


def test_autocorrelation_values():
    M, C = 5, 2.0
    h = np.arange(-7, 8)
    R = epoch_autocorrelation(h, C, M)
    expected = np.where(h == 0, C, np.where(np.abs(h) < M, -C * (M - np.abs(h)) / (M * (M - 1)), 0))
    assert_allclose(R, expected, rtol=1e-15)
    assert epoch_autocorrelation(0, C, M) == C


def test_autocorrelation_equals_phase_average_of_explicit_covariance():
    """Average over the phase of Cov(ξ_k, ξ_{k+h}) of the explicit block covariance."""
    M, C, E = 6, 1.7, 5
    block = C * (M / (M - 1) * np.eye(M) - np.ones((M, M)) / (M - 1))
    cov = np.kron(np.eye(E), block)
    for h in range(2 * M):
        phase_average = np.mean([cov[M + m, M + m + h] for m in range(M)])
        assert_allclose(epoch_autocorrelation(h, C, M), phase_average, rtol=1e-13, atol=1e-15)


@given(M=batches_per_epoch, C=st.floats(0.01, 100.0))
def test_sum_rule(M, C):
    h = np.arange(-M, M + 1)
    total = np.sum(epoch_autocorrelation(h, C, M))
    assert abs(total) <= 1e-13 * C * M


@given(M=batches_per_epoch, omega=st.floats(-np.pi, np.pi))
def test_spectrum_equals_fourier_sum(M, omega):
    h = np.arange(-(M - 1), M)
    direct = np.sum(epoch_autocorrelation(h, 1.0, M) * np.cos(omega * h))
    closed = epoch_noise_spectrum(omega, 1.0, M)
    assert closed >= 0
    assert abs(closed - direct) <= 1e-12 * M


@pytest.mark.parametrize("M", [2, 3, 10, 57])
def test_spectrum_zero_frequency_peak_and_normalisation(M):
    C = 1.3
    assert epoch_noise_spectrum(0.0, C, M) == 0.0
    assert epoch_noise_spectrum(2 * np.pi, C, M) == 0.0
    k = np.arange(1, M)
    assert_allclose(epoch_noise_spectrum(2 * np.pi * k / M, C, M), C * M / (M - 1), rtol=1e-12)
    # the mean over N > 2(M − 1) equispaced frequencies of a trigonometric polynomial of degree
    # M − 1 is exactly its constant coefficient R(0) = C
    omega = 2 * np.pi * np.arange(4 * M) / (4 * M)
    assert_allclose(np.mean(epoch_noise_spectrum(omega, C, M)), C, rtol=1e-12)
    # small-frequency expansion S ≈ C M (M + 1) ω² / 12
    w = 1e-3
    assert_allclose(epoch_noise_spectrum(w, C, M), C * M * (M + 1) * w**2 / 12, rtol=1e-3)


# ----------------------------------------------------------------------------------------------
# AR(2) impulse response
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lam", "eta", "beta"), [
    (1.0, 0.1, 0.0),        # β = 0, a > 0
    (15.0, 0.1, 0.0),       # β = 0, a < 0
    (0.3, 0.2, 0.6),        # complex roots
    (0.1, 1.0, 0.5),        # real roots
    ((1 - 0.5**0.5) ** 2, 1.0, 0.5),  # critically damped (up to rounding)
    (0.25, 1.0, 0.25),      # exactly critical: a = 1, 4β = 1
    (3.5, 1.0, 0.2),        # real negative roots
    (-0.1, 1.0, 0.3),       # outside the stable range: still the recursion's response
])
def test_impulse_response_matches_recursion(lam, eta, beta):
    G = ar2_impulse_response(lam, eta, beta, num_steps=120)
    ref = _recursion(lam, eta, beta, 120)
    assert_allclose(G, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


@given(beta=betas, frac=fractions, eta=st.floats(0.01, 2.0))
def test_impulse_response_matches_recursion_property(beta, frac, eta):
    lam = frac * 2 * (1 + beta) / eta
    G = ar2_impulse_response(lam, eta, beta, num_steps=80)
    ref = _recursion(lam, eta, beta, 80)
    assert np.allclose(G, ref, rtol=1e-9, atol=1e-11 * np.abs(ref).max())


def test_impulse_response_broadcasts():
    lam = np.array([[0.1], [1.0]])
    beta = np.array([0.0, 0.5, 0.9])
    G = ar2_impulse_response(lam, 0.2, beta, num_steps=7)
    assert G.shape == (2, 3, 7)
    assert_allclose(G[1, 2], _recursion(1.0, 0.2, 0.9, 7), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# D2: i.i.d. batches
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lam", "eta", "beta", "M"), PARAMS)
def test_iid_variances_equal_response_sums(lam, eta, beta, M):
    C = 0.7
    n = _decay_steps(lam, eta, beta)
    G = _recursion(lam, eta, beta, n)
    assert_allclose(weight_variance_iid(lam, C, eta, beta), eta**2 * C * np.sum(G**2), rtol=1e-11)
    H = G - np.concatenate([[0.0], G[:-1]])
    assert_allclose(velocity_variance_iid(lam, C, eta, beta), eta**2 * C * np.sum(H**2),
                    rtol=1e-11)
    assert_allclose(correlation_time(lam, eta, beta), np.sum(G**2) / np.sum(H**2), rtol=1e-11)


def test_iid_accepts_sympy_and_arrays():
    lam, C, eta, beta = sp.symbols("lam C eta beta", positive=True)
    expr = weight_variance_iid(lam, C, eta, beta)
    assert sp.simplify(expr - eta * C * (1 + beta) / ((1 - beta) * lam * (2 * (1 + beta)
                                                                          - eta * lam))) == 0
    assert sp.simplify(correlation_time(lam, eta, beta) - (1 + beta) / (2 * eta * lam)) == 0
    lams = np.array([0.1, 1.0, 10.0])
    out = weight_variance_iid(lams, 1.0, 0.1)
    assert out.shape == (3,)
    assert isinstance(weight_variance_iid(1.0, 1.0, 0.1), float)


def test_stationary_variance_correlated_white_noise_is_iid():
    lam = np.array([0.01, 0.5, 3.0])
    assert_allclose(stationary_variance_correlated(lam, 0.3, 0.4, [2.0]),
                    weight_variance_iid(lam, 2.0, 0.3, 0.4), rtol=1e-12)
    assert_allclose(stationary_variance_correlated(lam, 0.3, 0.4, [2.0], output="velocity"),
                    velocity_variance_iid(lam, 2.0, 0.3, 0.4), rtol=1e-12)


def test_stationary_variance_correlated_matches_double_sum():
    """η² Σ_{j,l} G(j)G(l)R(j−l) for an arbitrary finite-memory R (here an MA(2) noise)."""
    lam, eta, beta = 0.7, 0.4, 0.5
    R = np.array([1.0, 0.4, -0.25])
    n = _decay_steps(lam, eta, beta)
    G = _recursion(lam, eta, beta, n)
    lagmat = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    Rfull = np.where(lagmat < R.size, R[np.minimum(lagmat, R.size - 1)], 0.0)
    direct = eta**2 * G @ Rfull @ G
    assert_allclose(stationary_variance_correlated(lam, eta, beta, R), direct, rtol=1e-11)
    H = G - np.concatenate([[0.0], G[:-1]])
    assert_allclose(stationary_variance_correlated(lam, eta, beta, R, output="velocity"),
                    eta**2 * H @ Rfull @ H, rtol=1e-11)


# ----------------------------------------------------------------------------------------------
# D3: epoch sampling, exact
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lam", "eta", "beta", "M"), PARAMS)
def test_epoch_variance_matches_explicit_covariance_sum(lam, eta, beta, M):
    C = 1.3
    direct = np.array([_direct_epoch_variance(lam, C, eta, beta, M, m) for m in range(M)])
    profile = weight_variance_epoch_profile(lam, C, eta, beta, M)
    assert_allclose(profile, direct, rtol=1e-10)
    for m in (0, M - 1):
        assert_allclose(weight_variance_epoch(lam, C, eta, beta, M, position=m), direct[m],
                        rtol=1e-10)
    assert_allclose(weight_variance_epoch(lam, C, eta, beta, M), direct.mean(), rtol=1e-10)
    direct_v = np.array([_direct_epoch_variance(lam, C, eta, beta, M, m, "velocity")
                         for m in range(M)])
    for m in range(M):
        assert_allclose(velocity_variance_epoch(lam, C, eta, beta, M, position=m), direct_v[m],
                        rtol=1e-10)
    assert_allclose(velocity_variance_epoch(lam, C, eta, beta, M), direct_v.mean(), rtol=1e-10)


@given(beta=betas, frac=fractions, M=batches_per_epoch)
def test_phase_average_equals_mean_of_positions(beta, frac, M):
    """Two independent exact routes: R(h)-sum (phase average) and the epoch-block formula."""
    eta = 0.5
    lam = frac * 2 * (1 + beta) / eta
    profile = weight_variance_epoch_profile(lam, 1.0, eta, beta, M)
    assert np.all(profile > 0)
    assert np.isclose(profile.mean(), weight_variance_epoch(lam, 1.0, eta, beta, M), rtol=1e-9)
    R = epoch_autocorrelation(np.arange(M), 1.0, M)
    assert np.isclose(stationary_variance_correlated(lam, eta, beta, R),
                      weight_variance_epoch(lam, 1.0, eta, beta, M), rtol=1e-7)


@given(beta=betas, frac=fractions, M=st.integers(2, 400))
def test_large_epochs_recover_iid_within_proven_bound(beta, frac, M):
    """|Var_epoch − Var_iid| = (2η²C/(M(M−1))) |Σ_h (M−h) γ(h)| ≤ 2η²C (Σ_j |G(j)|)²/(M − 1).

    Proof: |γ(h)| ≤ Σ_j |G(j)||G(j+h)| and Σ_h (M − h)|γ(h)| ≤ M (Σ_j |G(j)|)².  The bound
    vanishes as M → ∞, so the epoch variance reduces to the i.i.d. one.
    """
    eta = 0.3
    lam = frac * 2 * (1 + beta) / eta
    G = _recursion(lam, eta, beta, _decay_steps(lam, eta, beta))
    bound = 2 * eta**2 * np.sum(np.abs(G)) ** 2 / (M - 1)
    diff = abs(weight_variance_epoch(lam, 1.0, eta, beta, M) - weight_variance_iid(lam, 1.0, eta,
                                                                                   beta))
    assert diff <= bound * (1 + 1e-9) + 1e-12 * weight_variance_iid(lam, 1.0, eta, beta)


@given(M=batches_per_epoch, eta=st.floats(0.01, 1.0))
def test_ratio_to_iid_is_monotone_in_curvature_sgd(M, eta):
    """β = 0: Var_epoch/Var_iid = 1 − (2/(M(M−1))) Σ_h (M−h) aʰ increases with λ (a = 1 − ηλ)."""
    lam = np.linspace(0.001, 1.999, 300) / eta
    ratio = weight_variance_epoch(lam, 1.0, eta, 0.0, M) / weight_variance_iid(lam, 1.0, eta)
    assert np.all(np.diff(ratio) >= -1e-12)


@given(beta=st.floats(0.05, 0.95), M=batches_per_epoch)
def test_ratio_to_iid_is_monotone_in_curvature_overdamped(beta, M):
    """With momentum the ratio increases with λ over the overdamped range ηλ ≤ (1 − √β)²."""
    eta = 1.0
    lam = np.linspace(1e-4, 1.0, 200) * (1 - np.sqrt(beta)) ** 2
    ratio = weight_variance_epoch(lam, 1.0, eta, beta, M) / weight_variance_iid(lam, 1.0, eta, beta)
    assert np.all(np.diff(ratio) >= -1e-10)


@pytest.mark.parametrize(("beta", "M"), [(0.0, 2), (0.0, 20), (0.5, 20), (0.9, 50)])
def test_flat_limit(beta, M):
    eta, C = 0.1, 1.0
    V0 = weight_variance_epoch_flat_limit(C, eta, beta, M)
    lam = np.array([1e-6, 1e-7, 1e-8]) / eta
    V = weight_variance_epoch(lam, C, eta, beta, M)
    err = np.abs(V / V0 - 1)
    assert err[-1] < 1e-5
    # the approach is linear in λ: the error shrinks tenfold per decade
    assert 5 < err[0] / err[1] < 20
    if beta == 0.0:
        assert_allclose(V0, eta**2 * C * (M + 1) / 6, rtol=1e-13)


def test_boundary_variance_is_far_below_phase_average_for_flat_directions():
    """The spec's pitfall: with β = 0 the flat-limit variance at position m is
    η²C m(M − m)/(M − 1), zero at the epoch boundary."""
    eta, M = 0.1, 20
    lam = 1e-7 / eta
    profile = weight_variance_epoch_profile(lam, 1.0, eta, 0.0, M)
    m = np.arange(M)
    # corrections are first order in ηλ; on the scale η²C·M of the profile they are of order
    # η²C·M²·ηλ (the response drifts by ≈ jηλ over the j ≤ M lags of an epoch)
    assert_allclose(profile, eta**2 * m * (M - m) / (M - 1), rtol=1e-4,
                    atol=eta**2 * M**2 * eta * lam)
    assert profile[0] < 1e-3 * weight_variance_epoch(lam, 1.0, eta, 0.0, M)


@pytest.mark.parametrize(("beta", "M"), [(0.0, 300), (0.5, 300), (0.9, 500)])
def test_crossover_curvature(beta, M):
    eta = 0.1
    lam_c = crossover_curvature(eta, beta, M)
    if beta == 0.0:
        assert_allclose(lam_c, 3 / (eta * (M + 1)), rtol=1e-13)

    def ratio(lam):
        return weight_variance_epoch(lam, 1.0, eta, beta, M) / weight_variance_iid(lam, 1.0, eta,
                                                                                  beta)

    # far below: the ratio equals λ/λ_c to first order (definition of λ_c)
    small = 1e-4 * lam_c
    assert_allclose(ratio(small) / (small / lam_c), 1.0, rtol=1e-2)
    assert ratio(small) < 1e-3
    # far above: within the proven bound (see test_large_epochs_recover_iid_within_proven_bound)
    big = 30 * lam_c
    assert eta * big < 2 * (1 + beta)
    G = _recursion(big, eta, beta, _decay_steps(big, eta, beta))
    bound = 2 * eta**2 * np.sum(np.abs(G)) ** 2 / (M - 1) / weight_variance_iid(big, 1.0, eta, beta)
    assert abs(ratio(big) - 1) <= bound
    assert abs(ratio(big) - 1) < 0.05


def test_correlation_time_regimes():
    eta, beta, M = 0.1, 0.5, 50
    lam_c = crossover_curvature(eta, beta, M)
    tau_iid = correlation_time(np.array([1e3, 1e4]) * lam_c / 1e4, eta, beta)
    assert_allclose(tau_iid, (1 + beta) / (2 * eta * np.array([1e3, 1e4]) * lam_c / 1e4))
    # i.i.d.: τ ∝ 1/λ everywhere
    # epoch: τ constant well below λ_c ...
    small = correlation_time(np.array([1e-5, 1e-6]) * lam_c, eta, beta, M)
    assert_allclose(small[0], small[1], rtol=1e-4)
    # ... and τ ≈ τ_iid ∝ 1/λ well above it
    big = np.array([30.0, 60.0]) * lam_c
    tau = correlation_time(big, eta, beta, M)
    assert_allclose(tau / correlation_time(big, eta, beta), 1.0, rtol=0.1)
    assert_allclose(tau[0] / tau[1], 2.0, rtol=0.1)
    assert correlation_time(1e-3 * lam_c, eta, beta, M, position=0) > 0


# ----------------------------------------------------------------------------------------------
# simulation with explicit without-replacement noise
# ----------------------------------------------------------------------------------------------


def _simulate(lam, eta, beta, M, z, *, epochs, replicas, rng, replacement=False):
    """Heavy-ball AR(2) along one direction with batch noise drawn from the fixed zero-mean
    population z (one value per batch): a fresh permutation each epoch (without replacement)
    or i.i.d. draws (with replacement).  Returns x at the M positions of the last epoch."""
    x_prev = np.zeros(replicas)
    x = np.zeros(replicas)
    record = np.empty((M, replicas))
    population = np.tile(z, (replicas, 1))
    for e in range(epochs):
        if replacement:
            xi = z[rng.integers(0, M, size=(replicas, M))]
        else:
            xi = rng.permuted(population, axis=1)
        for m in range(M):
            if e == epochs - 1:
                record[m] = x  # position m: after m updates of this epoch
            x, x_prev = (1 + beta - eta * lam) * x - beta * x_prev - eta * xi[:, m], x
    return record


def test_simulated_epoch_variance_matches_exact_variance():
    """x² averaged over independent replicas; its standard error is std(x²)/√R, estimated from
    the same sample.  Each comparison allows 5 standard errors (a false alarm has probability
    ≈ 6e-7 per comparison for a normal estimate; R = 40000 makes the mean of x² close to
    normal).  The burn-in of 40 epochs leaves |G| < 1e-12 of the initial condition."""
    lam, eta, beta, M = 0.5, 0.2, 0.3, 6
    z = np.arange(M) - (M - 1) / 2.0
    C = np.mean(z**2)  # population variance: Var ξ = C, Cov = −C/(M − 1) under permutation
    rng = np.random.default_rng(20240607)
    x = _simulate(lam, eta, beta, M, z, epochs=41, replicas=40_000, rng=rng)
    sq = x**2
    se = sq.std(axis=1, ddof=1) / np.sqrt(sq.shape[1])
    exact = weight_variance_epoch_profile(lam, C, eta, beta, M)
    assert np.all(np.abs(sq.mean(axis=1) - exact) <= 5 * se)
    per_replica = sq.mean(axis=0)
    se_avg = per_replica.std(ddof=1) / np.sqrt(per_replica.size)
    assert abs(per_replica.mean() - weight_variance_epoch(lam, C, eta, beta, M)) <= 5 * se_avg
    # the epoch variance is measurably below the i.i.d. prediction here
    assert weight_variance_epoch(lam, C, eta, beta, M) < weight_variance_iid(lam, C, eta, beta) \
        - 10 * se_avg


def test_simulated_iid_variance_matches_iid_formula():
    """Same harness, batches drawn with replacement: the i.i.d. formula (5 standard errors)."""
    lam, eta, beta, M = 0.5, 0.2, 0.3, 6
    z = np.arange(M) - (M - 1) / 2.0
    C = np.mean(z**2)
    rng = np.random.default_rng(7)
    x = _simulate(lam, eta, beta, M, z, epochs=41, replicas=40_000, rng=rng, replacement=True)
    per_replica = (x**2).mean(axis=0)
    se = per_replica.std(ddof=1) / np.sqrt(per_replica.size)
    assert abs(per_replica.mean() - weight_variance_iid(lam, C, eta, beta)) <= 5 * se


def test_pytorch_momentum_form_gives_the_same_iterates():
    """b ← βb + ĝ, θ ← θ − ηb and v ← βv − ηĝ, θ ← θ + v coincide for constant η."""
    rng = np.random.default_rng(3)
    lam, eta, beta = 0.8, 0.3, 0.7
    xi = rng.standard_normal(500)
    x_hb, v = 0.5, 0.0
    x_pt, b = 0.5, 0.0
    traj_hb, traj_pt = [], []
    for k in range(xi.size):
        v = beta * v - eta * (lam * x_hb + xi[k])
        x_hb = x_hb + v
        b = beta * b + (lam * x_pt + xi[k])
        x_pt = x_pt - eta * b
        traj_hb.append(x_hb)
        traj_pt.append(x_pt)
    assert_allclose(traj_pt, traj_hb, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# D5: loss
# ----------------------------------------------------------------------------------------------


def test_excess_loss_and_constant_variance_prediction():
    lam = np.array([2.0, 0.5, 0.01])
    var = np.array([0.1, 0.2, 0.3])
    assert_allclose(excess_loss(lam, var), 0.5 * (0.2 + 0.1 + 0.003), rtol=1e-15)
    assert_allclose(excess_loss_constant_variance(lam, 0.1), 0.5 * 0.1 * 2.51, rtol=1e-15)
    assert_allclose(loss_variance(lam, var), 0.5 * (4 * 0.01 + 0.25 * 0.04 + 1e-4 * 0.09),
                    rtol=1e-14)
    batch = excess_loss(np.stack([lam, 2 * lam]), var)
    assert batch.shape == (2,)


def test_epoch_excess_loss_below_constant_variance_with_many_flat_directions():
    """C ∝ H (C = κλ): the i.i.d. variance is ≈ isotropic, the epoch one collapses in the flat
    directions, so the mean excess loss falls well below the constant-variance prediction."""
    eta, beta, M, kappa = 0.1, 0.5, 100, 0.5
    # a bulk of 2000 directions flatter than λ_c/10 and five sharp outliers
    lam_c = crossover_curvature(eta, beta, M)
    lam = np.concatenate([np.geomspace(1e-4, 0.1, 2000) * lam_c, np.linspace(0.3, 1.0, 5)])
    var_iid = weight_variance_iid(lam, kappa * lam, eta, beta)
    var_epoch = weight_variance_epoch(lam, kappa * lam, eta, beta, M)
    isotropic = eta * kappa / (2 * (1 - beta))  # D2 with C = κλ, ηλ → 0
    assert np.all(var_iid >= isotropic)
    constant = excess_loss_constant_variance(lam, isotropic)
    assert excess_loss(lam, var_epoch) < 0.5 * constant
    assert excess_loss(lam, var_epoch) < excess_loss(lam, var_iid)
    # the loss variance drops even more (it weighs the squared variances)
    assert loss_variance(lam, var_epoch) < loss_variance(lam, var_iid)


def test_loss_variance_gaussian_monte_carlo():
    """Var(½Σλx²) for independent Gaussian x; the sample variance of Q = ½Σλx² over n draws
    has standard error ≈ sqrt((μ₄(Q) − σ⁴)/n); we allow 5 of them."""
    rng = np.random.default_rng(11)
    lam = np.array([1.0, 0.3, 2.0])
    var = np.array([0.5, 2.0, 0.1])
    n = 400_000
    x = rng.standard_normal((n, 3)) * np.sqrt(var)
    Q = 0.5 * (x**2 @ lam)
    centred = Q - Q.mean()
    sample_var = np.mean(centred**2)
    se = np.sqrt((np.mean(centred**4) - sample_var**2) / n)
    assert abs(sample_var - loss_variance(lam, var)) <= 5 * se


# ----------------------------------------------------------------------------------------------
# input validation and documentation
# ----------------------------------------------------------------------------------------------

BAD_INPUTS = [
    ("M", lambda: epoch_autocorrelation(1, 1.0, 1)),
    ("M", lambda: epoch_autocorrelation(1, 1.0, 2.5)),
    ("h", lambda: epoch_autocorrelation(0.5, 1.0, 3)),
    ("C", lambda: epoch_autocorrelation(1, -1.0, 3)),
    ("omega", lambda: epoch_noise_spectrum(np.nan, 1.0, 3)),
    ("num_steps", lambda: ar2_impulse_response(1.0, 0.1, 0.0, num_steps=0)),
    ("beta", lambda: ar2_impulse_response(1.0, 0.1, 1.0, num_steps=3)),
    ("eta", lambda: ar2_impulse_response(1.0, 0.0, 0.0, num_steps=3)),
    ("lam", lambda: weight_variance_iid(-1.0, 1.0, 0.1)),
    ("lam", lambda: weight_variance_iid(30.0, 1.0, 0.1)),
    ("lam", lambda: weight_variance_iid(np.nan, 1.0, 0.1)),
    ("beta", lambda: weight_variance_iid(1.0, 1.0, 0.1, -0.5)),
    ("C", lambda: velocity_variance_iid(1.0, -2.0, 0.1)),
    ("eta", lambda: weight_variance_epoch(1.0, 1.0, -0.1, 0.0, 4)),
    ("M", lambda: weight_variance_epoch(1.0, 1.0, 0.1, 0.0, 1)),
    ("position", lambda: weight_variance_epoch(1.0, 1.0, 0.1, 0.0, 4, position=4)),
    ("position", lambda: weight_variance_epoch(1.0, 1.0, 0.1, 0.0, 4, position=1.0)),
    ("position", lambda: velocity_variance_epoch(1.0, 1.0, 0.1, 0.0, 4, position=-1)),
    ("M", lambda: weight_variance_epoch_profile(1.0, 1.0, 0.1, 0.0, 0)),
    ("position", lambda: correlation_time(1.0, 0.1, 0.0, position=0)),
    ("output", lambda: stationary_variance_correlated(1.0, 0.1, 0.0, [1.0], output="loss")),
    ("R", lambda: stationary_variance_correlated(1.0, 0.1, 0.0, [[1.0]])),
    ("beta", lambda: crossover_curvature(0.1, 1.5, 4)),
    ("M", lambda: weight_variance_epoch_flat_limit(1.0, 0.1, 0.0, 1)),
    ("lam", lambda: excess_loss(-np.ones(2), np.ones(2))),
    ("variances", lambda: excess_loss(np.ones(2), np.ones(3))),
    ("variance", lambda: excess_loss_constant_variance(np.ones(2), -1.0)),
    ("variances", lambda: loss_variance(np.ones(2), [np.nan, 1.0])),
]


@pytest.mark.parametrize(("name", "call"), BAD_INPUTS)
def test_bad_input_raises_value_error_naming_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_every_public_function_cites_its_source():
    for name in _epoch_noise.__all__:
        obj = getattr(_epoch_noise, name)
        assert inspect.isfunction(obj)
        doc = inspect.getdoc(obj) or ""
        assert "References" in doc and "2306.05300" in doc, name
        assert ".. math::" in doc, name

"""Moments against brute-force references: explicit per-sample loops, enumerated minibatches."""

import itertools

import numpy as np
import pytest

from sgdnoise import backends, theory


@pytest.fixture
def layer():
    rng = np.random.default_rng(0)
    N, out, inn = 9, 3, 4
    U = rng.standard_normal((N, out, 2))
    G = U @ U.transpose(0, 2, 1)
    a = rng.standard_normal((N, inn))
    delta = rng.standard_normal((N, out))
    return G, a, delta


def test_hessian_moments_match_explicit_loop(layer):
    G, a, _ = layer
    h = theory.kronecker_hessians(G, a)
    H_ref = sum(h[p] for p in range(len(h))) / len(h)
    M_ref = sum(h[p] @ h[p] for p in range(len(h))) / len(h)
    H, M = theory.hessian_moments(h)
    np.testing.assert_allclose(H, H_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(M, M_ref, rtol=1e-12, atol=1e-13)


def test_kronecker_hessian_is_np_kron(layer):
    G, a, _ = layer
    h = theory.kronecker_hessians(G, a)
    for p in range(len(G)):
        np.testing.assert_allclose(h[p], np.kron(G[p], np.outer(a[p], a[p])), rtol=1e-14)


def test_kronecker_chunking_does_not_change_result(layer):
    G, a, delta = layer
    one = theory.kronecker_layer_moments(G, a, delta, chunk=10_000)
    small = theory.kronecker_layer_moments(G, a, delta, chunk=2)
    for field in ("H", "M", "K", "Sigma1"):
        np.testing.assert_allclose(getattr(small, field), getattr(one, field), rtol=1e-12,
                                   atol=1e-14)


def test_max_curvature_kronecker_matches_eigvalsh(layer):
    G, a, _ = layer
    h = theory.kronecker_hessians(G, a)
    np.testing.assert_allclose(theory.kronecker_max_curvatures(G, a), theory.max_curvatures(h),
                               rtol=1e-10, atol=1e-12)


def _minibatch_covariance(grads, batches):
    batches = list(batches)
    means = np.array([grads[list(b)].mean(axis=0) for b in batches])
    centred = means - grads.mean(axis=0)
    return centred.T @ centred / len(batches)


@pytest.mark.parametrize("B", [1, 2, 3])
def test_noise_covariance_with_replacement_matches_enumeration(B):
    rng = np.random.default_rng(1)
    N, D = 5, 3
    grads = rng.standard_normal((N, D))
    Sigma1, _ = theory.gradient_covariance(grads)
    ref = _minibatch_covariance(grads, itertools.product(range(N), repeat=B))
    np.testing.assert_allclose(theory.noise_covariance(Sigma1, B), ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("B", [1, 2, 4, 6])
def test_noise_covariance_without_replacement_matches_enumeration(B):
    rng = np.random.default_rng(2)
    N, D = 6, 3
    grads = rng.standard_normal((N, D))
    Sigma1, _ = theory.gradient_covariance(grads)
    ref = _minibatch_covariance(grads, itertools.combinations(range(N), B))
    C = theory.noise_covariance(Sigma1, B, N=N, replacement=False)
    np.testing.assert_allclose(C, ref, rtol=1e-12, atol=1e-15)


def test_gradient_covariance_matches_explicit_loop():
    rng = np.random.default_rng(3)
    grads = rng.standard_normal((7, 4))
    g_mean = grads.mean(axis=0)
    ref = sum(np.outer(g - g_mean, g - g_mean) for g in grads) / 7
    Sigma1, gm = theory.gradient_covariance(grads)
    np.testing.assert_allclose(Sigma1, ref, rtol=1e-13)
    np.testing.assert_allclose(gm, g_mean, rtol=1e-14)


def test_eigenbasis_is_descending_and_diagonal_matches_rotation():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((6, 6))
    H = A @ A.T
    M = H @ H + np.eye(6)
    eb = theory.eigenbasis(H)
    assert np.all(np.diff(eb.lam) <= 0)
    np.testing.assert_allclose(eb.V @ np.diag(eb.lam) @ eb.V.T, H, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eb.diagonal(M), np.diag(eb.rotate(M)), rtol=1e-12)


def test_power_law_fit_recovers_exact_exponent_and_prefactor():
    lam = np.logspace(0, -4, 50)
    fit = theory.fit_power_law(lam, 3.0 * lam**1.37)
    assert fit.slope == pytest.approx(1.37, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.num_points == 50


def test_top_window_and_layerwise_protocol_select_expected_points():
    lam = np.linspace(1.0, 0.01, 100)
    y = lam**1.5
    y[3] = -1.0  # dropped as non-positive
    top = theory.fit_power_law(lam, y, top=20)
    assert top.num_points == 19 and set(top.index) == set(range(20)) - {3}
    lw = theory.fit_power_law(lam, y, protocol="layerwise")
    # 99 positive points, 5th-percentile trim of either log drops 5, top 80% of 94 keeps 76
    assert lw.num_points == 76
    assert lw.slope == pytest.approx(1.5, abs=1e-12)


def test_exponent_interval_is_attained_at_corners():
    rng = np.random.default_rng(5)
    lam = np.sort(rng.uniform(0.01, 1.0, 6))
    lo, hi = lam, np.full(6, 2.0)
    interval = theory.exponent_interval(lam, lo, hi)
    slopes = [1 + theory.ols_slope(np.log(lam), np.log(np.where(c, hi, lo)))
              for c in itertools.product([False, True], repeat=6)]
    assert min(slopes) == pytest.approx(interval[0], abs=1e-12)
    assert max(slopes) == pytest.approx(interval[1], abs=1e-12)


def test_commutation_error_zero_for_commuting_and_symmetric_in_arguments():
    rng = np.random.default_rng(6)
    Q = theory.haar_orthogonal(5, rng)
    C = Q @ np.diag(rng.uniform(1, 2, 5)) @ Q.T
    H = Q @ np.diag(rng.uniform(1, 2, 5)) @ Q.T
    assert theory.commutation_error(C, H) < 1e-13
    A = rng.standard_normal((5, 5))
    C2 = A @ A.T
    assert theory.commutation_error(C2, H) == pytest.approx(theory.commutation_error(H, C2))


def test_windows_of_exactly_commuting_pair_are_zero():
    rng = np.random.default_rng(7)
    lam = np.logspace(0, -3, 12)
    Q = theory.haar_orthogonal(12, rng)
    H = (Q * lam) @ Q.T
    C = (Q * lam**1.3) @ Q.T
    rep = theory.commutation_metrics(C, H, top_k=4, num_baseline=3, rng=0)
    assert rep.epsilon < 1e-12 and max(rep.windows.values()) < 1e-12
    assert rep.diagonal_energy == pytest.approx(1.0, abs=1e-12)
    assert rep.spearman == pytest.approx(1.0)
    assert rep.baseline.seed == 0 and rep.baseline.samples.shape == (3,)


@pytest.mark.gpu
@pytest.mark.skipif("cupy" not in backends.available(), reason="needs CuPy and a CUDA device")
def test_cupy_kronecker_moments_match_numpy(layer):
    G, a, delta = layer
    ref = theory.kronecker_layer_moments(G, a, delta, backend="numpy")
    gpu = theory.kronecker_layer_moments(G, a, delta, backend="cupy")
    for field in ("H", "M", "K", "Sigma1"):
        np.testing.assert_allclose(getattr(gpu, field), getattr(ref, field), rtol=1e-12,
                                   atol=1e-13)


def test_zero_baseline_samples_use_the_closed_form():
    rng = np.random.default_rng(8)
    A, B = rng.standard_normal((2, 6, 6))
    C, H = A @ A.T, B @ B.T
    base = theory.random_commutation_baseline(C, H, num_samples=0)
    assert base.samples.shape == (0,) and base.std == 0.0
    assert base.mean == base.expected_rms == pytest.approx(
        theory.expected_random_commutator(np.linalg.eigvalsh(C), np.linalg.eigvalsh(H)))
    rep = theory.commutation_metrics(C, H, num_baseline=0, top_k=2)
    assert rep.ratio == pytest.approx(rep.epsilon / base.expected_rms)

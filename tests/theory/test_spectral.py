"""Top eigenpairs of operators against numpy.linalg.eigh; window diagonals, fits and commutation."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdnoise import theory
from sgdnoise.theory import LowRankFactors, kronecker_layer_operators, top_eigenbasis


def _symmetric(rng, D, *, decay=1.0, negative=0.2):
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    lam = (1.0 + np.arange(D)) ** -decay
    lam *= np.where(rng.random(D) < negative, -0.3, 1.0)
    return (Q * lam) @ Q.T


def _layer(seed, N=60, out=4, inn=9, r=3):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((N, r, out))
    L = rng.standard_normal((N, r, r))
    L = L @ np.swapaxes(L, 1, 2)
    a = np.abs(rng.standard_normal((N, inn))) * (1.0 + np.arange(inn)) ** -0.7
    delta = rng.standard_normal((N, out))
    G = np.swapaxes(B, 1, 2) @ L @ B
    return 0.5 * (G + np.swapaxes(G, 1, 2)), LowRankFactors(B, L), a, delta


def _check_against_eigh(A, res, k, tol=1e-8):
    lam, V = np.linalg.eigh(A)
    lam, V = lam[::-1][:k], V[:, ::-1][:, :k]
    scale = np.abs(lam).max()
    # eigenvalues within the residual bound (plus round-off); orthonormal Ritz vectors
    assert np.all(np.abs(res.lam - lam) <= res.residual_norms + 1e-12 * scale)
    assert np.abs(res.V.T @ res.V - np.eye(k)).max() < 1e-10
    explicit = np.linalg.norm(A @ res.V - res.V * res.lam, axis=0)
    np.testing.assert_allclose(res.residual_norms, explicit, rtol=1e-6, atol=1e-13 * scale)
    assert res.converged
    assert np.all(res.residual_norms <= tol * np.maximum(np.abs(res.lam), 1e-10 * scale))
    assert np.all(np.diff(res.lam) <= 0)


@pytest.mark.parametrize("method", ["block", "eigsh", "dense", "auto"])
def test_top_eigenpairs_match_eigh(method):
    rng = np.random.default_rng(0)
    A = _symmetric(rng, 120)
    res = top_eigenbasis(A, 12, rng=1, method=method)
    _check_against_eigh(A, res, 12)
    assert res.method == ("dense" if method == "auto" else method)
    assert res.num_products >= 12


def test_lobpcg_runs_and_reports_its_residuals():
    rng = np.random.default_rng(1)
    A = _symmetric(rng, 200, decay=0.5, negative=0.0)
    res = top_eigenbasis(A, 5, rng=2, method="lobpcg", tol=1e-6, max_iter=500)
    lam = np.linalg.eigvalsh(A)[::-1][:5]
    assert np.all(np.abs(res.lam - lam) <= res.residual_norms + 1e-12)
    explicit = np.linalg.norm(A @ res.V - res.V * res.lam, axis=0)
    np.testing.assert_allclose(res.residual_norms, explicit, rtol=1e-6, atol=1e-14)
    assert res.converged == bool(np.all(res.relative_residuals <= 1e-6))


@settings(max_examples=20)
@given(D=st.integers(2, 70), frac=st.floats(0.05, 1.0), block=st.integers(1, 9),
       seed=st.integers(0, 2**16), decay=st.floats(0.0, 2.0))
def test_block_method_over_shapes(D, frac, block, seed, decay):
    rng = np.random.default_rng(seed)
    k = max(1, int(frac * D))
    A = _symmetric(rng, D, decay=decay)
    res = top_eigenbasis(A, k, rng=seed, method="block", block=block)
    _check_against_eigh(A, res, k)


def test_block_method_on_a_rank_deficient_operator():
    """Breakdown of the Krylov space (rank 3 < k) is continued with random directions."""
    rng = np.random.default_rng(3)
    U = np.linalg.qr(rng.standard_normal((80, 3)))[0]
    A = (U * np.array([3.0, 2.0, 1.0])) @ U.T
    res = top_eigenbasis(A, 6, rng=0, method="block", block=4)
    np.testing.assert_allclose(res.lam[:3], [3.0, 2.0, 1.0], rtol=1e-12)
    assert np.abs(res.lam[3:]).max() < 1e-12
    assert np.abs(res.V.T @ res.V - np.eye(6)).max() < 1e-10


@pytest.mark.parametrize("form", ["dense", "low_rank"])
def test_top_eigenbasis_of_a_layer_operator(form):
    G, F, a, delta = _layer(4)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G if form == "dense" else F, a, delta, block=8)
    res = top_eigenbasis(ops.H, 10, rng=0, method="block", tol=1e-10)
    _check_against_eigh(ref.H, res, 10, tol=1e-10)
    # diagonals on the window: a matrix, the operator (fused), a plain LinearOperator
    for A, Aop in ((ref.M, ops.M), (ref.Sigma1, ops.Sigma1), (ref.K, ops.K)):
        expect = np.einsum("ij,ij->j", res.V, A @ res.V)
        scale = np.abs(A).max()
        np.testing.assert_allclose(res.diagonal(A), expect, rtol=1e-12, atol=1e-14 * scale)
        np.testing.assert_allclose(res.diagonal(Aop), expect, rtol=1e-11, atol=1e-13 * scale)
        np.testing.assert_allclose(res.diagonal(spla.aslinearoperator(A)), expect, rtol=1e-12,
                                   atol=1e-14 * scale)
        np.testing.assert_allclose(res.rotate(Aop), res.V.T @ A @ res.V, rtol=1e-11,
                                   atol=1e-13 * scale)
    diag = ops.diagonals(res.V, ("H", "M", "Sigma1"))
    np.testing.assert_allclose(diag["H"], res.lam, rtol=1e-9)


def test_fits_run_unchanged_on_the_window():
    """The top protocol only needs the window: fits on (λ_S, M_ii) from the operators equal the
    fits on the dense eigenbasis restricted to the same window."""
    G, F, a, delta = _layer(5, N=120, out=5, inn=12)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(F, a, delta)
    k = 25
    res = top_eigenbasis(ops.H, k, rng=0, method="block", tol=1e-10)
    eb = theory.eigenbasis(ref.H)
    d = ops.diagonals(res.V, ("M", "K", "Sigma1"))
    M_dense = eb.diagonal(ref.M)[:k]
    np.testing.assert_allclose(d["M"], M_dense, rtol=1e-7)
    fit_op = theory.fit_exponent(res.lam, d["M"], kappa_star=ops.kappa_star,
                                 kappa_upper=d["K"] / res.lam)
    fit_dense = theory.fit_exponent(eb.lam[:k], M_dense, kappa_star=ref.kappa_star,
                                    kappa_upper=eb.diagonal(ref.K)[:k] / eb.lam[:k])
    assert fit_op.fit.slope == pytest.approx(fit_dense.fit.slope, rel=1e-7)
    assert fit_op.interval[0] == pytest.approx(fit_dense.interval[0], rel=1e-6)
    assert fit_op.interval[1] == pytest.approx(fit_dense.interval[1], rel=1e-6)
    C_op = theory.fit_power_law(res.lam, d["Sigma1"] / 10, top=20)
    C_dense = theory.fit_power_law(eb.lam, eb.diagonal(ref.Sigma1) / 10, top=20)
    assert C_op.slope == pytest.approx(C_dense.slope, rel=1e-7)


def test_window_commutation_matches_dense_compressions():
    G, F, a, delta = _layer(6, N=80, out=4, inn=10)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(F, a, delta)
    k = 15
    res = top_eigenbasis(ops.H, k, rng=0, method="block", tol=1e-10)
    rep = theory.window_commutation_metrics(ops.C(5), res, num_samples=6, rng=3)
    eb = theory.eigenbasis(ref.H)
    V = eb.V[:, :k]
    C_S = V.T @ (ref.Sigma1 / 5) @ V
    expect = theory.commutation_metrics(C_S, np.diag(eb.lam[:k]), num_baseline=6, rng=3)
    assert rep.epsilon == pytest.approx(expect.epsilon, rel=1e-6)
    assert rep.baseline.expected_rms == pytest.approx(expect.baseline.expected_rms, rel=1e-6)
    assert rep.diagonal_energy == pytest.approx(expect.diagonal_energy, rel=1e-6)
    # the window ε equals ‖P_S[C,H]P_S‖/(‖P_S C P_S‖‖P_S H P_S‖) in the full space
    P = V @ V.T
    C = ref.Sigma1 / 5
    num = np.linalg.norm(P @ (C @ ref.H - ref.H @ C) @ P)
    den = np.linalg.norm(P @ C @ P) * np.linalg.norm(P @ ref.H @ P)
    assert rep.epsilon == pytest.approx(num / den, rel=1e-6)
    explicit = theory.window_commutation_metrics(ops.C(5), res, H=ops.H, num_samples=0)
    assert explicit.epsilon == pytest.approx(rep.epsilon, rel=1e-6, abs=1e-9)


def test_window_commutation_of_a_commuting_pair_is_zero():
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    lam = np.logspace(0, -3, 60)
    H = (Q * lam) @ Q.T
    C = (Q * lam**1.4) @ Q.T
    res = top_eigenbasis(H, 10, rng=0, method="block", tol=1e-12)
    rep = theory.window_commutation_metrics(C, res, num_samples=4, rng=0)
    assert rep.epsilon < 1e-9 and rep.ratio < 1e-7
    assert rep.diagonal_energy == pytest.approx(1.0, abs=1e-9)


BAD = [
    ({"k": 0}, "k"),
    ({"k": 31}, "k"),
    ({"k": 30, "method": "eigsh"}, "k must be < D"),
    ({"k": 7, "method": "lobpcg"}, "lobpcg"),
    ({"method": "arnoldi"}, "method"),
    ({"tol": 0.0}, "tol"),
    ({"tol": float("nan")}, "tol"),
    ({"rng": -1}, "rng"),
    ({"block": 0}, "block"),
    ({"max_iter": 0}, "max_iter"),
    ({"max_dim": 4, "method": "block"}, "max_dim"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD)
def test_invalid_arguments_name_themselves(kwargs, name):
    A = _symmetric(np.random.default_rng(8), 30)
    args = {"k": 3, "rng": 0, **kwargs}
    k = args.pop("k")
    with pytest.raises(ValueError, match=name):
        top_eigenbasis(A, k, **args)


def test_invalid_operators_and_bases():
    with pytest.raises(ValueError, match="square"):
        top_eigenbasis(np.zeros((3, 4)), 1, rng=0)
    with pytest.raises(ValueError, match="non-finite"):
        top_eigenbasis(np.full((3, 3), np.nan), 1, rng=0)
    with pytest.raises(ValueError, match="square"):
        top_eigenbasis(spla.aslinearoperator(np.zeros((3, 4))), 1, rng=0)
    A = _symmetric(np.random.default_rng(9), 10)
    res = top_eigenbasis(A, 4, rng=0)
    with pytest.raises(ValueError, match="10x10"):
        res.diagonal(np.eye(9))
    with pytest.raises(ValueError, match="TopEigenBasis"):
        theory.window_commutation_metrics(A, theory.eigenbasis(A))
    with pytest.raises(ValueError, match="at least 3"):
        theory.window_commutation_metrics(A, top_eigenbasis(A, 2, rng=0))

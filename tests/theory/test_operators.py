"""Matrix-free dense-layer operators against the dense Kronecker moments, column by column."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdnoise import backends, theory
from sgdnoise._memory import MemoryLimitError
from sgdnoise.theory import LowRankFactors, kronecker_layer_operators
from sgdnoise.verify.strategies import kronecker_factors, low_rank_kronecker_factors

FIELDS = ("H", "M", "K", "Sigma1")


def _factors(rng, N, out, inn, r, *, psd=False):
    B = rng.standard_normal((N, r, out))
    L = rng.standard_normal((N, r, r))
    L = L @ np.swapaxes(L, 1, 2) if psd else L + np.swapaxes(L, 1, 2)
    G = np.swapaxes(B, 1, 2) @ L @ B
    G = 0.5 * (G + np.swapaxes(G, 1, 2))
    a = rng.standard_normal((N, inn))
    delta = rng.standard_normal((N, out))
    return G, LowRankFactors(B, L), a, delta


def _assert_matches(ops, ref, fields):
    for name in fields:
        A = getattr(ops, name).to_dense()
        R = getattr(ref, name)
        scale = np.abs(R).max()
        if name == "Sigma1":     # Σ₁ = E[g gᵀ] − ḡḡᵀ: measure round-off against E[g gᵀ]
            scale = max(scale, np.abs(np.outer(ref.g_mean, ref.g_mean)).max())
        if name == "K":          # κ_max(p) h_p has the units of h_p²: round-off of κ_max ~ M
            scale = max(scale, np.abs(ref.M).max())
        scale = max(scale, np.finfo(np.float64).tiny)
        err = np.abs(A - R).max(axis=0) / scale        # column by column
        assert err.max() < 1e-12, f"{name}: worst column {int(err.argmax())}, error {err.max():.3g}"


@pytest.mark.parametrize("form", ["dense", "low_rank"])
@pytest.mark.parametrize("with_delta", [True, False])
@pytest.mark.parametrize("r", [2, 6])
def test_operators_match_dense_kronecker_moments(form, with_delta, r):
    rng = np.random.default_rng(r + 10 * with_delta)
    G, F, a, delta = _factors(rng, 37, 4, 5, r)
    delta = delta if with_delta else None
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G if form == "dense" else F, a, delta, block=3, chunk=8)
    fields = FIELDS if with_delta else ("H", "M", "K")
    _assert_matches(ops, ref, fields)
    np.testing.assert_allclose(ops.kappa_max, ref.kappa_max, rtol=1e-12, atol=1e-12)
    assert ops.num_samples == 37
    if with_delta:
        np.testing.assert_allclose(ops.g_mean, ref.g_mean, rtol=1e-13, atol=1e-14)
    else:
        assert ops.Sigma1 is None and ops.g_mean is None


@settings(max_examples=25)
@given(factors=kronecker_factors(max_out=5, max_in=5, max_samples=30, psd=False),
       chunk=st.integers(1, 40), block=st.integers(1, 9))
def test_operator_agreement_over_shapes(factors, chunk, block):
    G, a, delta = factors
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G, a, delta, block=block, chunk=chunk)
    _assert_matches(ops, ref, FIELDS)
    np.testing.assert_allclose(ops.kappa_max, ref.kappa_max, rtol=1e-12, atol=0)


@settings(max_examples=25)
@given(factors=low_rank_kronecker_factors(max_out=5, max_in=5, max_rank=6, max_samples=30,
                                          psd=False),
       chunk=st.integers(1, 40), block=st.integers(1, 9))
def test_low_rank_operator_agreement_over_shapes(factors, chunk, block):
    F, a, delta = factors
    G = np.swapaxes(F.B, 1, 2) @ F.Lam @ F.B
    ref = theory.kronecker_layer_moments(0.5 * (G + np.swapaxes(G, 1, 2)), a, delta)
    ops = kronecker_layer_operators(F, a, delta, block=block, chunk=chunk)
    _assert_matches(ops, ref, FIELDS)
    np.testing.assert_allclose(ops.kappa_max, ref.kappa_max, rtol=1e-10,
                               atol=1e-12 * max(1.0, np.abs(ref.kappa_max).max()))


@pytest.mark.parametrize("form", ["dense", "low_rank"])
def test_fused_diagonals_match_dense_quadratic_forms(form):
    rng = np.random.default_rng(3)
    G, F, a, delta = _factors(rng, 50, 3, 7, 2, psd=True)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G if form == "dense" else F, a, delta, block=4)
    V = rng.standard_normal((21, 11))
    diag = ops.diagonals(V, FIELDS)
    for name in FIELDS:
        R = getattr(ref, name)
        expect = np.einsum("ij,ij->j", V, R @ V)
        np.testing.assert_allclose(diag[name], expect, rtol=1e-12,
                                   atol=1e-12 * np.abs(R).max() * (V**2).sum(0).max())
        # the per-operator fused form agrees too, and so does the scaled C
        np.testing.assert_allclose(getattr(ops, name).diagonal_quadratic(V), diag[name],
                                   rtol=1e-12, atol=1e-13 * np.abs(expect).max())
    C = ops.C(8)
    np.testing.assert_allclose(C.diagonal_quadratic(V), diag["Sigma1"] / 8, rtol=1e-12,
                               atol=1e-14 * np.abs(diag["Sigma1"]).max())


def test_generic_diagonals_without_fused_forms():
    rng = np.random.default_rng(4)
    G, _, a, delta = _factors(rng, 20, 3, 4, 2)
    ops = kronecker_layer_operators(G, a, delta)
    plain = theory.CurvatureOperators(H=ops.H, M=ops.M, Sigma1=ops.Sigma1, K=None,
                                      g_mean=ops.g_mean, num_samples=20)
    V = rng.standard_normal((12, 5))
    fused = ops.diagonals(V)
    generic = plain.diagonals(V)
    for name in ("H", "M", "Sigma1"):
        np.testing.assert_allclose(generic[name], fused[name], rtol=1e-12,
                                   atol=1e-13 * np.abs(fused[name]).max())
    with pytest.raises(ValueError, match="K was not built"):
        plain.diagonals(V, ("K",))
    with pytest.raises(ValueError, match="names must be among"):
        plain.diagonals(V, ("C",))
    with pytest.raises(ValueError, match="kappa_star"):
        _ = plain.kappa_star
    assert ops.kappa_star == pytest.approx(float(ops.kappa_max.max()))


def test_noise_covariance_scales_and_matches_dense():
    rng = np.random.default_rng(5)
    G, _, a, delta = _factors(rng, 30, 2, 3, 2)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G, a, delta)
    for B, repl in ((4, True), (4, False), (30, False)):
        expect = theory.noise_covariance(ref.Sigma1, B, N=30, replacement=repl)
        np.testing.assert_allclose(ops.C(B, replacement=repl).to_dense(), expect, rtol=1e-12,
                                   atol=1e-14 * max(1.0, np.abs(ref.Sigma1).max()))


def test_low_rank_max_eigenvalues_match_eigvalsh():
    rng = np.random.default_rng(6)
    for r, out in ((2, 5), (5, 5), (7, 4), (1, 1)):
        B = rng.standard_normal((40, r, out))
        L = rng.standard_normal((40, r, r))
        L = L + np.swapaxes(L, 1, 2)
        G = np.swapaxes(B, 1, 2) @ L @ B
        expect = np.linalg.eigvalsh(0.5 * (G + np.swapaxes(G, 1, 2)))[:, -1]
        got = theory.low_rank_max_eigenvalues(LowRankFactors(B, L))
        np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-12 * np.abs(expect).max())


def test_operators_apply_single_vectors_and_scipy_protocol():
    rng = np.random.default_rng(7)
    G, _, a, delta = _factors(rng, 15, 3, 3, 2)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G, a, delta, block=2)
    v = rng.standard_normal(9)
    np.testing.assert_allclose(ops.H @ v, ref.H @ v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ops.M.matmat(np.eye(9)), ref.M, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ops.H.apply(v), ref.H @ v, rtol=1e-12, atol=1e-14)
    assert ops.H.T is ops.H.adjoint() or np.allclose(ops.H.T @ v, ref.H @ v)


def test_to_dense_refuses_past_the_memory_limit():
    rng = np.random.default_rng(8)
    G, _, a, delta = _factors(rng, 5, 3, 3, 2)
    ops = kronecker_layer_operators(G, a, delta)
    with pytest.raises(MemoryLimitError, match="GB"):
        ops.H.to_dense(max_bytes=100)
    assert ops.H.to_dense(max_bytes=81 * 8).shape == (9, 9)


BAD = [
    (lambda G, F, a, d: (np.zeros((5, 3, 4)), a, d), {}, "G"),
    (lambda G, F, a, d: (G, a[:-1], d), {}, "a"),
    (lambda G, F, a, d: (G, a, d[:, :-1]), {}, "delta"),
    (lambda G, F, a, d: (LowRankFactors(F.B, F.Lam + np.arange(4.0)[None, :, None]), a, d), {},
     "G.Lam"),
    (lambda G, F, a, d: (LowRankFactors(F.B[:, :, :, None], F.Lam), a, d), {}, "G.B"),
    (lambda G, F, a, d: (LowRankFactors(F.B, F.Lam[:, :2, :2]), a, d), {}, "G.Lam"),
    (lambda G, F, a, d: (LowRankFactors(F.B[:-1], F.Lam[:-1]), a, d), {}, "G.B"),
    (lambda G, F, a, d: (LowRankFactors(F.B, F.Lam), a, d[:, :-1]), {}, "delta"),
    (lambda G, F, a, d: (LowRankFactors(F.B, F.Lam), a[:, :0], d), {}, "a"),
    (lambda G, F, a, d: (G, a, d), {"block": 0}, "block"),
    (lambda G, F, a, d: (G, a, d), {"chunk": 0}, "chunk"),
    (lambda G, F, a, d: (G, a, d), {"backend": "numba"}, "backend"),
    (lambda G, F, a, d: (np.where(np.isfinite(G), np.nan, G), a, d), {}, "G"),
]


@pytest.mark.parametrize(("make", "kwargs", "name"), BAD)
def test_invalid_inputs_name_the_argument(make, kwargs, name):
    rng = np.random.default_rng(9)
    G, F, a, delta = _factors(rng, 5, 3, 4, 4)
    args = make(G, F, a, delta)
    with pytest.raises(ValueError, match=name):
        kronecker_layer_operators(*args, **kwargs)


def test_operator_products_check_their_arguments():
    rng = np.random.default_rng(10)
    G, _, a, delta = _factors(rng, 5, 2, 2, 2)
    ops = kronecker_layer_operators(G, a, delta)
    with pytest.raises(ValueError, match="rows"):
        ops.H.apply(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        ops.diagonals(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="B must be"):
        ops.C(0)
    with pytest.raises(ValueError, match="B must be <= N"):
        ops.C(6, replacement=False)


@pytest.mark.gpu
@pytest.mark.skipif("cupy" not in backends.available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("form", ["dense", "low_rank"])
def test_cupy_operators_match_numpy(form):
    import cupy

    rng = np.random.default_rng(11)
    G, F, a, delta = _factors(rng, 64, 4, 6, 3)
    ref = theory.kronecker_layer_moments(G, a, delta)
    ops = kronecker_layer_operators(G if form == "dense" else F, a, delta, backend="cupy",
                                    block=5, chunk=16)
    assert ops.H.xp is cupy
    _assert_matches(ops, ref, FIELDS)
    V = rng.standard_normal((24, 7))
    diag = ops.diagonals(cupy.asarray(V), FIELDS)
    for name in FIELDS:
        R = getattr(ref, name)
        np.testing.assert_allclose(diag[name], np.einsum("ij,ij->j", V, R @ V), rtol=1e-11,
                                   atol=1e-12 * np.abs(R).max() * (V**2).sum(0).max())

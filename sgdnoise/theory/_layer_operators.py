r"""Matrix-free H, M, K and Σ₁ of one dense layer from its Kronecker factors.

For z = W a (W of shape (out, in), vectorised row-major, D = out·in; a bias is a constant 1
appended to a) the exact per-sample layer Hessian and gradient are

.. math:: h_p = G_p \otimes a_p a_p^\top, \qquad g_p = \delta_p \otimes a_p .

With (A ⊗ B) vec(X) = vec(A X Bᵀ) for row-major vec, a direction V = vec(X) (X of shape
(out, in)) gives

.. math::
    h_p\,\mathrm{vec}(X) = \mathrm{vec}\bigl(G_p\,(X a_p)\,a_p^\top\bigr), \qquad
    h_p^2\,\mathrm{vec}(X) = \|a_p\|^2\,\mathrm{vec}\bigl(G_p^2\,(X a_p)\,a_p^\top\bigr), \qquad
    g_p^\top \mathrm{vec}(X) = \delta_p^\top X a_p ,

so a block of k directions costs one GEMM forward (Y_p = X a_p for all p and all k directions:
N·in·out·k multiply-adds), one batched product with the small per-sample factor (N·out²·k for a
dense G_p, N·r·out·k for low-rank factors) and one GEMM back (N·out·in·k), and h_p V is never
formed per sample.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sgdnoise import backends
from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_positive_int, check_symmetric
from sgdnoise.theory._moments import _check_kronecker_factors, _max_curvatures_unchecked
from sgdnoise.theory._operators import BlockOperator, CurvatureOperators

#: Floats per sample-chunk temporary (Y, G·Y) when ``chunk`` is not given: 2²² (32 MiB).
CHUNK_FLOATS: int = 1 << 22


class LowRankFactors(NamedTuple):
    r"""Per-sample output factors in low-rank form, G_p = B_pᵀ Lam_p B_p.

    For a network with piecewise-linear activations (φ″ = 0) the output-side factor of a layer
    is G_p = J_pᵀ Λ_p J_p, with J_p the Jacobian of the K network outputs in the layer's
    pre-activations and Λ_p the loss Hessian in the outputs: r = K rows instead of out × out
    entries per sample, which is what makes wide layers fit in memory.

    Attributes
    ----------
    B : (N, r, out) array
        Per-sample row factors (e.g. J_p).
    Lam : (N, r, r) array
        Symmetric per-sample middle factors (e.g. Λ_p = diag q_p − q_p q_pᵀ); need not be
        definite.

    References
    ----------
    Martens, "New insights and perspectives on the natural gradient method", JMLR 21 (2020)
    (generalised Gauss–Newton form J_pᵀ Λ_p J_p); spec part A, "Dense-layer structure".
    """

    B: FloatArray
    Lam: FloatArray


def _check_low_rank(G: LowRankFactors, N: int | None = None) -> tuple[FloatArray, FloatArray]:
    B = as_float_array(G.B, "G.B", ndim=3)
    Lam = as_float_array(G.Lam, "G.Lam", ndim=3)
    if B.shape[0] < 1 or B.shape[1] < 1 or B.shape[2] < 1:
        raise ValueError(f"G.B must have shape (N, r, out) with N, r, out >= 1; got {B.shape}")
    if Lam.shape != (B.shape[0], B.shape[1], B.shape[1]):
        raise ValueError(
            f"G.Lam must have shape (N, r, r) = {(B.shape[0], B.shape[1], B.shape[1])}; "
            f"got {Lam.shape}"
        )
    check_symmetric(Lam, "G.Lam")
    if N is not None and B.shape[0] != N:
        raise ValueError(f"G.B must have one row per sample of a ({N}); got shape {B.shape}")
    return B, 0.5 * (Lam + np.swapaxes(Lam, 1, 2))


def low_rank_max_eigenvalues(G: LowRankFactors) -> FloatArray:
    r"""λ_max(G_p) of G_p = B_pᵀ Lam_p B_p from an r×r problem per sample.

    With the thin QR factorisation B_pᵀ = Q_p R_p (Q_p of shape (out, m), m = min(r, out)),
    G_p = Q_p (R_p Lam_p R_pᵀ) Q_pᵀ, so the non-zero eigenvalues of G_p are those of the m×m
    symmetric matrix R_p Lam_p R_pᵀ, and 0 is one more eigenvalue when m < out.  Cost
    O(N·(out·r² + r³)) instead of O(N·out³).

    Parameters
    ----------
    G : LowRankFactors
        B (N, r, out) and symmetric Lam (N, r, r).

    Returns
    -------
    (N,) array
        Largest eigenvalue of each G_p.

    References
    ----------
    Golub & Van Loan, Matrix Computations, 4th ed., §5.2 (QR) and §8.1 (symmetric
    eigenproblem).
    """
    B, Lam = _check_low_rank(G)
    return _low_rank_max_eig(B, Lam)


def _low_rank_max_eig(B: FloatArray, Lam: FloatArray) -> FloatArray:
    out = B.shape[2]
    _, R = np.linalg.qr(np.swapaxes(B, 1, 2))               # (N, m, r)
    inner = R @ Lam @ np.swapaxes(R, 1, 2)
    top = np.linalg.eigvalsh(0.5 * (inner + np.swapaxes(inner, 1, 2)))[:, -1]
    return np.maximum(top, 0.0) if R.shape[1] < out else top


class _KroneckerLayer:
    """The per-sample factors of one dense layer on one array module, and its blocked products."""

    def __init__(self, a: Any, G: Any | None, B: Any | None, Lam: Any | None, delta: Any | None,
                 kappa: FloatArray, *, xp: Any, chunk: int | None, block: int) -> None:
        self.xp = xp
        self.N, self.inn = a.shape
        self.a = xp.asarray(a)
        self.dense = G is not None
        if self.dense:
            self.G = xp.asarray(G)
            self.out = G.shape[1]
            width = self.out
        else:
            self.B = xp.asarray(B)
            self.Lam = xp.asarray(Lam)
            self.out = B.shape[2]
            width = max(self.out, B.shape[1])
            # G_p² = B_pᵀ (Lam_p B_p B_pᵀ Lam_p) B_p: an r×r middle factor per sample
            gram = B @ np.swapaxes(B, 1, 2)
            S = Lam @ gram @ Lam
            self.S = xp.asarray(0.5 * (S + np.swapaxes(S, 1, 2)))
        self.sq = xp.asarray(np.einsum("pi,pi->p", a, a))
        self.kappa = xp.asarray(kappa)
        self.delta = None if delta is None else xp.asarray(delta)
        self.D = self.out * self.inn
        self.block = block
        self.chunk = chunk if chunk is not None else max(1, CHUNK_FLOATS // (width * block))
        if delta is not None:
            g_mean = (delta.T @ a / self.N).reshape(-1)
            self.g_mean = g_mean
            self.g_mean_x = xp.asarray(g_mean)

    # ---- the three stages of a blocked product
    def _project(self, V: Any, start: int, stop: int) -> Any:
        """Y_p = X_j a_p for samples start:stop and each column j: shape (c, out, k)."""
        k = V.shape[1]
        Xt = V.reshape(self.out, self.inn, k).transpose(1, 0, 2).reshape(self.inn, self.out * k)
        return (self.a[start:stop] @ Xt).reshape(stop - start, self.out, k)

    def _back(self, acc: Any, Z: Any, start: int, stop: int) -> None:
        """acc (in, out·k) += Σ_p a_p ⊗ Z_p over samples start:stop."""
        acc += self.a[start:stop].T @ Z.reshape(stop - start, -1)

    def _finish(self, acc: Any, k: int) -> Any:
        xp = self.xp
        out = acc.reshape(self.inn, self.out, k).transpose(1, 0, 2).reshape(self.D, k)
        return xp.ascontiguousarray(out) / self.N

    def _apply_G(self, Y: Any, start: int, stop: int, *, square: bool = False) -> Any:
        """G_p Y_p (or G_p² Y_p) for samples start:stop."""
        if self.dense:
            G = self.G[start:stop]
            Z = G @ Y
            return G @ Z if square else Z
        B = self.B[start:stop]
        mid = self.S[start:stop] if square else self.Lam[start:stop]
        return self.xp.swapaxes(B, 1, 2) @ (mid @ (B @ Y))

    def _chunks(self) -> range:
        return range(0, self.N, self.chunk)

    # ---- operator products
    def product(self, V: Any, which: str) -> Any:
        """A V for A in H, M, K, Sigma1; V of shape (D, k)."""
        xp = self.xp
        k = V.shape[1]
        acc = xp.zeros((self.inn, self.out * k), dtype=np.float64)
        for start in self._chunks():
            stop = min(start + self.chunk, self.N)
            Y = self._project(V, start, stop)
            if which == "Sigma1":
                d = self.delta[start:stop]
                s = xp.einsum("pok,po->pk", Y, d)
                Z = d[:, :, None] * s[:, None, :]
            else:
                Z = self._apply_G(Y, start, stop, square=which == "M")
                if which == "M":
                    Z *= self.sq[start:stop, None, None]
                elif which == "K":
                    Z *= self.kappa[start:stop, None, None]
            self._back(acc, Z, start, stop)
        res = self._finish(acc, k)
        if which == "Sigma1":
            res -= self.g_mean_x[:, None] * (self.g_mean_x @ V)[None, :]
        return res

    def quadratic_forms(self, V: Any, which: tuple[str, ...]) -> dict[str, Any]:
        """v_jᵀ A v_j for each requested A, from one forward GEMM shared by all of them."""
        xp = self.xp
        k = V.shape[1]
        res = {name: xp.zeros(k, dtype=np.float64) for name in which}
        for start in self._chunks():
            stop = min(start + self.chunk, self.N)
            Y = self._project(V, start, stop)
            if {"H", "M", "K"} & set(which):
                GY = self._apply_G(Y, start, stop)
                if "H" in which or "K" in which:
                    q = xp.einsum("pok,pok->pk", Y, GY)
                    if "H" in which:
                        res["H"] += q.sum(axis=0)
                    if "K" in which:
                        res["K"] += self.kappa[start:stop] @ q
                if "M" in which:
                    res["M"] += self.sq[start:stop] @ xp.einsum("pok,pok->pk", GY, GY)
            if "Sigma1" in which:
                s = xp.einsum("pok,po->pk", Y, self.delta[start:stop])
                res["Sigma1"] += xp.einsum("pk,pk->k", s, s)
        for name in which:
            res[name] = res[name] / self.N
        if "Sigma1" in which:
            res["Sigma1"] -= (self.g_mean_x @ V) ** 2
        return res


def kronecker_layer_operators(G: FloatArray | LowRankFactors, a: FloatArray,
                              delta: FloatArray | None = None, *, per_sample_bound: bool = True,
                              backend: str = "numpy", block: int = 64,
                              chunk: int | None = None) -> CurvatureOperators:
    r"""H, M, K and Σ₁ of one dense layer as matrix-free operators, from its Kronecker factors.

    .. math::
        H = \mathbb{E}_p[G_p \otimes a_p a_p^\top], \quad
        M = \mathbb{E}_p[\|a_p\|^2 G_p^2 \otimes a_p a_p^\top], \quad
        K = \mathbb{E}_p[\kappa_{\max}(p)\, G_p \otimes a_p a_p^\top], \quad
        \Sigma_1 = \mathbb{E}_p[(\delta_p \otimes a_p)(\delta_p \otimes a_p)^\top]
                   - \bar g \bar g^\top

    in the row-major vec(W) basis (D = out·in), with κ_max(p) = ‖a_p‖² λ_max(G_p) (or 0 when
    larger and in > 1) and ḡ = E_p δ_p ⊗ a_p — the same objects as
    :func:`kronecker_layer_moments`, which builds them as dense D×D matrices.

    Each product A V with V of shape (D, k) runs over chunks of samples:
    Y_p = X a_p for every direction (one GEMM, N·in·out·k multiply-adds), the per-sample
    factor (G_p Y_p; for M G_p² Y_p scaled by ‖a_p‖²; for Σ₁ δ_p (δ_pᵀ Y_p)), then one GEMM
    back (N·out·in·k).

    Cost and memory
    ---------------
    Per block of k directions: O(N·k·out·in) for the two GEMMs plus O(N·k·out²) (dense G) or
    O(N·k·r·out) (low-rank G) for the per-sample factor.  Resident memory: the factors,
    O(N·(out + in)) plus N·out² for a dense G or N·(r·out + 2r²) for low-rank factors;
    temporaries O(chunk·max(out, r)·k + k·D).  The quadratic forms v_jᵀ A v_j of several
    operators share one forward GEMM (:meth:`CurvatureOperators.diagonals`), half the cost of
    a product.

    Parameters
    ----------
    G : (N, out, out) array or LowRankFactors
        Symmetric output-side factors ∂²ℓ_p/∂z∂zᵀ, dense or as G_p = B_pᵀ Lam_p B_p (for wide
        layers, where N·out² floats do not fit; κ_max(p) then comes from an r×r problem).
    a : (N, in) array
        Layer inputs (append a constant 1 for a bias).
    delta : (N, out) array, optional
        Output-side gradients ∂ℓ_p/∂z; needed for Σ₁ (and C).
    per_sample_bound : bool
        Also build K = E_p[κ_max(p) h_p] (per-sample wedge bound M_ii ≤ v_iᵀ K v_i, A2).
    backend : {"numpy", "cupy", "auto"}
        Array module the products run on; the factors are copied there once.  The operators'
        scipy interface takes and returns numpy arrays either way.
    block : int
        Largest number of directions per product (bounds the k·D temporaries).
    chunk : int, optional
        Samples per chunk; default: as many as keep each temporary within 2²² floats.

    Returns
    -------
    CurvatureOperators
        ``H``, ``M``, ``K`` (or None), ``Sigma1`` (None without ``delta``), ``g_mean``,
        ``num_samples`` and ``kappa_max``, with fused quadratic forms for
        :meth:`CurvatureOperators.diagonals`.

    References
    ----------
    Spec part A, "Dense-layer structure"; Zhang, Yang & Tu, arXiv:2602.05600; Martens & Grosse,
    ICML 2015 (Kronecker-factored curvature); Dangel et al., curvlinops (matrix-free curvature
    operators).
    """
    if isinstance(G, LowRankFactors):
        a = as_float_array(a, "a", ndim=2)
        if a.shape[1] < 1:
            raise ValueError(f"a must have at least one input unit; got shape {a.shape}")
        B, Lam = _check_low_rank(G, a.shape[0])
        out = B.shape[2]
        if delta is not None:
            delta = as_float_array(delta, "delta", ndim=2)
            if delta.shape != (a.shape[0], out):
                raise ValueError(f"delta must have shape (N, out) = {(a.shape[0], out)}; "
                                 f"got {delta.shape}")
        top = _low_rank_max_eig(B, Lam)
        sq = np.einsum("pi,pi->p", a, a)
        kappa = sq * top
        kappa = np.maximum(kappa, 0.0) if a.shape[1] > 1 else kappa
        G_dense = None
    else:
        G_dense, a, delta = _check_kronecker_factors(G, a, delta)
        B = Lam = None
        kappa = _max_curvatures_unchecked(G_dense, a)
    block = check_positive_int(block, "block")
    if chunk is not None:
        chunk = check_positive_int(chunk, "chunk")
    backend = backends.resolve(backend, supported=("numpy", "cupy"))
    xp = backends.array_module(backend)
    layer = _KroneckerLayer(a, G_dense, B, Lam, delta, kappa, xp=xp, chunk=chunk, block=block)
    D = layer.D

    def op(which: str) -> BlockOperator:
        return BlockOperator(lambda V: layer.product(V, which), D, name=which, block=block, xp=xp,
                             quadratic=lambda V: layer.quadratic_forms(V, (which,))[which])

    return CurvatureOperators(
        H=op("H"), M=op("M"), Sigma1=op("Sigma1") if delta is not None else None,
        K=op("K") if per_sample_bound else None,
        g_mean=layer.g_mean if delta is not None else None, num_samples=layer.N,
        kappa_max=kappa, quadratic_forms=layer.quadratic_forms,
    )


__all__ = ["LowRankFactors", "kronecker_layer_operators", "low_rank_max_eigenvalues"]

"""Curvature and gradient moments: H, M = E_p[h_p²], Σ₁, C and κ_max, from dense or Kronecker input.

Two input forms are accepted everywhere:

* dense per-sample Hessians ``h`` of shape (N, D, D) and per-sample gradients ``grads`` (N, D);
* the dense-layer Kronecker factors of SPEC part A ("Dense-layer structure"): for z = W a with
  W of shape (out, in), vectorised row-major, the per-sample gradient is g_p = δ_p ⊗ a_p and the
  exact per-sample Hessian is h_p = G_p ⊗ a_p a_pᵀ, with ``G`` (N, out, out), ``a`` (N, in) and
  ``delta`` (N, out).  Then h_p² = ‖a_p‖² G_p² ⊗ a_p a_pᵀ and every second moment is a sum of
  Kronecker products that one GEMM over samples accumulates, without a per-sample D×D matrix.

The Kronecker GEMM uses symmetry: entry ((o, i), (o', i')) of Σ_p X_p ⊗ a_p a_pᵀ only depends on
the unordered pairs {o, o'} and {i, i'}, so the product runs over packed upper triangles
(≈ 4× fewer flops) and is scattered back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise import backends
from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_positive_int,
    check_psd_stack,
    check_square_stack,
    check_symmetric,
)


def hessian_moments(h: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""Mean Hessian and mean squared Hessian from dense per-sample Hessians.

    .. math:: H = \mathbb{E}_p h_p, \qquad M = \mathbb{E}_p[h_p^2]

    Parameters
    ----------
    h : (N, D, D) array
        Symmetric per-sample Hessians h_p = ∇²ℓ_p.

    Returns
    -------
    H : (D, D) array
        Mean Hessian E_p h_p.
    M : (D, D) array
        Mean squared Hessian E_p[h_p²], symmetrised against round-off.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600, Sec. 3 (spec part A, objects).
    """
    h = check_square_stack(h, "h")
    N, D = h.shape[:2]
    check_allocation((N + 3) * D * D * 8, f"hessian_moments: H, M and a copy of h ({N}x{D}x{D})")
    check_symmetric(h, "h")
    H = h.mean(axis=0)
    M = np.einsum("pij,pjk->ik", h, h, optimize=True) / N
    return H, 0.5 * (M + M.T)


def max_curvatures(h: FloatArray) -> FloatArray:
    r"""Largest eigenvalue κ_max(p) of each per-sample Hessian; κ* is its maximum.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, κ_max and κ*).
    """
    h = check_square_stack(h, "h")
    check_allocation(h.size * 8, f"max_curvatures: a working copy of h {h.shape}")
    check_symmetric(h, "h")
    return np.linalg.eigvalsh(h)[:, -1].copy()


def gradient_covariance(grads: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""Per-sample gradient covariance Σ₁ and mean gradient ḡ.

    .. math:: \Sigma_1 = \mathbb{E}_p[g_p g_p^\top] - \bar g \bar g^\top

    (population normalisation 1/N, as in SPEC part A).

    Parameters
    ----------
    grads : (N, D) array
        Per-sample gradients g_p, one row per sample.

    Returns
    -------
    Sigma1 : (D, D) array
        Per-sample gradient covariance Σ₁ (1/N normalisation).
    g_mean : (D,) array
        Mean gradient ḡ = E_p g_p.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, Σ₁).
    """
    G = as_float_array(grads, "grads", ndim=2)
    if G.shape[0] < 1:
        raise ValueError("grads must hold at least one sample (row)")
    N, D = G.shape
    check_allocation((2 * D * D + N * D) * 8, f"gradient_covariance: Sigma1 ({D}x{D})")
    g_mean = G.mean(axis=0)
    centred = G - g_mean
    Sigma1 = centred.T @ centred / N
    return 0.5 * (Sigma1 + Sigma1.T), g_mean


def noise_covariance(Sigma1: FloatArray, B: int, *, N: int | None = None,
                     replacement: bool = True) -> FloatArray:
    r"""Minibatch noise covariance C from the per-sample covariance Σ₁.

    .. math::
        C = \frac{\Sigma_1}{B} \ \text{(with replacement)}, \qquad
        C = \frac{\Sigma_1}{B}\,\frac{N-B}{N-1} \ \text{(without replacement inside a batch)}

    The scale does not change fitted exponents; both are kept because curvature libraries
    disagree about it.

    Parameters
    ----------
    Sigma1 : (D, D) array
        Per-sample gradient covariance (1/N normalisation).
    B : int
        Batch size, 1 ≤ B (≤ N without replacement).
    N : int, optional
        Number of samples; required when ``replacement=False``.
    replacement : bool
        Whether a minibatch draws its B samples with replacement.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, C).
    """
    Sigma1 = as_float_array(Sigma1, "Sigma1", ndim=2)
    B = check_positive_int(B, "B")
    if replacement:
        return Sigma1 / B
    if N is None:
        raise ValueError("N is required when replacement=False")
    N = check_positive_int(N, "N", minimum=2)
    if B > N:
        raise ValueError(f"B must be <= N without replacement; got B={B}, N={N}")
    return Sigma1 * ((N - B) / (B * (N - 1)))


def _check_kronecker_factors(G: FloatArray, a: FloatArray,
                            delta: FloatArray | None = None) -> tuple[FloatArray, FloatArray,
                                                                      FloatArray | None]:
    """Validate dense-layer factors: G (N, out, out) symmetric, a (N, in), delta (N, out)."""
    G = check_square_stack(G, "G")
    check_symmetric(G, "G")
    a = as_float_array(a, "a", ndim=2)
    if a.shape[0] != G.shape[0]:
        raise ValueError(f"a must have one row per sample of G ({G.shape[0]}); got shape {a.shape}")
    if a.shape[1] < 1:
        raise ValueError(f"a must have at least one input unit; got shape {a.shape}")
    if delta is not None:
        delta = as_float_array(delta, "delta", ndim=2)
        if delta.shape != (G.shape[0], G.shape[1]):
            raise ValueError(
                f"delta must have shape (N, out) = {(G.shape[0], G.shape[1])}; got {delta.shape}"
            )
    return G, a, delta


def kronecker_hessians(G: FloatArray, a: FloatArray) -> FloatArray:
    r"""Materialise h_p = G_p ⊗ a_p a_pᵀ (N, D, D); a reference for small sizes only.

    References
    ----------
    Spec part A, "Dense-layer structure" (row-major vectorisation of W).
    """
    G, a, _ = _check_kronecker_factors(G, a)
    N, out, _ = G.shape
    inn = a.shape[1]
    D = out * inn
    check_allocation((N * D * D + N * inn * inn) * 8,
                     f"kronecker_hessians: h ({N}x{D}x{D}, D = {out}x{inn})")
    aa = a[:, :, None] * a[:, None, :]
    return np.einsum("pab,pij->paibj", G, aa).reshape(N, out * inn, out * inn)


def kronecker_max_curvatures(G: FloatArray, a: FloatArray) -> FloatArray:
    r"""κ_max(p) = ‖a_p‖² λ_max(G_p) for h_p = G_p ⊗ a_p a_pᵀ (eig(h_p) = ‖a_p‖² eig(G_p) ∪ {0}).

    References
    ----------
    Spec part A, "Dense-layer structure".
    """
    G, a, _ = _check_kronecker_factors(G, a)
    return _max_curvatures_unchecked(G, a)


def _max_curvatures_unchecked(G: FloatArray, a: FloatArray) -> FloatArray:
    eig_G = np.linalg.eigvalsh(G)
    sq = np.einsum("pi,pi->p", a, a)
    # h_p also has eigenvalue 0 (when in > 1), so κ_max = max(‖a‖² λ_max(G), 0) in that case.
    top = sq * eig_G[:, -1]
    return np.maximum(top, 0.0) if a.shape[1] > 1 else top


def _packed_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n)


def _kronecker_sums(blocks: list[FloatArray], a: FloatArray, *, backend: str,
                    chunk: int) -> list[FloatArray]:
    """Σ_p X_p ⊗ a_p a_pᵀ / N for each X in ``blocks`` (each (N, out, out), symmetric).

    One GEMM over samples on packed triangles, accumulated in chunks of ``chunk`` samples.
    """
    xp = backends.array_module(backend)
    N, inn = a.shape
    out = blocks[0].shape[1]
    ro, co = _packed_pairs(out)
    ri, ci = _packed_pairs(inn)
    n_o, n_i = ro.size, ri.size
    k = len(blocks)
    acc = xp.zeros((k * n_o, n_i), dtype=np.float64)
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        left = np.concatenate([X[start:stop][:, ro, co] for X in blocks], axis=1)
        a_c = a[start:stop]
        right = a_c[:, ri] * a_c[:, ci]
        left_x, right_x = xp.asarray(left), xp.asarray(right)
        acc += left_x.T @ right_x
    acc = backends.to_numpy(acc) / N
    D = out * inn
    # scatter packed (o<=o', i<=i') entries to all four symmetric positions
    results = []
    for b in range(k):
        K = acc[b * n_o:(b + 1) * n_o]  # (n_o, n_i)
        full = np.empty((out, out, inn, inn))
        full[ro[:, None], co[:, None], ri[None, :], ci[None, :]] = K
        full[co[:, None], ro[:, None], ri[None, :], ci[None, :]] = K
        full[ro[:, None], co[:, None], ci[None, :], ri[None, :]] = K
        full[co[:, None], ro[:, None], ci[None, :], ri[None, :]] = K
        results.append(np.ascontiguousarray(full.transpose(0, 2, 1, 3)).reshape(D, D))
    return results


@dataclass(frozen=True)
class LayerMoments:
    r"""Second moments of one dense layer, all in the row-major vec(W) basis (D = out·in).

    Attributes
    ----------
    H : (D, D) array
        Mean Hessian E_p h_p.
    M : (D, D) array
        E_p[h_p²].
    kappa_max : (N,) array
        Largest eigenvalue of each h_p; ``kappa_star = kappa_max.max()``.
    K : (D, D) array or None
        E_p[κ_max(p) h_p], giving the per-sample wedge bound M_ii ≤ v_iᵀ K v_i (A2).
    Sigma1 : (D, D) array or None
        Per-sample gradient covariance (needs ``delta``).
    g_mean : (D,) array or None
        Mean gradient ḡ.
    num_samples : int
        Number N of samples the moments average over.
    """

    H: FloatArray
    M: FloatArray
    kappa_max: FloatArray
    K: FloatArray | None
    Sigma1: FloatArray | None
    g_mean: FloatArray | None
    num_samples: int

    @property
    def kappa_star(self) -> float:
        """κ* = max_p κ_max(p)."""
        return float(self.kappa_max.max())


def kronecker_layer_moments(G: FloatArray, a: FloatArray, delta: FloatArray | None = None, *,
                            per_sample_bound: bool = True, backend: str = "numpy",
                            chunk: int = 4096) -> LayerMoments:
    r"""H, M, Σ₁ and κ_max of a dense layer from its Kronecker factors, with one GEMM.

    .. math::
        H = \mathbb{E}_p[G_p \otimes a_p a_p^\top], \quad
        M = \mathbb{E}_p[\|a_p\|^2 G_p^2 \otimes a_p a_p^\top], \quad
        \Sigma_1 = \mathbb{E}_p[\delta_p\delta_p^\top \otimes a_p a_p^\top] - \bar g \bar g^\top

    with g_p = δ_p ⊗ a_p, κ_max(p) = ‖a_p‖² λ_max(G_p) (or 0 if larger), and optionally
    K = E_p[κ_max(p) h_p].  Nothing of size D×D is formed per sample.

    Parameters
    ----------
    G : (N, out, out) array
        Symmetric output-side factors ∂²ℓ_p/∂z∂zᵀ.
    a : (N, in) array
        Layer inputs (append a constant 1 for a bias).
    delta : (N, out) array, optional
        Output-side gradients ∂ℓ_p/∂z; needed for Σ₁.
    per_sample_bound : bool
        Also accumulate K = E_p[κ_max(p) h_p] (one more block in the same GEMM).
    backend : {"numpy", "cupy", "auto"}
        Where the GEMM runs; results come back as numpy arrays.
    chunk : int
        Samples per GEMM chunk (bounds memory).

    References
    ----------
    Spec part A, "Dense-layer structure"; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    G, a, delta = _check_kronecker_factors(G, a, delta)
    D = G.shape[1] * a.shape[1]
    num = 2 + int(per_sample_bound) + int(delta is not None)
    check_allocation((2 * num + 2) * D * D * 8,
                     f"kronecker_layer_moments: {num} dense {D}x{D} moments and their "
                     f"workspace (D = {G.shape[1]}x{a.shape[1]})")
    chunk = check_positive_int(chunk, "chunk")
    backend = backends.resolve(backend, supported=("numpy", "cupy"))
    sq = np.einsum("pi,pi->p", a, a)
    kappa = _max_curvatures_unchecked(G, a)
    blocks = [G, sq[:, None, None] * (G @ G)]
    if per_sample_bound:
        blocks.append(kappa[:, None, None] * G)
    if delta is not None:
        blocks.append(delta[:, :, None] * delta[:, None, :])
    sums = _kronecker_sums(blocks, a, backend=backend, chunk=chunk)
    H, M = sums[0], sums[1]
    K = sums[2] if per_sample_bound else None
    Sigma1 = g_mean = None
    if delta is not None:
        g_mean = (delta.T @ a / G.shape[0]).reshape(-1)
        Sigma1 = sums[-1] - np.outer(g_mean, g_mean)
    return LayerMoments(H=H, M=M, kappa_max=kappa, K=K, Sigma1=Sigma1, g_mean=g_mean,
                        num_samples=G.shape[0])


def dense_layer_moments(h: FloatArray, grads: FloatArray | None = None, *,
                        per_sample_bound: bool = True) -> LayerMoments:
    r"""The same :class:`LayerMoments` from dense per-sample Hessians (and gradients).

    The reference path: it loops over materialised D×D Hessians, O(N D³) for M.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, objects).
    """
    h = check_square_stack(h, "h")
    N, D = h.shape[:2]
    check_allocation((N + 6) * D * D * 8,
                     f"dense_layer_moments: H, M, K, Sigma1 ({D}x{D}) and a copy of h")
    H, M = hessian_moments(h)
    kappa = max_curvatures(h)
    K = np.einsum("p,pij->ij", kappa, h) / h.shape[0] if per_sample_bound else None
    Sigma1 = g_mean = None
    if grads is not None:
        grads = as_float_array(grads, "grads", ndim=2)
        if grads.shape != h.shape[:2]:
            raise ValueError(f"grads must have shape (N, D) = {h.shape[:2]}; got {grads.shape}")
        Sigma1, g_mean = gradient_covariance(grads)
    return LayerMoments(H=H, M=M, kappa_max=kappa, K=K, Sigma1=Sigma1, g_mean=g_mean,
                        num_samples=h.shape[0])


def require_psd(h: FloatArray, name: str = "h") -> None:
    """Raise a ValueError unless each h_p is PSD (needed by the upper Loewner and wedge bounds).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A1, A2: the upper sides assume h_p ⪰ 0).
    """
    check_psd_stack(check_square_stack(h, name), name)


__all__ = [
    "LayerMoments",
    "dense_layer_moments",
    "gradient_covariance",
    "hessian_moments",
    "kronecker_hessians",
    "kronecker_layer_moments",
    "kronecker_max_curvatures",
    "max_curvatures",
    "noise_covariance",
    "require_psd",
]

r"""Activity–weight duality (AWD) for a dense layer z = W a (spec claim A4).

For sample p with a same-class partner p′ (the nearest, in this layer's input activity, among a
random pool), let Δa_p = a_p′ − a_p.  The dual weight change

.. math:: \Delta W_p = \frac{(W\Delta a_p)\,a_p^\top}{\|a_p\|^2}

gives (W + ΔW_p) a_p = W a_p′, hence ℓ(x_p′, W) = ℓ(x_p, W + ΔW_p) exactly.  Differentiating,
g_p′ = (I + J_pᵀ) ∇ℓ_p(W + ΔW_p) with J_p = I_out ⊗ a_pΔa_pᵀ/‖a_p‖², so to first order

.. math:: g_{p'} - g_p \approx \underbrace{h_p\,\Delta w_p}_{\text{term I}}
          + \underbrace{J_p^\top g_p}_{\text{term II}} .

In the Kronecker form h_p = G_p ⊗ a_pa_pᵀ and g_p = δ_p ⊗ a_p (row-major vec) both terms are
rank-one Kronecker vectors, never materialised as D×D matrices:

.. math:: h_p\Delta w_p = (G_p W \Delta a_p) \otimes a_p, \qquad J_p^\top g_p = \delta_p \otimes \Delta a_p .

With term I dominant, same-sample terms dominant and E[Δw_pΔw_pᵀ] ≈ σ_w² I this yields
C ≈ (σ_w²/(2B)) E_p[h_p²] (the factor 2: the difference of two independent minibatch gradients
has covariance 2C).  Each assumption is a measured ratio in :class:`AWDTerms`.

Choices: the partner pool is redrawn for each chunk of samples (``chunk``), holds
``pool_per_class`` samples of the same class drawn without replacement (fewer if the class is
smaller) and excludes p itself; distance is Euclidean in the layer's input activity (bias column
excluded).

References
----------
Zhang, Yang & Tu, arXiv:2602.05600, Sec. 4 (spec claim A4); authors' code Yikuan-PKU/AWCH.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_positive_int, check_rng


def match_partners(a: FloatArray, y: IntArray, *, rng: np.random.Generator | int,
                   pool_per_class: int = 20, chunk: int = 1000) -> IntArray:
    r"""Nearest same-class partner p′ of each sample among a random pool (p′ ≠ p).

    Parameters
    ----------
    a : (N, in) array
        The layer's input activity (without a bias column).
    y : (N,) int array
        Class labels.
    rng : Generator or int
    pool_per_class : int
        Pool size per class (the paper's 20).
    chunk : int
        Samples per pool draw: the pool is redrawn for each chunk.

    Returns
    -------
    partners : (N,) int array
        Index of p′ for each p; −1 where p's class has no other sample.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A4, partner protocol).
    """
    a = as_float_array(a, "a", ndim=2)
    y = np.asarray(y)
    if y.shape != (a.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be an integer array of shape ({a.shape[0]},); got {y.shape}")
    pool_per_class = check_positive_int(pool_per_class, "pool_per_class")
    chunk = check_positive_int(chunk, "chunk")
    rng = check_rng(rng)
    N = a.shape[0]
    partners = np.full(N, -1, dtype=np.int64)
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    sq = np.einsum("pi,pi->p", a, a)
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        for c, members in by_class.items():
            rows = np.arange(start, stop)[y[start:stop] == c]
            if rows.size == 0 or members.size < 2:
                continue
            # one extra candidate so that excluding p still leaves pool_per_class others
            k = min(pool_per_class + 1, members.size)
            pool = rng.choice(members, size=k, replace=False)
            d2 = sq[rows, None] + sq[None, pool] - 2.0 * a[rows] @ a[pool].T
            d2[rows[:, None] == pool[None, :]] = np.inf
            # keep at most pool_per_class candidates other than p itself
            if k == pool_per_class + 1:
                not_self = ~(rows[:, None] == pool[None, :])
                has_self = ~not_self.all(axis=1)
                d2[~has_self, -1] = np.inf  # rows without p in the pool: drop the extra one
            best = np.argmin(d2, axis=1)
            ok = np.isfinite(d2[np.arange(rows.size), best])
            partners[rows[ok]] = pool[best[ok]]
    return partners


@dataclass(frozen=True)
class AWDTerms:
    r"""Measured pieces of the AWD derivation for one dense layer.

    Attributes
    ----------
    sigma_w2 : float
        σ_w² = Tr E_p[Δw_pΔw_pᵀ]/D.
    isotropy : float
        ‖E[h_pΔw_pΔw_pᵀh_p] − σ_w² M‖_F / ‖E[h_pΔw_pΔw_pᵀh_p]‖_F (0 when the isotropy step is exact).
    term_ratio : float
        ‖E[t_II t_IIᵀ]‖_F / ‖E[t_I t_Iᵀ]‖_F (≪ 1 when term I dominates).
    linearisation : float
        ‖E[(g_p′−g_p)(g_p′−g_p)ᵀ] − E[(t_I+t_II)(t_I+t_II)ᵀ]‖_F / ‖E[(g_p′−g_p)(…)ᵀ]‖_F.
    same_sample : float
        ‖t̄ t̄ᵀ‖_F / ‖E[t tᵀ]‖_F for t = g_p′ − g_p (the part that cross-sample terms carry).
    M_term_I : (D, D) array
        E_p[t_I t_Iᵀ] = E_p[h_pΔw_pΔw_pᵀh_p].
    num_pairs : int
        Samples with a partner.
    """

    sigma_w2: float
    isotropy: float
    term_ratio: float
    linearisation: float
    same_sample: float
    M_term_I: FloatArray
    num_pairs: int


def awd_terms(W: FloatArray, a: FloatArray, G: FloatArray, delta: FloatArray,
              partners: IntArray, M: FloatArray, *, bias: bool = False,
              chunk: int = 2048) -> AWDTerms:
    r"""Measure σ_w², term I vs II, the linearisation and same-sample ratios of spec claim A4.

    Parameters
    ----------
    W : (out, in) array
        The layer's weights (with the bias column last when ``bias``).
    a : (N, in) array
        Layer inputs as multiplied by W (the bias 1 included when ``bias``).
    G : (N, out, out) array
        Per-sample output-side Hessian factors.
    delta : (N, out) array
        Per-sample output-side gradients.
    partners : (N,) int array
        From :func:`match_partners` (−1 entries are skipped).
    M : (D, D) array
        E_p[h_p²] of the layer over the same samples (for the isotropy ratio).
    bias : bool
        Whether the last column of ``a`` is the constant 1 (its Δa is 0).
    chunk : int
        Samples per GEMM chunk (bounds memory to a few chunk × D arrays).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A4).
    """
    W = as_float_array(W, "W", ndim=2)
    a = as_float_array(a, "a", ndim=2)
    G = as_float_array(G, "G", ndim=3)
    delta = as_float_array(delta, "delta", ndim=2)
    partners = np.asarray(partners)
    chunk = check_positive_int(chunk, "chunk")
    N, inn = a.shape
    out = W.shape[0]
    if W.shape[1] != inn or G.shape != (N, out, out) or delta.shape != (N, out):
        raise ValueError(f"shapes disagree: W {W.shape}, a {a.shape}, G {G.shape}, "
                         f"delta {delta.shape}")
    if partners.shape != (N,):
        raise ValueError(f"partners must have shape ({N},); got {partners.shape}")
    keep = partners >= 0
    if keep.sum() < 2:
        raise ValueError("partners must pair at least two samples")
    p, q = np.flatnonzero(keep), partners[keep]
    a_p, da = a[p], a[q] - a[p]
    if bias:
        da[:, -1] = 0.0
    sq = np.einsum("pi,pi->p", a_p, a_p)
    c = (da @ W.T) / sq[:, None]                       # ΔW_p = c_p a_pᵀ
    # Δw_p Δw_pᵀ = (c cᵀ) ⊗ (a aᵀ): trace = ‖c‖²‖a‖²
    sigma_w2 = float(np.mean(np.einsum("po,po->p", c, c) * sq)) / (out * inn)
    u = np.einsum("pab,pb->pa", G[p], da @ W.T)         # term I = u_p ⊗ a_p
    n, D = len(p), out * inn
    check_allocation(6 * D * D * 8, f"the four {D}x{D} AWD second moments")
    M1, M2, MT, Md = (np.zeros((D, D)) for _ in range(4))
    diff_sum = np.zeros(D)
    for s0 in range(0, n, chunk):
        sl = slice(s0, min(s0 + chunk, n))
        t1 = (u[sl, :, None] * a_p[sl, None, :]).reshape(-1, D)
        t2 = (delta[p[sl]][:, :, None] * da[sl, None, :]).reshape(-1, D)  # term II = δ_p ⊗ Δa_p
        diff = ((delta[q[sl]][:, :, None] * a[q[sl]][:, None, :])
                - (delta[p[sl]][:, :, None] * a_p[sl, None, :])).reshape(-1, D)
        T = t1 + t2
        M1 += t1.T @ t1
        M2 += t2.T @ t2
        MT += T.T @ T
        Md += diff.T @ diff
        diff_sum += diff.sum(axis=0)
    M1, M2, MT, Md = M1 / n, M2 / n, MT / n, Md / n
    lin = float(np.linalg.norm(Md - MT) / np.linalg.norm(Md))
    mean = diff_sum / n
    same = float(np.linalg.norm(np.outer(mean, mean)) / np.linalg.norm(Md))
    iso = float(np.linalg.norm(M1 - sigma_w2 * M) / np.linalg.norm(M1))
    return AWDTerms(sigma_w2=sigma_w2, isotropy=iso,
                    term_ratio=float(np.linalg.norm(M2) / np.linalg.norm(M1)),
                    linearisation=lin, same_sample=same, M_term_I=M1, num_pairs=n)


def dual_weight_change(W: FloatArray, a_p: FloatArray, a_partner: FloatArray) -> FloatArray:
    r"""ΔW_p = (W Δa) a_pᵀ/‖a_p‖² for one sample, so that (W + ΔW_p) a_p = W a_p′.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A4).
    """
    W = as_float_array(W, "W", ndim=2)
    a_p = as_float_array(a_p, "a_p", ndim=1)
    a_partner = as_float_array(a_partner, "a_partner", ndim=1)
    nrm = float(a_p @ a_p)
    if nrm == 0:
        raise ValueError("a_p must be non-zero for the dual weight change")
    return np.outer(W @ (a_partner - a_p), a_p) / nrm


__all__ = ["AWDTerms", "awd_terms", "dual_weight_change", "match_partners"]

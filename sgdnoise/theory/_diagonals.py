r"""Parameter-basis diagonals of H, M = E_p[h_p²] and Σ₁ of a dense layer, from Kronecker factors.

For z = W a with W of shape (out, in), vectorised row-major, SPEC part A ("Dense-layer
structure") gives g_p = δ_p ⊗ a_p and h_p = G_p ⊗ a_p a_pᵀ.  The diagonal entry of a Kronecker
product X ⊗ Y at position ((o, i), (o, i)) is X_oo Y_ii, so each diagonal below is a mean over
samples of (out-side vector) ⊗ (a_p ∘ a_p): one GEMM (out × N)(N × in)/N, returned as an
(out, in) array whose ``reshape(-1)`` is the diagonal in the row-major vec(W) order (the layout
of :meth:`sgdnoise.sim.models.MLP.unpack`).  These are the quantities curvature libraries report
per parameter (BackPACK's ``DiagHessian`` and ``Variance``), here without forming anything of
size D per sample.  The GEMM runs over blocks of samples, squaring each block of inputs into one
reused buffer, so no temporary of size N × in is allocated.

"Diagonal" here means the *parameter* basis (the coordinates of W), not H's eigenbasis of claim
A2; for the eigenbasis diagonals use :func:`sgdnoise.theory.kronecker_layer_moments` and
:meth:`sgdnoise.theory.EigenBasis.diagonal`.

Inputs far from unit scale are scaled by exact powers of two and the diagonals scaled back, as
in :mod:`sgdnoise.theory._moments`; a diagonal beyond the float64 range raises a ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, pow2_exponent, scale_pow2
from sgdnoise.theory._moments import _check_kronecker_factors, _unscale


def _check_gradient_factors(delta: FloatArray, a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Validate gradient factors: delta (N, out) and a (N, in), N ≥ 1, same N."""
    delta = as_float_array(delta, "delta", ndim=2)
    if delta.shape[0] < 1 or delta.shape[1] < 1:
        raise ValueError(f"delta must have shape (N, out) with N, out >= 1; got {delta.shape}")
    a = as_float_array(a, "a", ndim=2)
    if a.shape[0] != delta.shape[0]:
        raise ValueError(
            f"a must have one row per sample of delta ({delta.shape[0]}); got shape {a.shape}"
        )
    if a.shape[1] < 1:
        raise ValueError(f"a must have at least one input unit; got shape {a.shape}")
    return delta, a


# floats in the reused block of squared inputs (8 MiB): a ∘ a is never formed for all N at once,
# so a call allocates no temporary of size N·in (fresh memory is slow to obtain on some VMs)
_BLOCK_FLOATS = 1 << 20


def _mean_outer_squares(left: FloatArray, a: FloatArray) -> FloatArray:
    """E_p[left_p ⊗ (a_p ∘ a_p)] as an (out, in) array: leftᵀ (a ∘ a) / N.

    One GEMM per block of samples; the squares of each block go into one reused buffer.
    """
    N, inn = a.shape
    step = max(1, min(N, _BLOCK_FLOATS // inn))
    buffer = np.empty((step, inn))
    acc = np.zeros((left.shape[1], inn))
    for start in range(0, N, step):
        stop = min(start + step, N)
        squares = np.multiply(a[start:stop], a[start:stop], out=buffer[: stop - start])
        acc += left[start:stop].T @ squares
    acc /= N
    return acc


def kronecker_hessian_diagonal(G: FloatArray, a: FloatArray) -> FloatArray:
    r"""Diagonal of the layer's mean Hessian H in the parameter basis, from Kronecker factors.

    .. math::
        \operatorname{diag} H = \mathbb{E}_p\bigl[\operatorname{diag}(G_p) \otimes
        (a_p \circ a_p)\bigr], \qquad
        H_{(o,i),(o,i)} = \frac{1}{N}\sum_p (G_p)_{oo}\, a_{p,i}^2 ,

    for h_p = G_p ⊗ a_p a_pᵀ (row-major vec(W), entry (o, i) ↔ W_oi).  One GEMM
    (out × N)(N × in); O(N·out·in) flops.

    Parameters
    ----------
    G : (N, out, out) or (N, out) array
        Symmetric output-side factors G_p = ∂²ℓ_p/∂z∂zᵀ (only their diagonals enter), or just
        those diagonals, e.g. from :meth:`sgdnoise.sim.models.MLP.layer_hessian_diagonals`.
    a : (N, in) array
        Layer inputs (with a constant 1 appended for a bias).

    Returns
    -------
    (out, in) array
        H_{(o,i),(o,i)}; ``.reshape(-1)`` is diag(H) in the vec(W) order.

    References
    ----------
    Spec part A, "Dense-layer structure"; Zhang, Yang & Tu, arXiv:2602.05600 (objects:
    H = E_p h_p).  The same per-parameter quantity as BackPACK's ``DiagHessian``
    (F. Dangel, F. Kunstner, P. Hennig, "BackPACK: Packing more into backprop", ICLR 2020).
    """
    if np.ndim(G) == 2:
        diag_G = as_float_array(G, "G", ndim=2)
        a = as_float_array(a, "a", ndim=2)
        if diag_G.shape[0] < 1 or diag_G.shape[0] != a.shape[0] or a.shape[1] < 1:
            raise ValueError(f"G given as diagonals (N, out) must have one row per row of a; "
                             f"got G {diag_G.shape} and a {a.shape}")
    else:
        G, a, _ = _check_kronecker_factors(G, a)
        diag_G = np.ascontiguousarray(np.diagonal(G, axis1=1, axis2=2))
    eG, ea = pow2_exponent(diag_G), pow2_exponent(a)
    diag_H = _mean_outer_squares(scale_pow2(diag_G, -eG), scale_pow2(a, -ea))
    return _unscale(diag_H, eG + 2 * ea, "G and a", "diag H")


def kronecker_second_moment_diagonal(G: FloatArray, a: FloatArray) -> FloatArray:
    r"""Diagonal of M = E_p[h_p²] in the parameter basis, from Kronecker factors.

    .. math::
        \operatorname{diag} M = \mathbb{E}_p\bigl[\|a_p\|^2\,\operatorname{diag}(G_p^2)
        \otimes (a_p \circ a_p)\bigr], \qquad
        M_{(o,i),(o,i)} = \frac{1}{N}\sum_p \|a_p\|^2 \Bigl(\sum_k (G_p)_{ok}^2\Bigr) a_{p,i}^2 ,

    from h_p² = ‖a_p‖² G_p² ⊗ a_p a_pᵀ and (G_p²)_oo = Σ_k (G_p)_ok² for symmetric G_p
    (row-major vec(W)).  One GEMM (out × N)(N × in) after an O(N·out²) reduction.

    Parameters
    ----------
    G : (N, out, out) array
        Symmetric output-side factors G_p = ∂²ℓ_p/∂z∂zᵀ.
    a : (N, in) array
        Layer inputs (with a constant 1 appended for a bias).

    Returns
    -------
    (out, in) array
        M_{(o,i),(o,i)}; ``.reshape(-1)`` is diag(M) in the vec(W) order.

    References
    ----------
    Spec part A, "Dense-layer structure" (h_p² = ‖a_p‖² G_p² ⊗ a_p a_pᵀ); Zhang, Yang & Tu,
    arXiv:2602.05600 (objects: M = E_p[h_p²]).
    """
    G, a, _ = _check_kronecker_factors(G, a)
    eG, ea = pow2_exponent(G), pow2_exponent(a)
    G, a = scale_pow2(G, -eG), scale_pow2(a, -ea)
    sq_norm = np.einsum("pi,pi->p", a, a)
    diag_G2 = np.einsum("pok,pok->po", G, G)
    diag_G2 *= sq_norm[:, None]
    return _unscale(_mean_outer_squares(diag_G2, a), 2 * eG + 4 * ea, "G and a", "diag M")


def kronecker_gradient_variance(delta: FloatArray, a: FloatArray) -> FloatArray:
    r"""Per-parameter gradient variance, the diagonal of Σ₁, from the gradient factors.

    .. math::
        \operatorname{diag}\Sigma_1 = \mathbb{E}_p\bigl[(\delta_p\circ\delta_p) \otimes
        (a_p\circ a_p)\bigr] - \bar g \circ \bar g, \qquad
        \bar g = \mathbb{E}_p[\delta_p \otimes a_p] ,

    for g_p = δ_p ⊗ a_p (row-major vec(W)): the population variance (1/N normalisation, as
    Σ₁ in SPEC part A) of each parameter's per-sample gradient.  Two GEMMs (out × N)(N × in).
    The minibatch noise variance is this divided by B (with replacement); see
    :func:`sgdnoise.theory.noise_covariance`.  Computed as a difference of raw moments (like
    ``kronecker_layer_moments``), so an entry whose variance is tiny next to E_p[g²] carries an
    absolute round-off of order 1e-16·E_p[g²] and may come out slightly negative.

    Parameters
    ----------
    delta : (N, out) array
        Output-side gradients δ_p = ∂ℓ_p/∂z.
    a : (N, in) array
        Layer inputs (with a constant 1 appended for a bias).

    Returns
    -------
    (out, in) array
        (Σ₁)_{(o,i),(o,i)}; ``.reshape(-1)`` is diag(Σ₁) in the vec(W) order.

    Notes
    -----
    BackPACK's ``Variance`` extension reports the variance of the vectors it backpropagates:
    for a loss averaged over a batch of B samples those are g_p/B, so its output is
    diag(Σ₁)/B² over that batch.

    References
    ----------
    Spec part A, "Dense-layer structure" and objects (Σ₁ = E_p[g_p g_pᵀ] − ḡḡᵀ); Zhang, Yang &
    Tu, arXiv:2602.05600; Dangel, Kunstner & Hennig, ICLR 2020 (BackPACK, ``Variance``).
    """
    delta, a = _check_gradient_factors(delta, a)
    ed, ea = pow2_exponent(delta), pow2_exponent(a)
    delta, a = scale_pow2(delta, -ed), scale_pow2(a, -ea)
    g_mean = (delta.T @ a) / delta.shape[0]
    variance = _mean_outer_squares(delta * delta, a)
    variance -= g_mean * g_mean
    return _unscale(variance, 2 * (ed + ea), "delta and a", "diag Sigma1")


__all__ = [
    "kronecker_gradient_variance",
    "kronecker_hessian_diagonal",
    "kronecker_second_moment_diagonal",
]

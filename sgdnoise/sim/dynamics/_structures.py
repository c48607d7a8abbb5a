r"""Noise covariances of spec part B: SGD's minibatch covariance and its Langevin counterparts.

Minibatch covariance (the covariance of the minibatch-mean gradient over the draw of the batch,
at a fixed point θ), from the per-sample gradients g_p, p = 1 … N:

.. math::
    \Sigma_1 = \frac1N\sum_p (g_p - \bar g)(g_p - \bar g)^\top, \qquad
    \hat\Sigma = \frac{\Sigma_1}{B}\ \text{(with replacement)}, \qquad
    \hat\Sigma = \frac{\Sigma_1}{B}\,\frac{N-B}{N-1}\ \text{(B distinct samples)} .

The second form is also the per-step marginal of random reshuffling and shuffle-once (a batch cut
from a uniformly random permutation is a uniformly random B-subset).

Structured covariances (:func:`structured_covariance`) replace Σ̂ by a Gaussian of prescribed
structure at *matched magnitude* (trace).  Every kind is built from eigenpairs (λ_i, v_i) and
weights w_i, Σ = c Σ_i w_i λ_i v_i v_iᵀ, with c chosen so that Tr Σ = ``trace``; the engine
samples ξ = Σ^{1/2} z from the same eigenpairs, so positive semi-definite structures with zero
eigenvalues are sampled exactly.  When the top-k cut falls inside a group of exactly equal
eigenvalues the group shares the remaining weight evenly (e.g. k = 1 with H = 2I gives I, not an
arbitrary eigenvector), so the result never depends on the eigenvector basis LAPACK happens to
return.  When the unscaled structure is zero (Σ̂ = 0, or H with no positive eigenvalue), so is Σ.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int

#: Kinds of :func:`structured_covariance` (and of :func:`~sgdnoise.sim.dynamics.langevin`).
KINDS: tuple[str, ...] = ("const", "dynamic", "diag", "full", "leading", "hessian", "eigvec1",
                          "fixed")
#: Minibatch schemes of the engine (``sgdnoise.sim.sampling`` names).
ENGINE_SCHEMES: tuple[str, ...] = ("replacement", "iid", "reshuffle", "shuffle_once")
_NEEDS_H = ("hessian", "eigvec1")


def minibatch_scale(N: int, B: int, scheme: str = "replacement") -> float:
    r"""The factor c with Σ̂ = c Σ₁ for a minibatch of size B from N samples.

    .. math:: c = \frac1B\ \text{(replacement)}, \qquad c = \frac{N-B}{B(N-1)}
              \ \text{(iid, reshuffle, shuffle\_once; 0 when } N = 1)

    Parameters
    ----------
    N, B : int
        Samples and batch size, 1 ≤ B ≤ N.
    scheme : str
        One of :data:`ENGINE_SCHEMES`.

    References
    ----------
    Spec part A, objects (C = Σ₁/B and Σ₁(N−B)/(B(N−1))); spec part D (reshuffling marginal).
    """
    N = check_positive_int(N, "N")
    B = check_positive_int(B, "B")
    check_choice(scheme, "scheme", ENGINE_SCHEMES)
    if scheme == "replacement":
        return 1.0 / B
    if B > N:
        raise ValueError(f"B must be <= N for sampling without replacement; got B={B}, N={N}")
    if N == 1:
        return 0.0
    return (N - B) / (B * (N - 1))


def minibatch_gradient_covariance(G: FloatArray, B: int, *, scheme: str = "replacement"
                                  ) -> FloatArray:
    r"""Covariance Σ̂ of the minibatch-mean gradient from per-sample gradients G.

    .. math::
        \hat\Sigma = c\,\Sigma_1,\qquad
        \Sigma_1 = \frac1N \sum_p (g_p - \bar g)(g_p - \bar g)^\top

    with c from :func:`minibatch_scale` (centred two-pass estimate, 1/N normalisation).

    Parameters
    ----------
    G : (..., N, D) array
        Per-sample gradients (leading axes, e.g. replicas, are kept).
    B : int
        Batch size.
    scheme : str
        ``"replacement"``, ``"iid"``, ``"reshuffle"`` or ``"shuffle_once"``.

    Returns
    -------
    (..., D, D) array.

    Raises
    ------
    FloatingPointError
        Σ̂ itself exceeds the float64 range (sums that overflow only on the way are taken of
        G / max|G| and rescaled).

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), SGD noise covariance; spec parts A and B.
    """
    G = as_float_array(G, "G")
    if G.ndim < 2 or G.shape[-2] < 1 or G.shape[-1] < 1:
        raise ValueError(f"G must have shape (..., N, D) with N, D >= 1; got {G.shape}")
    N = G.shape[-2]
    c = minibatch_scale(N, B, scheme)
    with np.errstate(over="ignore", invalid="ignore"):
        Gc = G - G.mean(axis=-2, keepdims=True)
        Sigma1 = np.swapaxes(Gc, -1, -2) @ Gc / N
        out = c * Sigma1
        if not np.isfinite(out).all():
            # a sum of products overflowed: take them of G / max|G| and scale back once
            m = np.abs(G).max(axis=(-2, -1), keepdims=True)
            m = np.where(m > 0, m, 1.0)
            Gs = G / m
            Gc = Gs - Gs.mean(axis=-2, keepdims=True)
            out = (c * (np.swapaxes(Gc, -1, -2) @ Gc / N)) * m * m
    if not np.isfinite(out).all():
        raise FloatingPointError("minibatch_gradient_covariance: Σ̂ overflows float64 (the "
                                 "per-sample gradients G are too large)")
    return out


def top_weights(lam: Any, k: int | None, xp: ModuleType = np) -> Any:
    r"""Weights w_i selecting the k largest of ascending eigenvalues, ties at the cut shared.

    .. math::
        w_i = 1\ (\lambda_i > \lambda_{(k)}),\quad
        w_i = \frac{k - \#\{\lambda > \lambda_{(k)}\}}{\#\{\lambda = \lambda_{(k)}\}}\
        (\lambda_i = \lambda_{(k)}),\quad w_i = 0\ \text{otherwise},

    λ_(k) the k-th largest; Σ w_i = k.  ``k=None`` (or k ≥ D) selects all.

    Parameters
    ----------
    lam : (..., D) array
        Eigenvalues in ascending order (as from ``eigh``).
    k : int or None
    xp : module
        ``numpy`` or ``cupy``.

    References
    ----------
    Zhu et al., ICML 2019 ("leading", "hessian" and "eigvec1" noise); module docstring.
    """
    D = lam.shape[-1]
    if k is None or k >= D:
        return xp.ones_like(lam)
    cut = lam[..., D - k:D - k + 1]
    above = lam > cut
    tied = lam == cut
    n_above = above.sum(axis=-1, keepdims=True)
    n_tied = tied.sum(axis=-1, keepdims=True)
    share = (k - n_above) / n_tied
    return xp.where(above, 1.0, xp.where(tied, share, 0.0))


def _scale_to(u: Any, trace: Any, xp: ModuleType) -> Any:
    """c·u with c = trace / Σu (0 where Σu = 0), over the last axis; (u / Σu)·trace where c
    itself overflows (a tiny Σu)."""
    T = u.sum(axis=-1, keepdims=True)
    safe = xp.where(T > 0, T, 1.0)
    with np.errstate(over="ignore"):
        c = xp.where(T > 0, trace / safe, 0.0)
        if bool(xp.isfinite(c).all()):
            return u * c
        return xp.where(xp.isfinite(c), u * c, (u / safe) * trace)


def _eigh(A: Any, xp: ModuleType) -> tuple[Any, Any]:
    """``eigh`` of a stack; a matrix with entries near the float64 limit, where LAPACK returns
    non-finite eigenpairs, is decomposed as A / max|A| instead (its eigenvalues come back
    divided by that positive factor, which the structures do not depend on)."""
    lam, V = xp.linalg.eigh(A)
    ok = xp.isfinite(lam).all(axis=-1) & xp.isfinite(V).all(axis=(-2, -1))
    if bool(ok.all()):
        return lam, V
    m = xp.abs(A).max(axis=(-2, -1), keepdims=True)
    lam_s, V_s = xp.linalg.eigh(A / xp.where(m > 0, m, 1.0))
    return xp.where(ok[..., None], lam, lam_s), xp.where(ok[..., None, None], V, V_s)


def eigen_factors(kind: str, Sigma: Any, H: Any, k: int | None, trace: Any,
                  xp: ModuleType = np) -> tuple[Any, Any]:
    r"""Eigenpairs (μ, V) with Σ = V diag(μ) Vᵀ for the eigen-kinds full/leading/hessian/eigvec1.

    .. math::
        \mu_i = c\,w_i\,\lambda_i^+ \ \text{(full, leading: λ of Σ̂; hessian: λ of H)},\qquad
        \mu_i = t\,w_i \ \text{(eigvec1: } w \text{ from λ of H with } k=1),

    c = t / Σ_i w_i λ_i⁺, t = ``trace`` (broadcast over leading axes).

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), GLD variants; spec part B.
    """
    trace = xp.asarray(trace, dtype=xp.float64)[..., None]
    if kind in ("full", "leading"):
        lam, V = _eigh(Sigma, xp)
        lam = xp.maximum(lam, 0.0)
        u = top_weights(lam, None if kind == "full" else k, xp) * lam
        return _scale_to(u, trace, xp), V
    lam, V = _eigh(H, xp)
    if kind == "hessian":
        lam = xp.maximum(lam, 0.0)
        return _scale_to(top_weights(lam, k, xp) * lam, trace, xp), V
    if kind == "eigvec1":
        return top_weights(lam, 1, xp) * trace, V
    raise ValueError(f"kind {kind!r} is not an eigen-kind")


def structured_covariance(kind: str, Sigma: FloatArray | None, H: FloatArray | None = None, *,
                          k: int | None = None, trace: float | None = None,
                          sigma2: float | None = None) -> FloatArray:
    r"""The Langevin noise covariance of a given structure at matched magnitude.

    With t = ``trace`` (default Tr Σ), λ, v eigenpairs, λ⁺ = max(λ, 0) and w from
    :func:`top_weights`:

    ============  ==========================================================================
    ``const``     σ² I with σ² = ``sigma2`` if given, else t / D
    ``dynamic``   (t / D) I
    ``diag``      diag(Σ) rescaled to trace t
    ``full``      Σ (its PSD part Σ_i λ_i⁺ v_i v_iᵀ) rescaled to trace t
    ``leading``   top-k eigenpairs of Σ, Σ_{i≤k} λ_i v_i v_iᵀ, rescaled to t (k=None: all)
    ``hessian``   top-k eigenpairs of H clipped at 0, rescaled to t (k=None: all)
    ``eigvec1``   t · v₁v₁ᵀ, v₁ the top eigenvector of H
    ``fixed``     ``Sigma`` itself, as given (not rescaled)
    ============  ==========================================================================

    With the default trace, ``diag`` and ``full`` return diag(Σ) and Σ (up to round-off).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    Sigma : (..., D, D) array or None
        The SGD covariance Σ̂ (minibatch scale: see :func:`minibatch_gradient_covariance`), or
        the fixed covariance for ``"fixed"``.  May be None for ``hessian``, ``eigvec1``,
        ``dynamic`` and ``const`` when ``trace`` (or ``sigma2``) is given.
    H : (..., D, D) array, optional
        Hessian, required by ``hessian`` and ``eigvec1``.
    k : int, optional
        Number of eigenpairs for ``leading`` and ``hessian`` (1 ≤ k ≤ D; None: all).
    trace : float, optional
        Target trace t ≥ 0 (default Tr Σ).
    sigma2 : float, optional
        Variance per coordinate of ``const``.

    Returns
    -------
    (..., D, D) float64 array, symmetric positive semi-definite (``fixed``: as given).

    Raises
    ------
    FloatingPointError
        The covariance, or the default trace Tr Σ, overflows float64.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 4 (GLD const, dynamic, diag,
    leading, Hessian, 1st eigvec); spec part B.
    """
    check_choice(kind, "kind", KINDS)
    S = None if Sigma is None else as_float_array(Sigma, "Sigma")
    Hm = None if H is None else as_float_array(H, "H")
    ref = S if S is not None else Hm
    if ref is None:
        raise ValueError(f"structured_covariance({kind!r}) needs Sigma or H")
    if ref.ndim < 2 or ref.shape[-1] != ref.shape[-2] or ref.shape[-1] < 1:
        raise ValueError(f"Sigma/H must have shape (..., D, D); got {ref.shape}")
    D = ref.shape[-1]
    if S is not None and Hm is not None and S.shape[-2:] != Hm.shape[-2:]:
        raise ValueError(f"H must have the shape of Sigma; got {Hm.shape} and {S.shape}")
    if k is not None:
        k = check_positive_int(k, "k")
        if k > D:
            raise ValueError(f"k must be <= D = {D}; got {k}")
    if kind == "fixed":
        if S is None:
            raise ValueError("structured_covariance('fixed') needs Sigma (the fixed covariance)")
        return S.copy()
    if kind in _NEEDS_H and Hm is None:
        raise ValueError(f"kind={kind!r} needs the Hessian H")
    if sigma2 is not None:
        sigma2 = check_positive(sigma2, "sigma2", allow_zero=True)
    if trace is None:
        if S is None and not (kind == "const" and sigma2 is not None):
            raise ValueError(f"structured_covariance({kind!r}) needs Sigma or an explicit trace")
    else:
        trace = check_positive(trace, "trace", allow_zero=True)
    if kind in ("diag", "full", "leading") and S is None:
        raise ValueError(f"kind={kind!r} needs Sigma")
    with np.errstate(over="ignore", invalid="ignore"):
        out = _structured(kind, S, Hm, k, trace, sigma2, ref.shape[:-2], D)
    if not np.isfinite(out).all():
        raise FloatingPointError(f"structured_covariance({kind!r}): the covariance (or the "
                                 f"trace of Sigma) overflows float64")
    return out


def _structured(kind: str, S: FloatArray | None, Hm: FloatArray | None, k: int | None,
                trace: float | None, sigma2: float | None, lead: tuple[int, ...],
                D: int) -> FloatArray:
    """The body of :func:`structured_covariance` (arguments validated)."""
    t = trace if trace is not None else (None if S is None else
                                         np.trace(S, axis1=-2, axis2=-1))
    eye = np.broadcast_to(np.eye(D), lead + (D, D))
    if kind == "const":
        s2 = sigma2 if sigma2 is not None else np.asarray(t) / D
        return np.asarray(s2)[..., None, None] * eye
    if kind == "dynamic":
        return (np.asarray(t) / D)[..., None, None] * eye
    t_arr = np.broadcast_to(np.asarray(t, dtype=np.float64), lead)
    if kind == "diag":
        d = np.maximum(np.diagonal(S, axis1=-2, axis2=-1), 0.0)
        d = _scale_to(d, t_arr[..., None], np)
        return d[..., :, None] * np.eye(D)
    mu, V = eigen_factors(kind, S, Hm, k, t_arr, np)
    out = (V * mu[..., None, :]) @ np.swapaxes(V, -1, -2)
    return 0.5 * (out + np.swapaxes(out, -1, -2))


__all__ = [
    "ENGINE_SCHEMES",
    "KINDS",
    "eigen_factors",
    "minibatch_gradient_covariance",
    "minibatch_scale",
    "structured_covariance",
    "top_weights",
]

r"""Sums of per-sample quadratics: the exactly solvable model of SGD noise near a minimum.

ℓ_p(w) = ½(w − w_p)ᵀ A_p (w − w_p) with symmetric PSD A_p (possibly low-rank), so

.. math::
    g_p = A_p (w - w_p), \qquad h_p = A_p, \qquad H = \mathbb{E}_p A_p,\qquad
    M = \mathbb{E}_p A_p^2 ,

all independent of w.  The scatter of the centres w_p makes the per-sample gradients disagree at
the minimiser w* = H⁺ E_p[A_p w_p], which is the source of SGD noise; the scatter of the A_p sets
M − H² = Var_p(h) (spec part A).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_psd_stack, check_square_stack, check_symmetric


@dataclass(frozen=True)
class PerSampleQuadratic:
    r"""Per-sample quadratic losses ℓ_p(w) = ½(w − w_p)ᵀA_p(w − w_p), L = E_p ℓ_p.

    Parameters
    ----------
    A : (N, D, D) array
        Symmetric positive semi-definite per-sample Hessians h_p = A_p.
    w_centres : (N, D) array
        Per-sample minimisers w_p.
    factors : (N, D, r) array, optional
        U_p with A_p = U_p U_pᵀ (set by :meth:`from_factors`); used for cheaper products.

    References
    ----------
    Spec part A (objects h_p, H, M, Σ₁) and part D (quadratic loss, noise frozen at the minimum);
    Zhang, Yang & Tu, arXiv:2602.05600.
    """

    A: FloatArray
    w_centres: FloatArray
    factors: FloatArray | None = None

    def __post_init__(self) -> None:
        A = check_square_stack(self.A, "A")
        check_symmetric(A, "A")
        check_psd_stack(A, "A")
        centres = as_float_array(self.w_centres, "w_centres", ndim=2)
        if centres.shape != A.shape[:2]:
            raise ValueError(f"w_centres must have shape (N, D) = {A.shape[:2]}; got {centres.shape}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "w_centres", centres)
        if self.factors is not None:
            U = as_float_array(self.factors, "factors", ndim=3)
            if U.shape[:2] != A.shape[:2] or U.shape[2] < 1:
                raise ValueError(
                    f"factors must have shape (N, D, r) with (N, D) = {A.shape[:2]}; got {U.shape}"
                )
            gap = float(np.abs(U @ U.transpose(0, 2, 1) - A).max())
            if gap > 1e-10 * max(float(np.abs(A).max()), 1.0):
                raise ValueError(f"factors must satisfy A_p = U_p U_pᵀ; largest deviation {gap:.3g}")
            object.__setattr__(self, "factors", U)

    @classmethod
    def from_factors(cls, U: FloatArray, w_centres: FloatArray) -> PerSampleQuadratic:
        r"""Low-rank per-sample Hessians A_p = U_p U_pᵀ from U of shape (N, D, r).

        References
        ----------
        Spec, random families (iii): rank-r per-sample Hessians.
        """
        U = as_float_array(U, "U", ndim=3)
        if U.shape[0] < 1 or U.shape[1] < 1 or U.shape[2] < 1:
            raise ValueError(f"U must be a non-empty (N, D, r) array; got shape {U.shape}")
        A = U @ U.transpose(0, 2, 1)
        return cls(0.5 * (A + A.transpose(0, 2, 1)), w_centres, factors=U)

    @property
    def num_params(self) -> int:
        """D."""
        return self.A.shape[1]

    @property
    def num_samples(self) -> int:
        """N."""
        return self.A.shape[0]

    def _check_w(self, w: Any, name: str = "w") -> FloatArray:
        w = as_float_array(w, name, ndim=1)
        if w.shape != (self.num_params,):
            raise ValueError(f"{name} must have shape ({self.num_params},); got {w.shape}")
        return w

    def per_sample_gradients(self, w: FloatArray) -> FloatArray:
        """g_p = A_p(w − w_p), shape (N, D)."""
        diff = self._check_w(w)[None, :] - self.w_centres
        if self.factors is not None:
            return np.einsum("pir,pr->pi", self.factors,
                             np.einsum("pir,pi->pr", self.factors, diff))
        return np.einsum("pij,pj->pi", self.A, diff)

    def per_sample_losses(self, w: FloatArray) -> FloatArray:
        """ℓ_p = ½(w − w_p)ᵀA_p(w − w_p), shape (N,)."""
        diff = self._check_w(w)[None, :] - self.w_centres
        if self.factors is not None:
            proj = np.einsum("pir,pi->pr", self.factors, diff)
            return 0.5 * np.einsum("pr,pr->p", proj, proj)
        return 0.5 * np.einsum("pi,pij,pj->p", diff, self.A, diff)

    def loss(self, w: FloatArray) -> float:
        """L = E_p ℓ_p."""
        return float(self.per_sample_losses(w).mean())

    def gradient(self, w: FloatArray) -> FloatArray:
        """∇L = E_p A_p(w − w_p)."""
        return self.per_sample_gradients(w).mean(axis=0)

    def per_sample_hessians(self, w: FloatArray | None = None) -> FloatArray:
        """h_p = A_p, shape (N, D, D) (independent of w; ``w`` is only validated)."""
        if w is not None:
            self._check_w(w)
        check_allocation(self.A.nbytes, f"per_sample_hessians: a copy of A {self.A.shape}")
        return self.A.copy()

    def hessian(self, w: FloatArray | None = None) -> FloatArray:
        """H = E_p A_p."""
        if w is not None:
            self._check_w(w)
        return self.A.mean(axis=0)

    def hvp(self, v: FloatArray) -> FloatArray:
        """H v."""
        return self.hessian() @ self._check_w(v, "v")

    def minimiser(self) -> FloatArray:
        r"""w* = H⁺ E_p[A_p w_p], the minimum-norm minimiser of L.

        References
        ----------
        Setting ∇L = E_p A_p(w − w_p) = 0.
        """
        rhs = np.einsum("pij,pj->i", self.A, self.w_centres) / self.num_samples
        return np.linalg.lstsq(self.hessian(), rhs, rcond=None)[0]


__all__ = ["PerSampleQuadratic"]

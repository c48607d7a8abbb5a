"""Diagonals in H's eigenbasis: λ_i, M_ii, C_ii and the effective curvature κ_eff,i = M_ii/λ_i."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_square


@dataclass(frozen=True)
class EigenBasis:
    """H = V diag(lam) Vᵀ with eigenvalues sorted in descending order (the paper's order).

    Attributes
    ----------
    lam : (D,) array
        Eigenvalues λ_1 ≥ … ≥ λ_D.
    V : (D, D) array
        Orthonormal eigenvectors as columns, ``V[:, i]`` ↔ ``lam[i]``.
    """

    lam: FloatArray
    V: FloatArray

    def diagonal(self, A: FloatArray, name: str = "A") -> FloatArray:
        """A_ii = v_iᵀ A v_i for a symmetric D×D matrix (one GEMM, no full rotation)."""
        A = check_square(A, name)
        if A.shape[0] != self.V.shape[0]:
            raise ValueError(f"{name} must be {self.V.shape[0]}x{self.V.shape[0]}; got {A.shape}")
        return np.einsum("ij,ij->j", self.V, A @ self.V)

    def rotate(self, A: FloatArray, name: str = "A") -> FloatArray:
        """VᵀAV, the full matrix in H's eigenbasis."""
        A = check_square(A, name)
        if A.shape[0] != self.V.shape[0]:
            raise ValueError(f"{name} must be {self.V.shape[0]}x{self.V.shape[0]}; got {A.shape}")
        return self.V.T @ A @ self.V


def eigenbasis(H: FloatArray) -> EigenBasis:
    r"""Eigendecomposition of the symmetric matrix H, eigenvalues in descending order.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A2: "diagonal" means in H's eigenbasis).
    """
    H = check_square(H, "H", symmetric=True)
    D = H.shape[0]
    check_allocation(4 * D * D * 8, f"eigenbasis: eigenvectors and workspace ({D}x{D})",
                     hint="for the top eigenpairs use sgdnoise.theory.top_eigenbasis on the "
                          "matrix or on an operator (kronecker_layer_operators, "
                          "MLP.curvature_operators)")
    lam, V = scipy.linalg.eigh(0.5 * (H + H.T), driver="evr", check_finite=False)
    order = np.argsort(lam)[::-1]
    return EigenBasis(lam=lam[order], V=np.ascontiguousarray(V[:, order]))


def effective_curvature(lam: FloatArray, M_ii: FloatArray) -> FloatArray:
    r"""κ_eff,i = M_ii / λ_i, which lies in [λ_i, κ*] for PSD per-sample Hessians (A2).

    .. math:: \kappa_{\mathrm{eff},i} = M_{ii}/\lambda_i

    Raises
    ------
    ValueError
        If any λ_i ≤ 0 (κ_eff is defined for positive curvature only) or shapes differ.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3).
    """
    lam = np.asarray(lam, dtype=np.float64)
    M_ii = np.asarray(M_ii, dtype=np.float64)
    if lam.shape != M_ii.shape:
        raise ValueError(f"lam and M_ii must have the same shape; got {lam.shape} and {M_ii.shape}")
    if np.any(~(lam > 0)):
        raise ValueError("lam must be > 0 for the effective curvature; drop non-positive directions")
    return M_ii / lam


__all__ = ["EigenBasis", "effective_curvature", "eigenbasis"]

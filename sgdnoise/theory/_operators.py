r"""Matrix-free curvature operators: H, M = E_p[h_p²], Σ₁ and C as blocked linear operators.

A :class:`BlockOperator` is a symmetric D×D ``scipy.sparse.linalg.LinearOperator`` defined by one
function that multiplies a block of k vectors, ``apply(V) -> A @ V`` for V of shape (D, k).  The
same function runs on numpy or CuPy arrays (``xp``), so the spectral tools built on operators run
where the factors live.  :class:`CurvatureOperators` groups the operators of one layer or one whole
network, built from per-sample factors without forming a D×D matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_positive_int


class BlockOperator(spla.LinearOperator):
    r"""A symmetric D×D linear operator given by a blocked product ``apply(V) = A V``.

    Parameters
    ----------
    apply : callable
        ``apply(V)`` for V of shape (D, k) (an array of module ``xp``) returns A V, shape (D, k).
    D : int
        Dimension.
    name : str
        What the operator is (``"H"``, ``"M"``, …), used in messages.
    block : int
        Largest number of columns passed to ``apply`` at once (bounds the temporary memory).
    xp : module
        Array module of the vectors ``apply`` takes (numpy or cupy).
    """

    def __init__(self, apply: Callable[[Any], Any], D: int, *, name: str = "A",
                 block: int = 64, xp: ModuleType = np) -> None:
        D = check_positive_int(D, "D")
        super().__init__(dtype=np.dtype(np.float64), shape=(D, D))
        self._apply = apply
        self.name = name
        self.block = check_positive_int(block, "block")
        self.xp = xp

    # -- products on arrays of the operator's own module (numpy or cupy)
    def apply(self, V: Any) -> Any:
        """A V for V of shape (D,) or (D, k), in column blocks of at most ``block``."""
        xp = self.xp
        one = V.ndim == 1
        V2 = V[:, None] if one else V
        if V2.shape[0] != self.shape[0]:
            raise ValueError(f"{self.name}: vectors must have {self.shape[0]} rows; "
                             f"got shape {tuple(V.shape)}")
        k = V2.shape[1]
        if k <= self.block:
            out = self._apply(V2)
        else:
            out = xp.empty((self.shape[0], k), dtype=np.float64)
            for start in range(0, k, self.block):
                out[:, start:start + self.block] = self._apply(V2[:, start:start + self.block])
        return out[:, 0] if one else out

    # -- scipy's LinearOperator protocol (numpy vectors)
    def _matmat(self, X: Any) -> Any:
        return self._to_numpy(self.apply(self.xp.asarray(X, dtype=np.float64)))

    def _matvec(self, x: Any) -> Any:
        return self._matmat(np.reshape(x, (-1, 1)))[:, 0]

    def _rmatmat(self, X: Any) -> Any:
        return self._matmat(X)

    def _rmatvec(self, x: Any) -> Any:
        return self._matvec(x)

    def _adjoint(self) -> BlockOperator:
        return self

    def _to_numpy(self, X: Any) -> FloatArray:
        if self.xp is np:
            return np.asarray(X)
        return self.xp.asnumpy(X)

    def scaled(self, factor: float, name: str | None = None) -> BlockOperator:
        """The operator ``factor · A`` (same blocks, same module)."""
        f = float(factor)
        return BlockOperator(lambda V: f * self._apply(V), self.shape[0],
                             name=name or f"{f:g}·{self.name}", block=self.block, xp=self.xp)


@dataclass(frozen=True)
class CurvatureOperators:
    r"""H, M = E_p[h_p²], Σ₁ (and K = E_p[κ_max(p) h_p] where available) of one layer or network.

    Attributes
    ----------
    H, M : BlockOperator
        Mean Hessian and mean squared per-sample Hessian, D×D, in the row-major parameter basis
        of the object that built them.
    Sigma1 : BlockOperator or None
        Per-sample gradient covariance E_p[g_p g_pᵀ] − ḡḡᵀ (1/N normalisation).
    K : BlockOperator or None
        E_p[κ_max(p) h_p] (per-sample wedge bound M_ii ≤ v_iᵀ K v_i of A2), where built.
    g_mean : (D,) array or None
        Mean gradient ḡ.
    num_samples : int
        N.
    """

    H: BlockOperator
    M: BlockOperator
    Sigma1: BlockOperator | None
    K: BlockOperator | None
    g_mean: FloatArray | None
    num_samples: int

    def C(self, B: int, *, replacement: bool = True) -> BlockOperator:
        r"""Minibatch noise covariance C = Σ₁/B (with replacement) or Σ₁(N−B)/(B(N−1)).

        References
        ----------
        Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, C).
        """
        if self.Sigma1 is None:
            raise ValueError("C needs Sigma1, which these operators were built without "
                             "(give the per-sample gradients)")
        B = check_positive_int(B, "B")
        if not isinstance(replacement, (bool, np.bool_)):
            raise ValueError(f"replacement must be True or False; got {replacement!r}")
        if replacement:
            return self.Sigma1.scaled(1.0 / B, name=f"C(B={B})")
        N = self.num_samples
        if N < 2 or B > N:
            raise ValueError(f"B must be <= N = {N} (N >= 2) without replacement; got B={B}")
        return self.Sigma1.scaled((N - B) / (B * (N - 1)), name=f"C(B={B}, no replacement)")


__all__ = ["BlockOperator", "CurvatureOperators"]

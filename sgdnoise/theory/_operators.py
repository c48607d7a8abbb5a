r"""Matrix-free curvature operators: H, M = E_p[h_p²], Σ₁ and C as blocked linear operators.

A :class:`BlockOperator` is a symmetric D×D ``scipy.sparse.linalg.LinearOperator`` defined by one
function that multiplies a block of k vectors, ``apply(V) -> A @ V`` for V of shape (D, k).  The
same function runs on numpy or CuPy arrays (``xp``), so the spectral tools built on operators run
where the factors live.  :class:`CurvatureOperators` groups the operators of one layer or one whole
network, built from per-sample factors without forming a D×D matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

from sgdnoise._memory import array_bytes, check_allocation
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
    quadratic : callable, optional
        ``quadratic(V)`` returns the quadratic forms v_jᵀ A v_j, shape (k,), more cheaply than
        the product (for a Kronecker layer: half the cost); used by :meth:`diagonal_quadratic`.
    """

    def __init__(self, apply: Callable[[Any], Any], D: int, *, name: str = "A",
                 block: int = 64, xp: ModuleType = np,
                 quadratic: Callable[[Any], Any] | None = None) -> None:
        D = check_positive_int(D, "D")
        super().__init__(dtype=np.dtype(np.float64), shape=(D, D))
        self._apply = apply
        self._quadratic = quadratic
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

    def _blocks(self, V: Any, fn: Callable[[Any], Any], what: str) -> Any:
        xp = self.xp
        V2 = xp.asarray(V, dtype=np.float64)
        if V2.ndim != 2 or V2.shape[0] != self.shape[0]:
            raise ValueError(f"{what}: V must have shape ({self.shape[0]}, k); "
                             f"got {tuple(V2.shape)}")
        parts = [fn(V2[:, s:s + self.block]) for s in range(0, V2.shape[1], self.block)]
        return xp.concatenate(parts) if parts else xp.zeros(0)

    def diagonal_quadratic(self, V: Any) -> FloatArray:
        r"""Quadratic forms v_jᵀ A v_j of the columns of V, as a numpy array of shape (k,).

        Uses the operator's fused quadratic form where it has one, else one blocked product
        (``einsum(V, A V)``); V may be a numpy array or one of the operator's module.
        """
        fn = self._quadratic or (lambda W: self.xp.einsum("ij,ij->j", W, self._apply(W)))
        return self._to_numpy(self._blocks(V, fn, f"{self.name}.diagonal_quadratic"))

    def to_dense(self, *, max_bytes: float | None = None) -> FloatArray:
        """The D×D matrix A as a numpy array (columns A e_j in blocks), for small D.

        Refuses with :class:`~sgdnoise._memory.MemoryLimitError` when D² floats exceed the
        limit of :func:`sgdnoise._memory.check_allocation` (``max_bytes``, else the
        ``SGDNOISE_MAX_BYTES`` environment variable, else a fraction of available memory).
        """
        D = self.shape[0]
        check_allocation(array_bytes((D, D)), f"{self.name} as a dense {D}x{D} float64 matrix",
                         max_bytes=max_bytes,
                         hint="keep it as an operator (products, top_eigenbasis, slq_density, "
                              "trace_estimate)")
        out = np.empty((D, D))
        xp = self.xp
        for start in range(0, D, self.block):
            stop = min(start + self.block, D)
            E = xp.zeros((D, stop - start), dtype=np.float64)
            E[xp.arange(start, stop), xp.arange(stop - start)] = 1.0
            out[:, start:stop] = self._to_numpy(self._apply(E))
        return out

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
        quad = self._quadratic
        return BlockOperator(lambda V: f * self._apply(V), self.shape[0],
                             name=name or f"{f:g}·{self.name}", block=self.block, xp=self.xp,
                             quadratic=None if quad is None else (lambda V: f * quad(V)))


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
    kappa_max : (N,) array or None
        Largest eigenvalue κ_max(p) of each per-sample Hessian, where known.
    quadratic_forms : callable or None
        ``quadratic_forms(V, names)`` returns ``{name: (k,) array}`` of v_jᵀ A v_j for each
        name, sharing one pass over the samples (see :meth:`diagonals`); None when the
        builder has no fused form.
    """

    H: BlockOperator
    M: BlockOperator
    Sigma1: BlockOperator | None
    K: BlockOperator | None
    g_mean: FloatArray | None
    num_samples: int
    kappa_max: FloatArray | None = None
    quadratic_forms: Callable[[Any, tuple[str, ...]], dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def kappa_star(self) -> float:
        """κ* = max_p κ_max(p) (needs ``kappa_max``)."""
        if self.kappa_max is None:
            raise ValueError("kappa_star needs kappa_max, which these operators were built "
                             "without")
        return float(np.max(self.kappa_max))

    def diagonals(self, V: Any, names: tuple[str, ...] = ("H", "M", "Sigma1")
                  ) -> dict[str, FloatArray]:
        r"""Quadratic forms A_jj = v_jᵀ A v_j of the columns of V for several operators at once.

        For V = the top eigenvectors of H these are the diagonals of spec claim A2: λ_i (from
        ``"H"``), M_ii, K_ii and Σ₁_ii (C_ii = Σ₁_ii/B with replacement).  With a fused
        ``quadratic_forms`` one pass over the samples serves every name (for a Kronecker layer,
        one forward GEMM instead of a product per operator).

        Parameters
        ----------
        V : (D, k) array
            Directions (numpy, or the operators' array module).
        names : tuple of str
            Any of ``"H"``, ``"M"``, ``"K"``, ``"Sigma1"`` that were built.

        Returns
        -------
        dict of str to (k,) numpy array

        References
        ----------
        Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A2: diagonals in H's eigenbasis).
        """
        ops = {"H": self.H, "M": self.M, "K": self.K, "Sigma1": self.Sigma1}
        for n in names:
            if n not in ops:
                raise ValueError(f"names must be among {tuple(ops)}; got {n!r}")
            if ops[n] is None:
                raise ValueError(f"names: {n} was not built for these operators")
        if self.quadratic_forms is None:
            return {n: ops[n].diagonal_quadratic(V) for n in names}  # type: ignore[union-attr]
        H = self.H
        xp = H.xp
        V2 = xp.asarray(V, dtype=np.float64)
        if V2.ndim != 2 or V2.shape[0] != H.shape[0]:
            raise ValueError(f"diagonals: V must have shape ({H.shape[0]}, k); "
                             f"got {tuple(V2.shape)}")
        out: dict[str, list[Any]] = {n: [] for n in names}
        for s in range(0, V2.shape[1], H.block):
            res = self.quadratic_forms(V2[:, s:s + H.block], tuple(names))
            for n in names:
                out[n].append(res[n])
        return {n: H._to_numpy(xp.concatenate(v)) if v else np.zeros(0)
                for n, v in out.items()}

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

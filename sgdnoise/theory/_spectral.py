r"""Top eigenpairs of symmetric operators, their window diagonals and windowed commutation.

The papers' "top" protocol (spec claim A6) only needs the 𝒩 largest eigenpairs of H and the
quadratic forms M_ii = v_iᵀ M v_i, C_ii = v_iᵀ C v_i on them, so a D×D eigendecomposition is
never needed: :func:`top_eigenbasis` computes the top-k eigenpairs of a matrix-free operator
(a :class:`~sgdnoise.theory.BlockOperator`, any ``scipy.sparse.linalg.LinearOperator``, or a
dense array) with a residual norm for every pair, and :class:`TopEigenBasis` offers the same
``lam``/``V``/``diagonal``/``rotate`` interface as :class:`~sgdnoise.theory.EigenBasis`.

Methods
-------
``"block"``
    Thick-restart block Lanczos (a block Krylov–Schur iteration) with full
    reorthogonalisation and explicit Rayleigh–Ritz: the basis grows by blocks of b directions
    (each one blocked product ``apply``, at GEMM speed), and when it reaches ``max_dim``
    columns it is compressed to the best Ritz vectors and grown again from the last residual
    block.  Memory 2·D·(max_dim + b) floats (the basis Q and A Q).
``"eigsh"``
    ARPACK's implicitly restarted Lanczos through ``scipy.sparse.linalg.eigsh`` (one product
    per call, ``ncv = max(2k + 1, 20)`` vectors).
``"lobpcg"``
    ``scipy.sparse.linalg.lobpcg`` (block products of k directions per iteration).
``"dense"``
    ``scipy.linalg.eigh`` of the materialised matrix (small D only).

Convergence criterion (all methods): ‖A v_i − λ_i v_i‖ ≤ tol·max(|λ_i|, 10⁻¹⁰·|λ_1|)
for each of the k pairs (ARPACK's relative criterion, floored for zero eigenvalues).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from sgdnoise._memory import array_bytes, check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_choice, check_positive, check_positive_int, check_rng
from sgdnoise.theory._commutation import CommutationReport, commutation_metrics
from sgdnoise.theory._operators import BlockOperator

#: Methods of :func:`top_eigenbasis`.
EIGEN_METHODS: tuple[str, ...] = ("auto", "block", "eigsh", "lobpcg", "dense")
#: Directions per product of ``method="block"`` (see the measurements in the module notes).
DEFAULT_BLOCK: int = 32
#: Below this dimension ``method="auto"`` materialises the matrix and calls LAPACK.
DENSE_MAX_DIM: int = 1500
_ZERO_FLOOR = 1e-10
#: Between restarts, Rayleigh–Ritz runs after every block once the worst residual estimate is
#: within this factor of the tolerance (earlier, only at restarts).
CLOSE_RATIO = 1e3


# --------------------------------------------------------------------------- operator adapters
class _Counted:
    """A blocked product on numpy arrays (or the operator's module) that counts columns."""

    def __init__(self, A: Any, block: int | None) -> None:
        self.count = 0
        if isinstance(A, BlockOperator):
            self.xp = A.xp
            self.D = A.shape[0]
            self.block = block or A.block
            self._fn = A.apply
            self.op = A
        elif isinstance(A, spla.LinearOperator):
            if A.shape[0] != A.shape[1]:
                raise ValueError(f"op must be square; got shape {A.shape}")
            self.xp = np
            self.D = A.shape[0]
            self.block = block or 64
            self._fn = lambda V: np.asarray(A.matmat(V), dtype=np.float64)
            self.op = A
        else:
            arr = np.asarray(A, dtype=np.float64) if not hasattr(A, "__cuda_array_interface__") \
                else A
            if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
                raise ValueError(f"op must be a square matrix or a LinearOperator; got shape "
                                 f"{getattr(arr, 'shape', None)}")
            if isinstance(arr, np.ndarray) and not np.all(np.isfinite(arr)):
                raise ValueError("op contains non-finite values (NaN or inf)")
            self.xp = np
            self.D = arr.shape[0]
            self.block = block or 256
            sym = 0.5 * (arr + arr.T)
            self._fn = lambda V: sym @ V
            self.op = sym

    def __call__(self, V: Any) -> Any:
        self.count += V.shape[1]
        if V.shape[1] <= self.block:
            return self._fn(V)
        out = self.xp.empty_like(V)
        for s in range(0, V.shape[1], self.block):
            out[:, s:s + self.block] = self._fn(V[:, s:s + self.block])
        return out

    def to_numpy(self, X: Any) -> FloatArray:
        return np.asarray(X) if self.xp is np else self.xp.asnumpy(X)

    def linear_operator(self) -> spla.LinearOperator:
        def mm(X: Any) -> FloatArray:
            return self.to_numpy(self(self.xp.asarray(np.asarray(X, dtype=np.float64))))

        return spla.LinearOperator((self.D, self.D), matvec=lambda x: mm(np.reshape(x, (-1, 1)))[:, 0],
                                   matmat=mm, rmatvec=lambda x: mm(np.reshape(x, (-1, 1)))[:, 0],
                                   dtype=np.float64)


def _quadratic_forms(A: Any, V: FloatArray, name: str) -> FloatArray:
    """v_jᵀ A v_j for a dense matrix, a BlockOperator (fused where it can) or a LinearOperator."""
    if isinstance(A, BlockOperator):
        if A.shape[0] != V.shape[0]:
            raise ValueError(f"{name} must be {V.shape[0]}x{V.shape[0]}; got {A.shape}")
        return A.diagonal_quadratic(V)
    prod = _products(A, V, name)
    return np.einsum("ij,ij->j", V, prod)


def _products(A: Any, V: FloatArray, name: str) -> FloatArray:
    """A V as a numpy array, for a dense matrix or any LinearOperator."""
    if isinstance(A, spla.LinearOperator):
        if A.shape != (V.shape[0], V.shape[0]):
            raise ValueError(f"{name} must be {V.shape[0]}x{V.shape[0]}; got {A.shape}")
        if isinstance(A, BlockOperator):
            return A._to_numpy(A.apply(A.xp.asarray(V)))
        return np.asarray(A.matmat(V), dtype=np.float64)
    arr = np.asarray(A, dtype=np.float64)
    if arr.shape != (V.shape[0], V.shape[0]):
        raise ValueError(f"{name} must be {V.shape[0]}x{V.shape[0]}; got {arr.shape}")
    return arr @ V


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class TopEigenBasis:
    r"""The top-k eigenpairs A v_i ≈ λ_i v_i of a symmetric operator, λ in descending order.

    Same interface as :class:`~sgdnoise.theory.EigenBasis` for the window: ``lam``, ``V``,
    ``diagonal(A)`` (A_ii = v_iᵀ A v_i) and ``rotate(A)`` (V_Sᵀ A V_S, k×k), where A may be
    a dense matrix or an operator.

    Attributes
    ----------
    lam : (k,) array
        Ritz values λ_1 ≥ … ≥ λ_k.
    V : (D, k) array
        Orthonormal Ritz vectors as columns.
    residual_norms : (k,) array
        ‖A v_i − λ_i v_i‖ of each pair, computed explicitly.  An eigenvalue of A lies within
        residual_norms[i] of λ_i; if the rest of the spectrum is at distance ≥ g from λ_i,
        the angle between v_i and the eigenvector is at most residual_norms[i]/g.
    num_products : int
        Operator-vector products used (columns passed to the operator).
    method : str
        The method that ran.
    converged : bool
        Whether every pair met ‖r_i‖ ≤ tol·max(|λ_i|, 10⁻¹⁰|λ_1|).
    tol : float
        The tolerance asked for.
    """

    lam: FloatArray
    V: FloatArray = field(repr=False)
    residual_norms: FloatArray = field(repr=False)
    num_products: int
    method: str
    converged: bool
    tol: float

    def diagonal(self, A: Any, name: str = "A") -> FloatArray:
        """A_ii = v_iᵀ A v_i for a symmetric D×D matrix or operator (one blocked product).

        A :class:`~sgdnoise.theory.BlockOperator` with a fused quadratic form (the Kronecker
        layer operators) costs half a product.
        """
        return _quadratic_forms(A, self.V, name)

    def rotate(self, A: Any, name: str = "A") -> FloatArray:
        """V_Sᵀ A V_S, the k×k compression of A onto the window (symmetrised)."""
        out = self.V.T @ _products(A, self.V, name)
        return 0.5 * (out + out.T)

    @property
    def relative_residuals(self) -> FloatArray:
        """residual_norms / max(|λ_i|, 10⁻¹⁰|λ_1|), the quantity compared with ``tol``."""
        return self.residual_norms / _scale(self.lam)


def _scale(lam: FloatArray) -> FloatArray:
    top = float(np.max(np.abs(lam))) if lam.size else 0.0
    return np.maximum(np.abs(lam), max(_ZERO_FLOOR * top, np.finfo(np.float64).tiny))


def _finish(op: _Counted, lam: Any, V: Any, AV: Any | None, method: str, tol: float,
            k: int) -> TopEigenBasis:
    """Sort descending, compute explicit residuals (with A V if given) and package."""
    xp = op.xp
    lam = np.asarray(op.to_numpy(lam), dtype=np.float64)
    order = np.argsort(lam)[::-1][:k]
    lam = lam[order]
    idx = xp.asarray(order) if xp is not np else order
    V = V[:, idx]
    AV = op(V) if AV is None else AV[:, idx]
    R = AV - V * xp.asarray(lam)[None, :]
    res = op.to_numpy(xp.sqrt(xp.sum(R * R, axis=0)))
    converged = bool(np.all(res <= tol * _scale(lam)))
    return TopEigenBasis(lam=lam, V=np.ascontiguousarray(op.to_numpy(V)), residual_norms=res,
                         num_products=op.count, method=method, converged=converged, tol=tol)


# --------------------------------------------------------------------------- block Krylov–Schur
def _host(xp: Any, X: Any) -> FloatArray:
    return np.asarray(X) if xp is np else xp.asnumpy(X)


def _orthonormal_block(R: Any, xp: Any, basis: Any, scale: float,
                       rng: np.random.Generator) -> tuple[Any, Any]:
    """R = Qn S with Qn orthonormal and orthogonal to ``basis``.

    Well-conditioned blocks use Cholesky QR twice (two GEMMs and two b×b Cholesky factors:
    GEMM speed, orthogonal to round-off when cond(R) < 10⁶); otherwise Householder QR, and
    directions of R below round-off are replaced by random ones orthogonal to everything (their
    rows of S are zero), which continues the iteration past an invariant subspace.
    """
    gram = _host(xp, R.T @ R)
    gram = 0.5 * (gram + gram.T)
    w = np.linalg.eigvalsh(gram)
    tiny = np.finfo(np.float64).tiny
    if w[0] > (1e-6) ** 2 * max(w[-1], tiny) and w[0] > (1e-12 * max(scale, tiny)) ** 2:
        try:
            L1 = np.linalg.cholesky(gram)
            Q1 = R @ xp.asarray(np.linalg.inv(L1).T)
            g2 = _host(xp, Q1.T @ Q1)
            L2 = np.linalg.cholesky(0.5 * (g2 + g2.T))
            Qn = Q1 @ xp.asarray(np.linalg.inv(L2).T)
            return Qn, xp.asarray(L2.T @ L1.T)
        except np.linalg.LinAlgError:
            pass
    Qn, S = xp.linalg.qr(R)
    U, sig, Wt = np.linalg.svd(_host(xp, S))
    good = sig > 1e-12 * max(scale, tiny)
    if np.all(good):
        return Qn, S
    b = R.shape[1]
    Uq = Qn @ xp.asarray(U[:, good])
    fill = xp.asarray(rng.standard_normal((R.shape[0], b - int(good.sum()))))
    for _ in range(2):
        if basis.shape[1]:
            fill -= basis @ (basis.T @ fill)
        if Uq.shape[1]:
            fill -= Uq @ (Uq.T @ fill)
    Qf, _ = xp.linalg.qr(fill)
    Qn = xp.concatenate([Uq, Qf], axis=1)
    S_new = np.zeros((b, b))
    S_new[:int(good.sum())] = sig[good, None] * Wt[good]
    return Qn, xp.asarray(S_new)


def _block_krylov_schur(op: _Counted, k: int, *, rng: np.random.Generator, tol: float,
                        block: int, max_dim: int, max_restarts: int,
                        keep_fraction: float = 0.5) -> TopEigenBasis:
    xp = op.xp
    D = op.D
    b = min(block, D)
    m = min(max_dim, D)
    check_allocation(2 * array_bytes((D, m + b)),
                     f"the Krylov basis and its products (2 arrays of {D}x{m + b})",
                     hint="lower max_dim or block")
    cap = min(m + b, D)
    Q = xp.empty((D, cap), dtype=np.float64)
    AQ = xp.empty((D, cap), dtype=np.float64)
    T = np.zeros((cap, cap))
    Qn, _ = _orthonormal_block(xp.asarray(rng.standard_normal((D, b))), xp, Q[:, :0], 1.0, rng)
    S = None
    j = 0
    scale = 0.0
    theta = Y = None
    restarts = 0
    ratio = np.inf          # worst residual estimate / tolerance at the last Rayleigh–Ritz
    while True:
        # grow the basis by one block: products, projection, two Gram–Schmidt passes
        w = min(Qn.shape[1], D - j)
        Qb = Qn[:, :w]
        Q[:, j:j + w] = Qb
        W = op(Qb)
        AQ[:, j:j + w] = W
        C = Q[:, :j + w].T @ W
        C_host = op.to_numpy(C)
        T[:j + w, j:j + w] = C_host
        T[j:j + w, :j + w] = C_host.T
        scale = max(scale, float(np.abs(C_host).max(initial=0.0)))
        last = j
        j += w
        full = j >= D
        if not full:
            R = W - Q[:, :j] @ C
            R -= Q[:, :j] @ (Q[:, :j].T @ R)
            Qn, S = _orthonormal_block(R, xp, Q[:, :j], scale, rng)
        # Rayleigh–Ritz at a restart, when the basis is complete, or every block once close
        if j < k or (j < m and not full and ratio > CLOSE_RATIO):
            continue
        Tj = 0.5 * (T[:j, :j] + T[:j, :j].T)
        theta, Y = scipy.linalg.eigh(Tj, check_finite=False)
        theta, Y = theta[::-1], Y[:, ::-1]
        if full:            # the basis spans the whole space: Rayleigh–Ritz is exact
            break
        est = np.linalg.norm(op.to_numpy(S)[:, :j - last] @ Y[last:j, :k], axis=0)
        ratio = float(np.max(est / (tol * _scale(theta[:k]))))
        if ratio <= 1.0 or (j >= m and restarts >= max_restarts):
            break
        if j < m:
            continue
        # thick restart: keep the best Ritz vectors, continue from the residual block Qn
        keep = min(j - b, max(k + b, k + int(keep_fraction * (j - k))))
        Yk = xp.asarray(np.ascontiguousarray(Y[:, :keep]))
        Q[:, :keep] = Q[:, :j] @ Yk
        AQ[:, :keep] = AQ[:, :j] @ Yk
        T[:] = 0.0
        T[np.arange(keep), np.arange(keep)] = theta[:keep]
        j = keep
        restarts += 1
    Yk = xp.asarray(np.ascontiguousarray(Y[:, :k]))
    V = Q[:, :j] @ Yk
    AV = AQ[:, :j] @ Yk
    return _finish(op, theta[:k], V, AV, "block", tol, k)


# --------------------------------------------------------------------------- scipy paths
def _eigsh(op: _Counted, k: int, *, rng: np.random.Generator, tol: float,
           max_iter: int | None) -> TopEigenBasis:
    lin = op.linear_operator()
    v0 = rng.standard_normal(op.D)
    ncv = min(op.D, max(2 * k + 1, 20))
    try:
        lam, V = spla.eigsh(lin, k=k, which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=max_iter)
    except spla.ArpackNoConvergence as exc:
        raise ValueError(
            f"eigsh did not converge within max_iter={max_iter} ({len(exc.eigenvalues)} of {k} "
            "pairs); raise max_iter or tol, or use method='block'") from None
    return _finish(op, lam, op.xp.asarray(V), None, "eigsh", tol, k)


def _lobpcg(op: _Counted, k: int, *, rng: np.random.Generator, tol: float,
            max_iter: int | None) -> TopEigenBasis:
    lin = op.linear_operator()
    X = rng.standard_normal((op.D, k))
    # lobpcg's tolerance is absolute: scale by an estimate of ‖A‖ from a few power steps
    v = rng.standard_normal((op.D, 1))
    for _ in range(8):
        v = lin.matmat(v)
        v /= max(np.linalg.norm(v), np.finfo(np.float64).tiny)
    norm = float(np.linalg.norm(lin.matmat(v)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lam, V = spla.lobpcg(lin, X, largest=True, tol=tol * max(norm, np.finfo(float).tiny),
                             maxiter=max_iter or 200)
    return _finish(op, lam, op.xp.asarray(V), None, "lobpcg", tol, k)


def _dense(op: _Counted, k: int, tol: float) -> TopEigenBasis:
    D = op.D
    check_allocation(array_bytes((D, D)), f"the dense {D}x{D} matrix of the operator",
                     hint="use method='block' or 'eigsh'")
    if isinstance(op.op, np.ndarray):
        A = op.op
    else:
        A = np.empty((D, D))
        for s in range(0, D, op.block):
            e = min(s + op.block, D)
            E = op.xp.zeros((D, e - s), dtype=np.float64)
            E[op.xp.arange(s, e), op.xp.arange(e - s)] = 1.0
            A[:, s:e] = op.to_numpy(op(E))
        A = 0.5 * (A + A.T)
    lam, V = scipy.linalg.eigh(A, subset_by_index=(D - k, D - 1), driver="evr",
                               check_finite=False)
    return _finish(op, lam, op.xp.asarray(V), None, "dense", tol, k)


def top_eigenbasis(op: Any, k: int, *, rng: np.random.Generator | int, tol: float = 1e-8,
                   method: str = "auto", max_iter: int | None = None, block: int | None = None,
                   max_dim: int | None = None) -> TopEigenBasis:
    r"""The top-k (largest algebraic) eigenpairs of a symmetric operator, with residual norms.

    .. math:: A v_i = \lambda_i v_i, \quad \lambda_1 \ge \dots \ge \lambda_k, \qquad
              \|A v_i - \lambda_i v_i\| \le \mathrm{tol}\cdot\max(|\lambda_i|,
              10^{-10}|\lambda_1|)

    Parameters
    ----------
    op : BlockOperator, LinearOperator or (D, D) array
        Symmetric operator (only its products are used, except by ``method="dense"``).
    k : int
        Number of pairs, 1 ≤ k ≤ D (k < D for ``"eigsh"``).
    rng : Generator or int
        Seed of the start vectors.
    tol : float
        Relative residual tolerance of every pair (see above).
    method : {"auto", "block", "eigsh", "lobpcg", "dense"}
        ``"auto"``: ``"dense"`` for D ≤ 1500 (LAPACK on the materialised matrix), else
        ``"block"``; see the module notes for each method and the measured comparison.
    max_iter : int, optional
        ``"block"``: restarts (default 50); ``"eigsh"``: ARPACK iterations; ``"lobpcg"``:
        iterations (default 200).
    block : int, optional
        ``"block"``: directions per product (default: the operator's ``block``, at most 32
        and at most k).
    max_dim : int, optional
        ``"block"``: basis size at which the iteration restarts (default
        max(2k, k + 4·block), at most D); memory 2·D·max_dim floats.

    Returns
    -------
    TopEigenBasis
        ``lam`` (descending), ``V`` (D, k), ``residual_norms``, ``num_products``,
        ``converged``.

    Cost
    ----
    ``"block"``: each basis block of b directions is one blocked product plus full
    reorthogonalisation (4·D·j·b flops at basis size j); each restart a Rayleigh–Ritz eigh of
    a max_dim × max_dim matrix and two D × max_dim × keep GEMMs.

    References
    ----------
    Stewart, "A Krylov–Schur algorithm for large eigenproblems", SIAM J. Matrix Anal. Appl. 23
    (2001); Zhou & Saad, "Block Krylov–Schur method for large symmetric eigenvalue problems",
    Numer. Algorithms 47 (2008); Lehoucq, Sorensen & Yang, ARPACK Users' Guide (SIAM, 1998);
    Knyazev, SIAM J. Sci. Comput. 23 (2001) (LOBPCG); Yao et al., PyHessian (2020).
    """
    check_choice(method, "method", EIGEN_METHODS)
    tol = check_positive(tol, "tol")
    rng = check_rng(rng)
    if block is not None:
        block = check_positive_int(block, "block")
    if max_iter is not None:
        max_iter = check_positive_int(max_iter, "max_iter")
    counted = _Counted(op, None)
    D = counted.D
    k = check_positive_int(k, "k")
    if k > D:
        raise ValueError(f"k must be <= D = {D}; got {k}")
    if method == "auto":
        method = "dense" if D <= DENSE_MAX_DIM else "block"
    if method == "dense":
        return _dense(counted, k, tol)
    if method == "eigsh":
        if k >= D:
            raise ValueError(f"k must be < D = {D} for method='eigsh'; got {k}")
        return _eigsh(counted, k, rng=rng, tol=tol, max_iter=max_iter)
    if method == "lobpcg":
        if 5 * k > D:
            raise ValueError(f"method='lobpcg' needs 5k <= D = {D}; got k = {k}")
        return _lobpcg(counted, k, rng=rng, tol=tol, max_iter=max_iter)
    b = block if block is not None else min(counted.block, DEFAULT_BLOCK, k)
    if max_dim is None:
        max_dim = max(2 * k, k + 4 * b)
    max_dim = check_positive_int(max_dim, "max_dim")
    if max_dim < min(D, k + 2 * b):
        raise ValueError(f"max_dim must be >= k + 2·block = {k + 2 * b} (or D); got {max_dim}")
    return _block_krylov_schur(counted, k, rng=rng, tol=tol, block=b, max_dim=max_dim,
                               max_restarts=50 if max_iter is None else max_iter)


def window_commutation_metrics(C: Any, basis: TopEigenBasis, *, H: Any | None = None,
                               top_k: int | None = None, num_samples: int = 8,
                               rng: np.random.Generator | int = 0) -> CommutationReport:
    r"""Commutation of C and H restricted to the top window S of H, with its random baseline.

    With V_S the window's eigenvectors, the k×k compressions C_S = V_Sᵀ C V_S and
    H_S = V_Sᵀ H V_S = diag(λ_S) (or the explicit compression when ``H`` is given) give

    .. math:: \varepsilon_S = \frac{\|P_S [C,H] P_S\|_F}{\|P_S C P_S\|_F\,\|P_S H P_S\|_F}
              = \frac{\|[C_S, H_S]\|_F}{\|C_S\|_F\,\|H_S\|_F},

    since P_S C P_S H P_S = V_S C_S H_S V_Sᵀ; the spectrum-preserving Haar baseline, the
    diagonal energy and Spearman's ρ are those of :func:`commutation_metrics` on the pair
    (C_S, H_S), which is called on the k×k matrices.  Cost: k operator products of C (one
    more block for ``H``) and O(k³).

    Parameters
    ----------
    C : BlockOperator, LinearOperator or (D, D) array
        Noise covariance (ε is invariant to its scale).
    basis : TopEigenBasis
        Top eigenpairs of H (:func:`top_eigenbasis`); at least 2 pairs.
    H : operator or array, optional
        H itself, for the explicit compression instead of diag(λ_S).
    top_k : int, optional
        Size of the inner "top" sub-window of the report (default max(2, k // 10)).
    num_samples : int
        Haar samples of the baseline (0: its closed-form root mean square).
    rng : Generator or int
        Seed of the baseline.

    Returns
    -------
    CommutationReport
        ``epsilon`` is ε_S; ``windows`` hold the sub-windows of S.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5, eigen-windows P_S = V_S V_Sᵀ).
    """
    if not isinstance(basis, TopEigenBasis):
        raise ValueError(f"basis must be a TopEigenBasis; got {type(basis).__name__}")  # noqa: TRY004
    k = basis.lam.size
    if k < 3:
        raise ValueError(f"basis must hold at least 3 eigenpairs for windowed metrics; got {k}")
    C_S = basis.rotate(C, "C")
    H_S = basis.rotate(H, "H") if H is not None else np.diag(basis.lam)
    return commutation_metrics(C_S, H_S, top_k=top_k, num_baseline=num_samples, rng=rng)


__all__ = [
    "DEFAULT_BLOCK",
    "DENSE_MAX_DIM",
    "EIGEN_METHODS",
    "TopEigenBasis",
    "top_eigenbasis",
    "window_commutation_metrics",
]

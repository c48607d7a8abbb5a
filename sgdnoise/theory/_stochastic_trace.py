r"""Stochastic traces and spectral densities of matrix-free operators, each with its error.

* :func:`trace_estimate` — Girard–Hutchinson and Hutch++ estimates of Tr A with a standard error.
* :func:`trace_product` — Tr(A B) of two symmetric operators (e.g. the part-B indicator
  Tr(HΣ) at network scale), Hutchinson or Hutch++, with a standard error.
* :func:`slq_density` — stochastic Lanczos quadrature (SLQ) of the spectral distribution
  Φ(x) = #{i: λ_i ≤ x}/D: per-probe Gauss nodes and weights, a Gaussian-broadened density,
  spectral moments with standard errors, and an a posteriori bound on the Wasserstein-1 error.

Probes are Rademacher vectors (entries ±1), drawn from the given generator in numpy, so every
backend sees the same probes; products are blocked (one ``apply`` per block of probes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from sgdnoise._memory import array_bytes, check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_choice,
    check_positive,
    check_positive_int,
    check_rng,
)
from sgdnoise.theory._spectral import _Counted

#: Methods of :func:`trace_estimate` and :func:`trace_product`.
TRACE_METHODS: tuple[str, ...] = ("hutchinson", "hutch++")


def _rademacher(rng: np.random.Generator, D: int, n: int) -> FloatArray:
    return rng.integers(0, 2, size=(D, n)).astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class TraceEstimate:
    r"""A stochastic trace estimate with its standard error.

    Attributes
    ----------
    estimate : float
        The trace estimate.
    standard_error : float
        Standard error of ``estimate`` from the spread of the probe values (conditional on the
        sketch for Hutch++, whose sketch part is exact).
    num_products : int
        Operator-vector products used (per operator for :func:`trace_product`).
    method : str
        ``"hutchinson"`` or ``"hutch++"``.
    samples : (n,) array
        The per-probe values whose mean is the stochastic part of the estimate.
    """

    estimate: float
    standard_error: float
    num_products: int
    method: str
    samples: FloatArray = field(repr=False)


def _mean_se(x: FloatArray) -> tuple[float, float]:
    n = x.size
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")


def _check_trace_args(num_probes: int, method: str, minimum: int) -> tuple[int, str]:
    check_choice(method, "method", TRACE_METHODS)
    num_probes = check_positive_int(num_probes, "num_probes", minimum=minimum)
    return num_probes, method


def trace_estimate(op: Any, *, num_probes: int, rng: np.random.Generator | int,
                   method: str = "hutchinson") -> TraceEstimate:
    r"""Tr A of a symmetric operator by Girard–Hutchinson or Hutch++, with a standard error.

    Hutchinson, with Rademacher probes z_l (E zzᵀ = I):

    .. math:: \widehat{\mathrm{Tr}} = \frac1n \sum_{l=1}^n z_l^\top A z_l, \qquad
              \mathrm{s.e.} = \frac{\mathrm{sd}_l(z_l^\top A z_l)}{\sqrt n} ;

    for Rademacher probes Var(zᵀAz) = 2(‖A‖_F² − Σ_i A_ii²).  Hutch++ spends the budget of
    m = ``num_probes`` products in thirds: Q = orth(A S) for m/3 Rademacher columns S, the
    exact Tr(QᵀAQ), and Hutchinson with m/3 probes on (I − QQᵀ)A(I − QQᵀ), whose trace is
    Tr A − Tr(QᵀAQ); the standard error is that of the deflated part (the sketch part is
    exact given Q).  Hutch++ reaches relative error ε with O(1/ε) products instead of
    O(1/ε²) for matrices with decaying spectra.

    Parameters
    ----------
    op : BlockOperator, LinearOperator or (D, D) array
        Symmetric operator.
    num_probes : int
        Hutchinson: probes (≥ 2); Hutch++: total products (≥ 6).
    rng : Generator or int
        Seed of the probes.
    method : {"hutchinson", "hutch++"}

    Returns
    -------
    TraceEstimate

    References
    ----------
    Hutchinson, Commun. Stat. Simul. Comput. 19 (1990); Girard, Numer. Math. 56 (1989);
    Meyer, Musco, Musco & Woodruff, "Hutch++: optimal stochastic trace estimation", SOSA 2021.
    """
    num_probes, method = _check_trace_args(num_probes, method, 6 if method == "hutch++" else 2)
    rng = check_rng(rng)
    A = _Counted(op, None)
    xp = A.xp
    if method == "hutchinson":
        Z = xp.asarray(_rademacher(rng, A.D, num_probes))
        vals = _probe_quadratic(op, A, Z)
        est, se = _mean_se(vals)
        return TraceEstimate(est, se, A.count, method, vals)
    third = num_probes // 3
    Q = _sketch(A, xp.asarray(_rademacher(rng, A.D, third)))
    AQ = A(Q)
    exact = float(A.to_numpy(xp.sum(Q * AQ)))
    G = xp.asarray(_rademacher(rng, A.D, num_probes - 2 * third))
    G = G - Q @ (Q.T @ G)
    AG = A(G)
    vals = A.to_numpy(xp.sum(G * AG, axis=0))
    est, se = _mean_se(vals)
    return TraceEstimate(exact + est, se, A.count, method, vals)


def _probe_quadratic(op: Any, A: _Counted, Z: Any) -> FloatArray:
    """z_lᵀ A z_l for each column (fused quadratic forms where the operator has them)."""
    from sgdnoise.theory._operators import BlockOperator

    if isinstance(op, BlockOperator) and op._quadratic is not None:
        A.count += Z.shape[1]
        return op.diagonal_quadratic(Z)
    return A.to_numpy(A.xp.sum(Z * A(Z), axis=0))


def _sketch(A: _Counted, S: Any) -> Any:
    """An orthonormal basis of range(A S)."""
    Q, _ = A.xp.linalg.qr(A(S))
    return Q


def trace_product(A: Any, B: Any, *, num_probes: int, rng: np.random.Generator | int,
                  method: str = "hutchinson") -> TraceEstimate:
    r"""Tr(A B) of two symmetric operators (e.g. Tr(HΣ), Tr(HC)), with a standard error.

    Hutchinson: Tr(AB) = E[zᵀ A B z] = E[(Az)ᵀ(Bz)] for Rademacher z, so each probe costs one
    product with each operator:

    .. math:: \widehat{\mathrm{Tr}}(AB) = \frac1n\sum_l (A z_l)^\top (B z_l) .

    Hutch++: Q = orth(A B S) for m/3 probes S; Tr(QᵀABQ) = Tr((AQ)ᵀ(BQ)) exactly, plus
    Hutchinson on (I − QQᵀ) A B (I − QQᵀ) with probes G projected off Q:
    (A(I−QQᵀ)g)ᵀ(B(I−QQᵀ)g).  The standard error is that of the stochastic part.

    Parameters
    ----------
    A, B : BlockOperator, LinearOperator or (D, D) array
        Symmetric operators of the same dimension.
    num_probes : int
        Hutchinson: probes (≥ 2); Hutch++: products with each operator (≥ 6).
    rng : Generator or int
    method : {"hutchinson", "hutch++"}

    Returns
    -------
    TraceEstimate
        ``num_products`` counts the products with ``A`` (as many with ``B``, except for the
        sketch of Hutch++, which uses both).

    References
    ----------
    Hutchinson, Commun. Stat. Simul. Comput. 19 (1990); Meyer, Musco, Musco & Woodruff,
    SOSA 2021 (Hutch++); Zhu, Wu, Yu, Wu & Ma, arXiv:1803.00195 (the indicator Tr(HΣ),
    spec part B).
    """
    num_probes, method = _check_trace_args(num_probes, method, 6 if method == "hutch++" else 2)
    rng = check_rng(rng)
    opA, opB = _Counted(A, None), _Counted(B, None)
    if opA.D != opB.D:
        raise ValueError(f"A and B must have the same dimension; got {opA.D} and {opB.D}")
    if opA.xp is not opB.xp:
        raise ValueError("A and B must live on the same array module (numpy or cupy)")
    xp = opA.xp
    D = opA.D
    if method == "hutchinson":
        Z = xp.asarray(_rademacher(rng, D, num_probes))
        vals = opA.to_numpy(xp.sum(opA(Z) * opB(Z), axis=0))
        est, se = _mean_se(vals)
        return TraceEstimate(est, se, opA.count, method, vals)
    third = num_probes // 3
    Q, _ = xp.linalg.qr(opA(opB(xp.asarray(_rademacher(rng, D, third)))))
    exact = float(opA.to_numpy(xp.sum(opA(Q) * opB(Q))))
    G = xp.asarray(_rademacher(rng, D, num_probes - 2 * third))
    G = G - Q @ (Q.T @ G)
    vals = opA.to_numpy(xp.sum(opA(G) * opB(G), axis=0))
    est, se = _mean_se(vals)
    return TraceEstimate(exact + est, se, opA.count, method, vals)


# --------------------------------------------------------------------------- SLQ
@dataclass(frozen=True)
class SpectralDensity:
    r"""Stochastic Lanczos quadrature of the spectral distribution of a symmetric D×D operator.

    Probe l gives Gauss nodes θ_lj and weights w_lj (Σ_j w_lj = 1): the Gauss quadrature of the
    weighted spectral measure Σ_i (u_iᵀ z_l)² δ(x − λ_i) / ‖z_l‖², whose mean over Rademacher
    probes is the spectral distribution (1/D) Σ_i δ(x − λ_i).

    Attributes
    ----------
    nodes, weights : (num_probes, num_steps) arrays
        θ_lj and w_lj (a probe whose Krylov space closed early has zero weights on its
        trailing nodes).
    D : int
        Dimension.
    lower, upper : float
        Interval assumed to contain the spectrum in :meth:`quadrature_error_bound`.
    num_products : int
        Operator-vector products used.
    closed : (num_probes,) bool array
        Whether the probe's Krylov space closed (became invariant) before ``num_steps``: its
        quadrature is then exact.
    """

    nodes: FloatArray = field(repr=False)
    weights: FloatArray = field(repr=False)
    D: int
    lower: float
    upper: float
    num_products: int
    closed: FloatArray = field(repr=False)

    @property
    def num_probes(self) -> int:
        """Number of probes."""
        return int(self.nodes.shape[0])

    def density(self, x: Any, sigma: float) -> FloatArray:
        r"""Gaussian-broadened spectral density, normalised to integrate to 1.

        .. math:: \hat\rho_\sigma(x) = \frac1n\sum_{l,j} w_{lj}\,
                  \frac{e^{-(x-\theta_{lj})^2/2\sigma^2}}{\sqrt{2\pi}\sigma}

        (multiply by D for a density of eigenvalue counts).
        """
        sigma = check_positive(sigma, "sigma")
        x = as_float_array(x, "x", ndim=(0, 1))
        z = (np.atleast_1d(x)[:, None] - self.nodes.reshape(-1)[None, :]) / sigma
        dens = np.exp(-0.5 * z * z) @ self.weights.reshape(-1)
        dens /= self.num_probes * sigma * np.sqrt(2 * np.pi)
        return dens if x.ndim else dens[0]

    def _probe_cdfs(self, x: FloatArray) -> FloatArray:
        out = np.empty((self.num_probes, x.size))
        for l in range(self.num_probes):
            order = np.argsort(self.nodes[l], kind="stable")
            cum = np.concatenate([[0.0], np.cumsum(self.weights[l, order])])
            out[l] = cum[np.searchsorted(self.nodes[l, order], x, side="right")]
        return out

    def cdf(self, x: Any) -> tuple[FloatArray, FloatArray]:
        """Spectral distribution Φ(x) = #{λ_i ≤ x}/D and its standard error over probes."""
        x = np.atleast_1d(as_float_array(x, "x", ndim=(0, 1)))
        F = self._probe_cdfs(x)
        n = self.num_probes
        se = F.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(x.size, np.inf)
        return F.mean(axis=0), se

    def moments(self, powers: Any = (1, 2)) -> tuple[FloatArray, FloatArray]:
        r"""Spectral moments Tr(A^p)/D and their standard errors over probes.

        Gauss quadrature with s nodes is exact for polynomials of degree ≤ 2s − 1, so for
        p ≤ 2·num_steps − 1 the only error is the probe sampling (the standard error);
        D·moments gives traces (p = 1: Tr A).
        """
        p = np.atleast_1d(np.asarray(powers))
        if p.ndim != 1 or not np.issubdtype(p.dtype, np.integer) or np.any(p < 0):
            raise ValueError(f"powers must be non-negative integers; got {powers!r}")
        per = np.einsum("lj,plj->pl", self.weights, self.nodes[None] ** p[:, None, None])
        n = self.num_probes
        se = per.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(p.size, np.inf)
        return per.mean(axis=1), se

    def quadrature_error_bound(self) -> float:
        r"""A posteriori bound on W₁(mean of Gauss measures, mean of weighted spectral measures).

        By the Chebyshev–Markov–Stieltjes inequalities the distribution F_l of probe l's
        weighted measure satisfies S_{j−1} ≤ F_l(θ_j) ≤ S_j at its Gauss nodes (S_j the partial
        sums of the weights), so between nodes |F_l − F̂_l| ≤ max(w_j, w_{j+1}); integrating
        over [lower, upper] ⊇ spectrum bounds ∫|F_l − F̂_l| dx, and the mean over probes bounds
        the error of the mean (the triangle inequality).
        """
        bounds = [0.0 if c else _cms_bound(t, w, self.lower, self.upper)
                  for t, w, c in zip(self.nodes, self.weights, self.closed, strict=True)]
        return float(np.mean(bounds))

    def sampling_error(self) -> float:
        r"""Standard-error estimate of the probe-sampling part of W₁: ∫ se(x) dx.

        E∫|F̄ − Φ| dx ≤ ∫ sd(F̄(x)) dx, estimated with the spread of the probes' quadrature
        distributions on the merged node grid.
        """
        grid = np.unique(np.concatenate([self.nodes.reshape(-1), [self.lower, self.upper]]))
        grid = grid[(grid >= self.lower) & (grid <= self.upper)]
        if grid.size < 2:
            return 0.0
        _, se = self.cdf(grid[:-1])
        return float(np.sum(se * np.diff(grid)))

    def wasserstein_error(self, num_se: float = 3.0) -> float:
        """Error statement for W₁(SLQ distribution, true spectral distribution):
        ``quadrature_error_bound() + num_se · sampling_error()``."""
        num_se = check_positive(num_se, "num_se", allow_zero=True)
        return self.quadrature_error_bound() + num_se * self.sampling_error()

    def wasserstein_distance(self, eigenvalues: Any) -> float:
        """W₁ between the SLQ distribution and the uniform measure on given eigenvalues."""
        lam = np.sort(as_float_array(eigenvalues, "eigenvalues", ndim=1))
        if lam.size != self.D:
            raise ValueError(f"eigenvalues must hold D = {self.D} values; got {lam.size}")
        t = self.nodes.reshape(-1)
        order = np.argsort(t, kind="stable")
        t = t[order]
        cum = np.concatenate([[0.0], np.cumsum(self.weights.reshape(-1)[order])]) / self.num_probes
        grid = np.unique(np.concatenate([t, lam]))
        F_slq = cum[np.searchsorted(t, grid[:-1], side="right")]
        F_true = np.searchsorted(lam, grid[:-1], side="right") / lam.size
        return float(np.sum(np.abs(F_slq - F_true) * np.diff(grid)))


def _cms_bound(theta: FloatArray, w: FloatArray, lower: float, upper: float) -> float:
    keep = w > 0
    theta, w = theta[keep], w[keep]
    order = np.argsort(theta)
    theta, w = theta[order], w[order]
    if theta.size == 0:
        return 0.0
    total = w[0] * max(theta[0] - lower, 0.0) + w[-1] * max(upper - theta[-1], 0.0)
    if theta.size > 1:
        total += float(np.sum(np.diff(theta) * np.maximum(w[:-1], w[1:])))
    return float(total)


def slq_density(op: Any, *, num_probes: int, num_steps: int, rng: np.random.Generator | int,
                bounds: tuple[float, float] | None = None,
                reorthogonalize: bool = True) -> SpectralDensity:
    r"""Stochastic Lanczos quadrature of the spectrum of a symmetric operator.

    For each Rademacher probe z_l (normalised), ``num_steps`` Lanczos steps give a tridiagonal
    T_l = S_l diag(θ_l) S_lᵀ; the Gauss quadrature nodes are θ_lj and the weights
    w_lj = (e_1ᵀ s_lj)², so that

    .. math:: \frac{z_l^\top f(A) z_l}{\|z_l\|^2} \approx \sum_j w_{lj} f(\theta_{lj}),
              \qquad \frac{\mathrm{Tr} f(A)}{D} \approx \frac1n\sum_l\sum_j w_{lj} f(\theta_{lj}).

    All probes run together: each Lanczos step is one blocked product of ``num_probes``
    columns; with full reorthogonalisation each probe keeps its Krylov basis
    (memory D·num_probes·num_steps floats).

    Parameters
    ----------
    op : BlockOperator, LinearOperator or (D, D) array
        Symmetric operator (H, M, Σ₁, C, …).
    num_probes : int
        Number of probes (≥ 2 for standard errors).
    num_steps : int
        Lanczos steps per probe (nodes per probe), ≤ D.
    rng : Generator or int
        Seed of the probes.
    bounds : (float, float), optional
        An interval known to contain the spectrum, for the error bound; default: the extreme
        Ritz values widened by their Lanczos residual bounds β_s |e_sᵀ s_j|.
    reorthogonalize : bool
        Full reorthogonalisation against each probe's basis (recommended; without it
        round-off produces spurious copies of converged Ritz values).

    Returns
    -------
    SpectralDensity
        Nodes, weights, density with Gaussian broadening, CDF and moments with standard errors,
        and the Wasserstein-1 error statement.

    References
    ----------
    Golub & Meurant, Matrices, Moments and Quadrature with Applications (Princeton, 2010);
    Lin, Saad & Yang, SIAM Rev. 58 (2016); Ubaru, Chen & Saad, SIAM J. Matrix Anal. Appl. 38
    (2017); Chen, Trogdon & Ubaru, ICML 2021 (analysis of SLQ for spectrum approximation);
    Ghorbani, Krishnan & Xiao, ICML 2019 and Yao et al., PyHessian (2020) (Hessian densities).
    """
    num_probes = check_positive_int(num_probes, "num_probes")
    num_steps = check_positive_int(num_steps, "num_steps")
    rng = check_rng(rng)
    if not isinstance(reorthogonalize, (bool, np.bool_)):
        raise ValueError(  # noqa: TRY004
            f"reorthogonalize must be True or False; got {reorthogonalize!r}")
    A = _Counted(op, None)
    xp = A.xp
    D = A.D
    if num_steps > D:
        raise ValueError(f"num_steps must be <= D = {D}; got {num_steps}")
    if bounds is not None:
        lo, hi = (float(v) for v in bounds)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"bounds must be finite with lower <= upper; got {bounds!r}")
    n, s = num_probes, num_steps
    if reorthogonalize:
        check_allocation(array_bytes((s, D, n)),
                         f"the Lanczos bases of {n} probes ({s} x {D} x {n} floats)",
                         hint="use fewer probes or steps, or reorthogonalize=False")
        basis = xp.empty((s, D, n), dtype=np.float64)
    Z = xp.asarray(_rademacher(rng, D, n)) / np.sqrt(D)
    alpha = np.zeros((n, s))
    beta = np.zeros((n, s))
    q_prev = xp.zeros_like(Z)
    q = Z
    b_prev = xp.zeros(n)
    active = np.ones(n, dtype=bool)
    steps = np.full(n, s)
    for i in range(s):
        if reorthogonalize:
            basis[i] = q
        w = A(q)
        a = xp.sum(w * q, axis=0)
        alpha[:, i] = A.to_numpy(a)
        w = w - q * a[None, :] - q_prev * b_prev[None, :]
        if reorthogonalize:
            for _ in range(2):
                coef = xp.einsum("idn,dn->in", basis[:i + 1], w)
                w -= xp.einsum("idn,in->dn", basis[:i + 1], coef)
        b = xp.sqrt(xp.sum(w * w, axis=0))
        b_host = A.to_numpy(b)
        beta[:, i] = b_host
        if i == s - 1:
            break
        scale = np.maximum(np.abs(alpha[:, :i + 1]).max(axis=1), b_host)
        closed = active & (b_host <= 1e-12 * np.maximum(scale, np.finfo(np.float64).tiny))
        steps[closed] = i + 1
        active &= ~closed
        b_safe = xp.asarray(np.where(active, b_host, 1.0))
        q_prev, q = q, xp.where(xp.asarray(active)[None, :], w / b_safe[None, :], 0.0)
        b_prev = xp.asarray(np.where(active, b_host, 0.0))
    nodes = np.zeros((n, s))
    weights = np.zeros((n, s))
    ritz_lo, ritz_hi = np.inf, -np.inf
    for l in range(n):
        m = steps[l]
        theta, S = scipy.linalg.eigh_tridiagonal(alpha[l, :m], beta[l, :m - 1])
        nodes[l, :m] = theta
        nodes[l, m:] = theta[-1]
        weights[l, :m] = S[0] ** 2
        resid = abs(beta[l, m - 1]) * np.abs(S[-1]) if m < D else np.zeros(m)
        ritz_lo = min(ritz_lo, float(np.min(theta - resid)))
        ritz_hi = max(ritz_hi, float(np.max(theta + resid)))
    if bounds is None:
        lo, hi = ritz_lo, ritz_hi
    return SpectralDensity(nodes=nodes, weights=weights, D=D, lower=lo, upper=hi,
                           num_products=A.count, closed=(steps < s) | (s == D))


__all__ = [
    "TRACE_METHODS",
    "SpectralDensity",
    "TraceEstimate",
    "slq_density",
    "trace_estimate",
    "trace_product",
]

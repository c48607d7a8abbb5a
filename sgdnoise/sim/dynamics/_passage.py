r"""Fast first passage of single-sample SGD (B = 1) on 1-D linear regression.

The experiment of spec C3 runs R independent replicas of

.. math:: \theta_{k+1} = \theta_k - \eta\, x_{i_k}(x_{i_k}\theta_k - y_{i_k}), \qquad
          i_k \sim \mathrm{Uniform}\{0, \dots, N-1\}\ \text{(with replacement)}

from θ₀ until the full-data loss L(θ_k) = L* + ½A(θ_k − θ*)² (A = E_p x_p², θ* the least-squares
solution, L* its loss) first reaches a level, and records that step.  :func:`first_passage_times`
computes exactly what ``simulate(LinearRegressionProblem(X[:, None], y), sgd(1), eta=eta,
first_passage_loss=level, stop_at_first_passage=True, …)`` computes — the same Philox stream
(tag BATCH, draw k of replica ``replica_start + r`` is the index of step k), the same floating-point
operations in the same order — with a kernel specialised to this case: one Philox block gives the
indices of two steps, the state is one float per replica, and a replica stops at its passage.

References
----------
Mori, Ziyin, Liu & Ueda, "Power-Law Escape Rate of SGD", ICML 2022, arXiv:2105.09557 (spec
claim C3, linear-regression experiment); Salmon et al., SC'11 (Philox).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from sgdnoise import backends
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_positive, check_positive_int
from sgdnoise.sim import philox

#: Steps per numpy chunk of pre-drawn batch indices (reference path).
_CHUNK = 512


class PassageTimes(NamedTuple):
    """First-passage times of R replicas.

    Attributes
    ----------
    first_passage : (R,) int64 array
        First step k (0 ≤ k ≤ num_steps) with L(θ_k) ≥ level; −1 if none (censored).
    censored : (R,) bool array
        ``first_passage < 0``: passage time only known to exceed num_steps.
    theta : (R,) array
        θ at the passage (or θ_K for a censored replica).
    loss : (R,) array
        L at those points.
    config : dict
        eta, level, num_steps, num_replicas, seed, replica_start, backend, N, theta_star,
        loss_star, A.
    """

    first_passage: IntArray
    censored: np.ndarray
    theta: FloatArray
    loss: FloatArray
    config: dict[str, Any]


def _least_squares(x: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """(A, θ*, L*) exactly as :class:`LinearRegressionProblem` computes them for D = 1."""
    X = x[:, None]
    A = X.T @ X / X.shape[0]
    A = 0.5 * (A + A.T)
    theta_star = np.linalg.lstsq(X, y, rcond=None)[0]
    r = X @ theta_star - y
    return float(A[0, 0]), float(theta_star[0]), float(0.5 * np.mean(r * r))


def _numpy_passage(x: FloatArray, y: FloatArray, A: float, theta_star: float, loss_star: float,
                   theta0: FloatArray, eta: float, level: float, num_steps: int, seed: int,
                   replica_start: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Reference: vectorised over the replicas still running, indices drawn per chunk."""
    R = theta0.shape[0]
    N = x.shape[0]
    theta = theta0.copy()
    fp = np.full(R, -1, dtype=np.int64)
    active = np.arange(R)
    for k0 in range(0, num_steps + 1, _CHUNK):
        if active.size == 0:
            break
        k1 = min(k0 + _CHUNK, num_steps + 1)
        reps = (active + replica_start).astype(np.uint64)
        idx = philox.integers(seed, reps, philox.BATCH, k0, k1 - k0, N)   # (r, chunk)
        th = theta[active]
        alive = np.ones(active.size, dtype=bool)
        for j in range(k1 - k0):
            k = k0 + j
            e = th - theta_star
            L = loss_star + 0.5 * (e * (e * A))
            hit = alive & (L >= level)
            fp[active[hit]] = k
            alive &= ~hit
            if k == num_steps or not alive.any():
                break
            i = idx[:, j]
            xi = x[i]
            g = (xi * th - y[i]) * xi
            th = np.where(alive, th - eta * g, th)
        theta[active] = th
        active = active[alive]
    e = theta - theta_star
    return fp, theta, loss_star + 0.5 * (e * (e * A))


_kernel_cache: dict[str, Any] = {}


def _numba_kernel() -> Any:
    """Compile the kernel on first use (importing this module does not import numba)."""
    if "kernel" in _kernel_cache:
        return _kernel_cache["kernel"]
    from numba import njit, prange

    p4 = philox.philox4x32_numba
    bounded = philox.bounded_numba
    batch_tag = np.uint64(philox.BATCH)
    mask = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)

    @njit(parallel=True, nogil=True)
    def kernel(x, y, A, theta_star, loss_star, theta, fp, eta, level, num_steps, k0, k1,
               rep0, N):
        for r in prange(theta.shape[0]):
            rep = np.uint64(rep0 + r)
            th = theta[r]
            fp[r] = -1
            w0 = w1 = w2 = w3 = np.uint64(0)
            for k in range(num_steps + 1):
                e = th - theta_star
                L = loss_star + 0.5 * (e * (e * A))
                if L >= level:
                    fp[r] = k
                    break
                if k == num_steps:
                    break
                if (k & 1) == 0:
                    blk = np.uint64(k >> 1)
                    w0, w1, w2, w3 = p4(blk & mask, blk >> s32, rep, batch_tag, k0, k1)
                    i = bounded(w0, w1, N)
                else:
                    i = bounded(w2, w3, N)
                xi = x[i]
                g = (xi * th - y[i]) * xi
                th = th - eta * g
            theta[r] = th

    _kernel_cache["kernel"] = kernel
    return kernel


def first_passage_times(
    x: Any,
    y: Any,
    *,
    eta: float,
    level: float,
    num_steps: int,
    num_replicas: int,
    seed: int,
    theta0: Any = None,
    replica_start: int = 0,
    backend: str = "numba",
    num_threads: int | None = None,
) -> PassageTimes:
    r"""First step at which single-sample SGD on 1-D linear regression reaches a loss level.

    .. math::
        \theta_{k+1} = \theta_k - \eta\,(x_{i_k}\theta_k - y_{i_k})\,x_{i_k}, \qquad
        \tau = \min\{k \ge 0 : L(\theta_k) \ge \text{level}\},\quad
        L(\theta) = L^* + \tfrac12 A(\theta - \theta^*)^2

    with A = (1/N) Σ x_p², θ* and L* = (1/2N) Σ (x_pθ* − y_p)² of the least-squares fit, and i_k
    drawn with replacement from draw k of replica r's Philox stream (tag BATCH).  Identical,
    replica by replica, to ``simulate(LinearRegressionProblem(x[:, None], y), sgd(1), eta=eta,
    num_steps=num_steps, num_replicas=num_replicas, seed=seed, theta0=theta0,
    first_passage_loss=level, stop_at_first_passage=True, replica_start=replica_start)
    .first_passage`` on any backend and any number of threads.

    Parameters
    ----------
    x, y : (N,) arrays
        Inputs and targets (N ≥ 1; ``x`` may also be (N, 1)).
    eta : float
        Learning rate η > 0 (SGD steps; SDE time t = ηk).
    level : float
        Loss level (finite); ``level`` ≤ L(θ₀) gives τ = 0.
    num_steps : int
        K ≥ 0: τ is censored (−1) if it exceeds K.
    num_replicas : int
        R ≥ 1.
    seed : int
        Philox key, in [0, 2⁶⁴).
    theta0 : float or (R,) array, optional
        Start (default 0, as ``LinearRegressionProblem``).
    replica_start : int
        Stream index of replica 0.
    backend : {"numba", "numpy", "auto"}
        ``"numpy"`` is the vectorised reference; ``"numba"`` the compiled kernel (``prange``
        over replicas).
    num_threads : int, optional
        Numba threads; results do not depend on it.

    Returns
    -------
    PassageTimes

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3: mean first-passage time of SGD on
    linear regression to L ≥ cL*).
    """
    x = as_float_array(x, "x", ndim=(1, 2))
    if x.ndim == 2:
        if x.shape[1] != 1:
            raise ValueError(f"x must have shape (N,) or (N, 1); got {x.shape}")
        x = x[:, 0]
    y = as_float_array(y, "y", ndim=1)
    if x.size < 1 or y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {x.shape}; got {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    eta = check_positive(eta, "eta")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not np.isfinite(level):
        raise ValueError(f"level must be a finite real number; got {level!r}")
    level = float(level)
    num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
    R = check_positive_int(num_replicas, "num_replicas")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64); got {seed!r}")
    seed = int(seed)
    replica_start = check_positive_int(replica_start, "replica_start", minimum=0)
    if replica_start + R > 2**32:
        raise ValueError("replica_start must leave room for num_replicas streams below 2**32")
    if num_threads is not None:
        num_threads = check_positive_int(num_threads, "num_threads")
    if theta0 is None:
        theta0 = 0.0
    th0 = as_float_array(theta0, "theta0", ndim=(0, 1))
    if th0.ndim == 1 and th0.shape != (R,):
        raise ValueError(f"theta0 must be a float or have shape ({R},); got {th0.shape}")
    if not np.all(np.isfinite(th0)):
        raise ValueError("theta0 must be finite")
    th0 = np.ascontiguousarray(np.broadcast_to(th0, (R,)), dtype=np.float64).copy()
    resolved = backends.resolve(backend, supported=("numpy", "numba"))
    A, theta_star, loss_star = _least_squares(x, y)
    if resolved == "numba":
        from sgdnoise.sim.dynamics._numba import _threads

        kernel = _numba_kernel()
        fp = np.empty(R, dtype=np.int64)
        theta = th0.copy()
        key0, key1 = philox.seed_key(seed)
        with _threads(num_threads):
            kernel(np.ascontiguousarray(x), np.ascontiguousarray(y), A, theta_star, loss_star,
                   theta, fp, eta, level, num_steps, np.uint64(key0), np.uint64(key1),
                   replica_start, x.size)
        e = theta - theta_star
        loss = loss_star + 0.5 * (e * (e * A))
    else:
        fp, theta, loss = _numpy_passage(x, y, A, theta_star, loss_star, th0, eta, level,
                                         num_steps, seed, replica_start)
    if not np.all(np.isfinite(theta)):
        bad = int(np.flatnonzero(~np.isfinite(theta))[0])
        raise ValueError(f"eta: replica {bad} diverged (non-finite θ) at eta={eta}; lower eta")
    config = {"eta": eta, "level": level, "num_steps": num_steps, "num_replicas": R,
              "seed": seed, "replica_start": replica_start, "backend": resolved, "N": x.size,
              "theta_star": theta_star, "loss_star": loss_star, "A": A}
    return PassageTimes(fp, fp < 0, theta, loss, config)


__all__ = ["PassageTimes", "first_passage_times"]

r"""Fast first passage of single-sample SGD (B = 1) on 1-D linear regression.

The experiment of spec C3 runs R independent replicas of

.. math:: \theta_{k+1} = \theta_k - \eta\, x_{i_k}(x_{i_k}\theta_k - y_{i_k}), \qquad
          i_k \sim \mathrm{Uniform}\{0, \dots, N-1\}\ \text{(with replacement)}

from θ₀ until the full-data loss L(θ_k) = L* + ½A(θ_k − θ*)² (A = E_p x_p², θ* the least-squares
solution, L* its loss) first reaches a level, and records that step.  :func:`first_passage_times`
computes exactly what ``simulate(LinearRegressionProblem(X[:, None], y), sgd(1), eta=eta,
observe=[FirstPassage(loss=level, stop=True)], …)`` computes — the same Philox stream
(tag BATCH, draw k of replica ``Execution.replica_start + r`` is the index of step k), the same
floating-point
operations in the same order — with a kernel specialised to this case: one Philox block gives the
indices of two steps, the state is one float per replica, a replica stops at its passage, and
32 replicas advance together in vector lanes (a lane freed by a passage takes the next replica).

References
----------
Mori, Ziyin, Liu & Ueda, "Power-Law Escape Rate of SGD", ICML 2022, arXiv:2105.09557 (spec
claim C3, linear-regression experiment); Salmon et al., SC'11 (Philox).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from sgdnoise import backends
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_positive, check_positive_int
from sgdnoise.sim import philox
from sgdnoise.sim.dynamics._engine import moved_keywords
from sgdnoise.sim.dynamics._settings import Execution
from sgdnoise.sim.training import DivergenceError

#: Steps per numpy chunk of pre-drawn batch indices (reference path).
_CHUNK = 512


class PassageTimes(NamedTuple):
    """First-passage times of R replicas.

    Attributes
    ----------
    first_passage : (R,) int64 array
        First step k (0 ≤ k ≤ num_steps) with L(θ_k) ≥ level, **in steps**; −1 if none
        (censored).  :attr:`first_passage_time` gives it in SDE time t = ηk.
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

    #: The unit of :attr:`first_passage_time` (``first_passage`` counts steps).
    time_unit = "SDE time t = eta * step"

    @property
    def first_passage_time(self) -> FloatArray:
        """(R,) float: the passage in SDE time t = ητ (the unit of the passage-time formulas
        of :mod:`sgdnoise.theory`); a censored replica has its censoring time η · num_steps
        (flagged by ``censored``), as :class:`~sgdnoise.sim.dynamics.FirstPassage` reports it."""
        steps = np.where(self.censored, self.config["num_steps"], self.first_passage)
        return self.config["eta"] * steps.astype(np.float64)


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


#: Lanes of the numba kernel: replicas advanced together, the same operations on every lane each
#: step (a lane whose replica has passed is masked, not skipped), so that LLVM vectorises the
#: Philox rounds and the update across lanes.
_LANES = 32
#: Replicas per task of the numba kernel (``prange`` over tasks).  A task's lanes take its
#: replicas in order, a freed lane taking the next one, so little work is spent on masked lanes.
#: Each replica's result depends only on its own stream, so neither this split nor the number of
#: threads can change any result.
_TASK = 256

_kernel_cache: dict[str, Any] = {}


def _numba_kernel() -> Any:
    """Compile the kernel on first use (importing this module does not import numba).

    Each lane runs two steps per Philox block (draws 2j, 2j + 1 of a replica are the words
    (w0, w1) and (w2, w3) of its block j), in three loops over the lanes: the Philox rounds and
    the bounded indices (vectorised, 32×32 → 64-bit products), the gathers of (x_i, y_i), and the
    two steps (vectorised: check L(θ_k) ≥ level, record k and freeze the lane at a passage,
    otherwise θ ← θ − η(xθ − y)x).  A lane whose replica has passed, or whose next pair of steps
    would pass ``num_steps`` (its last one or two steps then run one at a time), hands its result
    back and takes the task's next replica.  Every floating-point operation of a running replica
    is the reference's, in the same order (no fast-math, no contraction), so θ is bit-identical.
    """
    if "kernel" in _kernel_cache:
        return _kernel_cache["kernel"]
    from numba import njit, prange

    u64 = np.uint64
    lanes = _LANES
    task = _TASK
    rounds = philox.ROUNDS
    M0, M1 = u64(philox.PHILOX_M0), u64(philox.PHILOX_M1)
    W0, W1 = u64(philox.PHILOX_W0), u64(philox.PHILOX_W1)
    mask = u64(0xFFFFFFFF)
    s32 = u64(32)
    tag = u64(philox.BATCH)
    p4 = philox.philox4x32_numba

    @njit(nogil=True, boundscheck=False)
    def run_one(x, y, A, theta_star, loss_star, t, k, num_steps, eta, level, rep, key0, key1,
                nn):
        """Steps k, k + 1, … of one replica from θ_k = t, as the reference: (passage, θ)."""
        while True:
            e = t - theta_star
            if loss_star + 0.5 * (e * (e * A)) >= level:
                return k, t
            if k == num_steps:
                return -1, t
            b = u64(k >> 1)
            w0, w1, w2, w3 = p4(b & mask, b >> s32, rep, tag, key0, key1)
            if k & 1:
                i = ((w2 * nn) + ((w3 * nn) >> s32)) >> s32
            else:
                i = ((w0 * nn) + ((w1 * nn) >> s32)) >> s32
            xi = x[i]
            g = (xi * t - y[i]) * xi
            t = t - eta * g
            k += 1

    @njit(parallel=True, nogil=True, boundscheck=False)
    def kernel(x, y, A, theta_star, loss_star, theta, fp, eta, level, num_steps, key0, key1,
               rep0, N):
        R = theta.shape[0]
        nn = u64(N)
        k0 = u64(key0) & mask
        k1 = u64(key1) & mask
        for tsk in prange((R + task - 1) // task):
            nxt = tsk * task
            stop = min(nxt + task, R)
            th = np.empty(lanes, dtype=np.float64)
            live = np.zeros(lanes, dtype=np.bool_)
            occ = np.zeros(lanes, dtype=np.bool_)
            kl = np.zeros(lanes, dtype=np.int64)
            slot = np.full(lanes, -1, dtype=np.int64)
            fpl = np.full(lanes, -1, dtype=np.int64)
            rep = np.zeros(lanes, dtype=np.uint64)
            i0 = np.empty(lanes, dtype=np.uint64)
            i1 = np.empty(lanes, dtype=np.uint64)
            x0 = np.empty(lanes, dtype=np.float64)
            y0 = np.empty(lanes, dtype=np.float64)
            x1 = np.empty(lanes, dtype=np.float64)
            y1 = np.empty(lanes, dtype=np.float64)
            th[:] = theta_star
            fill = True
            while True:
                if fill:
                    nocc = 0
                    for j in range(lanes):
                        while not occ[j] and nxt < stop:
                            r = nxt
                            nxt += 1
                            if num_steps < 2:               # no full pair of steps
                                fp[r], theta[r] = run_one(x, y, A, theta_star, loss_star,
                                                          theta[r], 0, num_steps, eta, level,
                                                          u64(rep0 + r), k0, k1, nn)
                                continue
                            occ[j] = True
                            live[j] = True
                            slot[j] = r
                            th[j] = theta[r]
                            kl[j] = 0
                            fpl[j] = -1
                            rep[j] = u64(rep0 + r)
                        nocc += occ[j]
                    if nocc == 0:
                        break
                    fill = False
                for j in range(lanes):
                    # Philox4x32-10 of counter (b lo, b hi, replica, BATCH), b = k/2; round
                    # keys key + r·W mod 2³² (the masks keep every factor below 2³²)
                    b = u64(kl[j]) >> u64(1)
                    c0 = b & mask
                    c1 = b >> s32
                    c2 = rep[j]
                    c3 = tag
                    for rnd in range(rounds):
                        p0 = M0 * c0
                        p1 = M1 * c2
                        c0 = ((p1 >> s32) ^ c1 ^ ((k0 + u64(rnd) * W0) & mask)) & mask
                        c2 = ((p0 >> s32) ^ c3 ^ ((k1 + u64(rnd) * W1) & mask)) & mask
                        c1 = p1 & mask
                        c3 = p0 & mask
                    # draws k and k + 1: bounded (w0, w1) and (w2, w3)
                    i0[j] = ((c0 * nn) + ((c1 * nn) >> s32)) >> s32
                    i1[j] = ((c2 * nn) + ((c3 * nn) >> s32)) >> s32
                for j in range(lanes):                      # gathers, apart from the lanes
                    x0[j] = x[i0[j]]
                    y0[j] = y[i0[j]]
                    x1[j] = x[i1[j]]
                    y1[j] = y[i1[j]]
                nret = 0
                for j in range(lanes):
                    t = th[j]
                    a = live[j]
                    f = fpl[j]
                    k = kl[j]
                    # step k: check L(θ_k), then θ_{k+1} from draw k
                    e = t - theta_star
                    h = a & (loss_star + 0.5 * (e * (e * A)) >= level)
                    f = k if h else f
                    a = a & ~h
                    xi = x0[j]
                    g = (xi * t - y0[j]) * xi
                    tn = t - eta * g
                    t = tn if a else t
                    # step k + 1: check L(θ_{k+1}), then θ_{k+2} from draw k + 1
                    e = t - theta_star
                    h = a & (loss_star + 0.5 * (e * (e * A)) >= level)
                    f = k + 1 if h else f
                    a = a & ~h
                    xi = x1[j]
                    g = (xi * t - y1[j]) * xi
                    tn = t - eta * g
                    t = tn if a else t
                    th[j] = t
                    live[j] = a
                    fpl[j] = f
                    kl[j] = k + 2
                    nret += occ[j] & (~a | (k + 4 > num_steps))
                if nret > 0:
                    for j in range(lanes):
                        if not occ[j] or (live[j] and kl[j] + 2 <= num_steps):
                            continue
                        r = slot[j]
                        if live[j]:                         # last one or two steps
                            fp[r], theta[r] = run_one(x, y, A, theta_star, loss_star, th[j],
                                                      kl[j], num_steps, eta, level, rep[j],
                                                      k0, k1, nn)
                        else:
                            fp[r] = fpl[j]
                            theta[r] = th[j]
                        occ[j] = False
                        live[j] = False
                        slot[j] = -1
                        th[j] = theta_star
                    fill = True

    _kernel_cache["kernel"] = kernel
    _kernel_cache["run_one"] = run_one
    return kernel


def _diverged(bad: IntArray, fp: IntArray, x: FloatArray, y: FloatArray, A: float,
              theta_star: float, loss_star: float, th0: FloatArray, eta: float, level: float,
              num_steps: int, seed: int, replica_start: int, backend: str) -> DivergenceError:
    """The error for the replica that diverged first (earliest step, then lowest index).

    A diverging replica passes the (finite) level at the step k whose θ_k or L(θ_k) is not
    finite, and stops there; L(θ_{k−1}), the last finite loss, is recomputed by running that
    replica alone to step k − 1 on the same backend (the same numbers: its own stream).
    """
    steps = np.where(fp[bad] >= 0, fp[bad], num_steps)
    r = int(bad[np.argmin(steps)])
    k = int(steps.min())
    prev = math.nan
    if k >= 1:
        if backend == "numba":
            run_one = _kernel_cache["run_one"]
            key0, key1 = philox.seed_key(seed)
            mask = np.uint64(0xFFFFFFFF)
            _, t = run_one(x, y, A, theta_star, loss_star, float(th0[r]), 0, k - 1, eta, level,
                           np.uint64(replica_start + r), np.uint64(key0) & mask,
                           np.uint64(key1) & mask, np.uint64(x.size))
            e = t - theta_star
            prev = loss_star + 0.5 * (e * (e * A))
        else:
            prev = float(_numpy_passage(x, y, A, theta_star, loss_star, th0[r:r + 1], eta, level,
                                        k - 1, seed, replica_start + r)[2][0])
    return DivergenceError(
        k, None, prev, eta, "θ or L(θ) is not finite at this step (the SGD step overflowed); "
        "it counts as a passage of the level but has no finite value", replica=r,
        subject=f"replica {r} (stream {replica_start + r})", loss_step=k - 1,
        advice="Lower eta (or level, so that each replica stops sooner)")


@moved_keywords("first_passage_times")
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
    execution: Execution | str | None = None,
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
    observe=[FirstPassage(loss=level, stop=True)], execution=Execution(replica_start=…))
    .first_passage`` on any backend and any number of threads.  The passage comes in steps
    (``first_passage``) and in SDE time (``first_passage_time``).

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
    execution : Execution, str or None
        How to run (:class:`~sgdnoise.sim.dynamics.Execution`: backend, num_threads,
        replica_start — the stream index of replica 0), or a backend name; None (default)
        runs the numba kernel.  Backends ``"numba"`` (the compiled kernel: ``prange`` over
        tasks of 256 replicas, 32 at a time in vector lanes), ``"numpy"`` (the vectorised
        reference) or ``"auto"``; the number of threads does not change a result.  The
        ``progress`` setting is ignored.

    Returns
    -------
    PassageTimes

    Raises
    ------
    DivergenceError
        A replica's step overflowed: θ_k or L(θ_k) is not finite at its passage step k (a
        diverging replica always passes the finite level there).  Names the replica (earliest
        step, then lowest index) and its stream, k, L(θ_{k−1}) and η; both backends apply the
        same check.
    ValueError
        Invalid arguments, naming the argument (including a ``theta0`` whose loss is not
        finite, or data whose least-squares fit overflows).

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
    run = Execution("numba") if execution is None else Execution.coerce(execution)
    replica_start = run.replica_start
    if replica_start + R > 2**32:
        raise ValueError("Execution.replica_start must leave room for num_replicas streams "
                         "below 2**32")
    num_threads = run.num_threads
    backend = run.backend
    if theta0 is None:
        theta0 = 0.0
    th0 = as_float_array(theta0, "theta0", ndim=(0, 1))
    if th0.ndim == 1 and th0.shape != (R,):
        raise ValueError(f"theta0 must be a float or have shape ({R},); got {th0.shape}")
    if not np.all(np.isfinite(th0)):
        raise ValueError("theta0 must be finite")
    th0 = np.ascontiguousarray(np.broadcast_to(th0, (R,)), dtype=np.float64).copy()
    resolved = backends.resolve(backend, supported=("numpy", "numba"))
    with np.errstate(over="ignore", invalid="ignore"):
        A, theta_star, loss_star = _least_squares(x, y)
        e0 = th0 - theta_star
        loss0 = loss_star + 0.5 * (e0 * (e0 * A))
    if not (math.isfinite(A) and math.isfinite(theta_star) and math.isfinite(loss_star)):
        raise ValueError("x, y: the least-squares fit (A, θ*, L*) overflows float64; rescale "
                         "the data")
    if not np.all(np.isfinite(loss0)):
        raise ValueError("theta0: the loss at theta0 is not finite; start closer to θ*")
    if resolved == "numba":
        kernel = _numba_kernel()
        fp = np.empty(R, dtype=np.int64)
        theta = th0.copy()
        key0, key1 = philox.seed_key(seed)
        with backends.numba_threads(num_threads):
            kernel(np.ascontiguousarray(x), np.ascontiguousarray(y), A, theta_star, loss_star,
                   theta, fp, eta, level, num_steps, np.uint64(key0), np.uint64(key1),
                   replica_start, x.size)
        with np.errstate(over="ignore", invalid="ignore"):
            e = theta - theta_star
            loss = loss_star + 0.5 * (e * (e * A))
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            fp, theta, loss = _numpy_passage(x, y, A, theta_star, loss_star, th0, eta, level,
                                             num_steps, seed, replica_start)
    blown = ~(np.isfinite(theta) & np.isfinite(loss))
    if blown.any():
        with np.errstate(over="ignore", invalid="ignore"):
            raise _diverged(np.flatnonzero(blown), fp, x, y, A, theta_star, loss_star, th0,
                            eta, level, num_steps, seed, replica_start, resolved)
    config = {"eta": eta, "level": level, "num_steps": num_steps, "num_replicas": R,
              "seed": seed, "replica_start": replica_start, "backend": resolved, "N": x.size,
              "theta_star": theta_star, "loss_star": loss_star, "A": A}
    return PassageTimes(fp, fp < 0, theta, loss, config)


__all__ = ["PassageTimes", "first_passage_times"]

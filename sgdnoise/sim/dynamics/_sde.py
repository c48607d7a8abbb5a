r"""Replica Euler–Maruyama integrator of the SGD SDE with loss-proportional noise (spec part C).

Model: the double well with n − 1 harmonic extra directions,

.. math:: L(\theta) = L_0 + a(\theta_0^2 - 1)^2 + \tfrac{k}{2}\sum_{j=1}^{n-1}\theta_j^2,

minima θ₀ = ±1 (L = L₀, Hessian H* = diag(8a, k, …, k)), saddle θ = 0 (L = L₀ + a).  The SDE in
SDE time t = ηk (k SGD steps) is read in the Itô sense, with a diagonal diffusion D_i(θ):

.. math:: d\theta_i = -\partial_i L\, dt + \sqrt{2 D_i(\theta)}\, dW_i,

* ``noise="sgd"``: D_i = (η/B) L(θ) H*_ii — the SGD noise Σ ≈ (2L/B) H* (noise variance
  2ηL H*/B per unit time);
* ``noise="frozen"``: D_i = (η/B) L₀ H*_ii — the same noise frozen at its value at the minimum
  (an Arrhenius alternative);
* ``noise="constant"``: D_i = T, a fixed temperature (gradient Langevin dynamics, GLD).

Euler–Maruyama with step dt: θ ← θ − ∇L(θ) dt + √(2D(θ) dt) z, z ~ N(0, I).  Replica r draws
z of step j from its Philox stream (tag NOISE, normals 2j⌈n/2⌉ … 2j⌈n/2⌉ + n − 1, the layout of
the replica engine), so the numpy reference and the Numba kernel compute the same trajectories
for any number of threads.  The loss and its gradient are written out here (not imported from
``sgdnoise.theory``), so a measurement never reuses the prediction it is checked against.

References
----------
Mori, Ziyin, Liu & Ueda, "Power-Law Escape Rate of SGD", ICML 2022, arXiv:2105.09557 (spec
claims C2–C4); P. E. Kloeden, E. Platen, *Numerical Solution of Stochastic Differential
Equations* (1992), §9.1 (Euler–Maruyama); Salmon et al., SC'11 (Philox).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from sgdnoise import backends
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int
from sgdnoise.sim import philox
from sgdnoise.sim.training import DivergenceError

#: ``noise=`` values of :func:`simulate_sde`.
SDE_NOISES: tuple[str, ...] = ("sgd", "frozen", "constant")
_NOISE_CODES = {"sgd": 0, "frozen": 1, "constant": 2}
#: Largest recorded trajectory (bytes).
_MAX_RECORD_BYTES = 2**30


class SDERun(NamedTuple):
    """Results of :func:`simulate_sde` for R replicas in n dimensions.

    Attributes
    ----------
    theta : (R, n) array
        Final θ (at the first passage for a replica that passed: absorbed there).
    first_passage : (R,) int64 array or None
        First Euler step j (0 ≤ j ≤ num_steps) meeting the passage condition; −1 if none.
    first_passage_time : (R,) array or None
        j·dt, the passage time in SDE time (num_steps·dt for censored replicas).
    censored : (R,) bool array or None
        The level was not reached within num_steps (right-censored).
    trajectory : (num_records, R, n) array or None
        θ at steps 0, record_every, 2·record_every, … ≤ num_steps (NaN from a replica's
        passage step on).
    record_times : (num_records,) array or None
        The SDE times of the records.
    config : dict
        Every parameter of the run (noise, L0, a, n, k, eta, B, temperature, dt, num_steps,
        num_replicas, seed, replica_start, backend, passage condition).
    """

    theta: FloatArray
    first_passage: IntArray | None
    first_passage_time: FloatArray | None
    censored: np.ndarray | None
    trajectory: FloatArray | None
    record_times: FloatArray | None
    config: dict[str, Any]


def _k_value(a: float, k: float | None) -> float:
    with np.errstate(over="ignore"):
        return float(np.float64(8.0) * a) if k is None else check_positive(k, "k")


def _finite_or_raise(value: Any, name: str) -> Any:
    """``value`` if every entry is finite, else ``FloatingPointError`` (float64 overflow)."""
    if not np.all(np.isfinite(value)):
        raise FloatingPointError(f"{name}: the result overflows float64 for these arguments "
                                 f"(|theta|, a or k too large)")
    return value


def double_well_loss(theta: Any, *, L0: float, a: float, k: float | None = None) -> FloatArray:
    r"""Loss of the double well with harmonic extra directions.

    .. math:: L(\theta) = L_0 + a(\theta_0^2 - 1)^2 + \tfrac{k}{2}\sum_{j\ge1}\theta_j^2

    Parameters
    ----------
    theta : (..., n) array
        Points (n ≥ 1; θ₀ is the escape coordinate).
    L0, a : float
        Loss at the minima and barrier height (> 0).
    k : float, optional
        Curvature of the extra directions (default 8a, the curvature at the minima).

    Returns
    -------
    (...) array

    Raises
    ------
    FloatingPointError
        The loss overflows float64.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, model for exact checks).
    """
    th = as_float_array(theta, "theta")
    if th.ndim == 0:
        raise ValueError("theta must have a last axis (n coordinates)")
    L0 = check_positive(L0, "L0")
    a = check_positive(a, "a")
    kk = _k_value(a, k)
    x = th[..., 0]
    with np.errstate(over="ignore", invalid="ignore"):
        out = L0 + a * (x * x - 1.0) ** 2 + 0.5 * kk * np.sum(th[..., 1:] ** 2, axis=-1)
    return _finite_or_raise(out, "double_well_loss")


def double_well_gradient(theta: Any, *, L0: float, a: float, k: float | None = None
                         ) -> FloatArray:
    r"""Gradient of :func:`double_well_loss`.

    .. math:: \partial_0 L = 4a\theta_0(\theta_0^2 - 1), \qquad \partial_j L = k\theta_j

    Parameters
    ----------
    theta : (..., n) array
    L0, a, k : float
        As in :func:`double_well_loss` (L0 is validated, not used).

    Returns
    -------
    (..., n) array

    Raises
    ------
    FloatingPointError
        The gradient overflows float64.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3).
    """
    th = as_float_array(theta, "theta")
    if th.ndim == 0:
        raise ValueError("theta must have a last axis (n coordinates)")
    check_positive(L0, "L0")
    a = check_positive(a, "a")
    with np.errstate(over="ignore", invalid="ignore"):
        g = _k_value(a, k) * th.copy()
        x = th[..., 0]
        g[..., 0] = 4.0 * a * x * (x * x - 1.0)
    return _finite_or_raise(g, "double_well_gradient")


def _diffusion_scale(noise: str, n: int, a: float, kk: float, eta: float, B: float, L0: float,
                     temperature: float) -> FloatArray:
    """Per-direction factor s_i: D_i = s_i·L(θ) (sgd) or D_i = s_i (frozen, constant)."""
    h = np.full(n, kk)
    h[0] = 8.0 * a
    if noise == "sgd":
        return eta / B * h
    if noise == "frozen":
        return eta / B * L0 * h
    return np.full(n, temperature)


def _numpy_sde(theta: FloatArray, s: FloatArray, code: int, L0: float, a: float, kk: float,
               dt: float, num_steps: int, seed: int, replica_start: int, fp_mode: int,
               fp_value: float, record_every: int, trajectory: FloatArray, div: IntArray,
               loss_prev: FloatArray, xp: Any = np) -> IntArray:
    """Reference: one Python iteration per step, vectorised over the running replicas.

    Written against the array module ``xp`` (numpy, or cupy for the CuPy backend, with
    ``theta``, ``s``, ``trajectory``, ``div`` and ``loss_prev`` already on the device); the
    random numbers are the same Philox streams either way.  A replica whose L(θ_j) is not
    finite stops there: ``div`` gets j and ``loss_prev`` L(θ_{j−1}) (θ is kept at θ_j).
    """
    R, n = theta.shape
    nb = (n + 1) // 2
    reps = xp.arange(R, dtype=xp.uint64) + xp.uint64(replica_start)
    fp = xp.full(R, -1, dtype=xp.int64)
    running = xp.ones(R, dtype=bool)
    last = xp.full(R, xp.nan)
    sq = xp.sqrt(2.0 * dt * s)
    for j in range(num_steps + 1):
        x = theta[:, 0]
        L = L0 + a * (x * x - 1.0) ** 2
        for i in range(1, n):
            L = L + 0.5 * kk * theta[:, i] * theta[:, i]
        blown = running & ~xp.isfinite(L)
        if bool(blown.any()):
            div[...] = xp.where(blown, j, div)
            loss_prev[...] = xp.where(blown, last, loss_prev)
            running &= ~blown
        last = L
        if fp_mode:
            hit = running & ((L >= fp_value) if fp_mode == 1 else (x <= fp_value))
            fp[hit] = j
            running &= ~hit
        if record_every and j % record_every == 0:
            trajectory[j // record_every][running] = theta[running]
        if j == num_steps or not bool(running.any()):
            break
        z = philox.normals(seed, reps, philox.NOISE, 2 * j * nb, n, xp=xp)
        g = kk * theta
        g[:, 0] = 4.0 * a * x * (x * x - 1.0)
        amp = xp.sqrt(L)[:, None] * sq if code == 0 else sq[None, :]
        new = theta - g * dt + amp * z
        theta[...] = xp.where(running[:, None], new, theta)
    return fp


_kernel_cache: dict[str, Any] = {}


def _numba_kernel() -> Any:
    """Compile the kernel on first use."""
    if "kernel" in _kernel_cache:
        return _kernel_cache["kernel"]
    from numba import njit, prange

    normal_pair = philox.normal_pair_numba
    noise_tag = np.uint64(philox.NOISE)

    @njit(parallel=True, nogil=True)
    def kernel(theta, s, code, L0, a, kk, dt, num_steps, k0, k1, rep0, fp_mode, fp_value,
               record_every, trajectory, fp, div, loss_prev):
        R, n = theta.shape
        nb = (n + 1) // 2
        for r in prange(R):
            rep = np.uint64(rep0 + r)
            th = theta[r].copy()
            g = np.empty(n)
            z = np.empty(2 * nb)
            sq = np.empty(n)
            for i in range(n):
                sq[i] = np.sqrt(2.0 * dt * s[i])
            fp[r] = -1
            last = np.nan
            for j in range(num_steps + 1):
                x = th[0]
                L = L0 + a * (x * x - 1.0) ** 2
                for i in range(1, n):
                    L = L + 0.5 * kk * th[i] * th[i]
                if not math.isfinite(L):               # diverged: stop, keep L(θ_{j−1})
                    div[r] = j
                    loss_prev[r] = last
                    break
                last = L
                if fp_mode == 1 and L >= fp_value:
                    fp[r] = j
                    break
                if fp_mode == 2 and x <= fp_value:
                    fp[r] = j
                    break
                if record_every > 0 and j % record_every == 0:
                    for i in range(n):
                        trajectory[j // record_every, r, i] = th[i]
                if j == num_steps:
                    break
                for b in range(nb):
                    z0, z1 = normal_pair(k0, k1, rep, noise_tag, np.uint64(j * nb + b))
                    z[2 * b] = z0
                    z[2 * b + 1] = z1
                g[0] = 4.0 * a * x * (x * x - 1.0)
                for i in range(1, n):
                    g[i] = kk * th[i]
                sL = np.sqrt(L) if code == 0 else 1.0
                for i in range(n):
                    th[i] = th[i] - g[i] * dt + (sL * sq[i]) * z[i]
            for i in range(n):
                theta[r, i] = th[i]

    _kernel_cache["kernel"] = kernel
    return kernel


def simulate_sde(
    *,
    L0: float,
    a: float,
    n: int = 1,
    k: float | None = None,
    noise: str = "sgd",
    eta: float = 1.0,
    B: float = 1.0,
    temperature: float | None = None,
    dt: float,
    num_steps: int,
    num_replicas: int,
    seed: int,
    theta0: Any = None,
    first_passage_loss: float | None = None,
    first_passage_position: float | None = None,
    record_every: int | None = None,
    replica_start: int = 0,
    backend: str = "numba",
    num_threads: int | None = None,
) -> SDERun:
    r"""Euler–Maruyama replicas of the SGD SDE (or its Arrhenius alternatives) on the double well.

    .. math::
        \theta_{j+1} = \theta_j - \nabla L(\theta_j)\,\Delta t
                       + \sqrt{2\,D(\theta_j)\,\Delta t}\; z_j, \qquad
        D_i = \begin{cases} \frac{\eta}{B} L(\theta) H^*_{ii} & \text{sgd} \\
                            \frac{\eta}{B} L_0 H^*_{ii} & \text{frozen} \\
                            T & \text{constant}\end{cases}

    with H* = diag(8a, k, …, k) the Hessian at the minima (Itô reading: the noise is evaluated at
    the pre-step point, as in SGD).  With k = 8a the sgd noise is isotropic, D = TL with
    T = 8aη/B, and the exact stationary law is L^{−1−1/T}.  The Euler scheme has weak error O(Δt)
    (stationary moments) and, for first passage monitored at the grid points only, a bias of
    O(√Δt) in the passage time near a smooth boundary; choose the boundary where the passage
    time is insensitive to it (past the saddle) and Δt ≪ 1/(8a).

    Parameters
    ----------
    L0, a : float
        Loss at the minima and barrier height (> 0): c = L(saddle)/L(min) = 1 + a/L0.
    n : int
        Dimension (escape coordinate plus n − 1 harmonic directions).
    k : float, optional
        Curvature of the harmonic directions (default 8a).
    noise : {"sgd", "frozen", "constant"}
    eta, B : float
        Learning rate and batch size setting the sgd and frozen noise (> 0).
    temperature : float, optional
        T of ``noise="constant"`` (required there, refused otherwise).
    dt : float
        Euler step Δt > 0 in SDE time.
    num_steps : int
        Number of Euler steps (≥ 0).
    num_replicas : int
        R ≥ 1.
    seed : int
        Philox key in [0, 2⁶⁴).
    theta0 : (n,) or (R, n) array, optional
        Start (default: the minimum (1, 0, …, 0)).
    first_passage_loss : float, optional
        Stop a replica at the first step with L(θ) ≥ this level.
    first_passage_position : float, optional
        Stop a replica at the first step with θ₀ ≤ this position (crossing towards the other
        well).  At most one of the two passage conditions.
    record_every : int, optional
        Store θ every this many steps (refused above 1 GiB).
    replica_start : int
        Stream index of replica 0.
    backend : {"numba", "numpy", "cupy", "auto"}
        ``"cupy"`` runs the numpy reference on device arrays with the same Philox streams.
    num_threads : int, optional
        Numba threads; results do not depend on it.

    Returns
    -------
    SDERun

    Raises
    ------
    DivergenceError
        A replica diverged: at the first step j at which L(θ_j) is not finite (θ_j not finite,
        or so large that L overflows float64), checked before the passage condition.  Names the
        replica (earliest step, then lowest index) and its stream, j, L(θ_{j−1}), η and Δt;
        every backend applies the same check.
    ValueError
        Invalid arguments, naming the argument (including a ``theta0`` whose loss is not
        finite).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claims C2–C4: the SDE
    dθ = −∇L dt + √(2ηL H*/B) dW); Kloeden & Platen (1992), §9.1, §14.1 (Euler–Maruyama).
    """
    L0 = check_positive(L0, "L0")
    a = check_positive(a, "a")
    n = check_positive_int(n, "n")
    kk = _k_value(a, k)
    check_choice(noise, "noise", SDE_NOISES)
    eta = check_positive(eta, "eta")
    B = check_positive(B, "B")
    if noise == "constant":
        if temperature is None:
            raise ValueError("temperature is required with noise='constant'")
        temperature = check_positive(temperature, "temperature")
    elif temperature is not None:
        raise ValueError("temperature is only used with noise='constant'")
    dt = check_positive(dt, "dt")
    num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
    R = check_positive_int(num_replicas, "num_replicas")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64); got {seed!r}")
    seed = int(seed)
    replica_start = check_positive_int(replica_start, "replica_start", minimum=0)
    if replica_start + R > 2**32:
        raise ValueError("replica_start must leave room for num_replicas streams below 2**32")
    if first_passage_loss is not None and first_passage_position is not None:
        raise ValueError("first_passage_position: give at most one of first_passage_loss and "
                         "first_passage_position")
    fp_mode, fp_value = 0, 0.0
    for mode, name, value in ((1, "first_passage_loss", first_passage_loss),
                              (2, "first_passage_position", first_passage_position)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite real number; got {value!r}")
            fp_mode, fp_value = mode, float(value)
    with np.errstate(over="ignore", invalid="ignore"):
        s = _diffusion_scale(noise, n, a, kk, eta, B, L0, temperature or 0.0)
        step_var = 2.0 * dt * s
    if not (math.isfinite(kk) and np.isfinite(s).all() and np.isfinite(step_var).all()):
        raise ValueError("dt, eta, B, L0, a, k, temperature: the curvatures 8a, k or the noise "
                         "variance 2·dt·D per step overflow float64; use smaller values")
    if theta0 is None:
        theta0 = np.eye(1, n)[0]
    th0 = as_float_array(theta0, "theta0", ndim=(1, 2))
    if th0.shape[-1] != n or (th0.ndim == 2 and th0.shape[0] != R):
        raise ValueError(f"theta0 must have shape ({n},) or ({R}, {n}); got {th0.shape}")
    if not np.all(np.isfinite(th0)):
        raise ValueError("theta0 must be finite")
    theta = np.ascontiguousarray(np.broadcast_to(th0, (R, n)), dtype=np.float64).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        x0 = theta[:, 0]
        loss0 = L0 + a * (x0 * x0 - 1.0) ** 2 + 0.5 * kk * np.sum(theta[:, 1:] ** 2, axis=-1)
    if not np.all(np.isfinite(loss0)):
        raise ValueError("theta0: the loss at theta0 is not finite; start closer to the wells")
    rec = 0
    num_records = 0
    if record_every is not None:
        rec = check_positive_int(record_every, "record_every")
        num_records = num_steps // rec + 1
        if num_records * R * n * 8 > _MAX_RECORD_BYTES:
            raise ValueError(f"record_every={rec} would store more than 1 GiB; record less often")
    if num_threads is not None:
        num_threads = check_positive_int(num_threads, "num_threads")
    resolved = backends.resolve(backend, supported=("numpy", "numba", "cupy"))
    code = _NOISE_CODES[noise]
    trajectory = np.full((num_records, R, n), np.nan)
    div = np.full(R, -1, dtype=np.int64)
    loss_prev = np.full(R, np.nan)
    if resolved == "numba":
        key0, key1 = philox.seed_key(seed)
        fp = np.empty(R, dtype=np.int64)
        with backends.numba_threads(num_threads):
            _numba_kernel()(theta, s, code, L0, a, kk, dt, num_steps, np.uint64(key0),
                            np.uint64(key1), replica_start, fp_mode, fp_value, rec,
                            trajectory if rec else np.empty((1, 1, n)), fp, div, loss_prev)
    elif resolved == "cupy":
        import cupy

        th_d, traj_d = cupy.asarray(theta), cupy.asarray(trajectory)
        div_d, prev_d = cupy.asarray(div), cupy.asarray(loss_prev)
        fp_d = _numpy_sde(th_d, cupy.asarray(s), code, L0, a, kk, dt, num_steps, seed,
                          replica_start, fp_mode, fp_value, rec, traj_d, div_d, prev_d, xp=cupy)
        theta[...] = cupy.asnumpy(th_d)
        trajectory[...] = cupy.asnumpy(traj_d)
        div[...] = cupy.asnumpy(div_d)
        loss_prev[...] = cupy.asnumpy(prev_d)
        fp = cupy.asnumpy(fp_d)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            fp = _numpy_sde(theta, s, code, L0, a, kk, dt, num_steps, seed, replica_start,
                            fp_mode, fp_value, rec, trajectory, div, loss_prev)
    if (div >= 0).any():
        bad = np.flatnonzero(div >= 0)
        r = int(bad[np.argmin(div[bad])])
        j = int(div[r])
        raise DivergenceError(
            j, None, float(loss_prev[r]), eta, "the loss L(θ) is not finite (θ diverged)",
            replica=r, subject=f"replica {r} (stream {replica_start + r})", loss_step=j - 1,
            details=f", Euler step dt {dt:.4g}",
            advice="Lower dt (Δt ≪ 1/(8a) and 1/k), or stop each replica at a level with "
                   "first_passage_loss or first_passage_position")
    config = {"noise": noise, "L0": L0, "a": a, "n": n, "k": kk, "eta": eta, "B": B,
              "temperature": temperature, "dt": dt, "num_steps": num_steps, "num_replicas": R,
              "seed": seed, "replica_start": replica_start, "backend": resolved,
              "first_passage_loss": first_passage_loss,
              "first_passage_position": first_passage_position, "record_every": rec or None}
    out_fp = fp if fp_mode else None
    return SDERun(
        theta=theta, first_passage=out_fp,
        first_passage_time=None if out_fp is None else np.where(fp < 0, num_steps, fp) * dt,
        censored=None if out_fp is None else fp < 0,
        trajectory=trajectory if rec else None,
        record_times=np.arange(num_records) * rec * dt if rec else None, config=config)


__all__ = ["SDE_NOISES", "SDERun", "double_well_gradient", "double_well_loss", "simulate_sde"]

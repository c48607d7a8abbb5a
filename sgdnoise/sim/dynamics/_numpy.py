r"""The reference replica engine: one Python iteration per step, vectorised over replicas.

Written against an array module ``xp`` so that the CuPy backend runs this same code on device
arrays.  It implements, for every replica r at once, the step loop documented in
:func:`sgdnoise.sim.dynamics.simulate`; the random numbers of replica r at step k come from the
Philox streams of :mod:`sgdnoise.sim.philox` with replica index ``replica_start + r``:

* noise: normals number 2k⌈D/2⌉ … 2k⌈D/2⌉ + D − 1 of tag NOISE (⌈D/2⌉ blocks per step);
* batches with replacement: bounded draws kB … kB + B − 1 of tag BATCH (bound N);
* i.i.d. batches: :func:`~sgdnoise.sim.philox.sample_without_replacement` from draw kB;
* reshuffling: epoch e = k // ⌊N/B⌋ uses ``permutation(…, PERMUTATION, start=e(N−1), n=N)``
  and step k its slice m = k mod ⌊N/B⌋, entries mB … mB + B − 1 (shuffle-once: always e = 0).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from sgdnoise.sim import philox
from sgdnoise.sim.dynamics._structures import eigen_factors
from sgdnoise.sim.dynamics.observers._base import Observation, Update

if TYPE_CHECKING:
    from sgdnoise.sim.dynamics._engine import _Plan


def batch_indices(plan: _Plan, k: int, reps: Any, cache: dict[int, Any], xp: ModuleType) -> Any:
    """Row indices (R, B) of step k's minibatch of every replica."""
    B, N = plan.B, plan.N
    if plan.scheme == "replacement":
        return philox.integers(plan.seed, reps, philox.BATCH, k * B, B, N, xp=xp)
    if plan.scheme == "iid":
        return philox.sample_without_replacement(plan.seed, reps, philox.BATCH, k * B, N, B, xp=xp)
    M = plan.steps_per_epoch
    e = k // M if plan.scheme == "reshuffle" else 0
    m = k % M
    if e not in cache:
        cache.clear()
        cache[e] = philox.permutation(plan.seed, reps, philox.PERMUTATION, e * (N - 1), N, xp=xp)
    return cache[e][:, m * B:(m + 1) * B]


def _scaled(u: Any, t: Any, xp: ModuleType) -> Any:
    T = u.sum(axis=-1)
    safe = xp.where(T > 0, T, 1.0)
    return u * xp.where(T > 0, t / safe, 0.0)[:, None]


def _finite_rows(a: Any, xp: ModuleType) -> Any:
    """(R,) bool: whether every entry of a[r] (shape (R, …)) is finite."""
    return xp.isfinite(a.reshape(a.shape[0], -1)).all(axis=-1)


def langevin_sample(dev: Any, plan: _Plan, theta: Any, z: Any, xp: ModuleType
                    ) -> tuple[Any, Any]:
    """ξ = Σ_t^{1/2} z (gradient form) or ε = S_t^{1/2} z (parameter form), shape (R, D), and
    which replicas had finite statistics (R,) bool (None when none were computed).

    The statistics (Σ̂, its trace, H) of a replica are checked before they are used: where one
    is not finite the replica's ξ is NaN (the step diverges) and its eigendecomposition is
    taken of a zero matrix instead, so that the linear algebra never sees a non-finite number.
    """
    kind = plan.kind
    if kind == "const":
        return plan.sigma_xp[:, None] * z, None
    if kind == "fixed":
        return z @ plan.root_xp, None
    R, D = theta.shape
    S = None
    ok = None
    if plan.stats_mode:
        _, S1 = dev.statistics(theta, plan.stats_mode == 2)
        S = plan.scale_hat * S1
        ok = _finite_rows(S, xp)
    if plan.trace_given:
        t = xp.full(R, plan.noise_trace)
    elif S.ndim == 2:
        t = S.sum(axis=-1)
    else:
        t = xp.diagonal(S, axis1=-2, axis2=-1).sum(axis=-1)
    if ok is not None:
        ok = ok & xp.isfinite(t)
    if kind == "dynamic":
        return _nan_where_bad(xp.sqrt(t / D)[:, None] * z, ok, xp), ok
    if kind == "diag":
        d = xp.maximum(S if S.ndim == 2 else xp.diagonal(S, axis1=-2, axis2=-1), 0.0)
        return _nan_where_bad(xp.sqrt(_scaled(d, t, xp)) * z, ok, xp), ok
    H = dev.hessian(theta) if kind in ("hessian", "eigvec1") else None
    if H is not None:
        ok_h = _finite_rows(H, xp)
        ok = ok_h if ok is None else ok & ok_h
    if ok is not None and not bool(ok.all()):
        bad = ~ok[:, None, None]
        S = None if S is None else xp.where(bad, 0.0, S)
        H = None if H is None else xp.where(bad, 0.0, H)
        t = xp.where(ok, t, 0.0)
    mu, V = eigen_factors(kind, S, H, plan.topk, t, xp)
    y = xp.matmul(xp.swapaxes(V, -1, -2), z[:, :, None])[:, :, 0]        # Vᵀz
    xi = xp.matmul(V, (xp.sqrt(mu) * y)[:, :, None])[:, :, 0]
    return _nan_where_bad(xi, ok, xp), ok


def _nan_where_bad(xi: Any, ok: Any, xp: ModuleType) -> Any:
    """ξ with the rows of the replicas whose statistics are not finite set to NaN."""
    return xi if ok is None else xp.where(ok[:, None], xi, xp.nan)


def noisy_gradient(dev: Any, plan: _Plan, theta: Any, k: int, reps: Any, cache: dict[int, Any],
                   xp: ModuleType) -> tuple[Any, Any]:
    """The gradient g of step k: ∇L, ĝ_B, ∇L + ξ, or ∇L − ε/η (parameter form); and which
    replicas had finite statistics (None when none were computed; see :func:`langevin_sample`).
    """
    if plan.noise_name == "gd":
        return dev.gradient(theta), None
    if plan.noise_name == "sgd":
        idx = batch_indices(plan, k, reps, cache, xp)
        g_batch = dev.batch_gradient(theta, idx)
        if not plan.form_param:
            return g_batch, None
        g_full = dev.gradient(theta)
        _, d = dev.statistics(theta, False)
        tr = (plan.scale_hat * d).sum(axis=-1)
        ok = xp.isfinite(tr)
        safe = xp.where(tr > 0, tr, 1.0)
        s = xp.sqrt(xp.where(tr > 0, plan.noise_trace / safe, 0.0))
        s = xp.where(ok, s, xp.nan)
        return g_full - (s[:, None] * (g_batch - g_full)) / plan.eta, ok
    nb = (plan.D + 1) // 2
    z = philox.normals(plan.seed, reps, philox.NOISE, 2 * k * nb, plan.D, xp=xp)
    g_full = dev.gradient(theta)
    xi, ok = langevin_sample(dev, plan, theta, z, xp)
    if plan.form_param:
        return g_full - xi / plan.eta, ok
    return g_full + xi, ok


def advance(dev: Any, plan: _Plan, st: dict[str, Any], states: list[Any], k_start: int,
            k_stop: int, xp: ModuleType) -> None:
    """Observe θ_k and update it for k = k_start … k_stop − 1 (and observe θ_K if K = k_stop).

    Updates the engine's state ``st`` (see ``_engine._new_state``) and the observers' states
    ``states`` in place.  Stops at the end of the first step at which a running replica's
    parameters become non-finite (status 1), or its noise statistics (Σ̂, its trace, H) were
    not finite (status 3; its θ is then NaN).
    """
    reps = xp.arange(plan.R, dtype=xp.uint64) + xp.uint64(plan.replica_start)
    cache: dict[int, Any] = {}
    pairs = list(zip(plan.observers, states, strict=True))
    for k in range(k_start, k_stop + 1):
        final = k == plan.num_steps
        if k == k_stop and not final:
            break
        theta = st["theta"]
        status = st["status"]
        running = status == 0
        L = None
        if any(obs.wants_loss(s, k, running) for obs, s in pairs):
            L = xp.where(status == 2, st["loss_now"], dev.loss(theta))
        view = Observation(theta, L, running, xp)
        absorb = None
        for obs, s in pairs:
            hit = obs.observe(s, k, view)
            if hit is not None:
                absorb = hit if absorb is None else absorb | hit
        if absorb is not None:
            hit = running & absorb
            st["loss_now"][...] = xp.where(hit, L, st["loss_now"])
            st["stop_step"][...] = xp.where(hit, k, st["stop_step"])
            status[...] = xp.where(hit, 2, status)
            running = status == 0
        if final:
            break
        g, stats_ok = noisy_gradient(dev, plan, theta, k, reps, cache, xp)
        vel = st["velocity"]
        if plan.pytorch:
            vel_new = plan.beta * vel + g
            theta_new = theta - plan.eta * vel_new
        else:
            vel_new = plan.beta * vel - plan.eta * g
            theta_new = theta + vel_new
        finite = xp.isfinite(theta_new).all(axis=-1)
        update = (running & finite)[:, None]
        theta_next = xp.where(update, theta_new, theta)
        upd = Update(theta, theta_next, running, lambda g=g, th=theta: g - dev.gradient(th), xp)
        for obs, s in pairs:
            obs.observe_update(s, k, upd)
        st["velocity"][...] = xp.where(update, vel_new, vel)
        st["theta"][...] = theta_next
        bad = running & ~finite
        if bool(bad.any()):
            code = 1 if stats_ok is None else xp.where(stats_ok, 1, 3)
            status[...] = xp.where(bad, code, status)
            st["div_step"][...] = xp.where(bad, k + 1, st["div_step"])
            return


# ------------------------------------------------------------------- runner interface (engine)
class _Context:
    """Device view, plan and states of one run of this backend."""

    def __init__(self, dev: Any, plan: _Plan, st: dict[str, Any], states: list[Any],
                 xp: ModuleType) -> None:
        self.dev, self.plan, self.st, self.states, self.xp = dev, plan, st, states, xp


def prepare(problem: Any, plan: _Plan, state: dict[str, Any], num_threads: int | None, *,
            xp: ModuleType | None = None) -> _Context:
    """Move the problem and the state to ``xp`` (numpy by default) and create the observers'
    states there; ``num_threads`` is unused."""
    if xp is None:
        import numpy as xp
    plan.sigma_xp = xp.asarray(plan.sigma)
    plan.root_xp = xp.asarray(plan.root)
    st = {name: xp.asarray(a) for name, a in state.items()}
    states = [obs.init(plan.info, xp) for obs in plan.observers]
    return _Context(problem._device(xp), plan, st, states, xp)


def run_chunk(ctx: _Context, k_start: int, k_stop: int) -> None:
    """Run steps k_start … k_stop − 1 (see :func:`advance`).  Overflow on the way to a
    divergence is expected (it is detected and reported), so numpy does not warn about it."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        advance(ctx.dev, ctx.plan, ctx.st, ctx.states, k_start, k_stop, ctx.xp)


def divergence(ctx: _Context) -> tuple[Any, Any, Any]:
    """(status, divergence step, θ) as numpy arrays."""
    from sgdnoise.backends import to_numpy

    return (to_numpy(ctx.st["status"]), to_numpy(ctx.st["div_step"]),
            to_numpy(ctx.st["theta"]))


def finish(ctx: _Context) -> tuple[dict[str, Any], list[Any]]:
    """The engine's state and the observers' states, as numpy arrays."""
    from sgdnoise.backends import to_numpy

    return ({name: to_numpy(a) for name, a in ctx.st.items()},
            [_to_host(s, to_numpy) for s in ctx.states])


def _to_host(state: Any, convert: Any) -> Any:
    """A state NamedTuple with its device arrays copied to numpy (scalars unchanged)."""
    return type(state)(*(convert(v) if hasattr(v, "shape") else v for v in state))


__all__ = ["advance", "batch_indices", "divergence", "finish", "langevin_sample", "noisy_gradient",
           "prepare", "run_chunk"]

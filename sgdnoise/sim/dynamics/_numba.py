r"""Numba kernels of the replica engine: ``prange`` over replicas, the whole step loop inside.

Each replica's steps run on one thread with its own scratch arrays and its own Philox streams,
so results are the same for any number of threads.  The kernels follow the step loop and the
stream layout of the reference (:mod:`sgdnoise.sim.dynamics._numpy`) exactly; they differ from it
only in the order of floating-point sums.

* ``_toy_kernel``: :class:`Toy2DProblem`, every noise model and form.  One pass over the N
  samples gives the per-sample gradients (kept in an (N, 2) scratch array), L, ∇L and the
  fraction of samples on the sharp branch (hence H); Σ₁ is then a centred second pass over the
  stored gradients; 2 × 2 eigendecompositions are in closed form.
* ``_quadratic_kernel``: :class:`LinearRegressionProblem` and :class:`QuadraticProblem` (L and ∇L
  through the quadratic form about θ*; per-sample gradients r_p x_p for batches and Σ̂), with gd,
  sgd (all schemes) and Langevin ``const``, ``dynamic``, ``diag``, ``fixed``; a
  :class:`QuadraticProblem` with per-sample gradients ``G`` (frozen noise, spec part D) takes
  its minibatch gradient as Ae + mean of the batch rows of G (gd, sgd in gradient form, and the
  Langevin kinds that need no Σ̂).

Both kernels observe the moments at the steps ``_moment_due`` selects (every step, or one
position per period) and, with ``noise_lags``, keep a ring of the last L gradient noises
ξ_k = g_k − ∇L(θ_k) per replica and accumulate their lag products.

Status codes per replica: 0 running, 1 non-finite parameters at step ``div_step`` (the kernel
keeps θ at the last finite point and stops that replica; Python raises), 2 stopped at its first
passage, 3 non-finite noise statistics (Σ̂ or its trace) at step ``div_step`` − 1, checked
before they are used (θ kept there, as for 1).

Sums over samples (and the linear kernel's dot products) are compiled with reassociation and
fused multiply-adds allowed (``_REASSOC``), so they vectorise; the result is still the same on
every thread.  The kernels are cached on disk (``cache=True``); they inline the Philox functions
of :mod:`sgdnoise.sim.philox`, whose file Numba's cache does not watch, so a change to that
module needs the ``__pycache__`` of this package cleared.
"""

from __future__ import annotations

import itertools
import math
import types as pytypes
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array

from sgdnoise.sim import philox
from sgdnoise.sim.dynamics._problems import LinearRegressionProblem, Toy2DProblem
from sgdnoise.sim.dynamics.observers._base import (
    Observer,
    observe,
    observe_update,
    wants_loss,
)
from sgdnoise.sim.models.toy import SHARP_HESSIAN

normal_pair = philox.normal_pair_numba
philox4x32 = philox.philox4x32_numba
bounded = philox.bounded_numba
permutation_fill = philox.permutation_numba

_C = math.cos(math.pi / 4)
_S = math.sin(math.pi / 4)
_H1_00 = float(SHARP_HESSIAN[0, 0])
_H1_01 = float(SHARP_HESSIAN[0, 1])
_H1_11 = float(SHARP_HESSIAN[1, 1])
_NOISE_TAG = philox.NOISE
_BATCH_TAG = philox.BATCH
_PERM_TAG = philox.PERMUTATION
_MASK = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_S32 = np.uint64(32)

#: Compiler freedom for the sums over samples: reassociation (vectorised reductions) and fused
#: multiply-adds only, so non-finite values still propagate and are detected.
_REASSOC = {"reassoc", "contract"}

# integer parameter layout (``_Plan.int_params``)
I_START, I_STOP, I_STEPS, I_NOISE, I_KIND, I_SCHEME, I_B, I_TOPK, I_PARAM, I_PYTORCH = range(10)
I_REP0, I_KEY0, I_KEY1, I_EPOCH, I_TRACE, I_STATS, I_NEED_NOISE = range(10, 17)
F_ETA, F_BETA, F_TRACE, F_SCALE = range(4)




# ----------------------------------------------------------------------------- shared pieces
@njit(cache=True, inline="always")
def _draw_batch(ip: Any, k: int, rep: Any, N: int, perm: Any, perm_epoch: int, js: Any,
                idx: Any) -> int:
    """Fill idx (B,) with step k's batch; returns the epoch whose permutation ``perm`` holds."""
    B = ip[I_B]
    scheme = ip[I_SCHEME]
    k0 = ip[I_KEY0]
    k1 = ip[I_KEY1]
    if scheme == 0:                                   # with replacement
        w0 = w1 = w2 = w3 = np.uint64(0)
        for b in range(B):
            d = np.uint64(k * B + b)
            if b == 0 or (d & _ONE) == 0:
                blk = d >> _ONE
                w0, w1, w2, w3 = philox4x32(blk & _MASK, blk >> _S32, rep, _BATCH_TAG, k0, k1)
            if d & _ONE:
                idx[b] = bounded(w2, w3, N)
            else:
                idx[b] = bounded(w0, w1, N)
        return perm_epoch
    if scheme == 1:                                   # B distinct: partial Fisher–Yates
        w0 = w1 = w2 = w3 = np.uint64(0)
        for b in range(B):
            d = np.uint64(k * B + b)
            if b == 0 or (d & _ONE) == 0:
                blk = d >> _ONE
                w0, w1, w2, w3 = philox4x32(blk & _MASK, blk >> _S32, rep, _BATCH_TAG, k0, k1)
            if d & _ONE:
                j = bounded(w2, w3, N - b)
            else:
                j = bounded(w0, w1, N - b)
            i = N - 1 - b
            js[b] = j
            t = perm[i]
            perm[i] = perm[j]
            perm[j] = t
            idx[b] = perm[i]
        for b in range(B - 1, -1, -1):                # undo: perm is the identity again
            i = N - 1 - b
            j = js[b]
            t = perm[i]
            perm[i] = perm[j]
            perm[j] = t
        return perm_epoch
    M = ip[I_EPOCH]
    e = k // M if scheme == 2 else 0
    if e != perm_epoch:
        permutation_fill(k0, k1, rep, _PERM_TAG, e * (N - 1), perm)
    m = k % M
    for b in range(B):
        idx[b] = perm[m * B + b]
    return e


@njit(cache=True, fastmath={"reassoc"})
def _momentum_step(pytorch: bool, eta: float, beta: float, th: Any, v: Any, g: Any,
                   th_new: Any, v_new: Any) -> bool:
    """v, θ after one step on gradient g (heavy ball or PyTorch style); True if θ is finite.

    The finite check sums θ_i − θ_i: 0 if all are finite, NaN if one is ±inf or NaN (only
    reassociation is allowed here, so the update itself is evaluated as written)."""
    s = 0.0
    if pytorch:
        for i in range(th.shape[0]):
            v_new[i] = beta * v[i] + g[i]
            th_new[i] = th[i] - eta * v_new[i]
            s += th_new[i] - th_new[i]
    else:
        for i in range(th.shape[0]):
            v_new[i] = beta * v[i] - eta * g[i]
            th_new[i] = th[i] + v_new[i]
            s += th_new[i] - th_new[i]
    return s == 0.0


def _without_meminfo(context: Any, builder: Any, ty: Any, value: Any) -> Any:
    """``value`` of type ``ty`` with every array's meminfo (its reference count) set to NULL."""
    if isinstance(ty, types.Array):
        ary = make_array(ty)(context, builder, value)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        return ary._getvalue()
    if isinstance(ty, types.BaseTuple):
        for i, t in enumerate(ty.types):
            member = _without_meminfo(context, builder, t, builder.extract_value(value, i))
            value = builder.insert_value(value, member, i)
    return value


@intrinsic
def _borrowed(typingctx: Any, states: Any) -> Any:
    """The observers' states, their arrays borrowed from the kernel's argument (which keeps them
    alive for the call): without a meminfo, so that handing a state to an observer's hook at
    every step costs no atomic reference counting (numba increfs the arrays of every value it
    takes out of a tuple or passes to a function)."""
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return _without_meminfo(context, builder, states, args[0])

    return states(states), codegen


# ------------------------------------------------------- the observers' hooks over the tuple
# The kernels call each observer's hook through these three functions, which walk the tuple of
# states at compile time (states[0], then the rest): one static call per observer, in order,
# with no loop.  (``numba.literal_unroll`` over a heterogeneous tuple allocates stack space for
# its loop variable in every iteration, so a long run's stack grew without bound.)
def _wants_loss_all(states: Any, r: int, k: int, absorbed: bool) -> bool:
    """Whether any observer wants L(θ_k) of replica r (every hook is called)."""
    raise NotImplementedError("compiled through numba.extending.overload only")


def _observe_all(states: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    """Every observer's ``observe`` of replica r; True if any absorbs it."""
    raise NotImplementedError("compiled through numba.extending.overload only")


def _observe_update_all(states: Any, r: int, k: int, th: Any, th_new: Any, g: Any,
                        grad: Any) -> None:
    """Every observer's ``observe_update`` of replica r."""
    raise NotImplementedError("compiled through numba.extending.overload only")


@overload(_wants_loss_all)
def _wants_loss_all_impl(states, r, k, absorbed):  # noqa: ANN001, ANN202
    if len(states) == 1:
        return lambda states, r, k, absorbed: wants_loss(states[0], r, k, absorbed)

    def impl(states, r, k, absorbed):  # noqa: ANN001, ANN202
        first = wants_loss(states[0], r, k, absorbed)
        rest = _wants_loss_all(states[1:], r, k, absorbed)
        return first or rest

    return impl


@overload(_observe_all)
def _observe_all_impl(states, r, k, th, loss, absorbed):  # noqa: ANN001, ANN202
    if len(states) == 1:
        return lambda states, r, k, th, loss, absorbed: observe(states[0], r, k, th, loss,
                                                                absorbed)

    def impl(states, r, k, th, loss, absorbed):  # noqa: ANN001, ANN202
        first = observe(states[0], r, k, th, loss, absorbed)
        rest = _observe_all(states[1:], r, k, th, loss, absorbed)
        return first or rest

    return impl


@overload(_observe_update_all)
def _observe_update_all_impl(states, r, k, th, th_new, g, grad):  # noqa: ANN001, ANN202
    if len(states) == 1:
        return lambda states, r, k, th, th_new, g, grad: observe_update(states[0], r, k, th,
                                                                        th_new, g, grad)

    def impl(states, r, k, th, th_new, g, grad):  # noqa: ANN001, ANN202
        observe_update(states[0], r, k, th, th_new, g, grad)
        _observe_update_all(states[1:], r, k, th, th_new, g, grad)

    return impl


# ---------------------------------------------------------------------------------------- toy
@njit(cache=True)
def _toy_sample(w0: float, w1: float, x0: float, x1: float) -> tuple[float, float, float, bool]:
    """ℓ, g of one sample (active branch; the sharp one at a tie) and whether it is sharp."""
    d0 = w0 - x0
    d1 = w1 - x1
    p = d0 - 1.0
    q = d1 - 1.0
    a = _C * p - _S * q
    b = _C * p + _S * q
    f1 = 10.0 * a * a + 100.0 * b * b
    e1 = d0 + 1.0
    e2 = d1 + 1.0
    f2 = e1 * e1 + e2 * e2
    if f1 <= f2:
        return f1, 20.0 * a * _C + 200.0 * b * _C, -20.0 * a * _S + 200.0 * b * _S, True
    return f2, 2.0 * e1, 2.0 * e2, False


@njit(cache=True, fastmath=_REASSOC)
def _toy_pass(w0: float, w1: float, x: Any, G: Any) -> tuple[float, float, float, int]:
    """One pass over the samples at w: L, ∇L (mean of G) and the count on the sharp branch;
    stores the per-sample gradients in G (N, 2).  Branch-free so that it vectorises."""
    N = x.shape[0]
    Ls = 0.0
    s0 = 0.0
    s1 = 0.0
    n1 = 0
    for p in range(N):
        d0 = w0 - x[p, 0]
        d1 = w1 - x[p, 1]
        q0 = d0 - 1.0
        q1 = d1 - 1.0
        a = _C * q0 - _S * q1
        b = _C * q0 + _S * q1
        f1 = 10.0 * a * a + 100.0 * b * b
        e1 = d0 + 1.0
        e2 = d1 + 1.0
        f2 = e1 * e1 + e2 * e2
        sharp = f1 <= f2
        ga = 20.0 * a * _C + 200.0 * b * _C if sharp else 2.0 * e1
        gb = -20.0 * a * _S + 200.0 * b * _S if sharp else 2.0 * e2
        G[p, 0] = ga
        G[p, 1] = gb
        Ls += f1 if sharp else f2
        s0 += ga
        s1 += gb
        n1 += 1 if sharp else 0
    return Ls / N, s0 / N, s1 / N, n1


@njit(cache=True, fastmath=_REASSOC)
def _toy_centred(G: Any, gm0: float, gm1: float) -> tuple[float, float, float]:
    """Σ_p (g_p − ḡ)(g_p − ḡ)ᵀ entries (00, 01, 11) from the stored gradients."""
    c00 = 0.0
    c01 = 0.0
    c11 = 0.0
    for p in range(G.shape[0]):
        a0 = G[p, 0] - gm0
        a1 = G[p, 1] - gm1
        c00 += a0 * a0
        c01 += a0 * a1
        c11 += a1 * a1
    return c00, c01, c11


@njit(cache=True)
def _eig2(a: float, b: float, d: float) -> tuple[float, float, float, float]:
    """Eigenvalues (hi, lo) of [[a, b], [b, d]] and v_hi = (c, s); v_lo = (−s, c)."""
    m = 0.5 * (a + d)
    h = 0.5 * (a - d)
    r = math.hypot(h, b)
    phi = 0.5 * math.atan2(b, h)
    return m + r, m - r, math.cos(phi), math.sin(phi)


@njit(cache=True, nogil=True)
def _toy_replicas(r0: int, r1: int, x: Any, theta: Any, vel: Any, status: Any, div_step: Any,
                  loss_now: Any, stop_step: Any, sigma: Any, root: Any, ip: Any, fpar: Any,
                  observer_states: Any) -> None:
    """Steps ip[I_START] … ip[I_STOP] − 1 of replicas r0 … r1 − 1 of the toy (one thread)."""
    states = _borrowed(observer_states)
    N = x.shape[0]
    noise = ip[I_NOISE]
    kind = ip[I_KIND]
    param = ip[I_PARAM] != 0
    stats = ip[I_STATS]
    eta = fpar[F_ETA]
    scale_hat = fpar[F_SCALE]
    key0 = ip[I_KEY0]
    key1 = ip[I_KEY1]
    lags = ip[I_NEED_NOISE] != 0
    th = np.empty(2)
    v = np.empty(2)
    th_new = np.empty(2)
    v_new = np.empty(2)
    g = np.empty(2)
    grad = np.empty(2)
    G = np.empty((N, 2))
    B = max(ip[I_B], 1)
    idx = np.empty(B, dtype=np.int64)
    js = np.empty(B, dtype=np.int64)
    for r in range(r0, r1):
        if status[r] == 1 or status[r] == 3:
            continue
        rep = np.uint64(ip[I_REP0] + r)
        for i in range(2):
            th[i] = theta[r, i]
            v[i] = vel[r, i]
        perm = np.arange(N) if noise == 1 and ip[I_SCHEME] != 0 else np.empty(0, dtype=np.int64)
        perm_epoch = np.int64(-1)
        absorbed = status[r] == 2
        for k in range(ip[I_START], ip[I_STOP] + 1):
            final = k == ip[I_STEPS]
            if k == ip[I_STOP] and not final:
                break
            need_loss = _wants_loss_all(states, r, k, absorbed)
            need_pass = not absorbed and (need_loss
                                          or (not final and (noise != 1 or param or lags)))
            L = 0.0
            gm0 = 0.0
            gm1 = 0.0
            frac = 0.0
            if need_pass:
                L, gm0, gm1, n1 = _toy_pass(th[0], th[1], x, G)
                frac = n1 / N
            Lk = loss_now[r] if absorbed else L
            absorb = _observe_all(states, r, k, th, Lk, absorbed)
            if absorb and not absorbed:
                status[r] = 2
                loss_now[r] = Lk
                stop_step[r] = k
                absorbed = True
            if final:
                break
            if absorbed:
                continue
            # ---- Σ̂ (scaled), if needed
            S00 = 0.0
            S01 = 0.0
            S11 = 0.0
            if stats > 0:
                c00, c01, c11 = _toy_centred(G, gm0, gm1)
                S00 = scale_hat * (c00 / N)
                S01 = scale_hat * (c01 / N)
                S11 = scale_hat * (c11 / N)
                # Σ̂ and its trace must be finite before they are used (S00, S11 ≥ 0 or NaN)
                if not (math.isfinite(S00 + S11) and (stats < 2 or math.isfinite(S01))):
                    status[r] = 3
                    div_step[r] = k + 1
                    break
            # ---- the noisy gradient g
            if noise == 0:
                g[0] = gm0
                g[1] = gm1
            elif noise == 1:
                perm_epoch = _draw_batch(ip, k, rep, N, perm, perm_epoch, js, idx)
                b0 = 0.0
                b1 = 0.0
                for b in range(ip[I_B]):
                    j = idx[b]
                    _, ga, gb, _ = _toy_sample(th[0], th[1], x[j, 0], x[j, 1])
                    b0 += ga
                    b1 += gb
                b0 = b0 / ip[I_B]
                b1 = b1 / ip[I_B]
                if not param:
                    g[0] = b0
                    g[1] = b1
                else:
                    tr = S00 + S11
                    s = math.sqrt(fpar[F_TRACE] / tr) if tr > 0 else 0.0
                    g[0] = gm0 - (s * (b0 - gm0)) / eta
                    g[1] = gm1 - (s * (b1 - gm1)) / eta
            else:
                z0, z1 = normal_pair(key0, key1, rep, _NOISE_TAG, k)
                t = fpar[F_TRACE] if ip[I_TRACE] else S00 + S11
                xi0 = 0.0
                xi1 = 0.0
                if kind == 0:                              # const
                    xi0 = sigma[r] * z0
                    xi1 = sigma[r] * z1
                elif kind == 7:                            # fixed: z @ root
                    xi0 = z0 * root[0, 0] + z1 * root[1, 0]
                    xi1 = z0 * root[0, 1] + z1 * root[1, 1]
                elif kind == 1:                            # dynamic
                    sd = math.sqrt(t / 2)
                    xi0 = sd * z0
                    xi1 = sd * z1
                elif kind == 2:                            # diag
                    d0 = max(S00, 0.0)
                    d1 = max(S11, 0.0)
                    T = d0 + d1
                    c = t / T if T > 0 else 0.0
                    xi0 = math.sqrt(d0 * c) * z0
                    xi1 = math.sqrt(d1 * c) * z1
                else:                                      # eigen-kinds
                    if kind == 3 or kind == 4:
                        l_hi, l_lo, cs, sn = _eig2(S00, S01, S11)
                    else:
                        h00 = frac * _H1_00 + (1.0 - frac) * 2.0
                        h01 = frac * _H1_01 + (1.0 - frac) * 0.0
                        h11 = frac * _H1_11 + (1.0 - frac) * 2.0
                        l_hi, l_lo, cs, sn = _eig2(h00, h01, h11)
                    topk = ip[I_TOPK]
                    if kind == 6:
                        topk = 1
                    if kind == 3:
                        topk = 0
                    w_hi = 1.0
                    w_lo = 1.0
                    if topk == 1:
                        if l_hi > l_lo:
                            w_lo = 0.0
                        else:
                            w_hi = 0.5
                            w_lo = 0.5
                    if kind == 6:
                        u_hi = w_hi
                        u_lo = w_lo
                    else:
                        u_hi = w_hi * max(l_hi, 0.0)
                        u_lo = w_lo * max(l_lo, 0.0)
                    T = u_hi + u_lo
                    if kind == 6:
                        mu_hi = u_hi * t
                        mu_lo = u_lo * t
                    else:
                        c = t / T if T > 0 else 0.0
                        mu_hi = u_hi * c
                        mu_lo = u_lo * c
                    y_hi = cs * z0 + sn * z1
                    y_lo = -sn * z0 + cs * z1
                    a_hi = math.sqrt(mu_hi) * y_hi
                    a_lo = math.sqrt(mu_lo) * y_lo
                    xi0 = cs * a_hi - sn * a_lo
                    xi1 = sn * a_hi + cs * a_lo
                if param:
                    g[0] = gm0 - xi0 / eta
                    g[1] = gm1 - xi1 / eta
                else:
                    g[0] = gm0 + xi0
                    g[1] = gm1 + xi1
            if lags:
                grad[0] = gm0
                grad[1] = gm1
            # ---- momentum and update
            if not _momentum_step(ip[I_PYTORCH] != 0, eta, fpar[F_BETA], th, v, g, th_new,
                                  v_new):
                status[r] = 1
                div_step[r] = k + 1
                break
            _observe_update_all(states, r, k, th, th_new, g, grad)
            th, th_new = th_new, th             # accept: swap the buffers, no copy
            v, v_new = v_new, v
        for i in range(2):
            theta[r, i] = th[i]
            vel[r, i] = v[i]


# -------------------------------------------------------------- linear regression, quadratic
@njit(cache=True, fastmath=_REASSOC)
def _quadratic_form(A: Any, theta_star: Any, th: Any, e: Any, Ae: Any) -> float:
    """e = θ − θ*, Ae = A e and ½ eᵀAe (sums reassociated, so that they vectorise)."""
    D = th.shape[0]
    for i in range(D):
        e[i] = th[i] - theta_star[i]
    q = 0.0
    for i in range(D):
        s = 0.0
        for j in range(D):
            s += A[i, j] * e[j]
        Ae[i] = s
        q += e[i] * s
    return 0.5 * q


@njit(cache=True, fastmath=_REASSOC)
def _linear_diag_statistics(X: Any, y: Any, th: Any, scale_hat: float, res: Any, gm: Any,
                            dS: Any) -> None:
    """Residuals r_p, ḡ = (1/N) Σ r_p x_p and the diagonal of Σ̂ = c (1/N) Σ (r_p x_p − ḡ)²
    (centred two-pass sums)."""
    N, D = X.shape
    for i in range(D):
        gm[i] = 0.0
        dS[i] = 0.0
    for p in range(N):
        s = -y[p]
        for i in range(D):
            s += X[p, i] * th[i]
        res[p] = s
        for i in range(D):
            gm[i] += s * X[p, i]
    for i in range(D):
        gm[i] = gm[i] / N
    for p in range(N):
        for i in range(D):
            a = res[p] * X[p, i] - gm[i]
            dS[i] += a * a
    for i in range(D):
        dS[i] = scale_hat * (dS[i] / N)


@njit(cache=True, fastmath=_REASSOC)
def _linear_batch_gradient(X: Any, y: Any, th: Any, idx: Any, g: Any) -> None:
    """g = (1/B) Σ_b (x_{i_b}·θ − y_{i_b}) x_{i_b} over the batch rows idx (B,), four rows at a
    time (their residuals share the loads of θ, their updates one pass over g)."""
    D = th.shape[0]
    B = idx.shape[0]
    for i in range(D):
        g[i] = 0.0
    b = 0
    while b + 4 <= B:
        x0 = X[idx[b]]
        x1 = X[idx[b + 1]]
        x2 = X[idx[b + 2]]
        x3 = X[idx[b + 3]]
        r0 = -y[idx[b]]
        r1 = -y[idx[b + 1]]
        r2 = -y[idx[b + 2]]
        r3 = -y[idx[b + 3]]
        for i in range(D):
            t = th[i]
            r0 += x0[i] * t
            r1 += x1[i] * t
            r2 += x2[i] * t
            r3 += x3[i] * t
        for i in range(D):
            g[i] += (r0 * x0[i] + r1 * x1[i]) + (r2 * x2[i] + r3 * x3[i])
        b += 4
    while b < B:
        xr = X[idx[b]]
        res = -y[idx[b]]
        for i in range(D):
            res += xr[i] * th[i]
        for i in range(D):
            g[i] += res * xr[i]
        b += 1
    for i in range(D):
        g[i] = g[i] / B


@njit(cache=True, fastmath=_REASSOC)
def _tilt_batch_gradient(Gq: Any, Ae: Any, idx: Any, g: Any) -> None:
    """g = Ae + (1/B) Σ_b G[i_b]: the minibatch gradient of the tilted quadratic."""
    D = g.shape[0]
    B = idx.shape[0]
    for i in range(D):
        g[i] = 0.0
    for b in range(B):
        row = Gq[idx[b]]
        for i in range(D):
            g[i] += row[i]
    for i in range(D):
        g[i] = Ae[i] + g[i] / B


@njit(cache=True, nogil=True)
def _quadratic_replicas(r0: int, r1: int, X: Any, y: Any, A: Any, theta_star: Any,
                        loss_star: float, Gq: Any, theta: Any, vel: Any, status: Any,
                        div_step: Any, loss_now: Any, stop_step: Any, sigma: Any, root: Any,
                        ip: Any, fpar: Any, observer_states: Any) -> None:
    """Steps ip[I_START] … ip[I_STOP] − 1 of replicas r0 … r1 − 1 of linear regression or a
    quadratic (one thread)."""
    states = _borrowed(observer_states)
    tilted = Gq.shape[0] > 0
    N = Gq.shape[0] if tilted else X.shape[0]
    D = theta.shape[1]
    noise = ip[I_NOISE]
    kind = ip[I_KIND]
    param = ip[I_PARAM] != 0
    stats = ip[I_STATS]
    eta = fpar[F_ETA]
    scale_hat = fpar[F_SCALE]
    key0 = ip[I_KEY0]
    key1 = ip[I_KEY1]
    nb = (D + 1) // 2
    th = np.empty(D)
    v = np.empty(D)
    th_new = np.empty(D)
    v_new = np.empty(D)
    g = np.empty(D)
    e = np.empty(D)
    Ae = np.empty(D)
    gm = np.empty(D)
    dS = np.empty(D)
    z = np.empty(D)
    res = np.empty(N)
    B = max(ip[I_B], 1)
    idx = np.empty(B, dtype=np.int64)
    js = np.empty(B, dtype=np.int64)
    lags = ip[I_NEED_NOISE] != 0
    need_full_grad = noise != 1 or param or tilted or lags
    for r in range(r0, r1):
        if status[r] == 1 or status[r] == 3:
            continue
        rep = np.uint64(ip[I_REP0] + r)
        for i in range(D):
            th[i] = theta[r, i]
            v[i] = vel[r, i]
        perm = np.arange(N) if noise == 1 and ip[I_SCHEME] != 0 else np.empty(0, dtype=np.int64)
        perm_epoch = np.int64(-1)
        absorbed = status[r] == 2
        for k in range(ip[I_START], ip[I_STOP] + 1):
            final = k == ip[I_STEPS]
            if k == ip[I_STOP] and not final:
                break
            need_loss = _wants_loss_all(states, r, k, absorbed)
            need_ae = not absorbed and (need_loss or (not final and need_full_grad))
            L = 0.0
            if need_ae:
                L = loss_star + _quadratic_form(A, theta_star, th, e, Ae)
            Lk = loss_now[r] if absorbed else L
            absorb = _observe_all(states, r, k, th, Lk, absorbed)
            if absorb and not absorbed:
                status[r] = 2
                loss_now[r] = Lk
                stop_step[r] = k
                absorbed = True
            if final:
                break
            if absorbed:
                continue
            # ---- diagonal of Σ̂ (centred two-pass over the samples), if needed
            if stats > 0:
                _linear_diag_statistics(X, y, th, scale_hat, res, gm, dS)
            tr = 0.0
            if stats > 0:
                for i in range(D):
                    tr += dS[i]
                if not math.isfinite(tr):               # Σ̂ (diagonal, ≥ 0 or NaN) overflowed
                    status[r] = 3
                    div_step[r] = k + 1
                    break
            # ---- the noisy gradient g
            if noise == 0:
                for i in range(D):
                    g[i] = Ae[i]
            elif noise == 1:
                perm_epoch = _draw_batch(ip, k, rep, N, perm, perm_epoch, js, idx)
                if tilted:
                    _tilt_batch_gradient(Gq, Ae, idx, g)
                else:
                    _linear_batch_gradient(X, y, th, idx, g)
                if param:
                    s = math.sqrt(fpar[F_TRACE] / tr) if tr > 0 else 0.0
                    for i in range(D):
                        g[i] = Ae[i] - (s * (g[i] - Ae[i])) / eta
            else:
                for q in range(nb):
                    z0, z1 = normal_pair(key0, key1, rep, _NOISE_TAG, k * nb + q)
                    z[2 * q] = z0
                    if 2 * q + 1 < D:
                        z[2 * q + 1] = z1
                t = fpar[F_TRACE] if ip[I_TRACE] else tr
                if kind == 0:
                    for i in range(D):
                        g[i] = sigma[r] * z[i]
                elif kind == 7:
                    for i in range(D):
                        g[i] = 0.0
                    for q in range(D):
                        for i in range(D):
                            g[i] += z[q] * root[q, i]
                elif kind == 1:
                    sd = math.sqrt(t / D)
                    for i in range(D):
                        g[i] = sd * z[i]
                else:                                       # diag
                    T = 0.0
                    for i in range(D):
                        dS[i] = max(dS[i], 0.0)
                        T += dS[i]
                    c = t / T if T > 0 else 0.0
                    for i in range(D):
                        g[i] = math.sqrt(dS[i] * c) * z[i]
                for i in range(D):
                    if param:
                        g[i] = Ae[i] - g[i] / eta
                    else:
                        g[i] = Ae[i] + g[i]
            if not _momentum_step(ip[I_PYTORCH] != 0, eta, fpar[F_BETA], th, v, g, th_new,
                                  v_new):
                status[r] = 1
                div_step[r] = k + 1
                break
            _observe_update_all(states, r, k, th, th_new, g, Ae)
            th, th_new = th_new, th             # accept: swap the buffers, no copy
            v, v_new = v_new, v
        for i in range(D):
            theta[r, i] = th[i]
            vel[r, i] = v[i]


# ------------------------------------------------------------------ observers (overloads)
def _no_wants_loss(state, r, k, absorbed):  # noqa: ANN001, ANN202
    return False


def _no_observe(state, r, k, th, loss, absorbed):  # noqa: ANN001, ANN202
    return False


def _no_observe_update(state, r, k, th, th_new, g, grad):  # noqa: ANN001, ANN202
    return None


def _plain(fn: Any) -> Any:
    """A copy of ``fn`` without annotations: numba matches an overload's implementation to its
    typing function by the signature, annotations included (the parameter names must be the
    stub's)."""
    out = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                               fn.__closure__)
    out.__annotations__ = {}
    return out


_REGISTERED: set[type] = set()


def register_observer(cls: type[Observer]) -> None:
    """Compile the numba hooks of observer class ``cls`` into the kernels: one overload of each
    stub of :mod:`~sgdnoise.sim.dynamics.observers._base`, selected when the state argument is
    an instance of ``cls.State`` (a hook that is None does nothing).  Idempotent."""
    State = cls.State
    if State in _REGISTERED:
        return
    hooks = cls.numba_hooks
    w = _plain(hooks.wants_loss or _no_wants_loss)
    o = _plain(hooks.observe or _no_observe)
    u = _plain(hooks.observe_update or _no_observe_update)

    def mine(state: Any) -> bool:
        return isinstance(state, types.BaseNamedTuple) and state.instance_class is State

    @overload(wants_loss)
    def _wants(state, r, k, absorbed):  # noqa: ANN001, ANN202
        return w if mine(state) else None

    @overload(observe)
    def _observe(state, r, k, th, loss, absorbed):  # noqa: ANN001, ANN202
        return o if mine(state) else None

    @overload(observe_update)
    def _update(state, r, k, th, th_new, g, grad):  # noqa: ANN001, ANN202
        return u if mine(state) else None

    _REGISTERED.add(State)


def _cacheable(observers: tuple[Observer, ...]) -> bool:
    """Whether every observer is this package's (kernels for others are not written to the
    on-disk cache: another process could not read its index without importing their module)."""
    return all(type(o).__module__.startswith("sgdnoise.") for o in observers)


_UNCACHED: dict[str, Any] = {}


def _kernel(toy: bool, cacheable: bool) -> Any:
    """The kernel of the problem type: the cached dispatcher, or an in-memory twin."""
    cached = _toy_replicas if toy else _quadratic_replicas
    if cacheable:
        return cached
    name = "toy" if toy else "quadratic"
    if name not in _UNCACHED:
        _UNCACHED[name] = njit(nogil=True)(cached.py_func)
    return _UNCACHED[name]


# ------------------------------------------------------------------- runner interface (engine)
#: Replica ranges per thread: several small ranges balance threads whose replicas stop early.
RANGES_PER_THREAD = 4
_STATE_ORDER = ("theta", "velocity", "status", "div_step", "loss_now", "stop_step")


class _Context:
    def __init__(self, data: tuple[Any, ...], toy: bool, plan: Any, st: dict[str, Any],
                 states: list[Any], num_threads: int) -> None:
        self.data, self.toy, self.plan, self.st = data, toy, plan, st
        self.states, self.num_threads = states, num_threads
        self.ip = plan.int_params()
        self.fpar = plan.float_params()
        self.kernel = _kernel(toy, _cacheable(plan.observers))


def _threads(num_threads: int | None) -> int:
    """num_threads, or numba's current setting, capped at numba's maximum."""
    import numba

    n = numba.get_num_threads() if num_threads is None else num_threads
    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def replica_ranges(R: int, num_threads: int) -> list[tuple[int, int]]:
    """Contiguous replica ranges [r0, r1): one for one thread, else about
    ``RANGES_PER_THREAD`` per thread (results do not depend on the split)."""
    if num_threads <= 1:
        return [(0, R)]
    n = min(R, RANGES_PER_THREAD * num_threads)
    edges = [R * i // n for i in range(n + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def prepare(problem: Any, plan: Any, state: dict[str, Any], num_threads: int | None) -> _Context:
    """Contiguous float64/int64 arrays for the kernel of ``problem``, the observers' states
    (numpy arrays in their NamedTuples) and their hooks registered."""
    for obs in plan.observers:
        register_observer(type(obs))
    st = {n: np.ascontiguousarray(a) for n, a in state.items()}
    states = [obs.init(plan.info, np) for obs in plan.observers]
    threads = _threads(num_threads)
    if isinstance(problem, Toy2DProblem):
        return _Context((np.ascontiguousarray(problem.x),), True, plan, st, states, threads)
    D = problem.num_params
    if isinstance(problem, LinearRegressionProblem):
        data = (problem.X, problem.y, problem.A, problem.theta_star, float(problem.loss_star),
                np.zeros((0, D)))
    else:
        Gq = np.zeros((0, D)) if problem.G is None else problem.G
        data = (np.zeros((0, D)), np.zeros(0), problem.H, problem.theta_star, 0.0, Gq)
    return _Context(tuple(np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a
                          for a in data), False, plan, st, states, threads)


def run_chunk(ctx: _Context, k_start: int, k_stop: int) -> None:
    """Steps k_start … k_stop − 1 of every replica: the kernel on replica ranges, run by
    ``num_threads`` threads (the kernel releases the GIL)."""
    ctx.ip[I_START] = k_start
    ctx.ip[I_STOP] = k_stop
    arrays = tuple(ctx.st[n] for n in _STATE_ORDER)
    sigma = np.ascontiguousarray(ctx.plan.sigma, dtype=np.float64)
    root = np.ascontiguousarray(ctx.plan.root, dtype=np.float64)
    args = (*ctx.data, *arrays, sigma, root, ctx.ip, ctx.fpar, tuple(ctx.states))
    kernel = ctx.kernel
    ranges = replica_ranges(ctx.plan.R, ctx.num_threads)
    if len(ranges) == 1:
        kernel(0, ctx.plan.R, *args)
        return
    with ThreadPoolExecutor(max_workers=ctx.num_threads) as pool:
        for f in [pool.submit(kernel, a, b, *args) for a, b in ranges]:
            f.result()


def divergence(ctx: _Context) -> tuple[Any, Any, Any]:
    """(status, divergence step, θ)."""
    return ctx.st["status"], ctx.st["div_step"], ctx.st["theta"]


def finish(ctx: _Context) -> tuple[dict[str, Any], list[Any]]:
    """The engine's state arrays and the observers' states."""
    return ctx.st, ctx.states


__all__ = ["RANGES_PER_THREAD", "divergence", "finish", "prepare", "register_observer",
           "replica_ranges", "run_chunk"]

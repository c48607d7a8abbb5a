r"""Compiled per-sample kernels for :class:`sgdnoise.sim.models.MLP` (``backend="numba"``).

Imported only when that backend is asked for.  The kernels take plain arrays and integer codes
(no Python objects, no randomness): the flat weights ``w``, ``widths`` (L+1,), the offsets of
each W̃_l in ``w`` (L+1,), ``bias`` ∈ {0, 1}, the activation code (0 identity, 1 relu, 2 tanh,
3 sigmoid, 4 gelu), the loss code (0 mse, 1 softmax_mse, 2 cross_entropy), inputs ``x`` (N, d_0)
and targets ``T`` (N, d_L) (float targets for mse, one-hot rows otherwise).  Samples are split into
blocks run in parallel; each block owns its work buffers, and each sample's result depends on that
sample only, so results do not depend on the thread count.  The formulas are those of the numpy
reference in :mod:`sgdnoise.sim.models.mlp`.

Minibatch SGD (:func:`sgd_epoch`) runs a whole epoch in one call: for each pre-drawn batch a fused
forward and backward pass gives the mean loss and gradient (no per-sample gradient matrix), then
clipping, weight decay and the momentum update are applied in place, exactly as
:func:`sgdnoise.sim.training.train` does in numpy.  It runs on one thread unless asked for more:
a step of a batch of tens is only some 100 µs of work, and with more threads every step waits
for all of them twice.  The dense-layer products run in small register blocks (four samples ×
four outputs for the forward pass, four samples × two outputs for the weight gradient, skipping
samples whose ReLU units are off) with reassociated sums, so they vectorise; results agree with
numpy to round-off and do not depend on the thread count.

The minibatch SGD kernels and the full-data loss are dtype-generic: numba compiles them once for
float64 and once for float32 arrays, and every work array, constant and accumulator takes the
dtype of the weights (written ``X.dtype.type(c)``, since a bare literal such as ``0.0`` is a
float64 that would promote float32 arithmetic to float64).  Only the divergence test
(:func:`_check_loss`) works in float64.  The per-sample kernels are float64 only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise.backends import numba_threads

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _jit(parallel: bool = False, reassociate: bool = False):
    """The compile options of every kernel here: cached, numpy error model, optional threads.

    ``reassociate`` lets LLVM reorder floating-point sums (and fuse multiply-adds) so that dot
    products vectorise; results then differ from a left-to-right sum at round-off level.  No
    assumption about NaN or infinity is made, so non-finite values still propagate.
    """
    fastmath = {"reassoc", "contract"} if reassociate else False
    return numba.njit(cache=True, error_model="numpy", parallel=parallel, fastmath=fastmath)


@_jit()
def _activation(code, s):
    if code == 0:
        return s
    if code == 1:
        return max(0.0, s)
    if code == 2:
        return math.tanh(s)
    if code == 3:
        return 0.5 * (1.0 + math.tanh(0.5 * s))
    return s * (0.5 * (1.0 + math.erf(s * _INV_SQRT_2)))


@_jit()
def _activation_derivatives(code, s):
    """(φ′(s), φ″(s))."""
    if code == 0:
        return 1.0, 0.0
    if code == 1:
        return (1.0 if s > 0.0 else 0.0), 0.0
    if code == 2:
        t = math.tanh(s)
        return 1.0 - t * t, -2.0 * t * (1.0 - t * t)
    if code == 3:
        q = 0.5 * (1.0 + math.tanh(0.5 * s))
        return q * (1.0 - q), q * (1.0 - q) * (1.0 - 2.0 * q)
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * s * s)
    cdf = 0.5 * (1.0 + math.erf(s * _INV_SQRT_2))
    return cdf + s * pdf, (2.0 - s * s) * pdf


@_jit()
def _forward_sample(w, widths, offsets, bias, act, x_row, A, S):
    """Layer inputs A[l, :d_l + bias] and pre-activations S[l, :d_{l+1}] of one sample."""
    L = widths.size - 1
    d0 = widths[0]
    for i in range(d0):
        A[0, i] = x_row[i]
    if bias:
        A[0, d0] = 1.0
    for l in range(L):
        nin = widths[l] + bias
        nout = widths[l + 1]
        off = offsets[l]
        for o in range(nout):
            acc = 0.0
            base = off + o * nin
            for i in range(nin):
                acc += w[base + i] * A[l, i]
            S[l, o] = acc
        if l < L - 1:
            for o in range(nout):
                A[l + 1, o] = _activation(act, S[l, o])
            if bias:
                A[l + 1, nout] = 1.0


@_jit()
def _loss_gradient(loss, z, t, out_dim, delta, prob):
    """δ = ∂ℓ/∂z into ``delta``; softmax probabilities into ``prob`` (softmax losses)."""
    if loss == 0:
        for k in range(out_dim):
            delta[k] = z[k] - t[k]
        return
    zmax = z[0]
    for k in range(1, out_dim):
        zmax = max(zmax, z[k])
    total = 0.0
    for k in range(out_dim):
        prob[k] = math.exp(z[k] - zmax)
        total += prob[k]
    for k in range(out_dim):
        prob[k] /= total
    if loss == 2:
        for k in range(out_dim):
            delta[k] = prob[k] - t[k]
        return
    c = 0.0
    for k in range(out_dim):
        c += (prob[k] - t[k]) * prob[k]
    for k in range(out_dim):
        delta[k] = (prob[k] - t[k]) * prob[k] - c * prob[k]


@_jit()
def _loss_hessian(loss, prob, t, out_dim, delta, Gz, J):
    """∂²ℓ/∂z∂zᵀ into ``Gz[:out, :out]`` (``J`` is work space)."""
    for i in range(out_dim):
        for j in range(out_dim):
            Gz[i, j] = 0.0
    if loss == 0:
        for i in range(out_dim):
            Gz[i, i] = 1.0
        return
    for i in range(out_dim):
        for j in range(out_dim):
            J[i, j] = -prob[i] * prob[j]
        J[i, i] += prob[i]
    if loss == 2:
        for i in range(out_dim):
            for j in range(out_dim):
                Gz[i, j] = J[i, j]
        return
    # softmax_mse: J² + diag(δ) − u sᵀ − s uᵀ + 2c ssᵀ, u = (s − t)∘s, c = Σu
    c = 0.0
    for k in range(out_dim):
        c += (prob[k] - t[k]) * prob[k]
    for i in range(out_dim):
        ui = (prob[i] - t[i]) * prob[i]
        for j in range(out_dim):
            uj = (prob[j] - t[j]) * prob[j]
            acc = 0.0
            for k in range(out_dim):
                acc += J[i, k] * J[k, j]
            Gz[i, j] = acc - ui * prob[j] - prob[i] * uj + 2.0 * c * prob[i] * prob[j]
        Gz[i, i] += delta[i]


@_jit()
def _backward_sample(w, widths, offsets, bias, act, S, Dl, back, stop):
    """δ_l for l = L−2, …, ``stop`` from δ_{L−1} = Dl[L−1]; back[l] = W_{l+1}ᵀ δ_{l+1}."""
    L = widths.size - 1
    for l in range(L - 2, stop - 1, -1):
        h = widths[l + 1]
        m = widths[l + 2]
        nin_next = h + bias
        off = offsets[l + 1]
        for i in range(h):
            back[l, i] = 0.0
        for o in range(m):
            d = Dl[l + 1, o]
            base = off + o * nin_next
            for i in range(h):
                back[l, i] += d * w[base + i]
        for i in range(h):
            d1, _ = _activation_derivatives(act, S[l, i])
            Dl[l, i] = d1 * back[l, i]


@_jit(parallel=True)
def _per_sample_gradients_kernel(w, widths, offsets, bias, act, loss, x, T,
                                 out, num_blocks):
    n = x.shape[0]
    L = widths.size - 1
    maxw = 0
    for l in range(L + 1):
        maxw = max(maxw, widths[l])
    out_dim = widths[L]
    for b in numba.prange(num_blocks):
        A = np.zeros((L, maxw + 1))
        S = np.zeros((L, maxw))
        Dl = np.zeros((L, maxw))
        back = np.zeros((L, maxw))
        prob = np.zeros(out_dim)
        start = (b * n) // num_blocks
        stop = ((b + 1) * n) // num_blocks
        for p in range(start, stop):
            _forward_sample(w, widths, offsets, bias, act, x[p], A, S)
            _loss_gradient(loss, S[L - 1], T[p], out_dim, Dl[L - 1], prob)
            _backward_sample(w, widths, offsets, bias, act, S, Dl, back, 0)
            for l in range(L):
                nin = widths[l] + bias
                off = offsets[l]
                for o in range(widths[l + 1]):
                    base = off + o * nin
                    dlo = Dl[l, o]
                    for i in range(nin):
                        out[p, base + i] = dlo * A[l, i]


@_jit(parallel=True)
def _layer_factors_kernel(w, widths, offsets, bias, act, loss, x, T, index,
                          G_out, a_out, delta_out, num_blocks):
    n = x.shape[0]
    L = widths.size - 1
    maxw = 0
    for l in range(L + 1):
        maxw = max(maxw, widths[l])
    out_dim = widths[L]
    for b in numba.prange(num_blocks):
        A = np.zeros((L, maxw + 1))
        S = np.zeros((L, maxw))
        Dl = np.zeros((L, maxw))
        back = np.zeros((L, maxw))
        prob = np.zeros(out_dim)
        J = np.zeros((out_dim, out_dim))
        G_cur = np.zeros((maxw, maxw))
        G_next = np.zeros((maxw, maxw))
        tmp = np.zeros((maxw, maxw))
        d1 = np.zeros(maxw)
        d2 = np.zeros(maxw)
        start = (b * n) // num_blocks
        stop = ((b + 1) * n) // num_blocks
        for p in range(start, stop):
            _forward_sample(w, widths, offsets, bias, act, x[p], A, S)
            _loss_gradient(loss, S[L - 1], T[p], out_dim, Dl[L - 1], prob)
            _loss_hessian(loss, prob, T[p], out_dim, Dl[L - 1], G_cur, J)
            _backward_sample(w, widths, offsets, bias, act, S, Dl, back, index)
            for l in range(L - 2, index - 1, -1):
                h = widths[l + 1]
                m = widths[l + 2]
                nin_next = h + bias
                off = offsets[l + 1]
                for i in range(h):
                    d1[i], d2[i] = _activation_derivatives(act, S[l, i])
                # tmp = G_{l+1} W_{l+1}  (m × h)
                for o in range(m):
                    for j in range(h):
                        tmp[o, j] = 0.0
                    for q in range(m):
                        g = G_cur[o, q]
                        base = off + q * nin_next
                        for j in range(h):
                            tmp[o, j] += g * w[base + j]
                # G_l = D W_{l+1}ᵀ tmp D + diag(φ″ ∘ back)
                for i in range(h):
                    for j in range(h):
                        G_next[i, j] = 0.0
                for o in range(m):
                    base = off + o * nin_next
                    for i in range(h):
                        wi = w[base + i]
                        for j in range(h):
                            G_next[i, j] += wi * tmp[o, j]
                for i in range(h):
                    for j in range(h):
                        G_next[i, j] *= d1[i] * d1[j]
                    G_next[i, i] += d2[i] * back[l, i]
                G_cur, G_next = G_next, G_cur
            k = widths[index + 1]
            for i in range(k):
                for j in range(k):
                    G_out[p, i, j] = 0.5 * (G_cur[i, j] + G_cur[j, i])
                delta_out[p, i] = Dl[index, i]
            for i in range(widths[index] + bias):
                a_out[p, i] = A[index, i]


# ---------------------------------------------------------------------------- minibatch SGD


@_jit()
def _activate(code, S, A, b_start, b_stop, h):
    """A[b, i] = φ(S[b, i]) for b_start ≤ b < b_stop, i < h; a loop per activation (vectorises).

    The formulas of :func:`_activation`, with constants of the arrays' dtype.
    """
    zero = A.dtype.type(0.0)
    one = A.dtype.type(1.0)
    half = A.dtype.type(0.5)
    inv_sqrt_2 = A.dtype.type(_INV_SQRT_2)
    for b in range(b_start, b_stop):
        s = S[b]
        a = A[b]
        if code == 0:
            for i in range(h):
                a[i] = s[i]
        elif code == 1:
            for i in range(h):
                a[i] = zero if s[i] <= zero else s[i]  # noqa: FURB136 (NaN passes, as in numpy)
        elif code == 2:
            for i in range(h):
                a[i] = math.tanh(s[i])
        elif code == 3:
            for i in range(h):
                a[i] = half * (one + math.tanh(half * s[i]))
        else:
            for i in range(h):
                a[i] = s[i] * (half * (one + math.erf(s[i] * inv_sqrt_2)))


@_jit()
def _times_derivative(code, S, D, b_start, b_stop, h):
    """D[b, i] ← φ′(S[b, i]) D[b, i] for b_start ≤ b < b_stop, i < h."""
    if code == 0:
        return
    zero = D.dtype.type(0.0)
    one = D.dtype.type(1.0)
    half = D.dtype.type(0.5)
    inv_sqrt_2 = D.dtype.type(_INV_SQRT_2)
    inv_sqrt_2pi = D.dtype.type(_INV_SQRT_2PI)
    for b in range(b_start, b_stop):
        s = S[b]
        d = D[b]
        if code == 1:
            for i in range(h):
                d[i] *= one if s[i] > zero else zero
        elif code == 2:
            for i in range(h):
                t = math.tanh(s[i])
                d[i] *= one - t * t
        elif code == 3:
            for i in range(h):
                q = half * (one + math.tanh(half * s[i]))
                d[i] *= q * (one - q)
        else:
            for i in range(h):
                pdf = inv_sqrt_2pi * math.exp(-half * s[i] * s[i])
                d[i] *= half * (one + math.erf(s[i] * inv_sqrt_2)) + s[i] * pdf


@_jit(reassociate=True)
def _dense_forward(w, off, nin, nout, bias, X, rows, b_start, b_stop, S):
    """S[b, o] = Σ_{i<nin} W̃[o, i] X[rows[b], i] (+ W̃[o, nin] if ``bias``), b_start ≤ b < b_stop.

    W̃ = w[off : off + nout·(nin + bias)] as a row-major (nout, nin + bias) matrix.  Samples
    (from ``b_start``) and outputs go in blocks of four (16 sums at once: each loaded input serves
    four outputs, each loaded weight four samples), the leftover samples in a pair and singly.
    Rows are taken as views first: indexing with i ≥ 0 from ``range`` needs no negative-index
    check, so the inner loops vectorise.
    """
    zero = S.dtype.type(0.0)
    stride = nin + bias
    W = w[off:off + nout * stride].reshape(nout, stride)
    n = b_stop
    b = b_start
    while b + 4 <= n:
        x0 = X[rows[b]]
        x1 = X[rows[b + 1]]
        x2 = X[rows[b + 2]]
        x3 = X[rows[b + 3]]
        o = 0
        while o + 4 <= nout:
            w0 = W[o]
            w1 = W[o + 1]
            w2 = W[o + 2]
            w3 = W[o + 3]
            s00 = s01 = s02 = s03 = zero
            s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = zero
            s30 = s31 = s32 = s33 = zero
            for i in range(nin):
                a0 = w0[i]
                a1 = w1[i]
                a2 = w2[i]
                a3 = w3[i]
                u = x0[i]
                s00 += u * a0
                s01 += u * a1
                s02 += u * a2
                s03 += u * a3
                u = x1[i]
                s10 += u * a0
                s11 += u * a1
                s12 += u * a2
                s13 += u * a3
                u = x2[i]
                s20 += u * a0
                s21 += u * a1
                s22 += u * a2
                s23 += u * a3
                u = x3[i]
                s30 += u * a0
                s31 += u * a1
                s32 += u * a2
                s33 += u * a3
            S[b, o] = s00
            S[b, o + 1] = s01
            S[b, o + 2] = s02
            S[b, o + 3] = s03
            S[b + 1, o] = s10
            S[b + 1, o + 1] = s11
            S[b + 1, o + 2] = s12
            S[b + 1, o + 3] = s13
            S[b + 2, o] = s20
            S[b + 2, o + 1] = s21
            S[b + 2, o + 2] = s22
            S[b + 2, o + 3] = s23
            S[b + 3, o] = s30
            S[b + 3, o + 1] = s31
            S[b + 3, o + 2] = s32
            S[b + 3, o + 3] = s33
            o += 4
        while o < nout:
            w0 = W[o]
            s00 = s10 = s20 = s30 = zero
            for i in range(nin):
                a0 = w0[i]
                s00 += x0[i] * a0
                s10 += x1[i] * a0
                s20 += x2[i] * a0
                s30 += x3[i] * a0
            S[b, o] = s00
            S[b + 1, o] = s10
            S[b + 2, o] = s20
            S[b + 3, o] = s30
            o += 1
        b += 4
    if b + 2 <= n:
        x0 = X[rows[b]]
        x1 = X[rows[b + 1]]
        for o in range(nout):
            w0 = W[o]
            s00 = s10 = zero
            for i in range(nin):
                a0 = w0[i]
                s00 += x0[i] * a0
                s10 += x1[i] * a0
            S[b, o] = s00
            S[b + 1, o] = s10
        b += 2
    if b < n:
        x0 = X[rows[b]]
        for o in range(nout):
            w0 = W[o]
            s00 = zero
            for i in range(nin):
                s00 += x0[i] * w0[i]
            S[b, o] = s00
    if bias:
        for b in range(b_start, b_stop):
            for o in range(nout):
                S[b, o] += W[o, nin]


@_jit(reassociate=True)
def _dense_weight_gradient(g, off, nin, nout, bias, D, X, rows, n, active, o_start, o_stop):
    """g[W̃_{o,i}] = Σ_{b<n} D[b, o] X[rows[b], i] (bias column: Σ_b D[b, o]), o_start ≤ o < o_stop.

    Layout as in :func:`_dense_forward`.  Outputs go in pairs (from ``o_start``), samples in
    fours; samples whose D is zero for both outputs of a pair (inactive ReLU units) are skipped:
    X is finite, so they would add exact zeros.  ``active`` is an int work array of at least n
    entries.
    """
    zero = g.dtype.type(0.0)
    stride = nin + bias
    G = g[off:off + nout * stride].reshape(nout, stride)
    o = o_start
    while o + 2 <= o_stop:
        g0 = G[o]
        g1 = G[o + 1]
        m = 0
        for b in range(n):
            if D[b, o] != zero or D[b, o + 1] != zero:
                active[m] = b
                m += 1
        for i in range(stride):
            g0[i] = zero
            g1[i] = zero
        k = 0
        while k + 4 <= m:
            b0 = active[k]
            b1 = active[k + 1]
            b2 = active[k + 2]
            b3 = active[k + 3]
            x0 = X[rows[b0]]
            x1 = X[rows[b1]]
            x2 = X[rows[b2]]
            x3 = X[rows[b3]]
            d0 = D[b0, o]
            d1 = D[b1, o]
            d2 = D[b2, o]
            d3 = D[b3, o]
            e0 = D[b0, o + 1]
            e1 = D[b1, o + 1]
            e2 = D[b2, o + 1]
            e3 = D[b3, o + 1]
            for i in range(nin):
                u0 = x0[i]
                u1 = x1[i]
                u2 = x2[i]
                u3 = x3[i]
                g0[i] += d0 * u0 + d1 * u1 + d2 * u2 + d3 * u3
                g1[i] += e0 * u0 + e1 * u1 + e2 * u2 + e3 * u3
            k += 4
        while k < m:
            b0 = active[k]
            x0 = X[rows[b0]]
            d0 = D[b0, o]
            e0 = D[b0, o + 1]
            for i in range(nin):
                g0[i] += d0 * x0[i]
                g1[i] += e0 * x0[i]
            k += 1
        o += 2
    if o < o_stop:
        g0 = G[o]
        for i in range(stride):
            g0[i] = zero
        for b in range(n):
            d0 = D[b, o]
            if d0 != zero:
                x0 = X[rows[b]]
                for i in range(nin):
                    g0[i] += d0 * x0[i]
    if bias:
        for o in range(o_start, o_stop):
            acc = zero
            for b in range(n):
                acc += D[b, o]
            G[o, nin] = acc


@_jit(reassociate=True)
def _sum_of_squares(g):
    total = g.dtype.type(0.0)
    for j in range(g.size):
        total += g[j] * g[j]
    return total


@_jit()
def _overflow_clip_scale(g, clip_norm):
    """The clipping factor c/‖g‖ of a finite g whose ‖g‖² overflows: (c/‖g/m‖)/m, m = max|g|
    (as the reference's ``_clip``)."""
    m = g.dtype.type(0.0)
    for j in range(g.size):
        m = max(m, abs(g[j]))
    total = g.dtype.type(0.0)
    for j in range(g.size):
        u = g[j] / m
        total += u * u
    return (clip_norm / math.sqrt(total)) / m


@_jit()
def _all_finite(g):
    zero = g.dtype.type(0.0)
    bad = 0
    for j in range(g.size):
        bad |= (g[j] - g[j]) != zero  # NaN for ±inf and NaN
    return bad == 0


@_jit()
def _sgd_update(w, v, g, start, stop, scale, weight_decay, lr, beta, heavy_ball):
    """ĝ = scale·g (+ weight_decay·w), then the heavy-ball or PyTorch-style step on [start, stop).

    Returns whether some updated w[j] there is not finite: the step overflowed, or g[j] was not
    finite (a non-finite g[j] always gives a non-finite w[j], since η > 0).  The scalars come
    in the arrays' dtype, and each element is computed as in numpy (no fused multiply-adds;
    scale = 1 multiplies exactly), so a step is bit-identical to the reference given the same
    gradient.  One branch-free loop per case, on views indexed from 0 (no negative-index
    checks), so that each vectorises; the check is one more such loop over the updated w.
    """
    zero = g.dtype.type(0.0)
    w = w[start:stop]
    v = v[start:stop]
    g = g[start:stop]
    if heavy_ball and weight_decay == zero:
        for j in range(g.size):
            vj = beta * v[j] - lr * (g[j] * scale)
            v[j] = vj
            w[j] = w[j] + vj
    elif heavy_ball:
        for j in range(g.size):
            vj = beta * v[j] - lr * (g[j] * scale + weight_decay * w[j])
            v[j] = vj
            w[j] = w[j] + vj
    elif weight_decay == zero:
        for j in range(g.size):
            vj = beta * v[j] + g[j] * scale
            v[j] = vj
            w[j] = w[j] - lr * vj
    else:
        for j in range(g.size):
            vj = beta * v[j] + (g[j] * scale + weight_decay * w[j])
            v[j] = vj
            w[j] = w[j] - lr * vj
    bad = 0
    for j in range(w.size):
        bad |= (w[j] - w[j]) != zero  # NaN for ±inf and NaN
    return bad != 0


@_jit()
def _loss_value_and_gradient(loss, z, t, out_dim, scale, delta, prob):
    """ℓ of one sample (returned) and ``scale`` · ∂ℓ/∂z into ``delta``, in ``delta``'s dtype."""
    zero = delta.dtype.type(0.0)
    half = delta.dtype.type(0.5)
    if loss == 0:
        value = zero
        for k in range(out_dim):
            r = z[k] - t[k]
            value += r * r
            delta[k] = r * scale
        return half * value
    zmax = z[0]
    for k in range(1, out_dim):
        zmax = max(zmax, z[k])
    total = zero
    for k in range(out_dim):
        prob[k] = math.exp(z[k] - zmax)
        total += prob[k]
    for k in range(out_dim):
        prob[k] /= total
    if loss == 2:
        zt = zero
        for k in range(out_dim):
            delta[k] = (prob[k] - t[k]) * scale
            zt += z[k] * t[k]
        return zmax + math.log(total) - zt
    value = zero
    c = zero
    for k in range(out_dim):
        r = prob[k] - t[k]
        value += r * r
        c += r * prob[k]
    for k in range(out_dim):
        delta[k] = ((prob[k] - t[k]) * prob[k] - c * prob[k]) * scale
    return half * value


@_jit()
def _minibatch_forward(w, widths, offsets, bias, act, x, rows, ident, S, A, b_start, b_stop):
    """Pre-activations S[l, b] and hidden activations A[l, b] (l ≥ 1) of samples x[rows[b]]."""
    L = widths.size - 1
    _dense_forward(w, offsets[0], widths[0], widths[1], bias, x, rows, b_start, b_stop, S[0])
    for l in range(1, L):
        h = widths[l]
        A_l = A[l]
        _activate(act, S[l - 1], A_l, b_start, b_stop, h)
        _dense_forward(w, offsets[l], h, widths[l + 1], bias, A_l, ident, b_start, b_stop, S[l])


@_jit()
def _minibatch_deltas(w, widths, offsets, bias, act, loss, T, rows, n, S, Dl, prob, values,
                      b_start, b_stop):
    """Losses ``values[b]`` and δ_l[b] / n of every layer, for b_start ≤ b < b_stop."""
    L = widths.size - 1
    out_dim = widths[L]
    zero = Dl.dtype.type(0.0)
    scale = Dl.dtype.type(1.0) / Dl.dtype.type(n)
    S_out = S[L - 1]
    D_out = Dl[L - 1]
    for b in range(b_start, b_stop):
        values[b] = _loss_value_and_gradient(loss, S_out[b], T[rows[b]], out_dim, scale, D_out[b],
                                             prob)
    # δ_l = φ′(s_l) ∘ (W_{l+1}ᵀ δ_{l+1}), W_{l+1} without its bias column
    for l in range(L - 2, -1, -1):
        h = widths[l + 1]
        m = widths[l + 2]
        stride = h + bias
        off = offsets[l + 1]
        D_next = Dl[l + 1]
        D_cur = Dl[l]
        W = w[off:off + m * stride].reshape(m, stride)
        for b in range(b_start, b_stop):
            d_cur = D_cur[b]
            d_next = D_next[b]
            for i in range(h):
                d_cur[i] = zero
            for o in range(m):
                d = d_next[o]
                W_o = W[o]
                for i in range(h):
                    d_cur[i] += d * W_o[i]
        _times_derivative(act, S[l], D_cur, b_start, b_stop, h)


@_jit()
def _split(count, num_parts, part, multiple):
    """[start, stop) of ``part`` when ``count`` items are cut into ``num_parts`` runs whose
    inner boundaries are multiples of ``multiple`` (the last run takes the rest)."""
    blocks = count // multiple
    start = multiple * ((part * blocks) // num_parts)
    stop = count if part == num_parts - 1 else multiple * (((part + 1) * blocks) // num_parts)
    return start, stop


@_jit()
def _forward_part(w, widths, offsets, bias, act, loss, x, T, rows, ident, S, A, Dl, prob, values,
                  part, num_parts):
    """Forward pass, losses and δ's of the samples of run ``part``."""
    n = rows.size
    b_start, b_stop = _split(n, num_parts, part, 4)
    _minibatch_forward(w, widths, offsets, bias, act, x, rows, ident, S, A, b_start, b_stop)
    _minibatch_deltas(w, widths, offsets, bias, act, loss, T, rows, n, S, Dl, prob, values,
                      b_start, b_stop)


@_jit()
def _gradient_part(w, v, g, widths, offsets, bias, x, rows, ident, A, Dl, active, part,
                   num_parts, step, weight_decay, lr, beta, heavy_ball):
    """Gradient rows of run ``part`` of every layer's outputs and, when ``step``, their update.

    Returns whether an updated weight is not finite (checked only when ``step``).
    """
    L = widths.size - 1
    n = rows.size
    one = g.dtype.type(1.0)
    bad = False
    for l in range(L):
        nin = widths[l]
        stride = nin + bias
        o_start, o_stop = _split(widths[l + 1], num_parts, part, 2)
        if l == 0:
            _dense_weight_gradient(g, offsets[0], nin, widths[1], bias, Dl[0], x, rows, n,
                                   active, o_start, o_stop)
        else:
            _dense_weight_gradient(g, offsets[l], nin, widths[l + 1], bias, Dl[l], A[l], ident,
                                   n, active, o_start, o_stop)
        if step:
            bad |= _sgd_update(w, v, g, offsets[l] + o_start * stride,
                               offsets[l] + o_stop * stride, one, weight_decay, lr, beta,
                               heavy_ball)
    return bad


@_jit()
def _update_part(w, v, g, widths, offsets, bias, part, num_parts, scale, weight_decay, lr, beta,
                 heavy_ball):
    """The update of the rows of run ``part`` (as in :func:`_gradient_part`)."""
    bad = False
    for l in range(widths.size - 1):
        stride = widths[l] + bias
        o_start, o_stop = _split(widths[l + 1], num_parts, part, 2)
        bad |= _sgd_update(w, v, g, offsets[l] + o_start * stride, offsets[l] + o_stop * stride,
                           scale, weight_decay, lr, beta, heavy_ball)
    return bad


@_jit()
def _check_loss(value, has_loss0, loss0, divergence_factor):
    """(status, loss0) for a batch loss: 0 fine, 1 not finite, 2 above divergence_factor · loss0.

    The first batch sets loss0 = max(value, 1e-300).  Done in float64 whatever the dtype of
    ``value``, as numpy does with the Python-float losses of the reference epoch (and 1e-300
    is not a float32).
    """
    if not has_loss0:
        # max(value, 1e-300) as Python evaluates it: a NaN value is kept
        loss0 = 1e-300 if 1e-300 > value else np.float64(value)
    if not math.isfinite(value):
        return 1, loss0
    if value > divergence_factor * loss0:
        return 2, loss0
    return 0, loss0


@_jit(parallel=True)
def _sgd_epoch_kernel(w, v, widths, offsets, bias, act, loss, x, T, batch_rows, batch_starts,
                      lr, beta, heavy_ball, clip_norm, weight_decay, divergence_factor,
                      has_loss0, loss0, losses, num_parts):
    """One epoch of SGD on w, v in place; returns (status, batch, loss, loss0).

    status 0: every batch done; at ``batch``: 1 non-finite loss, 2 loss above
    ``divergence_factor`` · loss0, 3 non-finite gradient, 4 non-finite weights after the update
    (a finite gradient whose step overflowed); when several apply, the first of loss, gradient,
    threshold, weights is reported, as by the reference.  ``clip_norm`` ≤ 0 means no clipping.

    Everything is computed in the dtype of ``w`` (float32 or float64; ``v``, ``x``, ``T``,
    ``lr``, ``beta``, ``clip_norm`` and ``weight_decay`` come in it too): work arrays, constants
    and accumulators.  Only the divergence test is in float64 (``loss0``, ``divergence_factor``
    and the batch loss stored in the float64 ``losses``), so that it behaves as in numpy, where
    the losses are Python floats.

    A step has two parts, each cut into ``num_parts`` runs (at most one per four samples) done
    in parallel: the forward pass, losses and δ's over runs of samples, then the gradient rows
    over runs of every layer's outputs, each run updating its own rows right away (with clipping,
    once the gradient norm is known).  Run boundaries never split a block of the dense-layer
    loops, so every number is computed by the same code whatever ``num_parts`` is, and so is the
    result.
    """
    L = widths.size - 1
    maxw = 0  # widest layer output (the input layer is read from x directly)
    for l in range(1, L + 1):
        maxw = max(maxw, widths[l])
    num_batches = batch_starts.size - 1
    max_batch = 1
    for k in range(num_batches):
        max_batch = max(max_batch, batch_starts[k + 1] - batch_starts[k])
    num_parts = max(1, min(num_parts, max_batch // 4))
    dtype = w.dtype
    zero = dtype.type(0.0)
    S = np.empty((L, max_batch, maxw), dtype=dtype)
    A = np.empty((L, max_batch, maxw), dtype=dtype)
    Dl = np.empty((L, max_batch, maxw), dtype=dtype)
    prob = np.empty((num_parts, widths[L]), dtype=dtype)
    active = np.empty((num_parts, max_batch), dtype=np.int64)
    bad = np.zeros(num_parts, dtype=np.bool_)
    values = np.empty(max_batch, dtype=dtype)
    g = np.empty(w.size, dtype=dtype)
    ident = np.arange(max_batch)
    clipping = clip_norm > zero
    for k in range(num_batches):
        rows = batch_rows[batch_starts[k]:batch_starts[k + 1]]
        n = rows.size
        if num_parts == 1:
            _forward_part(w, widths, offsets, bias, act, loss, x, T, rows, ident, S, A, Dl,
                          prob[0], values, 0, 1)
        else:
            for part in numba.prange(num_parts):
                _forward_part(w, widths, offsets, bias, act, loss, x, T, rows, ident, S, A, Dl,
                              prob[part], values, part, num_parts)
        total = zero
        for b in range(n):
            total += values[b]
        value = total / dtype.type(n)
        status, loss0 = _check_loss(value, has_loss0, loss0, divergence_factor)
        has_loss0 = True
        if status == 1:
            return 1, k, value, loss0
        exploding = status == 2
        step = not clipping and not exploding
        if num_parts == 1:
            bad[0] = _gradient_part(w, v, g, widths, offsets, bias, x, rows, ident, A, Dl,
                                    active[0], 0, 1, step, weight_decay, lr, beta, heavy_ball)
        else:
            for part in numba.prange(num_parts):
                bad[part] = _gradient_part(w, v, g, widths, offsets, bias, x, rows, ident, A, Dl,
                                           active[part], part, num_parts, step, weight_decay, lr,
                                           beta, heavy_ball)
        if not step:
            if not _all_finite(g):
                return 3, k, value, loss0
            if exploding:
                return 2, k, value, loss0
            scale = dtype.type(1.0)
            norm = math.sqrt(_sum_of_squares(g))
            if math.isinf(norm):  # ‖g‖² overflowed although g is finite
                scale = _overflow_clip_scale(g, clip_norm)
            elif norm > clip_norm:
                scale = clip_norm / norm
            if num_parts == 1:
                bad[0] = _update_part(w, v, g, widths, offsets, bias, 0, 1, scale,
                                      weight_decay, lr, beta, heavy_ball)
            else:
                for part in numba.prange(num_parts):
                    bad[part] = _update_part(w, v, g, widths, offsets, bias, part, num_parts,
                                             scale, weight_decay, lr, beta, heavy_ball)
        for part in range(num_parts):
            if bad[part]:  # a non-finite weight after the update: which input caused it?
                return (3 if not _all_finite(g) else 4), k, value, loss0
        losses[k] = value
    return 0, num_batches, 0.0, loss0


@_jit(parallel=True)
def _mean_loss_kernel(w, widths, offsets, bias, act, loss, x, T, block_size, block_sums):
    n = x.shape[0]
    L = widths.size - 1
    maxw = 0  # widest layer output (the input layer is read from x directly)
    for l in range(1, L + 1):
        maxw = max(maxw, widths[l])
    out_dim = widths[L]
    dtype = w.dtype
    for blk in numba.prange(block_sums.size):
        start = blk * block_size
        stop = min(n, start + block_size)
        S = np.empty((L, block_size, maxw), dtype=dtype)
        A = np.empty((L, block_size, maxw), dtype=dtype)
        prob = np.empty(out_dim, dtype=dtype)
        delta = np.empty(out_dim, dtype=dtype)
        rows = np.arange(start, stop)
        ident = np.arange(block_size)
        _minibatch_forward(w, widths, offsets, bias, act, x, rows, ident, S, A, 0, stop - start)
        total = dtype.type(0.0)
        for b in range(stop - start):
            total += _loss_value_and_gradient(loss, S[L - 1, b], T[start + b], out_dim,
                                              dtype.type(1.0), delta, prob)
        block_sums[blk] = total


# samples per block of the full-data loss: fixed, so the sum does not depend on the thread count
_LOSS_BLOCK = 256




def _compute_dtype(w: np.ndarray) -> type[np.floating]:
    """float32 for a float32 ``w``, float64 otherwise: the precision the kernels compute in."""
    return np.float32 if np.asarray(w).dtype == np.float32 else np.float64


def mean_loss(spec: tuple, w: FloatArray, x: FloatArray, T: FloatArray, *,
              num_threads: int | None = None) -> float:
    """L = E_p ℓ_p over all rows of x, as :meth:`MLP.loss` (``num_threads``: numba's default).

    Computed in float32 when ``w`` is float32 (x and T are then taken in float32 too; each
    block of 256 samples is summed in float32), in float64 otherwise; the sum over blocks and
    the result are float64.
    """
    widths, offsets, bias, act, loss = spec
    dtype = _compute_dtype(w)
    x = np.ascontiguousarray(x, dtype=dtype)
    T = np.ascontiguousarray(T, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    n = x.shape[0]
    sums = np.empty(-(-n // _LOSS_BLOCK))
    with numba_threads(num_threads):
        _mean_loss_kernel(w, widths, offsets, np.int64(bias), np.int64(act), np.int64(loss), x,
                          T, np.int64(_LOSS_BLOCK), sums)
    return float(sums.sum()) / n


def sgd_epoch(spec: tuple, w: FloatArray, v: FloatArray, x: FloatArray, T: FloatArray,
              batch_rows: np.ndarray, batch_starts: np.ndarray, *, lr: float, beta: float,
              heavy_ball: bool, clip_norm: float | None, weight_decay: float,
              divergence_factor: float, loss0: float | None, num_threads: int = 1
              ) -> tuple[FloatArray, int, int, float, float]:
    """One SGD epoch on ``w`` and ``v`` in place.

    ``w``, ``v``, ``x`` and ``T`` are C-contiguous arrays of one dtype, float64 or float32, and
    the epoch is computed in that dtype (``lr``, ``beta``, ``clip_norm`` and ``weight_decay`` are
    rounded to it); the divergence test and the returned losses are float64.  Batch k holds the
    rows ``batch_rows[batch_starts[k]:batch_starts[k + 1]]`` of x and T.  ``num_threads`` > 1
    splits every step into that many runs done in parallel (on at most numba's maximum number of
    threads); the result is the same for every value.

    Returns
    -------
    losses : (num_batches,) array
        Mean loss of each batch done.
    status : int
        0 all batches done, 1 non-finite loss, 2 loss above ``divergence_factor`` · loss0,
        3 non-finite gradient, 4 non-finite weights after the update (w and v are then partly
        updated).
    index : int
        The batch at which training stopped (``num_batches`` when it did not).
    value, loss0 : float
        That batch's loss; the reference loss (the first batch's, at least 1e-300).

    Raises
    ------
    ValueError
        ``w``, ``v``, ``x`` or ``T`` is not C-contiguous or not of ``w``'s dtype (float32 or
        float64): the kernel updates ``w`` and ``v`` in place and would otherwise compile a
        mixed-precision version.
    """
    widths, offsets, bias, act, loss = spec
    dtype = np.asarray(w).dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"w must be a float32 or float64 array; got dtype {dtype}")
    for name, arr in (("w", w), ("v", v), ("x", x), ("T", T)):
        if not (isinstance(arr, np.ndarray) and arr.dtype == dtype
                and arr.flags.c_contiguous):
            raise ValueError(f"{name} must be a C-contiguous {dtype} array (the dtype of w)")
    typed = dtype.type
    num_batches = batch_starts.size - 1
    losses = np.zeros(num_batches)
    with np.errstate(over="ignore"):  # a scalar beyond float32's range becomes inf, as in numpy
        scalars = (typed(lr), typed(beta), typed(0.0 if clip_norm is None else clip_norm),
                   typed(weight_decay))
    with numba_threads(num_threads):
        status, index, value, loss0_out = _sgd_epoch_kernel(
            w, v, widths, offsets, np.int64(bias), np.int64(act), np.int64(loss), x, T,
            np.ascontiguousarray(batch_rows, dtype=np.int64),
            np.ascontiguousarray(batch_starts, dtype=np.int64),
            scalars[0], scalars[1], bool(heavy_ball), scalars[2], scalars[3],
            float(divergence_factor), loss0 is not None, 1.0 if loss0 is None else float(loss0),
            losses, np.int64(num_threads),
        )
    return losses, int(status), int(index), float(value), float(loss0_out)


def _num_blocks(n: int) -> int:
    return max(1, min(n, 8 * int(numba.get_num_threads())))


def per_sample_gradients(spec: tuple, w: FloatArray, x: FloatArray,
                         T: FloatArray) -> FloatArray:
    """Per-sample gradients (N, D); ``spec`` = (widths, offsets, bias, activation, loss codes)."""
    widths, offsets, bias, act, loss = spec
    x = np.ascontiguousarray(x, dtype=np.float64)
    T = np.ascontiguousarray(T, dtype=np.float64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    out = np.empty((x.shape[0], int(offsets[-1])))
    _per_sample_gradients_kernel(w, widths, offsets, np.int64(bias), np.int64(act),
                                 np.int64(loss), x, T, out, np.int64(_num_blocks(x.shape[0])))
    return out


def layer_factors(spec: tuple, w: FloatArray, x: FloatArray, T: FloatArray,
                  index: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(G, a, δ) of layer ``index``, as :meth:`MLP.layer_factors`."""
    widths, offsets, bias, act, loss = spec
    x = np.ascontiguousarray(x, dtype=np.float64)
    T = np.ascontiguousarray(T, dtype=np.float64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    n = x.shape[0]
    k = int(widths[index + 1])
    G = np.empty((n, k, k))
    a = np.empty((n, int(widths[index]) + int(bias)))
    delta = np.empty((n, k))
    _layer_factors_kernel(w, widths, offsets, np.int64(bias), np.int64(act), np.int64(loss),
                          x, T, np.int64(index), G, a, delta, np.int64(_num_blocks(n)))
    return G, a, delta


__all__ = ["layer_factors", "mean_loss", "per_sample_gradients", "sgd_epoch"]

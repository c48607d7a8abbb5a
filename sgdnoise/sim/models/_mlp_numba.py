r"""Compiled per-sample kernels for :class:`sgdnoise.sim.models.MLP` (``backend="numba"``).

Imported only when that backend is asked for.  The kernels take plain arrays and integer codes
(no Python objects, no randomness): the flat weights ``w``, ``widths`` (L+1,), the offsets of
each W̃_l in ``w`` (L+1,), ``bias`` ∈ {0, 1}, the activation code (0 identity, 1 relu, 2 tanh,
3 sigmoid, 4 gelu), the loss code (0 mse, 1 softmax_mse, 2 cross_entropy), inputs ``x`` (N, d_0)
and targets ``T`` (N, d_L) (float targets for mse, one-hot rows otherwise).  Samples are split into
blocks run in parallel; each block owns its work buffers, and each sample's result depends on that
sample only, so results do not depend on the thread count.  The formulas are those of the numpy
reference in :mod:`sgdnoise.sim.models.mlp`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from sgdnoise._typing import FloatArray

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _jit(parallel: bool = False):
    """The compile options of every kernel here: cached, numpy error model, optional threads."""
    return numba.njit(cache=True, error_model="numpy", parallel=parallel)


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


__all__ = ["layer_factors", "per_sample_gradients"]

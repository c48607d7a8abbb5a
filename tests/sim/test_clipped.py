"""The clipped one-hidden-layer ReLU network of spec claim B4 against explicit loops and finite
differences, its data set, and invalid input.

Tolerances: the loop references compute the same float64 sums in another order (round-off of a
few ulps of the largest term); central differences of a function that is exactly quadratic in θ
on the cell around w (no kink within the step) have no truncation error, only the cancellation
error ε·|ℓ|/h ≈ 1e-10 for h = 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sgdnoise.sim.models import ClippedReluNetwork, HalfplaneData, halfplane_data

EPS = np.finfo(np.float64).eps
H_STEP = 1e-6


# ----------------------------------------------------------------------------------------------
# brute-force references: one sample and one unit at a time
# ----------------------------------------------------------------------------------------------


def _loop_output_and_jacobian(net, w, x_p):
    """f(x_p) and ∇_θ f(x_p) from the definition, unit by unit (TensorFlow's kink conventions)."""
    m, d = net.hidden, net.input_dim
    W = w[: m * d].reshape(m, d)
    b = w[m * d:]
    a = [1.0 if j < m // 2 else -1.0 for j in range(m)]
    u = 0.0
    pre = []
    for j in range(m):
        s = sum(W[j, k] * x_p[k] for k in range(d)) + b[j]
        pre.append(s)
        u += a[j] * max(s, 0.0)
    f = min(max(u, net.delta), 1.0 - net.delta)
    grad = np.zeros(net.num_params)
    if net.delta <= u <= 1.0 - net.delta:
        for j in range(m):
            if pre[j] > 0:
                for k in range(d):
                    grad[j * d + k] = a[j] * x_p[k]
                grad[m * d + j] = a[j]
    return f, grad, u, np.array(pre)


@pytest.fixture
def small_case():
    """m = 6 units, d = 2, N = 40: weights large enough that outputs spread over the clip range."""
    net = ClippedReluNetwork(input_dim=2, hidden=6, delta=1e-3)
    rng = np.random.default_rng(0)
    w = net.init(rng, limit=1.0)
    x = rng.uniform(-2, 2, size=(40, 2))
    y = (x[:, 0] >= x[:, 1]).astype(float)
    return net, w, x, y


def _away_from_kinks(net, w, x, margin=1e-3):
    """Rows whose pre-activations and pre-clip output are at least ``margin`` from every kink."""
    keep = []
    for p in range(x.shape[0]):
        _, _, u, pre = _loop_output_and_jacobian(net, w, x[p])
        if (np.abs(pre).min() > margin and abs(u - net.delta) > margin
                and abs(u - 1 + net.delta) > margin):
            keep.append(p)
    return np.array(keep)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def test_halfplane_data():
    x, y = halfplane_data(np.random.default_rng(3), N=500)
    assert x.shape == (500, 2) and y.shape == (500,)
    assert x.dtype == np.float64 and y.dtype == np.float64
    assert x.min() >= -2 and x.max() <= 2
    assert_allclose(y, (x[:, 0] >= x[:, 1]).astype(float), atol=0)
    # a fair half-plane: the fraction of ones has standard error √(¼/500) ≈ 0.022; 4 s.e.
    assert abs(y.mean() - 0.5) <= 4 * np.sqrt(0.25 / 500)
    again = halfplane_data(3, N=500)
    assert isinstance(again, HalfplaneData)
    assert_allclose(again.x, x, atol=0)
    assert halfplane_data(rng=0).x.shape == (1000, 2)


# ----------------------------------------------------------------------------------------------
# layout and initialisation
# ----------------------------------------------------------------------------------------------


def test_layout_and_output_weights():
    net = ClippedReluNetwork()
    assert (net.input_dim, net.hidden, net.delta) == (2, 100, 1e-3)
    assert net.num_params == 300
    a = net.output_weights
    assert_allclose(a[:50], 1.0, atol=0)
    assert_allclose(a[50:], -1.0, atol=0)
    w = np.arange(300.0)
    W, b = net.unpack(w)
    assert W.shape == (100, 2) and b.shape == (100,)
    assert W[3, 1] == w[3 * 2 + 1] and b[7] == w[200 + 7]  # row-major W, then the biases


def test_init_is_uniform_with_the_glorot_limit_of_a_flat_vector():
    net = ClippedReluNetwork()
    w = net.init(np.random.default_rng(5))
    c = np.sqrt(3.0 / 300)
    assert w.shape == (300,) and np.abs(w).max() <= c
    # U(−c, c) has variance c²/3; the sample variance of 300 draws has relative s.e. √(0.8/300)
    # (kurtosis 9/5 of the uniform law) ≈ 0.052; 4 s.e.
    assert abs(w.var() / (c**2 / 3) - 1) <= 4 * np.sqrt(0.8 / 300)
    assert_allclose(net.init(5), w, atol=0)
    assert np.abs(net.init(5, limit=2.0)).max() <= 2.0


# ----------------------------------------------------------------------------------------------
# against the loop reference
# ----------------------------------------------------------------------------------------------


def test_outputs_losses_and_gradients_match_the_loop(small_case):
    net, w, x, y = small_case
    f_ref = np.empty(len(x))
    J_ref = np.empty((len(x), net.num_params))
    for p in range(len(x)):
        f_ref[p], J_ref[p], _, _ = _loop_output_and_jacobian(net, w, x[p])
    clipped = np.sum((f_ref == net.delta) | (f_ref == 1 - net.delta))
    assert 0 < clipped < len(x)  # the case exercises both regimes
    assert_allclose(net.predict(w, x), f_ref, rtol=1e-14, atol=1e-15)
    assert_allclose(net.output_jacobian(w, x), J_ref, rtol=0, atol=0)
    losses = (f_ref - y) ** 2
    assert_allclose(net.per_sample_losses(w, x, y), losses, rtol=1e-13, atol=1e-16)
    G_ref = 2 * (f_ref - y)[:, None] * J_ref
    assert_allclose(net.per_sample_gradients(w, x, y), G_ref, rtol=1e-13, atol=1e-16)
    assert_allclose(net.per_sample_gradients(w, x, y, chunk=7), G_ref, rtol=1e-13, atol=1e-16)
    L, g = net.loss_and_gradient(w, x, y, chunk=9)
    assert L == pytest.approx(losses.mean(), rel=1e-13)
    assert net.loss(w, x, y) == pytest.approx(losses.mean(), rel=1e-13)
    assert_allclose(g, G_ref.mean(axis=0), rtol=1e-12, atol=1e-15)
    assert_allclose(net.gradient(w, x, y), G_ref.mean(axis=0), rtol=1e-12, atol=1e-15)


def test_hessians_match_the_loop(small_case):
    net, w, x, y = small_case
    h_ref = np.zeros((len(x), net.num_params, net.num_params))
    for p in range(len(x)):
        _, grad, _, _ = _loop_output_and_jacobian(net, w, x[p])
        h_ref[p] = 2 * np.outer(grad, grad)
    h = net.per_sample_hessians(w, x, y)
    assert_allclose(h, h_ref, rtol=0, atol=0)
    H = net.hessian(w, x, y)
    assert_allclose(H, h_ref.mean(axis=0), rtol=1e-13, atol=1e-14)
    assert_allclose(net.hessian(w, x, y, chunk=6), H, rtol=1e-13, atol=1e-14)
    assert_allclose(H, H.T, atol=0)
    assert np.linalg.eigvalsh(H).min() >= -1e-12 * np.abs(H).max()  # Gauss–Newton: PSD


# ----------------------------------------------------------------------------------------------
# against finite differences, away from the kinks
# ----------------------------------------------------------------------------------------------


def _central_differences(fun, w, h=H_STEP):
    out = []
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h
        out.append((fun(w + e) - fun(w - e)) / (2 * h))
    return np.array(out)


def test_gradients_match_finite_differences(small_case):
    net, w, x, y = small_case
    rows = _away_from_kinks(net, w, x)
    assert rows.size >= 20
    x, y = x[rows], y[rows]
    # a step h moves each s_pj by at most h(|x_p|₁ + 1) ≤ 5h ≪ margin: no kink is crossed, so
    # ℓ_p is exactly quadratic in θ over the stencil and central differences are exact up to
    # cancellation, ε|ℓ|/h ≈ 1e-10
    G_fd = _central_differences(lambda v: net.per_sample_losses(v, x, y), w).T
    assert_allclose(net.per_sample_gradients(w, x, y), G_fd, rtol=0, atol=1e-8)
    g_fd = _central_differences(lambda v: net.loss(v, x, y), w)
    assert_allclose(net.gradient(w, x, y), g_fd, rtol=0, atol=1e-8)


def test_hessian_matches_finite_differences_of_the_gradient(small_case):
    net, w, x, y = small_case
    rows = _away_from_kinks(net, w, x)
    x, y = x[rows], y[rows]
    # ∇L is exactly linear in θ on the cell: differences of it are exact up to ε|∇L|/h
    H_fd = _central_differences(lambda v: net.gradient(v, x, y), w)
    assert_allclose(net.hessian(w, x, y), 0.5 * (H_fd + H_fd.T), rtol=0, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# behaviour
# ----------------------------------------------------------------------------------------------


def test_a_hand_built_network_separates_the_half_plane():
    """Unit 1 (a = +1): relu(10(x₁ − x₂) + 0.5) exceeds ½ exactly when x₁ > x₂; every other unit
    is switched off by a bias of −100."""
    net = ClippedReluNetwork(input_dim=2, hidden=4)
    W, b = np.zeros((4, 2)), np.full(4, -100.0)
    W[0] = [10.0, -10.0]
    b[0] = 0.5
    w = np.concatenate([W.ravel(), b])
    x, y = halfplane_data(np.random.default_rng(8), N=300)
    assert net.accuracy(w, x, y) == 1.0
    f = net.predict(w, x)
    assert f.min() >= net.delta and f.max() <= 1 - net.delta
    assert net.accuracy(w, x, 1.0 - y) == 0.0


def test_sgd_trains_the_default_network():
    """A few hundred SGD steps (B = 10, η = 0.05) from the default initialisation learn the
    half-plane; deterministic given the seeds."""
    net = ClippedReluNetwork()
    x, y = halfplane_data(np.random.default_rng(0), N=1000)
    w = net.init(np.random.default_rng(1))
    rng = np.random.default_rng(2)
    start = net.loss(w, x, y)
    for _ in range(300):
        batch = rng.integers(0, 1000, size=10)
        w = w - 0.05 * net.gradient(w, x[batch], y[batch])
    assert net.loss(w, x, y) < 0.25 * start
    assert net.accuracy(w, x, y) > 0.9


# ----------------------------------------------------------------------------------------------
# invalid input
# ----------------------------------------------------------------------------------------------

_NET = ClippedReluNetwork(input_dim=2, hidden=4)
_W = np.zeros(12)
_X = np.zeros((3, 2))
_Y = np.zeros(3)

BAD_INPUTS = [
    ("hidden", lambda: ClippedReluNetwork(hidden=3)),
    ("hidden", lambda: ClippedReluNetwork(hidden=0)),
    ("hidden", lambda: ClippedReluNetwork(hidden=4.0)),
    ("input_dim", lambda: ClippedReluNetwork(input_dim=0)),
    ("delta", lambda: ClippedReluNetwork(delta=0.5)),
    ("delta", lambda: ClippedReluNetwork(delta=0.0)),
    ("delta", lambda: ClippedReluNetwork(delta=float("nan"))),
    ("w", lambda: _NET.loss(np.zeros(11), _X, _Y)),
    ("w", lambda: _NET.predict(np.zeros((12, 1)), _X)),
    ("w", lambda: _NET.unpack(np.full(12, np.nan))),
    ("x", lambda: _NET.loss(_W, np.zeros((3, 3)), _Y)),
    ("x", lambda: _NET.predict(_W, np.zeros(3))),
    ("x", lambda: _NET.hessian(_W, np.zeros((0, 2)), np.zeros(0))),
    ("y", lambda: _NET.per_sample_gradients(_W, _X, np.zeros(4))),
    ("y", lambda: _NET.loss(_W, _X, np.array([0.0, np.nan, 1.0]))),
    ("y", lambda: _NET.accuracy(_W, _X, np.zeros((3, 1)))),
    ("chunk", lambda: _NET.per_sample_gradients(_W, _X, _Y, chunk=0)),
    ("chunk", lambda: _NET.hessian(_W, _X, _Y, chunk=1.5)),
    ("x", lambda: _NET.per_sample_hessians(_W, _X, _Y, max_entries=100)),
    ("max_entries", lambda: _NET.per_sample_hessians(_W, _X, _Y, max_entries=0)),
    ("limit", lambda: _NET.init(0, limit=-1.0)),
    ("rng", lambda: _NET.init("seed")),
    ("N", lambda: halfplane_data(0, N=0)),
    ("rng", lambda: halfplane_data(-1)),
]


@pytest.mark.parametrize(("argument", "call"), BAD_INPUTS,
                         ids=[f"{arg}-{i}" for i, (arg, _) in enumerate(BAD_INPUTS)])
def test_invalid_input_raises_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()

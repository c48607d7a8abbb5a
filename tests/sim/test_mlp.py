"""MLP, activations and losses: exact derivatives against finite differences and each other.

Tolerances.  Central differences with step h = 1e-5 have truncation error ≈ h²|f'''|/6 ≈ 1e-11
and round-off ≈ ε|f|/h ≈ 1e-11 on these O(1) problems; ``FD_ATOL`` = 1e-7 leaves a wide margin
(pre-activations closer than h to a ReLU kink would break the difference quotient; the fixed
seeds below keep them away).  Two exact routes to the same quantity (R-operator vs Hessian
backpropagation, numba vs numpy) differ only by round-off: ``EXACT_RTOL`` = 1e-12.
"""

import dataclasses
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdnoise import backends, theory
from sgdnoise.sim.models import (
    ACTIVATIONS,
    LOSSES,
    MLP,
    Loss,
    get_activation,
    get_loss,
    softmax_mse_hessian,
)

FD_STEP = 1e-5
FD_ATOL = 1e-7
EXACT_RTOL = 1e-12

ACTS = tuple(ACTIVATIONS)
COMBOS = [(act, loss, bias) for act in ACTS for loss in LOSSES for bias in (False, True)]
needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")


def _fd(f, w, step=FD_STEP):
    """Central differences of a vector-valued f along each coordinate: (..., D)."""
    cols = []
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = step
        cols.append((f(w + e) - f(w - e)) / (2 * step))
    return np.stack(cols, axis=-1)


def _labels(loss, rng, N, out):
    if loss == "mse":
        return rng.standard_normal((N, out))
    return rng.integers(0, out, N)


def _case(act, loss, bias, *, widths=(3, 4, 3), N=5, seed=0):
    rng = np.random.default_rng(seed)
    model = MLP(widths, activation=act, loss=loss, bias=bias)
    w = model.init(rng, scale=1.5) + 0.3 * rng.standard_normal(model.num_params)
    x = rng.standard_normal((N, widths[0]))
    return model, w, x, _labels(loss, rng, N, widths[-1])


def _assert_close(actual, desired, rtol=EXACT_RTOL):
    scale = max(float(np.abs(desired).max()), 1.0)
    np.testing.assert_allclose(actual, desired, rtol=0, atol=rtol * scale)


# ---------------------------------------------------------------- activations and losses
@pytest.mark.parametrize("name", ACTS)
def test_activation_derivatives_match_finite_differences(name):
    act = get_activation(name)
    s = np.array([-2.3, -0.7, -0.2, 0.3, 0.9, 1.7])  # away from the ReLU kink
    d1 = np.array([(act(np.array([t + FD_STEP])) - act(np.array([t - FD_STEP])))[0]
                   for t in s]) / (2 * FD_STEP)
    d2 = np.array([(act.derivative(np.array([t + FD_STEP]))
                    - act.derivative(np.array([t - FD_STEP])))[0] for t in s]) / (2 * FD_STEP)
    np.testing.assert_allclose(act.derivative(s), d1, atol=FD_ATOL)
    np.testing.assert_allclose(act.second_derivative(s), d2, atol=FD_ATOL)


def test_activation_conventions():
    relu, gelu, sigmoid = (get_activation(n) for n in ("relu", "gelu", "sigmoid"))
    assert relu.derivative(np.array([0.0]))[0] == 0.0
    assert np.all(relu.second_derivative(np.array([-1.0, 0.0, 1.0])) == 0.0)
    s = np.linspace(-3, 3, 13)
    exact = np.array([t * 0.5 * (1 + math.erf(t / math.sqrt(2))) for t in s])
    np.testing.assert_allclose(gelu(s), exact, rtol=1e-15, atol=1e-16)
    big = np.array([-800.0, 800.0])
    np.testing.assert_array_equal(sigmoid(big), [0.0, 1.0])
    assert np.all(np.isfinite(sigmoid.second_derivative(big)))


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradient_and_hessian_match_finite_differences(name):
    rng = np.random.default_rng(1)
    N, out = 4, 3
    z = 1.5 * rng.standard_normal((N, out))
    y = _labels(name, rng, N, out)
    loss = get_loss(name)
    grad, hess = loss.gradient(z, y), loss.hessian(z, y)
    for p in range(N):
        fd_g = _fd(lambda v, p=p: loss.value(np.vstack([z[:p], v, z[p + 1:]]), y)[p], z[p])
        fd_h = _fd(lambda v, p=p: loss.gradient(np.vstack([z[:p], v, z[p + 1:]]), y)[p], z[p])
        np.testing.assert_allclose(grad[p], fd_g, atol=FD_ATOL)
        np.testing.assert_allclose(hess[p], fd_h, atol=FD_ATOL)
    np.testing.assert_array_equal(hess, hess.transpose(0, 2, 1))


def test_loss_conventions():
    z = np.array([[0.2, -1.0, 0.5]])
    s = np.exp(z) / np.exp(z).sum()
    assert Loss("mse").value(z, np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(
        0.5 * ((z - [1, 0, 0]) ** 2).sum(), rel=1e-15)
    assert Loss("cross_entropy").value(z, np.array([2]))[0] == pytest.approx(-np.log(s[0, 2]),
                                                                           rel=1e-14)
    assert Loss("softmax_mse").value(z, np.array([0]))[0] == pytest.approx(
        0.5 * ((s - [1, 0, 0]) ** 2).sum(), rel=1e-14)


def test_softmax_mse_hessian_has_residual_term():
    """Away from the target the exact Hessian differs from the Gauss–Newton part J²."""
    z = np.array([[0.3, -0.4, 1.1]])
    t = np.array([[1.0, 0.0, 0.0]])
    s = np.exp(z) / np.exp(z).sum()
    J = np.diag(s[0]) - np.outer(s[0], s[0])
    full = softmax_mse_hessian(z, t)[0]
    assert np.abs(full - J @ J).max() > 1e-3
    # at s = t (a soft target equal to the prediction) the residual term vanishes
    np.testing.assert_allclose(softmax_mse_hessian(z, s)[0], J @ J, atol=1e-15)


# ---------------------------------------------------------------- layout and forward pass
def test_layout_views_and_forward_with_bias():
    model = MLP((3, 4, 2), activation="tanh", loss="mse", bias=True)
    assert model.layer_shapes == [(4, 4), (2, 5)]
    assert model.num_params == 26 and model.layer_names == ("layer0", "layer1")
    w = np.arange(26, dtype=np.float64) / 26
    W0, W1 = model.unpack(w)
    assert np.shares_memory(W0, w) and np.shares_memory(W1, w)
    assert model.named_layers(w)["layer1"] is not None
    np.testing.assert_array_equal(model.named_layers(w)["layer1"], W1)
    x = np.random.default_rng(0).standard_normal((5, 3))
    fp = model.forward(w, x)
    s0 = x @ W0[:, :3].T + W0[:, 3]
    z = np.tanh(s0) @ W1[:, :4].T + W1[:, 4]
    np.testing.assert_allclose(fp.s[0], s0, rtol=1e-14)
    np.testing.assert_allclose(fp.logits, z, rtol=1e-14)
    np.testing.assert_array_equal(fp.a[1][:, -1], 1.0)
    assert fp.a[0].shape == (5, 4) and fp.a[1].shape == (5, 5)


def test_model_is_a_frozen_value_that_replace_and_pickle_keep():
    model = MLP([3, 4, 2], "gelu", loss="softmax_mse", bias=True)
    assert model.widths == (3, 4, 2) and model.loss_name == "softmax_mse"
    assert pickle.loads(pickle.dumps(model)) == model
    other = dataclasses.replace(model, bias=False)
    assert (other.loss_name, other.activation, other.bias) == ("softmax_mse", "gelu", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.bias = False


def test_init_is_seeded_with_zero_biases_and_he_scale():
    model = MLP((400, 300, 10), activation="relu", bias=True)
    w1 = model.init(np.random.default_rng(3))
    w2 = model.init(3)
    np.testing.assert_array_equal(w1, w2)
    W0 = model.unpack(w1)[0]
    np.testing.assert_array_equal(W0[:, -1], 0.0)
    # He: std √(2/400); the sample std of 120 000 draws is within 1% (≈ 5 standard errors)
    assert abs(W0[:, :-1].std() / np.sqrt(2 / 400) - 1) < 0.01
    glorot = MLP((400, 300, 10), activation="tanh").init(0)
    assert abs(glorot[:120000].std() / np.sqrt(2 / 700) - 1) < 0.01


# ---------------------------------------------------------------- first and second derivatives
@pytest.mark.parametrize(("act", "loss"), [(a, l) for a in ACTS for l in LOSSES])
def test_per_sample_gradients_match_finite_differences(act, loss):
    model, w, x, y = _case(act, loss, bias=True)
    G = model.per_sample_gradients(w, x, y)
    fd = _fd(lambda v: model.per_sample_losses(v, x, y), w)
    np.testing.assert_allclose(G, fd, atol=FD_ATOL)
    L, g = model.loss_and_gradient(w, x, y)
    np.testing.assert_allclose(g, G.mean(axis=0), rtol=0, atol=1e-14)
    assert L == pytest.approx(model.per_sample_losses(w, x, y).mean(), rel=1e-14)
    np.testing.assert_array_equal(model.gradient(w, x, y), g)


@pytest.mark.parametrize(("act", "loss"), [("relu", "cross_entropy"), ("tanh", "softmax_mse"),
                                           ("gelu", "mse"), ("sigmoid", "cross_entropy")])
def test_hvp_matches_finite_differences_and_dense_hessian(act, loss):
    model, w, x, y = _case(act, loss, bias=True, widths=(3, 5, 4, 3), N=7)
    rng = np.random.default_rng(5)
    v = rng.standard_normal(model.num_params)
    Hv = model.hvp(w, x, y, v)
    fd = (model.gradient(w + FD_STEP * v, x, y) - model.gradient(w - FD_STEP * v, x, y)) / (
        2 * FD_STEP)
    np.testing.assert_allclose(Hv, fd, atol=FD_ATOL)
    H = model.hessian(w, x, y)
    _assert_close(Hv, H @ v)
    np.testing.assert_array_equal(H, H.T)


@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_per_sample_hessians_match_finite_differences_and_dense_hessian(act, loss, bias):
    model, w, x, y = _case(act, loss, bias)
    h = model.per_sample_hessians(w, x, y)
    fd = _fd(lambda v: model.per_sample_gradients(v, x, y), w)
    np.testing.assert_allclose(h, fd, atol=FD_ATOL)
    _assert_close(model.hessian(w, x, y), h.mean(axis=0))


# ---------------------------------------------------------------- Kronecker factors
@st.composite
def _networks(draw, loss):
    depth = draw(st.integers(1, 3))
    min_out = 1 if loss == "mse" else 2
    widths = [draw(st.integers(1, 4)) for _ in range(depth)] + [draw(st.integers(min_out, 4))]
    return tuple(widths), draw(st.integers(1, 5)), draw(st.integers(0, 2**32 - 1))


@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_kronecker_blocks_equal_dense_per_sample_hessian_blocks(act, loss, bias):
    @settings(max_examples=10)
    @given(net=_networks(loss))
    def check(net):
        widths, N, seed = net
        model, w, x, y = _case(act, loss, bias, widths=widths, N=N, seed=seed)
        h = model.per_sample_hessians(w, x, y)
        G = model.per_sample_gradients(w, x, y)
        for l, sl in enumerate(model.layer_slices):
            Gf, a, delta = model.layer_factors(w, x, y, l)
            _assert_close(theory.kronecker_hessians(Gf, a), h[:, sl, sl], rtol=1e-11)
            _assert_close((delta[:, :, None] * a[:, None, :]).reshape(N, -1), G[:, sl])

    check()


@pytest.mark.parametrize(("act", "loss"), [("relu", "cross_entropy"), ("tanh", "softmax_mse")])
def test_kronecker_layer_moments_match_dense_reference(act, loss):
    model, w, x, y = _case(act, loss, bias=True, widths=(4, 5, 3, 3), N=9)
    h = model.per_sample_hessians(w, x, y)
    G = model.per_sample_gradients(w, x, y)
    sl = model.layer_slices[1]
    kron = theory.kronecker_layer_moments(*model.layer_factors(w, x, y, "layer1"))
    dense = theory.dense_layer_moments(h[:, sl, sl], G[:, sl])
    for name in ("H", "M", "Sigma1", "g_mean", "K", "kappa_max"):
        _assert_close(getattr(kron, name), getattr(dense, name), rtol=1e-11)


def test_relu_cross_entropy_factors_are_gauss_newton_psd():
    model, w, x, y = _case("relu", "cross_entropy", bias=False, widths=(4, 6, 5, 3), N=20)
    for l in range(model.num_layers):
        Gf = model.layer_factors(w, x, y, l)[0]
        assert np.linalg.eigvalsh(Gf).min() >= -1e-14


def test_smooth_activation_factors_carry_residual_term():
    """tanh adds diag(φ''(s) ∘ Wᵀδ): the factor is not the Gauss–Newton one."""
    model, w, x, y = _case("tanh", "cross_entropy", bias=False, widths=(3, 4, 3), N=6)
    Gf, _, _ = model.layer_factors(w, x, y, 0)
    fp = model.forward(w, x)
    W1 = model.unpack(w)[1]
    Gz = get_loss("cross_entropy").hessian(fp.logits, y)
    d1 = get_activation("tanh").derivative(fp.s[0])
    gauss_newton = d1[:, :, None] * (W1.T @ Gz @ W1) * d1[:, None, :]
    residual = Gf - gauss_newton
    np.testing.assert_allclose(residual - np.einsum("pi,ij->pij", np.diagonal(residual, 0, 1, 2),
                                                    np.eye(4)), 0.0, atol=1e-15)
    assert np.abs(residual).max() > 1e-3


# ---------------------------------------------------------------- chunking and backends
def test_chunking_does_not_change_results():
    model, w, x, y = _case("gelu", "softmax_mse", bias=True, widths=(3, 4, 3), N=11)
    v = np.random.default_rng(9).standard_normal(model.num_params)
    for chunk in (1, 3, 4096):
        _assert_close(model.per_sample_gradients(w, x, y, chunk=chunk),
                      model.per_sample_gradients(w, x, y, chunk=5))
        _assert_close(model.per_sample_losses(w, x, y, chunk=chunk),
                      model.per_sample_losses(w, x, y))
        _assert_close(model.gradient(w, x, y, chunk=chunk), model.gradient(w, x, y))
        _assert_close(model.hvp(w, x, y, v, chunk=chunk), model.hvp(w, x, y, v))
        _assert_close(model.hessian(w, x, y, chunk=chunk), model.hessian(w, x, y))
        _assert_close(model.per_sample_hessians(w, x, y, chunk=chunk),
                      model.per_sample_hessians(w, x, y))
        for got, ref in zip(model.layer_factors(w, x, y, 0, chunk=chunk),
                            model.layer_factors(w, x, y, 0), strict=True):
            _assert_close(got, ref)


@needs_numba
@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_numba_kernels_match_numpy_reference(act, loss, bias):
    model, w, x, y = _case(act, loss, bias, widths=(4, 6, 5, 3), N=23, seed=4)
    _assert_close(model.per_sample_gradients(w, x, y, backend="numba"),
                  model.per_sample_gradients(w, x, y))
    for layer in range(model.num_layers):
        fast = model.layer_factors(w, x, y, layer, backend="numba")
        ref = model.layer_factors(w, x, y, layer)
        for got, want in zip(fast, ref, strict=True):
            _assert_close(got, want)


def test_numpy_path_does_not_import_numba():
    code = ("import sys, numpy as np; from sgdnoise.sim.models import MLP; "
            "m = MLP((2, 3, 2)); w = m.init(0); x = np.ones((4, 2)); y = np.array([0, 1, 0, 1]); "
            "m.per_sample_gradients(w, x, y); m.layer_factors(w, x, y, 0); "
            "print('numba' in sys.modules, 'sgdnoise.sim.models._mlp_numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- optional torch cross-check
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("act", "loss", "bias"), [("relu", "cross_entropy", False),
                                                   ("gelu", "softmax_mse", True),
                                                   ("tanh", "mse", True)])
def test_per_sample_hessians_match_torch_func(act, loss, bias):
    torch = pytest.importorskip("torch")
    from torch.func import hessian, vmap

    model, w, x, y = _case(act, loss, bias, widths=(3, 4, 3), N=6)
    T = (np.asarray(y, dtype=np.float64) if loss == "mse"
         else np.eye(3)[np.asarray(y)])
    phi = {"relu": torch.relu, "tanh": torch.tanh,
           "gelu": lambda s: torch.nn.functional.gelu(s, approximate="none")}[act]

    def sample_loss(wt, xp, tp):
        a = xp
        for l, (sl, shape) in enumerate(zip(model.layer_slices, model.layer_shapes, strict=True)):
            W = wt[sl.start:sl.stop].reshape(shape)
            if bias:
                a = torch.cat([a, torch.ones(1, dtype=torch.float64)])
            s = W @ a
            a = phi(s) if l < model.num_layers - 1 else s
        if loss == "mse":
            return 0.5 * ((a - tp) ** 2).sum()
        if loss == "softmax_mse":
            return 0.5 * ((torch.softmax(a, dim=0) - tp) ** 2).sum()
        return -(tp * torch.log_softmax(a, dim=0)).sum()

    h_torch = vmap(hessian(sample_loss), in_dims=(None, 0, 0))(
        torch.from_numpy(w), torch.from_numpy(x), torch.from_numpy(T))
    _assert_close(model.per_sample_hessians(w, x, y), h_torch.numpy(), rtol=1e-11)


# ---------------------------------------------------------------- invalid input
_M = MLP((2, 3, 3), activation="tanh", loss="cross_entropy")
_MSE = MLP((2, 3, 2), loss="mse")
_W = np.zeros(_M.num_params)
_X = np.ones((4, 2))
_Y = np.array([0, 1, 2, 0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MLP((3,)), "widths"),
        (lambda: MLP((3, 0, 2)), "widths"),
        (lambda: MLP((3, 2.5, 2)), "widths"),
        (lambda: MLP((3, 1), loss="cross_entropy"), "widths"),
        (lambda: MLP((3, 2), activation="swish"), "activation"),
        (lambda: MLP((3, 2), loss="hinge"), "loss"),
        (lambda: MLP((3, 2), bias="yes"), "bias"),
        (lambda: _M.loss(_W, np.full((4, 2), np.nan), _Y), "x"),
        (lambda: _M.loss(_W, np.ones((4, 3)), _Y), "x"),
        (lambda: _M.loss(_W, _X, np.array([0, 1, 3, 0])), "y"),
        (lambda: _M.loss(_W, _X, np.array([0, -1, 2, 0])), "y"),
        (lambda: _M.loss(_W, _X, np.array([0.0, 1.0, 2.0, 0.0])), "y"),
        (lambda: _M.loss(_W, _X, np.array([0, 1, 2])), "y"),
        (lambda: _MSE.loss(np.zeros(_MSE.num_params), _X, np.ones((4, 3))), "y"),
        (lambda: _MSE.loss(np.zeros(_MSE.num_params), _X, np.full((4, 2), np.nan)), "y"),
        (lambda: _M.loss(np.zeros(5), _X, _Y), "w"),
        (lambda: _M.loss(np.full(_M.num_params, np.nan), _X, _Y), "w"),
        (lambda: _M.hvp(_W, _X, _Y, np.zeros(3)), "v"),
        (lambda: _M.hessian(_W, _X, _Y, max_dim=10), "max_dim"),
        (lambda: _M.per_sample_hessians(_W, _X, _Y, max_entries=100), "max_entries"),
        (lambda: _M.layer_factors(_W, _X, _Y, 2), "layer"),
        (lambda: _M.layer_factors(_W, _X, _Y, "layer7"), "layer"),
        (lambda: _M.per_sample_gradients(_W, _X, _Y, chunk=0), "chunk"),
        (lambda: _M.per_sample_gradients(_W, _X, _Y, backend="cupy"), "backend"),
        (lambda: _M.layer_factors(_W, _X, _Y, 0, backend="gpu"), "backend"),
        (lambda: _M.init(np.random.default_rng(0), scale=-1.0), "scale"),
        (lambda: _M.init(np.random.default_rng(0), scale="lecun"), "scale"),
        (lambda: _M.init("seed"), "rng"),
        (lambda: get_activation("swish"), "activation"),
        (lambda: Loss("hinge"), "loss"),
        (lambda: Loss("mse").value(np.ones(3), np.ones(3)), "z"),
    ],
)
def test_invalid_inputs_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()

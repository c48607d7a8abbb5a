"""Linear regression, deep linear networks and per-sample quadratics: exact curvature.

Tolerances as in ``test_mlp.py``: central differences with step 1e-5 are accurate to ≈ 1e-10 on
these O(1) problems (quadratics: exact up to round-off ≈ 1e-11), checked at 1e-7; exact routes
agree to round-off, 1e-12 relative to the largest entry.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdnoise import theory
from sgdnoise.sim.models import DeepLinearNetwork, LinearRegression, PerSampleQuadratic

FD_STEP = 1e-5
FD_ATOL = 1e-7
EXACT_RTOL = 1e-12


def _fd(f, w, step=FD_STEP):
    cols = []
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = step
        cols.append((f(w + e) - f(w - e)) / (2 * step))
    return np.stack(cols, axis=-1)


def _assert_close(actual, desired, rtol=EXACT_RTOL):
    scale = max(float(np.abs(desired).max()), 1.0)
    np.testing.assert_allclose(actual, desired, rtol=0, atol=rtol * scale)


# ---------------------------------------------------------------- linear regression
@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(8)
    return LinearRegression(x, y), rng.standard_normal(3)


def test_linear_regression_gradients_and_hessians(regression):
    model, w = regression
    G = model.per_sample_gradients(w)
    np.testing.assert_allclose(G, _fd(model.per_sample_losses, w), atol=FD_ATOL)
    h = model.per_sample_hessians(w)
    np.testing.assert_allclose(h, _fd(model.per_sample_gradients, w), atol=FD_ATOL)
    np.testing.assert_array_equal(h, model.x[:, :, None] * model.x[:, None, :])
    _assert_close(model.hessian(), h.mean(axis=0))
    _assert_close(model.gradient(w), G.mean(axis=0))
    v = np.array([0.3, -1.0, 2.0])
    _assert_close(model.hvp(v), model.hessian() @ v)
    assert model.loss(w) == pytest.approx(0.5 * np.mean((model.x @ w - model.y) ** 2), rel=1e-14)


def test_linear_regression_kronecker_factors_and_solution(regression):
    model, w = regression
    Gf, a, delta = model.layer_factors(w)
    _assert_close(theory.kronecker_hessians(Gf, a), model.per_sample_hessians())
    _assert_close(delta * a, model.per_sample_gradients(w))
    w_star = model.solve()
    np.testing.assert_allclose(model.gradient(w_star), 0.0, atol=1e-14)


# ---------------------------------------------------------------- deep linear network
def _dln_case(widths, bias, N=6, seed=0):
    rng = np.random.default_rng(seed)
    model = DeepLinearNetwork(widths, bias=bias)
    w = model.init(rng, scale=1.2) + 0.2 * rng.standard_normal(model.num_params)
    x = rng.standard_normal((N, widths[0]))
    y = rng.standard_normal((N, widths[-1]))
    return model, w, x, y


@pytest.mark.parametrize("bias", [False, True])
def test_deep_linear_network_is_the_product_map(bias):
    model, w, x, y = _dln_case((3, 4, 5, 2), bias)
    assert model.activation == "identity" and model.loss_name == "mse"
    P, c = model.end_to_end(w)
    _assert_close(model.forward(w, x).logits, x @ P.T + c)
    if not bias:
        W0, W1, W2 = model.unpack(w)
        _assert_close(P, W2 @ W1 @ W0)
        np.testing.assert_array_equal(c, 0.0)
    r = x @ P.T + c - y
    _assert_close(model.per_sample_losses(w, x, y), 0.5 * (r * r).sum(axis=1))


@pytest.mark.parametrize("bias", [False, True])
def test_deep_linear_network_derivatives(bias):
    model, w, x, y = _dln_case((3, 4, 2), bias)
    G = model.per_sample_gradients(w, x, y)
    np.testing.assert_allclose(G, _fd(lambda v: model.per_sample_losses(v, x, y), w),
                               atol=FD_ATOL)
    h = model.per_sample_hessians(w, x, y)
    np.testing.assert_allclose(h, _fd(lambda v: model.per_sample_gradients(v, x, y), w),
                               atol=FD_ATOL)
    v = np.random.default_rng(1).standard_normal(model.num_params)
    _assert_close(model.hvp(w, x, y, v), h.mean(axis=0) @ v)
    # the product structure makes L non-convex: H has a negative eigenvalue away from w*
    assert np.linalg.eigvalsh(model.hessian(w, x, y)).min() < -1e-6


@settings(max_examples=25)
@given(widths=st.lists(st.integers(1, 4), min_size=2, max_size=4), bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_deep_linear_network_kronecker_factors(widths, bias, seed):
    model, w, x, y = _dln_case(tuple(widths), bias, N=4, seed=seed)
    h = model.per_sample_hessians(w, x, y)
    layers = model.unpack(w)
    for l, sl in enumerate(model.layer_slices):
        Gf, a, _ = model.layer_factors(w, x, y, l)
        _assert_close(theory.kronecker_hessians(Gf, a), h[:, sl, sl], rtol=1e-11)
        # G_l = P_{>l}ᵀ P_{>l}, the same for every sample (φ' = 1, φ'' = 0, G_z = I)
        above = np.eye(widths[-1])
        for W in layers[:l:-1]:
            above = above @ (W[:, :-1] if bias else W)
        _assert_close(Gf, np.broadcast_to(above.T @ above, Gf.shape))


# ---------------------------------------------------------------- per-sample quadratic
@pytest.fixture
def quadratic():
    rng = np.random.default_rng(2)
    N, D, r = 7, 4, 2
    U = rng.standard_normal((N, D, r))
    centres = rng.standard_normal((N, D))
    return PerSampleQuadratic.from_factors(U, centres), rng.standard_normal(D)


def test_quadratic_gradients_hessians_and_minimiser(quadratic):
    model, w = quadratic
    G = model.per_sample_gradients(w)
    np.testing.assert_allclose(G, _fd(model.per_sample_losses, w), atol=FD_ATOL)
    np.testing.assert_allclose(_fd(model.per_sample_gradients, w), model.per_sample_hessians(),
                               atol=FD_ATOL)
    assert np.linalg.matrix_rank(model.A[0]) == 2
    dense = PerSampleQuadratic(model.A, model.w_centres)
    _assert_close(dense.per_sample_gradients(w), G)
    _assert_close(dense.per_sample_losses(w), model.per_sample_losses(w))
    _assert_close(model.hessian(), model.A.mean(axis=0))
    v = np.ones(4)
    _assert_close(model.hvp(v), model.hessian() @ v)
    np.testing.assert_allclose(model.gradient(model.minimiser()), 0.0, atol=1e-13)
    # at the minimiser the per-sample gradients still disagree: that is the SGD noise
    assert np.abs(model.per_sample_gradients(model.minimiser())).max() > 0.1


def test_quadratic_moments_equal_theory(quadratic):
    model, w = quadratic
    ref = theory.dense_layer_moments(model.per_sample_hessians(), model.per_sample_gradients(w))
    H, M = theory.hessian_moments(model.A)
    _assert_close(ref.H, H)
    _assert_close(ref.M, np.einsum("pij,pjk->ik", model.A, model.A) / model.num_samples)
    _assert_close(M, ref.M)


# ---------------------------------------------------------------- invalid input
_X = np.ones((3, 2))
_A = np.stack([np.eye(2)] * 3)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LinearRegression(np.full((3, 2), np.nan), np.zeros(3)), "x"),
        (lambda: LinearRegression(np.ones(3), np.zeros(3)), "x"),
        (lambda: LinearRegression(_X, np.zeros(4)), "y"),
        (lambda: LinearRegression(_X, np.array([0.0, np.nan, 1.0])), "y"),
        (lambda: LinearRegression(_X, np.zeros(3)).loss(np.zeros(3)), "w"),
        (lambda: LinearRegression(_X, np.zeros(3)).hvp(np.zeros(5)), "v"),
        (lambda: DeepLinearNetwork((3,)), "widths"),
        (lambda: DeepLinearNetwork((3, 2)).loss(np.zeros(6), np.ones((2, 3)), np.array([0, 1])),
         "y"),
        (lambda: DeepLinearNetwork((3, 2)).end_to_end(np.zeros(5)), "w"),
        (lambda: PerSampleQuadratic(-_A, np.zeros((3, 2))), "A"),
        (lambda: PerSampleQuadratic(_A + np.array([[0, 1.0], [0, 0]]), np.zeros((3, 2))), "A"),
        (lambda: PerSampleQuadratic(np.ones((3, 2, 3)), np.zeros((3, 2))), "A"),
        (lambda: PerSampleQuadratic(_A, np.zeros((3, 3))), "w_centres"),
        (lambda: PerSampleQuadratic(_A, np.zeros((3, 2)), factors=np.ones((3, 2, 1))), "factors"),
        (lambda: PerSampleQuadratic.from_factors(np.ones((3, 2)), np.zeros((3, 2))), "U"),
        (lambda: PerSampleQuadratic(_A, np.zeros((3, 2))).loss(np.zeros(3)), "w"),
    ],
)
def test_invalid_inputs_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()

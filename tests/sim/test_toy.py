"""The spec-B3 toy: data, per-sample losses, gradients and Hessians against loops and finite
differences, the two minima, stacked replicas and input validation."""

import math

import numpy as np
import pytest

from sgdnoise.sim.models import Toy2D, toy_data
from sgdnoise.sim.models.toy import FLAT_HESSIAN, SHARP_HESSIAN

C = math.cos(math.pi / 4)
S = math.sin(math.pi / 4)


def _loss_loop(w, x):
    """ℓ(w; x_p) for every p by the formula, one sample at a time."""
    out = []
    for x1, x2 in x:
        p = w[0] - x1 - 1
        q = w[1] - x2 - 1
        f1 = 10 * (C * p - S * q) ** 2 + 100 * (C * p + S * q) ** 2
        f2 = (w[0] - x1 + 1) ** 2 + (w[1] - x2 + 1) ** 2
        out.append(min(f1, f2))
    return np.array(out)


def test_toy_data_is_the_documented_transform_of_standard_normals():
    x = toy_data(np.random.default_rng(3), N=50)
    n = np.random.default_rng(3).standard_normal((50, 2))
    z = n * np.array([math.sqrt(10), 1.0])
    K = np.array([[C, -S], [S, C]])
    np.testing.assert_allclose(x, (z @ K) * 1e-2, rtol=0, atol=0)
    assert x.shape == (50, 2)
    np.testing.assert_array_equal(toy_data(7), toy_data(7))
    assert toy_data(7).shape == (100, 2)


def test_toy_data_covariance_within_standard_errors():
    """Cov x = 10⁻⁴ Kᵀ diag(10, 1) K; the SE of a sample covariance entry is
    √((C_ii C_jj + C_ij²)/n) for Gaussian data; accept 5 SE."""
    n = 200_000
    x = toy_data(np.random.default_rng(0), N=n)
    K = np.array([[C, -S], [S, C]])
    cov = 1e-4 * K.T @ np.diag([10.0, 1.0]) @ K
    emp = np.cov(x.T, bias=True)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(emp - cov) < 5 * se)


def test_losses_match_an_explicit_loop():
    x = toy_data(1, N=30)
    model = Toy2D(x)
    for w in ([1.0, 1.0], [-1.0, -1.0], [0.0, 0.3], [0.2, -0.7], [5.0, -3.0]):
        np.testing.assert_allclose(model.per_sample_losses(np.array(w)), _loss_loop(w, x),
                                   rtol=1e-13)
        assert model.loss(np.array(w)) == pytest.approx(_loss_loop(w, x).mean(), rel=1e-13)


def _points(model, rng, count=40, margin=1e-3):
    """Random points where no sample is within ``margin`` of a branch tie (so finite differences
    stay on one branch)."""
    out = []
    while len(out) < count:
        w = rng.uniform(-2.0, 2.0, size=2)
        d = w - model.x
        p, q = d[:, 0] - 1, d[:, 1] - 1
        f1 = 10 * (C * p - S * q) ** 2 + 100 * (C * p + S * q) ** 2
        f2 = (d[:, 0] + 1) ** 2 + (d[:, 1] + 1) ** 2
        if np.min(np.abs(f1 - f2) / (f1 + f2)) > margin:
            out.append(w)
    return np.array(out)


def test_gradients_and_hessians_against_central_differences():
    """Central differences of a quadratic branch are exact up to round-off: h = 1e-5 gives an
    error ≈ ε·ℓ/h ≈ 1e-9 relative for the gradient; the Hessian from differences of gradients
    likewise."""
    model = Toy2D(toy_data(2, N=20))
    h = 1e-5
    for w in _points(model, np.random.default_rng(0)):
        G = model.per_sample_gradients(w)
        Hs = model.per_sample_hessians(w)
        for i in range(2):
            e = np.zeros(2)
            e[i] = h
            fd = (model.per_sample_losses(w + e) - model.per_sample_losses(w - e)) / (2 * h)
            np.testing.assert_allclose(G[:, i], fd, rtol=1e-6, atol=1e-6)
            fdg = (model.per_sample_gradients(w + e) - model.per_sample_gradients(w - e)) / (2 * h)
            np.testing.assert_allclose(Hs[:, :, i], fdg, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(model.gradient(w), G.mean(axis=0), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(model.hessian(w), Hs.mean(axis=0), rtol=1e-13, atol=1e-13)


def test_branch_hessians_are_the_documented_constants():
    lam, V = np.linalg.eigh(SHARP_HESSIAN)
    np.testing.assert_allclose(lam, [20.0, 200.0], rtol=1e-14)
    np.testing.assert_allclose(np.abs(V[:, 1]), [S, C], rtol=1e-14)  # 200 along (1, 1)/√2
    np.testing.assert_array_equal(FLAT_HESSIAN, 2 * np.eye(2))


def test_sharp_and_flat_minima():
    """GD to each minimum; the sharp one near (1, 1) has Hessian eigenvalues 20 and 200 (every
    sample on the sharp branch), the flat one near (−1, −1) has H = 2I."""
    model = Toy2D(toy_data(4))
    for start, expect in (((1.0, 1.0), [20.0, 200.0]), ((-1.0, -1.0), [2.0, 2.0])):
        w = np.array(start)
        for _ in range(3000):
            w = w - 0.004 * model.gradient(w)
        assert np.linalg.norm(model.gradient(w)) < 1e-10
        assert np.allclose(w, start, atol=0.05)
        np.testing.assert_allclose(np.linalg.eigvalsh(model.hessian(w)), expect, rtol=1e-12)


def test_active_branch_is_the_smaller_value():
    model = Toy2D(toy_data(5, N=40))
    for w in _points(model, np.random.default_rng(1), count=20, margin=0.0):
        d = w - model.x
        f2 = (d[:, 0] + 1) ** 2 + (d[:, 1] + 1) ** 2
        flat = np.isclose(model.per_sample_losses(w), f2, rtol=0, atol=0)
        np.testing.assert_array_equal(model.per_sample_hessians(w)[flat], np.broadcast_to(
            FLAT_HESSIAN, (int(flat.sum()), 2, 2)))
        np.testing.assert_allclose(model.per_sample_gradients(w)[flat], 2 * (d[flat] + 1))


def test_replica_stacks_add_a_leading_axis():
    model = Toy2D(toy_data(6, N=15))
    W = np.random.default_rng(2).uniform(-2, 2, size=(4, 2))
    assert model.per_sample_losses(W).shape == (4, 15)
    assert model.per_sample_gradients(W).shape == (4, 15, 2)
    assert model.per_sample_hessians(W).shape == (4, 15, 2, 2)
    assert model.loss(W).shape == (4,) and model.gradient(W).shape == (4, 2)
    assert model.hessian(W).shape == (4, 2, 2)
    for r, w in enumerate(W):
        np.testing.assert_array_equal(model.per_sample_gradients(W)[r],
                                      model.per_sample_gradients(w))
        np.testing.assert_allclose(model.loss(W)[r], model.loss(w), rtol=1e-15)
        np.testing.assert_allclose(model.hessian(W)[r], model.hessian(w), rtol=1e-15)
    assert isinstance(model.loss(W[0]), float)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: Toy2D(np.zeros((5, 3))), "x"),
    (lambda: Toy2D(np.zeros((0, 2))), "x"),
    (lambda: Toy2D(np.array([[np.nan, 0.0]])), "x"),
    (lambda: Toy2D(np.zeros((5, 2))).loss(np.zeros(3)), "w"),
    (lambda: Toy2D(np.zeros((5, 2))).gradient(np.zeros((2, 2, 2))), "w"),
    (lambda: toy_data(0, N=0), "N"),
    (lambda: toy_data(-1), "rng"),
])
def test_invalid_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()

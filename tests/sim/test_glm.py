"""Softmax and logistic regression: per-sample gradients and Hessians against finite differences."""

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.sim.data import gaussian_mixture, gaussian_regression
from sgdnoise.sim.models import LogisticRegression, SoftmaxRegression


def _fd_grad(f, w, h=1e-6):
    g = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2 * h)
    return g


@pytest.fixture
def softmax_case():
    rng = np.random.default_rng(0)
    data = gaussian_mixture(12, 3, 3, rng=rng)
    model = SoftmaxRegression(data.x, data.y, data.num_classes)
    return model, rng.standard_normal(model.num_params)


def test_softmax_per_sample_gradients_match_finite_differences(softmax_case):
    model, w = softmax_case
    G = model.per_sample_gradients(w)
    for p in range(3):
        fd = _fd_grad(lambda v, p=p: model.per_sample_losses(v)[p], w)
        np.testing.assert_allclose(G[p], fd, atol=1e-8)
    np.testing.assert_allclose(model.gradient(w), G.mean(axis=0), atol=1e-14)


def test_softmax_kronecker_hessians_match_finite_differences(softmax_case):
    model, w = softmax_case
    G, a, _ = model.kronecker_factors(w)
    h = theory.kronecker_hessians(G, a)
    for p in range(3):
        fd = np.array([_fd_grad(lambda v, p=p, i=i: model.per_sample_gradients(v)[p, i], w)
                       for i in range(w.size)])
        np.testing.assert_allclose(h[p], fd, atol=1e-7)


def test_logistic_gradients_and_hessians_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    model = LogisticRegression(x, y)
    w = rng.standard_normal(3)

    def loss(v, p):
        q = model.probabilities(v)[p]
        return -(y[p] * np.log(q) + (1 - y[p]) * np.log(1 - q))

    g = model.per_sample_gradients(w)
    h = model.per_sample_hessians(w)
    for p in range(5):
        np.testing.assert_allclose(g[p], _fd_grad(lambda v, p=p: loss(v, p), w), atol=1e-8)
        fd = np.array([_fd_grad(lambda v, p=p, i=i: model.per_sample_gradients(v)[p, i], w)
                       for i in range(3)])
        np.testing.assert_allclose(h[p], fd, atol=1e-7)


def test_softmax_fit_reduces_loss_and_is_deterministic():
    rng = np.random.default_rng(2)
    data = gaussian_mixture(200, 4, 3, rng=rng, separation=1.0)
    model = SoftmaxRegression(data.x, data.y, 3)
    w1 = model.fit(num_steps=200)
    w2 = model.fit(num_steps=200)
    assert model.loss(w1) < model.loss(np.zeros(model.num_params))
    np.testing.assert_array_equal(w1, w2)


def test_gaussian_regression_recovers_teacher():
    rng = np.random.default_rng(3)
    S = np.diag([1.0, 0.5, 0.1])
    data = gaussian_regression(20000, S, sigma=0.1, rng=rng)
    w_hat = np.linalg.lstsq(data.x, data.y, rcond=None)[0]
    np.testing.assert_allclose(w_hat, data.w_star, atol=0.01)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SoftmaxRegression(np.zeros((3, 2)), np.array([0, 1, 5]), 3), "y"),
        (lambda: SoftmaxRegression(np.zeros((3, 2)), np.array([0, 1]), 3), "y"),
        (lambda: SoftmaxRegression(np.full((3, 2), np.nan), np.array([0, 1, 2]), 3), "x"),
        (lambda: SoftmaxRegression(np.zeros((3, 2)), np.array([0, 1, 0]), 1), "num_classes"),
        (lambda: LogisticRegression(np.zeros((3, 2)), np.array([0.0, 2.0, 1.0])), "y"),
        (lambda: gaussian_mixture(0, 2, 2, rng=np.random.default_rng(0)), "N"),
        (lambda: gaussian_regression(5, np.array([[1.0, 2.0], [2.0, 1.0]]), sigma=0.1,
                                     rng=np.random.default_rng(0)), "S"),
        (lambda: gaussian_regression(5, np.eye(2), sigma=-1.0, rng=np.random.default_rng(0)),
         "sigma"),
        (lambda: SoftmaxRegression(np.zeros((3, 2)), np.array([0, 1, 2]), 3).loss(np.zeros(2)),
         "w"),
    ],
)
def test_invalid_inputs_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()

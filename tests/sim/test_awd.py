"""Activity–weight duality: partners, exact duality, and the first-order decomposition."""

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.sim.awd import awd_terms, dual_weight_change, match_partners
from sgdnoise.sim.models import SoftmaxRegression


def test_partners_are_same_class_not_self_and_nearest_in_pool():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 5))
    y = rng.integers(0, 4, 200)
    partners = match_partners(a, y, rng=1, pool_per_class=200)  # pool = whole class
    assert np.all(partners >= 0)
    assert np.all(y[partners] == y) and np.all(partners != np.arange(200))
    for p in range(0, 200, 17):
        same = np.flatnonzero((y == y[p]) & (np.arange(200) != p))
        d = np.linalg.norm(a[same] - a[p], axis=1)
        assert partners[p] == same[np.argmin(d)]


def test_partner_matching_is_seeded_and_pool_is_limited():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((500, 3))
    y = rng.integers(0, 2, 500)
    p1 = match_partners(a, y, rng=5, pool_per_class=20, chunk=100)
    p2 = match_partners(a, y, rng=5, pool_per_class=20, chunk=100)
    np.testing.assert_array_equal(p1, p2)
    # each chunk draws one pool of 20 per class: at most 20 distinct partners per class and chunk
    for start in range(0, 500, 100):
        for c in (0, 1):
            rows = np.arange(start, start + 100)[y[start:start + 100] == c]
            assert len(set(p1[rows].tolist())) <= 21


def test_singleton_class_has_no_partner():
    a = np.eye(3)
    partners = match_partners(a, np.array([0, 0, 1]), rng=0)
    assert partners.tolist() == [1, 0, -1]


def test_dual_weight_change_reproduces_partner_loss_exactly():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, 40)
    model = SoftmaxRegression(x, y, 3, bias=False)
    w = rng.standard_normal(model.num_params)
    W = w.reshape(model.shape)
    partners = match_partners(x, y, rng=4)
    losses = model.per_sample_losses(w)
    for p in range(0, 40, 7):
        dW = dual_weight_change(W, x[p], x[partners[p]])
        single = SoftmaxRegression(x[p:p + 1], y[p:p + 1], 3, bias=False)
        assert single.per_sample_losses((W + dW).ravel())[0] == pytest.approx(
            losses[partners[p]], rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("bias", [False, True])
def test_first_order_decomposition_converges(bias):
    """g_p′ − g_p = term I + term II + O(‖Δa‖²): the linearisation ratio falls at least ∝ ε.

    (Between ∝ ε and ∝ ε²: the O(ε³) cross term of the second moments averages towards zero
    for symmetric perturbations, leaving the O(ε⁴) square.)"""
    rng = np.random.default_rng(5)
    n = 60
    base = rng.standard_normal((n, 4))
    labels = rng.integers(0, 3, n)
    W_rng = np.random.default_rng(6)
    ratios = []
    for eps in (1e-2, 1e-4):
        x = np.vstack([base, base + eps * rng.standard_normal((n, 4))])
        y = np.concatenate([labels, labels])
        model = SoftmaxRegression(x, y, 3, bias=bias)
        if not ratios:
            w = W_rng.standard_normal(model.num_params)
        G, a, delta = model.kronecker_factors(w)
        partners = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
        lm = theory.kronecker_layer_moments(G, a, delta)
        terms = awd_terms(w.reshape(model.shape), a, G, delta, partners, lm.M, bias=bias)
        ratios.append(terms.linearisation)
        assert terms.num_pairs == 2 * n and terms.sigma_w2 > 0
    assert ratios[1] < 1e-3
    assert 50 <= ratios[0] / ratios[1] <= 2e4


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: match_partners(np.zeros((3, 2)), np.array([0, 1]), rng=0), "y"),
        (lambda: match_partners(np.zeros((3, 2)), np.array([0, 1, 1]), rng=0, pool_per_class=0),
         "pool_per_class"),
        (lambda: dual_weight_change(np.eye(2), np.zeros(2), np.ones(2)), "a_p"),
        (lambda: awd_terms(np.eye(2), np.ones((3, 2)), np.zeros((3, 2, 2)), np.zeros((3, 2)),
                           np.array([-1, -1, -1]), np.eye(4)), "partners"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()

"""Parameter-basis diagonals of H, M and Σ₁ against full Kronecker moments and dense paths."""

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.sim.models import MLP
from sgdnoise.theory._diagonals import (
    kronecker_gradient_variance,
    kronecker_hessian_diagonal,
    kronecker_second_moment_diagonal,
)


def _factors(rng, N, out, inn, *, psd):
    """Random symmetric G_p (PSD of rank 2, or indefinite), inputs a_p and gradients δ_p."""
    if psd:
        U = rng.standard_normal((N, out, 2))
        G = U @ U.transpose(0, 2, 1)
    else:
        A = rng.standard_normal((N, out, out))
        G = A + A.transpose(0, 2, 1)
    a = rng.standard_normal((N, inn))
    delta = rng.standard_normal((N, out)) + 0.5  # a non-zero mean gradient
    return G, a, delta


@pytest.fixture(params=[(9, 3, 4, True), (11, 4, 2, False), (1, 2, 3, True), (6, 1, 5, False)],
                ids=["psd", "indefinite", "one-sample", "one-output"])
def layer(request):
    N, out, inn, psd = request.param
    return _factors(np.random.default_rng(N + out), N, out, inn, psd=psd)


def test_diagonals_match_kronecker_layer_moments(layer):
    G, a, delta = layer
    out, inn = G.shape[1], a.shape[1]
    mom = theory.kronecker_layer_moments(G, a, delta, per_sample_bound=False)
    for fast, full in [(kronecker_hessian_diagonal(G, a), mom.H),
                       (kronecker_second_moment_diagonal(G, a), mom.M),
                       (kronecker_gradient_variance(delta, a), mom.Sigma1)]:
        assert fast.shape == (out, inn)
        scale = np.abs(full).max()
        np.testing.assert_allclose(fast.reshape(-1), np.diag(full), rtol=1e-12,
                                   atol=1e-13 * scale)


def test_diagonals_match_dense_per_sample_hessians_and_gradients(layer):
    G, a, delta = layer
    h = theory.kronecker_hessians(G, a)                        # (N, D, D), row-major vec(W)
    grads = np.einsum("po,pi->poi", delta, a).reshape(len(a), -1)
    H_ref = np.diag(sum(h[p] for p in range(len(h))) / len(h))
    M_ref = np.diag(sum(h[p] @ h[p] for p in range(len(h))) / len(h))
    g_mean = grads.mean(axis=0)
    var_ref = sum((g - g_mean) ** 2 for g in grads) / len(grads)
    np.testing.assert_allclose(kronecker_hessian_diagonal(G, a).reshape(-1), H_ref, rtol=1e-12,
                               atol=1e-13 * np.abs(H_ref).max())
    np.testing.assert_allclose(kronecker_second_moment_diagonal(G, a).reshape(-1), M_ref,
                               rtol=1e-12, atol=1e-13 * np.abs(M_ref).max())
    np.testing.assert_allclose(kronecker_gradient_variance(delta, a).reshape(-1), var_ref,
                               rtol=1e-10, atol=1e-13 * (grads**2).mean(axis=0).max())


def test_blocks_of_samples_do_not_change_result(layer, monkeypatch):
    from sgdnoise.theory import _diagonals

    G, a, delta = layer
    calls = (lambda: kronecker_hessian_diagonal(G, a),
             lambda: kronecker_second_moment_diagonal(G, a),
             lambda: kronecker_gradient_variance(delta, a))
    whole = [call() for call in calls]
    monkeypatch.setattr(_diagonals, "_BLOCK_FLOATS", 2 * a.shape[1] + 1)  # blocks of 2 samples
    for call, ref in zip(calls, whole, strict=True):
        np.testing.assert_allclose(call(), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


def test_gradient_variance_is_zero_for_identical_samples():
    delta = np.tile([[0.3, -1.2]], (5, 1))
    a = np.tile([[2.0, 0.5, -1.0]], (5, 1))
    var = kronecker_gradient_variance(delta, a)
    np.testing.assert_allclose(var, 0.0, atol=1e-15)


def test_hessian_diagonal_is_linear_in_samples():
    """Concatenating two sample sets gives the sample-weighted mean of their diagonals."""
    rng = np.random.default_rng(3)
    G1, a1, _ = _factors(rng, 4, 3, 2, psd=True)
    G2, a2, _ = _factors(rng, 7, 3, 2, psd=True)
    both = kronecker_hessian_diagonal(np.concatenate([G1, G2]), np.concatenate([a1, a2]))
    parts = (4 * kronecker_hessian_diagonal(G1, a1) + 7 * kronecker_hessian_diagonal(G2, a2)) / 11
    np.testing.assert_allclose(both, parts, rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_layer_diagonals_match_per_sample_hessian_blocks(activation):
    """On a network: layer_factors + diagonals = diagonal of the layer's block of dense h_p."""
    mlp = MLP((4, 3, 3, 2), activation=activation, loss="cross_entropy", bias=True)
    rng = np.random.default_rng(4)
    w = mlp.init(rng)
    w += 0.1 * rng.standard_normal(w.size)  # non-zero biases
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 2, size=8)
    h = mlp.per_sample_hessians(w, x, y)
    grads = mlp.per_sample_gradients(w, x, y)
    for layer, sl in enumerate(mlp.layer_slices):
        G, a, delta = mlp.layer_factors(w, x, y, layer)
        h_block = h[:, sl, sl]
        H_ref = np.diagonal(h_block, axis1=1, axis2=2).mean(axis=0)
        M_ref = np.diagonal(h_block @ h_block, axis1=1, axis2=2).mean(axis=0)
        var_ref = grads[:, sl].var(axis=0)
        np.testing.assert_allclose(kronecker_hessian_diagonal(G, a).reshape(-1), H_ref,
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kronecker_second_moment_diagonal(G, a).reshape(-1), M_ref,
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(kronecker_gradient_variance(delta, a).reshape(-1), var_ref,
                                   rtol=1e-10, atol=1e-12)


_G = np.stack([np.eye(2)] * 3)  # (3, 2, 2)
_A = np.ones((3, 2))
_DELTA = np.ones((3, 2))
_ASYM = np.array([[1.0, 2.0], [0.0, 1.0]])

BAD_INPUTS = [
    ("G", lambda: kronecker_hessian_diagonal(np.stack([_ASYM] * 3), _A)),
    ("G", lambda: kronecker_hessian_diagonal(np.ones((3, 2, 1)), _A)),
    ("G", lambda: kronecker_hessian_diagonal(np.eye(2), _A)),
    ("G", lambda: kronecker_second_moment_diagonal(np.full((3, 2, 2), np.nan), _A)),
    ("G", lambda: kronecker_second_moment_diagonal(np.zeros((0, 2, 2)), np.ones((0, 2)))),
    ("a", lambda: kronecker_hessian_diagonal(_G, np.ones((2, 2)))),
    ("a", lambda: kronecker_hessian_diagonal(_G, np.ones(3))),
    ("a", lambda: kronecker_second_moment_diagonal(_G, np.ones((3, 0)))),
    ("a", lambda: kronecker_second_moment_diagonal(_G, np.full((3, 2), np.inf))),
    ("a", lambda: kronecker_gradient_variance(_DELTA, np.ones((4, 2)))),
    ("a", lambda: kronecker_gradient_variance(_DELTA, np.ones((3, 0)))),
    ("a", lambda: kronecker_gradient_variance(_DELTA, [["x", "y"]] * 3)),
    ("delta", lambda: kronecker_gradient_variance(np.ones(3), _A)),
    ("delta", lambda: kronecker_gradient_variance(np.full((3, 2), np.nan), _A)),
    ("delta", lambda: kronecker_gradient_variance(np.ones((0, 2)), np.ones((0, 2)))),
    ("delta", lambda: kronecker_gradient_variance(np.ones((3, 0)), _A)),
]


@pytest.mark.parametrize(("name", "call"), BAD_INPUTS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_INPUTS)])
def test_invalid_input_raises_value_error_naming_argument(name, call):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()

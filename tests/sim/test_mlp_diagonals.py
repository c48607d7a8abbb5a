"""MLP.layer_hessian_diagonals: the square-root and full recursions against layer_factors."""

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.sim.models import MLP


@pytest.mark.parametrize("activation", ["relu", "identity", "tanh", "gelu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "softmax_mse"])
@pytest.mark.parametrize("bias", [False, True])
def test_diagonals_equal_those_of_layer_factors(activation, loss, bias):
    rng = np.random.default_rng(0)
    model = MLP((5, 4, 3, 3), activation=activation, loss=loss, bias=bias)
    w = model.init(rng)
    x = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7) if loss != "mse" else rng.standard_normal((7, 3))
    out = model.layer_hessian_diagonals(w, x, y, chunk=3)
    assert len(out) == model.num_layers
    for layer, (g_diag, a, delta) in enumerate(out):
        G, a_ref, d_ref = model.layer_factors(w, x, y, layer)
        np.testing.assert_allclose(g_diag, np.diagonal(G, axis1=1, axis2=2), rtol=1e-12,
                                   atol=1e-14)
        np.testing.assert_allclose(a, a_ref, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(delta, d_ref, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(theory.kronecker_hessian_diagonal(g_diag, a),
                                   theory.kronecker_hessian_diagonal(G, a_ref), rtol=1e-12,
                                   atol=1e-15)


def test_diagonal_input_is_validated():
    with pytest.raises(ValueError, match="a"):
        theory.kronecker_hessian_diagonal(np.ones((3, 2)), np.ones((4, 2)))

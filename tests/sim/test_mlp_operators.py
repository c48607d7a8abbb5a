"""Matrix-free curvature operators of an MLP against the dense references, column by column.

References: whole network — ``MLP.hessian`` (H), ``MLP.per_sample_hessians`` (M = E_p[h_p²]),
``MLP.per_sample_gradients`` (Σ₁); one layer — ``layer_factors`` + ``kronecker_layer_moments``.
Both sides are exact, so they differ by round-off only: ``EXACT_RTOL`` = 1e-12 relative to the
largest entry of the reference.
"""

import numpy as np
import pytest
from hypothesis import given, settings

from sgdnoise import theory
from sgdnoise.sim.models import ACTIVATIONS, LOSSES, MLP
from sgdnoise.sim.models._mlp_operators import PIECEWISE_LINEAR
from sgdnoise.verify.strategies import mlp_problems

EXACT_RTOL = 1e-12
COMBOS = [(act, loss, bias) for act in ACTIVATIONS for loss in LOSSES for bias in (False, True)]


def _case(act, loss, bias, *, widths=(3, 4, 3, 3), N=7, seed=0):
    rng = np.random.default_rng(seed)
    model = MLP(widths, activation=act, loss=loss, bias=bias)
    w = model.init(rng, scale=1.5) + 0.3 * rng.standard_normal(model.num_params)
    x = rng.standard_normal((N, widths[0]))
    y = rng.standard_normal((N, widths[-1])) if loss == "mse" else rng.integers(0, widths[-1], N)
    return model, w, x, y


def _dense_references(model, w, x, y):
    h = model.per_sample_hessians(w, x, y)
    G = model.per_sample_gradients(w, x, y)
    Sigma1, g_mean = theory.gradient_covariance(G)
    return {"H": model.hessian(w, x, y), "M": (h @ h).mean(axis=0), "Sigma1": Sigma1,
            "g_mean": g_mean, "h": h}


def _scale(ref, name):
    if name == "Sigma1":
        return max(float(np.abs(ref["Sigma1"]).max()), float(np.max(ref["g_mean"] ** 2)))
    return float(np.abs(ref[name]).max())


def _assert_columns(op, ref, what, rtol=EXACT_RTOL, scale=None):
    """Every column A e_j of the operator against the reference's column j.

    The tolerance is relative to ``scale``: the largest entry of the reference, or of the terms
    that cancel in it (Σ₁ = E_p[g_p g_pᵀ] − ḡḡᵀ vanishes for N = 1).
    """
    D = ref.shape[0]
    A = op.matmat(np.eye(D))
    scale = max(float(np.abs(ref).max()) if scale is None else scale, 1e-300)
    err = np.abs(A - ref).max(axis=0) / scale
    bad = np.flatnonzero(err > rtol)
    assert bad.size == 0, f"{what}: columns {bad.tolist()} differ by up to {err.max():.2e}"


@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_network_operators_match_dense_references(act, loss, bias):
    model, w, x, y = _case(act, loss, bias)
    ops = model.curvature_operators(w, x, y, block=5, chunk=3)
    ref = _dense_references(model, w, x, y)
    assert ops.H.shape == (model.num_params, model.num_params)
    for name in ("H", "M", "Sigma1"):
        _assert_columns(getattr(ops, name), ref[name], f"{name} ({act}, {loss}, bias={bias})",
                        scale=_scale(ref, name))
    np.testing.assert_allclose(ops.g_mean, ref["g_mean"], rtol=0,
                               atol=EXACT_RTOL * np.abs(ref["g_mean"]).max())
    assert ops.K is None
    assert ops.num_samples == x.shape[0]


@settings(max_examples=25)
@given(problem=mlp_problems(max_depth=3, max_width=4, max_samples=6))
def test_network_operators_match_dense_references_over_shapes(problem):
    model, w, x, y = problem
    ops = model.curvature_operators(w, x, y, block=3, chunk=2)
    ref = _dense_references(model, w, x, y)
    for name in ("H", "M", "Sigma1"):
        _assert_columns(getattr(ops, name), ref[name], name, scale=_scale(ref, name))


def test_products_do_not_depend_on_block_chunk_or_vector_shape():
    model, w, x, y = _case("tanh", "softmax_mse", True, widths=(5, 6, 4, 3), N=11)
    rng = np.random.default_rng(3)
    V = rng.standard_normal((model.num_params, 9))
    base = model.curvature_operators(w, x, y, block=64, chunk=4096)
    other = model.curvature_operators(w, x, y, block=2, chunk=4)
    for name in ("H", "M", "Sigma1"):
        A, B = getattr(base, name), getattr(other, name)
        ref = A.matmat(V)
        np.testing.assert_allclose(B.matmat(V), ref, rtol=0, atol=1e-13 * np.abs(ref).max())
        np.testing.assert_allclose(A.matvec(V[:, 0]), ref[:, 0], rtol=0,
                                   atol=1e-13 * np.abs(ref).max())


def test_noise_covariance_scales():
    model, w, x, y = _case("relu", "cross_entropy", False, N=9)
    ops = model.curvature_operators(w, x, y)
    ref = _dense_references(model, w, x, y)["Sigma1"]
    B, N = 4, x.shape[0]
    _assert_columns(ops.C(B), theory.noise_covariance(ref, B), "C with replacement")
    _assert_columns(ops.C(B, replacement=False),
                    theory.noise_covariance(ref, B, N=N, replacement=False),
                    "C without replacement")


@pytest.mark.parametrize("act", PIECEWISE_LINEAR)
def test_piecewise_linear_network_hessian_is_gauss_newton_only_on_layer_blocks(act):
    """z is multilinear in the weights of different layers: h_p ≠ J_pᵀ Λ_p J_p off the diagonal
    layer blocks, even for φ″ = 0, so M ≠ E_p[J_pᵀ Λ_p Θ_p Λ_p J_p]; the operators keep it."""
    model, w, x, y = _case(act, "cross_entropy", False, widths=(3, 4, 3), N=5)
    ref = _dense_references(model, w, x, y)
    D, N = model.num_params, x.shape[0]
    step = 1e-6
    J = np.empty((N, model.widths[-1], D))  # central differences of the (piecewise-)linear map
    for j in range(D):
        e = np.zeros(D)
        e[j] = step
        J[:, :, j] = (model.forward(w + e, x).logits - model.forward(w - e, x).logits) / (2 * step)
    q = np.exp(model.forward(w, x).logits)
    q /= q.sum(axis=1, keepdims=True)
    Lam = q[:, :, None] * np.eye(q.shape[1]) - q[:, :, None] * q[:, None, :]
    ggn = np.einsum("pad,pab,pbe->pde", J, Lam, J)
    first, second = model.layer_slices
    for sl in (first, second):
        np.testing.assert_allclose(ggn[:, sl, sl], ref["h"][:, sl, sl], rtol=0, atol=1e-7)
    cross = np.abs(ggn[:, first, second] - ref["h"][:, first, second]).max()
    assert cross > 1e-3 * np.abs(ref["h"]).max()
    ops = model.curvature_operators(w, x, y)
    _assert_columns(ops.H, ref["H"], "H")
    _assert_columns(ops.M, ref["M"], "M")


def test_memory_estimate_refuses_with_the_size():
    model, w, x, y = _case("relu", "cross_entropy", False)
    with pytest.raises(ValueError, match=r"whole network .* would need .* GB.*max_bytes"):
        model.curvature_operators(w, x, y, max_bytes=1000)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"block": 0}, "block"),
    ({"chunk": 0}, "chunk"),
    ({"layer": 7}, "layer"),
    ({"layer": "first"}, "layer"),
    ({"backend": "numba"}, "backend"),
    ({"max_bytes": -1}, "max_bytes"),
])
def test_invalid_arguments_raise(kwargs, match):
    model, w, x, y = _case("relu", "cross_entropy", False)
    with pytest.raises(ValueError, match=match):
        model.curvature_operators(w, x, y, **kwargs)


def test_invalid_data_raise():
    model, w, x, y = _case("relu", "cross_entropy", False)
    with pytest.raises(ValueError, match="w must have"):
        model.curvature_operators(w[:-1], x, y)
    with pytest.raises(ValueError, match="x must have"):
        model.curvature_operators(w, x[:, :-1], y)
    with pytest.raises(ValueError, match="y must"):
        model.curvature_operators(w, x, y[:-1])


def test_network_quadratic_forms_match_products():
    model, w, x, y = _case("gelu", "softmax_mse", True, widths=(4, 5, 3, 3), N=8)
    ops = model.curvature_operators(w, x, y, block=4)
    V = np.random.default_rng(5).standard_normal((model.num_params, 7))
    fused = ops.diagonals(V, ("H", "M", "Sigma1"))
    for name in ("H", "M", "Sigma1"):
        op = getattr(ops, name)
        ref = np.einsum("ij,ij->j", V, op.matmat(V))
        np.testing.assert_allclose(fused[name], ref, rtol=0, atol=1e-13 * np.abs(ref).max())
        np.testing.assert_allclose(op.diagonal_quadratic(V), ref, rtol=0,
                                   atol=1e-13 * np.abs(ref).max())


# ---------------------------------------------------------------------------- one layer
@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_layer_operators_match_kronecker_moments_and_network_blocks(act, loss, bias):
    model, w, x, y = _case(act, loss, bias, widths=(3, 4, 5, 3))
    net = model.curvature_operators(w, x, y)
    h = model.per_sample_hessians(w, x, y)
    D = model.num_params
    H_net, S_net = net.H.matmat(np.eye(D)), net.Sigma1.matmat(np.eye(D))
    for l, sl in enumerate(model.layer_slices):
        ops = model.curvature_operators(w, x, y, layer=l, block=3)
        ref = theory.kronecker_layer_moments(*model.layer_factors(w, x, y, l))
        for name in ("H", "M", "K", "Sigma1"):
            _assert_columns(getattr(ops, name), getattr(ref, name), f"layer {l} {name}",
                            scale=max(float(np.abs(getattr(ref, name)).max()),
                                      float(np.max(ref.g_mean ** 2))))
        np.testing.assert_allclose(ops.kappa_max, ref.kappa_max, rtol=0,
                                   atol=1e-12 * max(np.abs(ref.kappa_max).max(), 1e-300))
        # H and Σ₁ of the layer are the (l, l) blocks of the whole network's …
        _assert_columns(ops.H, H_net[sl, sl], f"layer {l} H vs network block",
                        scale=float(np.abs(H_net).max()))
        _assert_columns(ops.Sigma1, S_net[sl, sl], f"layer {l} Σ₁ vs network block",
                        scale=max(float(np.abs(S_net).max()), float(np.max(ref.g_mean ** 2))))
        # … while its M is E_p[(h_p^(l,l))²], not the (l, l) block of E_p[h_p²]
        blk = h[:, sl, sl]
        _assert_columns(ops.M, (blk @ blk).mean(axis=0), f"layer {l} M vs E[(h_ll)²]")


def test_layer_m_differs_from_the_network_m_block():
    model, w, x, y = _case("relu", "cross_entropy", False, widths=(3, 4, 3))
    D = model.num_params
    M_net = model.curvature_operators(w, x, y).M.matmat(np.eye(D))
    sl = model.layer_slices[0]
    M_layer = model.curvature_operators(w, x, y, layer=0).M.matmat(np.eye(sl.stop))
    assert np.abs(M_net[sl, sl] - M_layer).max() > 1e-3 * np.abs(M_layer).max()


def test_wide_piecewise_linear_layer_uses_low_rank_factors():
    """ReLU: B_p (K × out) per sample, never N·out²; a smooth activation needs N·out² and says
    so when it does not fit."""
    widths, N = (6, 40, 40, 3), 50
    limit = 8 * N * (40 * 40) + 8 * 4 * 64 * 40 * 40  # below the dense G, above the low rank
    relu = _case("relu", "cross_entropy", False, widths=widths, N=N)
    ops = relu[0].curvature_operators(*relu[1:], layer=1, max_bytes=limit)
    G, a, delta = relu[0].layer_factors(*relu[1:], 1)
    ref = theory.kronecker_layer_moments(G, a, delta)
    V = np.random.default_rng(2).standard_normal((1600, 3))
    for name in ("H", "M", "K", "Sigma1"):
        want = getattr(ref, name) @ V
        np.testing.assert_allclose(getattr(ops, name).matmat(V), want, rtol=0,
                                   atol=1e-12 * np.abs(want).max())
    tanh = _case("tanh", "cross_entropy", False, widths=widths, N=N)
    with pytest.raises(ValueError, match=r"dense factors G .* GB"):
        tanh[0].curvature_operators(*tanh[1:], layer=1, max_bytes=limit)

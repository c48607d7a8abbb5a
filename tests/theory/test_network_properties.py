"""Property tests of spec part A (A1–A3) on the curvature of real, trained networks.

The strategies of ``sgdnoise.verify.strategies`` draw small MLPs (widths, activation, loss,
bias, data, a few SGD epochs from a drawn seed) and hand over their exact per-sample Hessians or
layer Kronecker factors.  Whole-model Hessians of a network with a hidden layer are indefinite
(cross-layer residual terms), so the statements that need PSD h_p (A1's upper side, A2's upper
side) are checked on PSD layer blocks (piecewise-linear activation, convex loss) and on
single-layer nets.  Tolerances are round-off bounds scaled to the matrices, as in
``test_properties.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, find, given, settings
from hypothesis import strategies as st

from sgdnoise.theory import (
    diagonal_wedge,
    eigenbasis,
    fit_power_law,
    hessian_moments,
    kronecker_hessians,
    kronecker_layer_moments,
    loewner_sandwich,
    max_curvatures,
)
from sgdnoise.verify.strategies import (
    NETWORK_ACTIVATIONS,
    PSD_ACTIVATIONS,
    PSD_LOSSES,
    TrainedNetwork,
    mlp_networks,
    network_hessians,
    network_layer_factors,
)

EPS = np.finfo(np.float64).eps
FEW = max(10, settings.default.max_examples // 4)

ANY_NET_HESSIANS = network_hessians()                               # indefinite in general
PSD_LAYER_BLOCKS = network_hessians(block="layer", psd=True)
PSD_SINGLE_LAYER = network_hessians(block="model", psd=True)


def _c(D):
    """Backward-error constant of eigh and of GEMMs of size D."""
    return 8 * D * D * EPS


def _norm(A):
    return float(np.linalg.norm(A, 2))


def _scale(h):
    """Round-off scale of the moments of a stack h: ‖M‖ + ‖H‖², never 0."""
    H, M = hessian_moments(h)
    return _norm(M) + _norm(H) ** 2 + np.finfo(np.float64).tiny


# ----------------------------------------------------------------------------------------------
# the strategies themselves
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(net=mlp_networks())
def test_networks_are_small_trained_and_consistent(net):
    assert isinstance(net, TrainedNetwork)
    assert 2 <= net.num_samples <= 32 and 0 <= net.num_epochs <= 3
    assert net.model.num_layers <= 3 and max(net.model.widths[1:-1], default=1) <= 4
    assert net.w.shape == (net.model.num_params,) and np.all(np.isfinite(net.w))
    assert "TrainedNetwork(widths=" in repr(net)


@settings(max_examples=FEW)
@given(net=mlp_networks(), data=st.data())
def test_layer_factors_are_the_diagonal_blocks_of_the_model_hessians(net, data):
    """h_p restricted to layer l is G_p ⊗ a_p a_pᵀ, and g_p restricted to it is δ_p ⊗ a_p."""
    layer = data.draw(st.integers(0, net.model.num_layers - 1), label="layer")
    G, a, delta = net.layer_factors(layer)
    sl = net.model.layer_slices[layer]
    h = net.per_sample_hessians()[:, sl, sl]
    g = net.per_sample_gradients()[:, sl]
    kron = kronecker_hessians(G, a)
    assert np.abs(kron - h).max() <= 64 * EPS * sl.stop * (1 + np.abs(h).max())
    outer = (delta[:, :, None] * a[:, None, :]).reshape(g.shape)
    assert np.abs(outer - g).max() <= 64 * EPS * (1 + np.abs(g).max())


@settings(max_examples=FEW)
@given(h=PSD_LAYER_BLOCKS)
def test_psd_layer_blocks_are_psd(h):
    lam = np.linalg.eigvalsh(h)
    assert lam.min() >= -_c(h.shape[1]) * max(np.abs(lam).max(), np.finfo(np.float64).tiny)


def test_whole_model_hessians_of_relu_nets_are_not_psd():
    """The cross-layer residual terms make h_p indefinite even for ReLU + cross-entropy: the
    strategy finds such a net (so A1's upper side is never asserted on whole models)."""
    def indefinite(net):
        if net.model.num_layers < 2:
            return False
        lam = np.linalg.eigvalsh(net.per_sample_hessians())
        return lam.min() < -1e-8 * max(1.0, np.abs(lam).max())

    net = find(mlp_networks(activations=("relu",), losses=("cross_entropy",)), indefinite,
               settings=settings(max_examples=200, derandomize=True, database=None))
    assert net.model.num_layers == 2      # shrunk to one hidden layer


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"max_hidden_layers": -1}, "max_hidden_layers"), ({"max_width": 0}, "max_width"),
    ({"min_samples": 1}, "min_samples"), ({"max_samples": 1}, "max_samples"),
    ({"max_epochs": -1}, "max_epochs"), ({"max_classes": 11}, "max_classes"),
    ({"activations": ("swish",)}, "activations"), ({"losses": ()}, "losses"),
    ({"data": ("mnist",)}, "data"), ({"bias": "yes"}, "bias"), ({"eta": 0.0}, "eta"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_network_bounds_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mlp_networks(**kwargs)


def test_psd_networks_refuse_indefinite_choices():
    with pytest.raises(ValueError, match="activations"):
        network_layer_factors(psd=True, activations=("tanh",))
    with pytest.raises(ValueError, match="losses"):
        network_hessians(block="layer", psd=True, losses=("softmax_mse",))
    with pytest.raises(ValueError, match="block"):
        network_hessians(block="layers")
    with pytest.raises(ValueError, match="psd"):
        network_layer_factors(psd="yes")
    assert set(PSD_ACTIVATIONS) <= set(NETWORK_ACTIVATIONS) and PSD_LOSSES


# ----------------------------------------------------------------------------------------------
# A1: Loewner sandwich
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(h=ANY_NET_HESSIANS)
def test_loewner_lower_side_on_network_hessians_A1(h):
    """H² ⪯ M for the (indefinite) whole-model per-sample Hessians of any trained net."""
    H, M = hessian_moments(h)
    assume(_norm(M) > 0)
    # M − H² is computed with an error ≲ c(‖M‖ + ‖H‖²) ≤ 2c‖M‖ (as ‖H‖² ≤ ‖M‖)
    assert loewner_sandwich(H, M).lower >= -2 * _c(H.shape[0])


@settings(max_examples=FEW)
@given(h=st.one_of(PSD_LAYER_BLOCKS, PSD_SINGLE_LAYER))
def test_loewner_upper_side_on_psd_network_curvature_A1(h):
    """M ⪯ κ* H for PSD layer blocks and single-layer nets (κ* = max_p λ_max(h_p))."""
    H, M = hessian_moments(h)
    assume(_norm(M) > 0)
    kappa_star = float(max_curvatures(h).max())
    margins = loewner_sandwich(H, M, kappa_star)
    rtol = _c(H.shape[0]) * (1 + kappa_star * _norm(H) / _norm(M))
    assert margins.lower >= -rtol and margins.upper >= -rtol


# ----------------------------------------------------------------------------------------------
# A2: diagonal wedge
# ----------------------------------------------------------------------------------------------


@settings(max_examples=FEW)
@given(h=ANY_NET_HESSIANS)
def test_wedge_lower_side_on_network_hessians_A2(h):
    H, M = hessian_moments(h)
    eb = eigenbasis(H)
    slack = _c(H.shape[0]) * _scale(h)
    assert np.all(eb.lam**2 <= eb.diagonal(M) + slack)


@settings(max_examples=FEW)
@given(factors=network_layer_factors(psd=True))
def test_wedge_with_per_sample_bound_on_psd_layers_A2(factors):
    """λ_i² ≤ M_ii ≤ E_p[κ_max(p) v_iᵀh_pv_i] ≤ κ* λ_i in each layer of a ReLU/linear net."""
    G, a, delta = factors
    moments = kronecker_layer_moments(G, a, delta)
    assume(_norm(moments.M) > 0)
    eb = eigenbasis(moments.H)
    M_ii, K_ii = eb.diagonal(moments.M), eb.diagonal(moments.K)
    kappa_star = moments.kappa_star
    wedge = diagonal_wedge(eb.lam, M_ii, kappa_star, K_ii)
    slack = _c(moments.H.shape[0]) * (_norm(moments.M) + _norm(moments.H) ** 2
                                      + kappa_star * _norm(moments.H) + _norm(moments.K))
    rtol = slack / max(float(np.abs(M_ii).max()), np.finfo(np.float64).tiny)
    assert wedge.violations(rtol) == {"lower": 0, "upper": 0, "upper_per_sample": 0}


# ----------------------------------------------------------------------------------------------
# A3: the exponent identity on every layer of every trained net
# ----------------------------------------------------------------------------------------------


def _ols(x, y):
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


@settings(max_examples=2 * FEW)
@given(factors=network_layer_factors())
def test_exponent_identity_on_network_layers_A3(factors):
    """γ_fit (OLS of log M_ii on log λ_i over the positive λ) = 1 + slope(log κ_eff), any net.

    Relies only on the identity, so it holds whatever window rule the fit applies: the κ slope
    is computed here, independently, over the directions the fit kept."""
    G, a, _ = factors
    H, M = hessian_moments(kronecker_hessians(G, a))
    eb = eigenbasis(H)
    lam, M_ii = eb.lam, eb.diagonal(M)
    keep = (lam > 0) & (M_ii > 0)
    assume(keep.sum() >= 2)
    try:
        fit = fit_power_law(lam[keep], M_ii[keep])
    except ValueError:
        assume(False)    # fewer than two usable, distinct points after the fit's own filter
    idx = fit.index
    x = np.log10(lam[keep][idx])
    assume(np.ptp(x) > 1e-6 * (1 + np.abs(x).max()))     # a resolved spread of log λ
    k = np.log10(M_ii[keep][idx] / lam[keep][idx])
    y = np.log10(M_ii[keep][idx])
    xc = x - x.mean()
    w = np.abs(xc) / float(xc @ xc)
    # rounding of the logs, of the division and of the two OLS sums
    tol = 16 * EPS * float(w @ (np.abs(x) + np.abs(y) + np.abs(k) + 1)) * x.size
    assert abs(fit.slope - (1.0 + _ols(x, k))) <= tol

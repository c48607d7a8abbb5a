"""Trained-network experiments of SPEC part A (claims A4, A6): train an MLP, analyse its layers.

:func:`train_paper_mlp` follows the paper's protocol (SGD, batch 50, cosine schedule with
T_max = 500 epochs and η_min = η/100, gradient clipping at norm 5, ReLU, no bias) on a data set of
the toolkit; :func:`analyse_layer` computes everything claims A4–A6 compare for one dense layer.

Loss scale (a choice, stated in the docs): softmax-then-MSE is ℓ = ½‖softmax(z) − e_y‖² here,
while the authors' code uses PyTorch's ``MSELoss`` (mean over the K outputs, no ½), whose
gradients are 2/K times ours; ``eta`` for softmax-MSE is therefore converted as
η_ours = (2/K) η_paper when ``paper_lr=True`` (the default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise import theory
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import check_choice, check_positive_int
from sgdnoise.sim.awd import AWDTerms, awd_terms, dual_weight_change, match_partners
from sgdnoise.sim.models import MLP
from sgdnoise.sim.training import TrainConfig, TrainResult, train

LOSSES: tuple[str, ...] = ("cross_entropy", "softmax_mse")


@dataclass(frozen=True)
class TrainedNetwork:
    """A trained MLP with its data and training record.

    Attributes
    ----------
    model : MLP
    w : (D,) array
        Final weights.
    x : (N, d) array
        Training inputs.
    y : (N,) int array
        Labels.
    result : TrainResult
    accuracy : float
        Training accuracy at ``w``.
    """

    model: MLP
    w: FloatArray
    x: FloatArray
    y: IntArray
    result: TrainResult
    accuracy: float


def train_paper_mlp(x: FloatArray, y: IntArray, *, hidden: tuple[int, ...] = (32, 32),
                    loss: str = "cross_entropy", eta: float = 0.1, num_epochs: int = 100,
                    batch_size: int = 50, seed: int = 0, paper_lr: bool = True,
                    backend: str = "numpy") -> TrainedNetwork:
    r"""Train a ReLU MLP without biases with the paper's SGD protocol.

    SGD (no momentum), batch ``batch_size`` drawn by random reshuffling, cosine schedule
    (T_max = 500 epochs, η_min = η/100, stepped per epoch), gradient clipping at norm 5.

    Parameters
    ----------
    x : (N, d) array
        Inputs.
    y : (N,) int array
        Labels in ``range(K)``.
    hidden : tuple of int
        Hidden widths (the paper: 50, 50).
    loss : {"cross_entropy", "softmax_mse"}
    eta : float
        Learning rate in the paper's convention (see module docstring).
    num_epochs : int
    batch_size : int
    seed : int
        Seeds both the initial weights and the batch order.
    paper_lr : bool
        Convert ``eta`` for softmax-MSE from PyTorch's ``MSELoss`` scale to ours.
    backend : str
        Training backend (``"numpy"`` or ``"numba"``).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600, experiments; authors' code Yikuan-PKU/AWCH
    (``train_model.py``).
    """
    check_choice(loss, "loss", LOSSES)
    seed = check_positive_int(seed, "seed", minimum=0)
    K = int(np.max(y)) + 1
    model = MLP((x.shape[1], *hidden, K), activation="relu", loss=loss, bias=False)
    w0 = model.init(np.random.default_rng(np.random.SeedSequence([seed, 1])))
    eta_used = eta * (2.0 / K) if (loss == "softmax_mse" and paper_lr) else eta
    config = TrainConfig(eta=eta_used, batch_size=batch_size, num_epochs=num_epochs,
                         schedule="cosine", t_max=500, eta_min=eta_used / 100, clip_norm=5.0,
                         seed=seed)
    result = train(model, w0, x, y, config, backend=backend)
    acc = float(np.mean(model.forward(result.w, x).logits.argmax(axis=1) == y))
    return TrainedNetwork(model=model, w=result.w, x=x, y=y, result=result, accuracy=acc)


@dataclass(frozen=True)
class LayerAnalysis:
    """Part-A statistics of one dense layer of a trained network.

    Attributes
    ----------
    layer : int
    D : int
        Parameters in the layer.
    lam : (D,) array
        Eigenvalues of H, descending.
    C_ii : (D,) array
        Diagonal of C = Σ₁/B in H's eigenbasis.
    M_ii : (D,) array
        Diagonal of M = E_p[h_p²] in H's eigenbasis.
    fit_emp : PowerLawFit
        C_ii ∝ λ_i^γ_emp.
    fit_awd : PowerLawFit
        M_ii ∝ λ_i^γ_AWD on the same protocol.
    commutation : CommutationReport
        ε(C, H) and its Haar baseline.
    residual_M : float
        min_c ‖C − cM‖_F/‖C‖_F.
    residual_H : float
        min_c ‖C − cH‖_F/‖C‖_F.
    c_fit : float
        The least-squares c of C ≈ cM.
    awd : AWDTerms or None
        The AWD assumption ratios (when computed).
    """

    layer: int
    D: int
    lam: FloatArray
    C_ii: FloatArray
    M_ii: FloatArray
    fit_emp: theory.PowerLawFit
    fit_awd: theory.PowerLawFit
    commutation: theory.CommutationReport
    residual_M: float
    residual_H: float
    c_fit: float
    awd: AWDTerms | None


def proportional_fit(C: FloatArray, P: FloatArray) -> tuple[float, float]:
    r"""Best c in C ≈ cP (Frobenius least squares) and the relative residual ‖C − cP‖_F/‖C‖_F.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A4, A7: C ∝ M against C ∝ H).
    """
    c = float(np.sum(C * P) / np.sum(P * P))
    return c, float(np.linalg.norm(C - c * P) / np.linalg.norm(C))


def analyse_layer(net: TrainedNetwork, layer: int, *, B: int = 50, top: int | None = None,
                  protocol: str = "layerwise", with_awd: bool = True, num_baseline: int = 4,
                  rng: np.random.Generator | int = 0) -> LayerAnalysis:
    r"""H, M, C, fits, commutation and (optionally) the AWD ratios of one layer.

    C = Σ₁/B (with replacement); γ_emp fits C_ii, γ_AWD fits M_ii (same λ, same window).

    Parameters
    ----------
    net : TrainedNetwork
    layer : int
        Dense layer index.
    B : int
        Batch size for C.
    top : int, optional
        Window 𝒩 for the fits.
    protocol : {"top", "layerwise"}
    with_awd : bool
        Also match partners and measure the AWD terms (costs a few D×D GEMMs).
    num_baseline : int
        Haar draws for the commutation baseline.
    rng : Generator or int
        Seeds the partner pools and the baseline.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A4–A6).
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    G, a, delta = net.model.layer_factors(net.w, net.x, net.y, layer)
    lm = theory.kronecker_layer_moments(G, a, delta)
    C = theory.noise_covariance(lm.Sigma1, B)
    eb = theory.eigenbasis(lm.H)
    C_ii, M_ii = eb.diagonal(C), eb.diagonal(lm.M)
    fit_emp = theory.fit_power_law(eb.lam, C_ii, top=top, protocol=protocol)
    fit_awd = theory.fit_power_law(eb.lam, M_ii, top=top, protocol=protocol)
    comm = theory.commutation_metrics(C, lm.H, num_baseline=num_baseline, rng=rng, basis=eb)
    c_fit, res_M = proportional_fit(C, lm.M)
    _, res_H = proportional_fit(C, lm.H)
    terms = None
    if with_awd:
        W = net.model.unpack(net.w)[layer]
        partners = match_partners(a, net.y, rng=rng)
        terms = awd_terms(W, a, G, delta, partners, lm.M, bias=net.model.bias)
    return LayerAnalysis(layer=layer, D=lm.H.shape[0], lam=eb.lam, C_ii=C_ii, M_ii=M_ii,
                         fit_emp=fit_emp, fit_awd=fit_awd, commutation=comm, residual_M=res_M,
                         residual_H=res_H, c_fit=c_fit, awd=terms)


def duality_gap(net: TrainedNetwork, layer: int, partners: IntArray, samples: IntArray) -> float:
    r"""max_p |ℓ(x_p′, W) − ℓ(x_p, W + ΔW_p)| / max(1, |ℓ(x_p′, W)|) over ``samples``.

    Each ΔW_p is applied to the full weight vector and the loss of sample p recomputed by a
    forward pass: an end-to-end check of the duality, not of its algebra.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A4).
    """
    model, w, x, y = net.model, net.w, net.x, net.y
    a = model.forward(w, x).a[layer]
    losses = model.per_sample_losses(w, x, y)
    sl = model.layer_slices[layer]
    shape = model.layer_shapes[layer]
    worst = 0.0
    for p in np.asarray(samples):
        q = int(partners[p])
        if q < 0:
            continue
        dW = dual_weight_change(w[sl].reshape(shape), a[p], a[q])
        w_mod = w.copy()
        w_mod[sl] += dW.ravel()
        lp = float(model.per_sample_losses(w_mod, x[p:p + 1], y[p:p + 1])[0])
        worst = max(worst, abs(lp - losses[q]) / max(1.0, abs(losses[q])))
    return worst


__all__ = [
    "LOSSES",
    "LayerAnalysis",
    "TrainedNetwork",
    "analyse_layer",
    "duality_gap",
    "proportional_fit",
    "train_paper_mlp",
]

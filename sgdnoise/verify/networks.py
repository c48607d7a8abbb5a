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


#: Largest number of parameters :func:`analyse_layer` analyses with dense D×D matrices (four
#: 128 MiB matrices and an O(D³) eigendecomposition at the limit); above it the matrix-free
#: operators and the top eigenpairs of H are used.
DENSE_MAX_DIM: int = 4096
#: Eigenpairs of H computed on the operator path when no fit window ``top`` is given.
DEFAULT_NUM_EIGENPAIRS: int = 500
ANALYSIS_METHODS: tuple[str, ...] = ("auto", "dense", "operator")


@dataclass(frozen=True)
class LayerAnalysis:
    """Part-A statistics of one dense layer, or of the whole network, of a trained MLP.

    Attributes
    ----------
    layer : int or str
        The layer index, or ``"all"`` for the whole network (every layer jointly, with the
        cross-layer blocks).
    D : int
        Parameters analysed.
    lam : (D,) or (k,) array
        Eigenvalues of H, descending: all of them (dense path) or the top k (operator path).
    C_ii : array
        Diagonal of C = Σ₁/B in H's eigenbasis, for the same directions as ``lam``.
    M_ii : array
        Diagonal of M = E_p[h_p²] in H's eigenbasis.
    fit_emp : PowerLawFit
        C_ii ∝ λ_i^γ_emp.
    fit_awd : PowerLawFit
        M_ii ∝ λ_i^γ_AWD on the same protocol.
    commutation : CommutationReport
        ε(C, H) and its Haar baseline (dense path), or their restriction to the top-k window
        P_S = V_S V_Sᵀ (operator path).
    residual_M : float
        min_c ‖C − cM‖_F/‖C‖_F (operator path: of the window compressions V_SᵀCV_S,
        V_SᵀMV_S; NaN when not computed).
    residual_H : float
        min_c ‖C − cH‖_F/‖C‖_F (same convention).
    c_fit : float
        The least-squares c of C ≈ cM (same convention).
    awd : AWDTerms or None
        The AWD assumption ratios (when computed).
    method : str
        ``"dense"`` or ``"operator"``.
    residual_norms : array or None
        ‖H v_i − λ_i v_i‖ of each eigenpair (operator path), the eigenpairs' error.
    """

    layer: int | str
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
    method: str = "dense"
    residual_norms: FloatArray | None = None


def proportional_fit(C: FloatArray, P: FloatArray) -> tuple[float, float]:
    r"""Best c in C ≈ cP (Frobenius least squares) and the relative residual ‖C − cP‖_F/‖C‖_F.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A4, A7: C ∝ M against C ∝ H).
    """
    c = float(np.sum(C * P) / np.sum(P * P))
    return c, float(np.linalg.norm(C - c * P) / np.linalg.norm(C))


def _check_layer(model: MLP, layer: int | str) -> int | str:
    if isinstance(layer, str) and layer == "all":
        return "all"
    return model.layer_index(layer)


def _analysed_dim(model: MLP, layer: int | str) -> int:
    if layer == "all":
        return model.num_params
    rows, cols = model.layer_shapes[int(layer)]
    return rows * cols


def analyse_layer(net: TrainedNetwork, layer: int | str, *, B: int = 50, top: int | None = None,
                  protocol: str = "layerwise", with_awd: bool = True, num_baseline: int = 4,
                  rng: np.random.Generator | int = 0, method: str = "auto",
                  num_eigenpairs: int | None = None, with_residuals: bool = True,
                  tol: float = 1e-8, eigen_method: str = "auto") -> LayerAnalysis:
    r"""H, M, C, fits, commutation and (optionally) the AWD ratios of one layer or the network.

    C = Σ₁/B (with replacement); γ_emp fits C_ii, γ_AWD fits M_ii (same λ, same window).

    Two paths, with the same numbers where both run (up to the eigensolver's tolerance):

    * ``"dense"``: H, M, Σ₁ as D×D matrices (one layer: from its Kronecker factors; the whole
      network: materialised column by column from :meth:`MLP.curvature_operators`), full
      eigendecomposition of H, every protocol.
    * ``"operator"``: :meth:`MLP.curvature_operators` and the top k eigenpairs of H
      (:func:`sgdnoise.theory.top_eigenbasis`, k = ``num_eigenpairs``, default ``top`` or
      500); M_ii and C_ii are quadratic forms on those k directions, the fits use the
      ``"top"`` protocol on them, and the commutation metrics (and the residuals of C ≈ cM,
      C ≈ cH) are those of the window compressions V_SᵀCV_S, V_SᵀMV_S, diag(λ_S).

    ``"auto"`` picks ``"dense"`` for D ≤ :data:`DENSE_MAX_DIM` = 4096 and ``"operator"``
    above.

    Parameters
    ----------
    net : TrainedNetwork
    layer : int, str
        Dense layer index (or name ``"layer<l>"``), or ``"all"`` for the whole network (every
        layer jointly, weights and biases, with the cross-layer blocks).
    B : int
        Batch size for C.
    top : int, optional
        Window 𝒩 for the fits.
    protocol : {"top", "layerwise"}
        ``"layerwise"`` needs the whole spectrum (dense path only).
    with_awd : bool
        Also match partners and measure the AWD terms (one layer, dense path only).
    num_baseline : int
        Haar draws for the commutation baseline.
    rng : Generator or int
        Seeds the partner pools, the baseline and the eigensolver's start block.
    method : {"auto", "dense", "operator"}
    num_eigenpairs : int, optional
        k of the operator path (default ``top``, else 500; at most D − 1).
    with_residuals : bool
        Operator path: also compress M onto the window (k M-products) for ``residual_M``,
        ``residual_H`` and ``c_fit`` (else NaN).
    tol : float
        Relative residual tolerance of the top eigenpairs (operator path).
    eigen_method : str
        ``method`` of :func:`sgdnoise.theory.top_eigenbasis` (operator path).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A4–A6).
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    model = net.model
    layer = _check_layer(model, layer)
    method = check_choice(method, "method", ANALYSIS_METHODS)
    protocol = check_choice(protocol, "protocol", theory.PROTOCOLS)
    D = _analysed_dim(model, layer)
    if method == "auto":
        method = "dense" if D <= DENSE_MAX_DIM else "operator"
    if with_awd and (layer == "all" or method == "operator"):
        raise ValueError("with_awd needs one layer on the dense path (layer an int, "
                         f"method 'dense'); got layer={layer!r}, method={method!r}")
    if method == "operator":
        if protocol != "top":
            raise ValueError("protocol must be 'top' on the operator path (only the top "
                             "eigenpairs of H are computed); got protocol='layerwise'")
        return _analyse_operators(net, layer, B=B, top=top, num_baseline=num_baseline, rng=rng,
                                  num_eigenpairs=num_eigenpairs, with_residuals=with_residuals,
                                  tol=tol, eigen_method=eigen_method)
    if layer == "all":
        ops = model.curvature_operators(net.w, net.x, net.y)
        H, M, Sigma1 = (op.to_dense() for op in (ops.H, ops.M, ops.Sigma1))
        G = a = delta = None
    else:
        G, a, delta = model.layer_factors(net.w, net.x, net.y, layer)
        lm = theory.kronecker_layer_moments(G, a, delta)
        H, M, Sigma1 = lm.H, lm.M, lm.Sigma1
    C = theory.noise_covariance(Sigma1, B)
    eb = theory.eigenbasis(H)
    C_ii, M_ii = eb.diagonal(C), eb.diagonal(M)
    fit_emp = theory.fit_power_law(eb.lam, C_ii, top=top, protocol=protocol)
    fit_awd = theory.fit_power_law(eb.lam, M_ii, top=top, protocol=protocol)
    comm = theory.commutation_metrics(C, H, num_baseline=num_baseline, rng=rng, basis=eb)
    c_fit, res_M = proportional_fit(C, M)
    _, res_H = proportional_fit(C, H)
    terms = None
    if with_awd:
        W = model.unpack(net.w)[layer]
        partners = match_partners(a, net.y, rng=rng)
        terms = awd_terms(W, a, G, delta, partners, M, bias=model.bias)
    return LayerAnalysis(layer=layer, D=D, lam=eb.lam, C_ii=C_ii, M_ii=M_ii,
                         fit_emp=fit_emp, fit_awd=fit_awd, commutation=comm, residual_M=res_M,
                         residual_H=res_H, c_fit=c_fit, awd=terms, method="dense")


def _analyse_operators(net: TrainedNetwork, layer: int | str, *, B: int, top: int | None,
                       num_baseline: int, rng: np.random.Generator,
                       num_eigenpairs: int | None, with_residuals: bool,
                       tol: float, eigen_method: str) -> LayerAnalysis:
    model = net.model
    D = _analysed_dim(model, layer)
    if num_eigenpairs is None:
        num_eigenpairs = top if top is not None else DEFAULT_NUM_EIGENPAIRS
    k = min(check_positive_int(num_eigenpairs, "num_eigenpairs", minimum=3), D - 1)
    if top is not None and top > k:
        raise ValueError(f"top = {top} exceeds the {k} eigenpairs computed (num_eigenpairs)")
    ops = model.curvature_operators(net.w, net.x, net.y, None if layer == "all" else layer)
    C = ops.C(B)
    basis = theory.top_eigenbasis(ops.H, k, rng=rng, tol=tol, method=eigen_method)
    C_ii, M_ii = basis.diagonal(C, "C"), basis.diagonal(ops.M, "M")
    fit_emp = theory.fit_power_law(basis.lam, C_ii, top=top, protocol="top")
    fit_awd = theory.fit_power_law(basis.lam, M_ii, top=top, protocol="top")
    C_S = basis.rotate(C, "C")
    comm = theory.commutation_metrics(C_S, np.diag(basis.lam), num_baseline=num_baseline,
                                      rng=rng)
    c_fit = res_M = res_H = float("nan")
    if with_residuals:
        c_fit, res_M = proportional_fit(C_S, basis.rotate(ops.M, "M"))
        _, res_H = proportional_fit(C_S, np.diag(basis.lam))
    return LayerAnalysis(layer=layer, D=D, lam=basis.lam, C_ii=C_ii, M_ii=M_ii,
                         fit_emp=fit_emp, fit_awd=fit_awd, commutation=comm, residual_M=res_M,
                         residual_H=res_H, c_fit=c_fit, awd=None, method="operator",
                         residual_norms=basis.residual_norms)


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
    "ANALYSIS_METHODS",
    "DEFAULT_NUM_EIGENPAIRS",
    "DENSE_MAX_DIM",
    "LOSSES",
    "LayerAnalysis",
    "TrainedNetwork",
    "analyse_layer",
    "duality_gap",
    "proportional_fit",
    "train_paper_mlp",
]

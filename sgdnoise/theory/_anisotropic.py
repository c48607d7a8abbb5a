r"""Closed forms of spec part B: the indicator Tr(HΣ), the gain of anisotropic noise, and the exact
covariance of the linearised dynamics near a minimum in continuous and discrete time.

Setting (Zhu, Wu, Yu, Wu & Ma, ICML 2019).  Near a minimum θ* the loss is the quadratic
L(θ) = L* + ½(θ − θ*)ᵀH(θ − θ*); H is the Hessian at θ*, Σ the covariance of the noise.  Two
dynamics start at θ*:

* continuous time, the Ornstein–Uhlenbeck process dθ = −H(θ − θ*) dt + Σ^{1/2} dW;
* discrete time, θ_{k+1} = θ_k − ηH(θ_k − θ*) + ε_k with ε_k ~ N(0, S) i.i.d.  SGD's
  gradient-noise form θ ← θ − η(∇L + ξ), ξ ~ N(0, Σ), is this with S = η²Σ.

Both are Gaussian with mean θ*, so E[L − L*] = ½ Tr(H Cov) exactly.  Everything is computed in
H's eigenbasis H = V diag(λ) Vᵀ, with Σ̃ = VᵀΣV (and S̃ = VᵀSV), where the matrix integral and the
matrix geometric sum become entrywise scalar ones:

.. math::
    \mathrm{Cov}_t = V\,\bigl[\tilde\Sigma_{ij}\, \tfrac{1 - e^{-(\lambda_i+\lambda_j)t}}
                     {\lambda_i+\lambda_j}\bigr]\,V^\top, \qquad
    \mathrm{Cov}_k = V\,\bigl[\tilde S_{ij}\, \tfrac{1 - (\rho_i\rho_j)^k}{1 - \rho_i\rho_j}\bigr]
                     \,V^\top, \quad \rho_i = 1 - \eta\lambda_i .

Conventions: H is symmetric (any sign unless a function says otherwise); Σ and S are symmetric
positive semi-definite covariances; "isotropic counterpart" means Σ̄ = (Tr Σ/D) I, the isotropic
noise of the same total variance (the spec's *matched magnitude*).  The removable singularities
(λ_i + λ_j = 0, ρ_iρ_j = 1) are evaluated through ``expm1``/``log1p`` ratios, never by division
by a vanishing number, so the formulas stay accurate arbitrarily close to them.

References
----------
Z. Zhu, J. Wu, B. Yu, L. Wu, J. Ma, "The Anisotropic Noise in Stochastic Gradient Descent: Its
Behavior of Escaping from Sharp Minima and Regularization Effects", ICML 2019, arXiv:1803.00195
(spec claims B1, B2).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    NonFiniteResultError,
    as_float_array,
    check_finite_result,
    check_positive,
    check_psd_stack,
    check_square,
    pow2_exponent,
    scale_pow2,
)

# ----------------------------------------------------------------------------------------------
# private helpers
# ----------------------------------------------------------------------------------------------


def _symmetric(H: Any, name: str = "H") -> FloatArray:
    H = check_square(H, name, symmetric=True)
    return 0.5 * H + 0.5 * H.T  # halves first: no overflow near the float64 limit


def _covariance(Sigma: Any, name: str, D: int | None = None) -> FloatArray:
    Sigma = _symmetric(Sigma, name)
    if D is not None and Sigma.shape != (D, D):
        raise ValueError(f"{name} must have shape ({D}, {D}) to match H; got {Sigma.shape}")
    check_psd_stack(Sigma[None], name)
    return Sigma


def _pair(H: Any, Sigma: Any, sigma_name: str = "Sigma") -> tuple[FloatArray, FloatArray]:
    H = _symmetric(H)
    return H, _covariance(Sigma, sigma_name, H.shape[0])


def _positive_trace(H: FloatArray) -> float:
    trace = float(np.trace(H))
    if not trace > 0:
        raise ValueError(f"H must have a positive trace Tr H > 0; got {trace:.6g}")
    return trace


def _nonzero_trace(Sigma: FloatArray, name: str = "Sigma") -> float:
    trace = float(np.trace(Sigma))
    if not trace > 0:
        raise ValueError(f"{name} must be non-zero (Tr {name} > 0); got Tr {name} = {trace:.6g}")
    return trace


def _eig(H: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the symmetric H."""
    lam, V = np.linalg.eigh(H)
    return lam[::-1].copy(), np.ascontiguousarray(V[:, ::-1])


def _times(t: Any) -> FloatArray:
    t = as_float_array(t, "t")
    if t.size and float(t.min()) < 0:
        raise ValueError(f"t must be >= 0; got min {float(t.min()):.6g}")
    return t


def _step_counts(num_steps: Any) -> FloatArray:
    """Non-negative integer step counts (scalar or array), returned as float64."""
    if isinstance(num_steps, bool | np.bool_):
        msg = f"num_steps must be a non-negative integer or an array of them; got {num_steps!r}"
        raise ValueError(msg)  # noqa: TRY004
    if isinstance(num_steps, numbers.Integral):
        k = np.asarray(int(num_steps))
    else:
        try:
            k = np.asarray(num_steps)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"num_steps must be integers; got {type(num_steps).__name__}") from exc
        if k.size and not np.issubdtype(k.dtype, np.integer):
            raise ValueError(f"num_steps must have an integer dtype; got {k.dtype}")
    if k.size and int(k.min()) < 0:
        raise ValueError(f"num_steps must be >= 0; got min {int(k.min())}")
    return k.astype(np.float64)


def _expm1_ratio(x: FloatArray) -> FloatArray:
    """(e^x − 1)/x, equal to 1 at x = 0 (accurate for tiny |x|; inf on overflow)."""
    out = np.ones_like(x)
    nz = x != 0
    out[nz] = np.expm1(x[nz]) / x[nz]
    return out


def _log1p_ratio(y: FloatArray) -> FloatArray:
    """log(1 + y)/y for y > −1, equal to 1 at y = 0."""
    out = np.ones_like(y)
    nz = y != 0
    out[nz] = np.log1p(y[nz]) / y[nz]
    return out


def _ou_kernel(s: FloatArray, t: FloatArray) -> FloatArray:
    r"""∫₀ᵗ e^{−s u} du = (1 − e^{−st})/s (t at s = 0), for arrays s and t that broadcast."""
    s, t = np.broadcast_arrays(s, t)
    with np.errstate(over="ignore", invalid="ignore"):
        return t * _expm1_ratio(np.ascontiguousarray(-s * t))


def _geometric_kernel(u: FloatArray, k: FloatArray) -> FloatArray:
    r"""Σ_{j<k} q^j = (1 − q^k)/(1 − q) with q = 1 − u (k at u = 0), u and k broadcast.

    For q > ½ the sum is written as k · expm1ratio(k log1p(−u)) · log1p ratio(−u), accurate as
    u → 0; for q ≤ ½ there is no cancellation and the plain quotient is used.
    """
    u, k = np.broadcast_arrays(u, k)
    out = np.empty(u.shape)
    near = u < 0.5
    with np.errstate(over="ignore", invalid="ignore"):
        un, kn = u[near], k[near]
        out[near] = kn * _expm1_ratio(kn * np.log1p(-un)) * _log1p_ratio(-un)
        uf, kf = u[~near], k[~near]
        out[~near] = (1.0 - np.power(1.0 - uf, kf)) / uf
    return np.where(k == 0, 0.0, out)  # the empty sum, whatever u (even inf or NaN)


def _unit(A: FloatArray) -> tuple[FloatArray, int]:
    """A·2**-e near unit scale and e (0 for ordinary magnitudes), exactly."""
    e = pow2_exponent(A)
    return scale_pow2(A, -e), e


def _finite_or_raise(value: FloatArray, name: str, why: str) -> FloatArray:
    if not np.all(np.isfinite(value)):
        raise NonFiniteResultError(f"{name} too large: {why} overflows float64")
    return value


def _as_output(value: FloatArray) -> float | FloatArray:
    return float(value) if np.ndim(value) == 0 else value


# ----------------------------------------------------------------------------------------------
# B2: indicator, gain, alignment
# ----------------------------------------------------------------------------------------------


def indicator(H: FloatArray, Sigma: FloatArray) -> float:
    r"""The indicator of claim B1: Tr(HΣ), the rate of expected loss increase near a minimum.

    .. math:: \mathcal I(\Sigma) = \mathrm{Tr}(H\Sigma) = \sum_i \lambda_i\, v_i^\top \Sigma v_i

    Near a minimum, noise of covariance Σ raises the expected loss at the initial rate
    ½ Tr(HΣ) per unit time (see :func:`ou_loss_increase_small_t`), so structures of equal total
    variance Tr Σ are ranked by this number.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    Sigma : (D, D) array
        Noise covariance, symmetric positive semi-definite (any scale: the indicator is linear
        in Σ).

    Returns
    -------
    float

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, the indicator Tr(HΣ)).
    """
    H, Sigma = _pair(H, Sigma)
    (H, e_H), (Sigma, e_S) = _unit(H), _unit(Sigma)  # bilinear: exact power-of-two scaling
    value = scale_pow2(float(np.einsum("ij,ij->", H, Sigma)), e_H + e_S)
    return float(check_finite_result(value, "H and Sigma", "Tr(HΣ)"))


def isotropic_counterpart(Sigma: FloatArray) -> FloatArray:
    r"""Isotropic noise of the same total variance, Σ̄ = (Tr Σ/D) I.

    .. math:: \bar\Sigma = \frac{\mathrm{Tr}\,\Sigma}{D}\, I_D, \qquad
              \mathrm{Tr}\,\bar\Sigma = \mathrm{Tr}\,\Sigma

    Parameters
    ----------
    Sigma : (D, D) array
        Symmetric positive semi-definite noise covariance.

    Returns
    -------
    (D, D) array

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, Σ̄; the ``dynamic``
    Langevin variant at matched magnitude).
    """
    Sigma, e = _unit(_covariance(Sigma, "Sigma"))
    D = Sigma.shape[0]
    iso = scale_pow2((float(np.trace(Sigma)) / D) * np.eye(D), e)
    return check_finite_result(iso, "Sigma", "Tr Σ/D")


def gain_ratio(H: FloatArray, Sigma: FloatArray) -> float:
    r"""Gain r of anisotropic noise over its isotropic counterpart of equal total variance.

    .. math:: r = \frac{\mathrm{Tr}(H\Sigma)}{\mathrm{Tr}(H\bar\Sigma)}
                = \frac{D\,\mathrm{Tr}(H\Sigma)}{\mathrm{Tr}\,H\ \mathrm{Tr}\,\Sigma},
              \qquad \bar\Sigma = \frac{\mathrm{Tr}\,\Sigma}{D} I

    r is invariant under Σ → cΣ (c > 0), under H → cH (c > 0) and under a joint rotation
    (H, Σ) → (QHQᵀ, QΣQᵀ); it lies in :func:`gain_bounds`.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian with Tr H > 0.
    Sigma : (D, D) array
        Symmetric positive semi-definite noise covariance, Σ ≠ 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If Tr H ≤ 0 (naming ``H``) or Tr Σ = 0 (naming ``Sigma``).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, r = Tr(HΣ)/Tr(HΣ̄)).
    """
    H, Sigma = _pair(H, Sigma)
    (H, _), (Sigma, _) = _unit(H), _unit(Sigma)  # r is invariant to the scale of H and Σ
    trace_H = _positive_trace(H)
    trace_Sigma = _nonzero_trace(Sigma)
    D = H.shape[0]
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        r = D * np.einsum("ij,ij->", H, Sigma) / (np.float64(trace_H) * trace_Sigma)
    return float(check_finite_result(r, "H and Sigma", "r = D Tr(HΣ)/(Tr H Tr Σ)"))


def gain_bounds(H: FloatArray) -> tuple[float, float]:
    r"""Range of the gain r over all noise covariances: r ∈ [Dλ_D/Tr H, Dλ₁/Tr H].

    .. math:: \frac{D\lambda_D}{\mathrm{Tr}\,H} \le r \le \frac{D\lambda_1}{\mathrm{Tr}\,H}

    with λ₁ ≥ … ≥ λ_D the eigenvalues of H.  Both ends are attained: by Σ = v_D v_Dᵀ and by
    Σ = v₁v₁ᵀ (the spec's ``eigvec1`` noise).  They follow from
    λ_D Tr Σ ≤ Tr(HΣ) = Σ_i λ_i v_iᵀΣv_i ≤ λ₁ Tr Σ for PSD Σ, which needs only a symmetric H with
    Tr H > 0 (for a PSD H the lower end is ≥ 0).  The upper end is large exactly when H is
    ill-conditioned with a few dominant eigenvalues: anisotropic noise can help only then.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian (positive semi-definite in the paper's setting) with Tr H > 0.

    Returns
    -------
    (lower, upper) : tuple of float

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, bounds on r).
    """
    H, _ = _unit(_symmetric(H))  # the bounds are invariant to the scale of H
    trace_H = _positive_trace(H)
    lam = np.linalg.eigvalsh(H)
    D = H.shape[0]
    with np.errstate(over="ignore"):
        bounds = D * lam[0] / np.float64(trace_H), D * lam[-1] / np.float64(trace_H)
    check_finite_result(np.array(bounds), "H", "Dλ/Tr H (Tr H ≪ max|λ|)")
    return float(bounds[0]), float(bounds[1])


def _top_eigenspace(H: FloatArray, rtol: float) -> tuple[float, FloatArray]:
    lam, V = _eig(H)
    scale = max(float(np.abs(lam).max()), np.finfo(np.float64).tiny)
    top = lam >= lam[0] - rtol * scale
    return float(lam[0]), V[:, top]


def alignment(H: FloatArray, Sigma: FloatArray, *, rtol: float = 1e-10) -> float:
    r"""Fraction a of the noise variance along the top Hessian eigenvector, a = u₁ᵀΣu₁ / Tr Σ.

    .. math:: a = \frac{u_1^\top \Sigma u_1}{\mathrm{Tr}\,\Sigma} \in [0, 1]

    with u₁ a unit eigenvector of H's largest eigenvalue λ₁.

    **Degenerate λ₁.** If λ₁ has multiplicity m > 1 (eigenvalues within ``rtol`` · max|λ| of λ₁
    count as equal), u₁ is any unit vector of the top eigenspace, spanned by the columns of U₁
    (D × m), and the best choice is taken:

    .. math:: a = \max_{u \in \mathrm{span}\,U_1,\ \|u\|=1} \frac{u^\top\Sigma u}{\mathrm{Tr}\,\Sigma}
              = \frac{\lambda_{\max}(U_1^\top \Sigma U_1)}{\mathrm{Tr}\,\Sigma}

    This does not depend on the (arbitrary) eigenvector basis that ``eigh`` returns inside the
    eigenspace, it equals u₁ᵀΣu₁/Tr Σ when λ₁ is simple, and it is the largest a for which
    B2's hypothesis "u₁ᵀΣu₁ ≥ a Tr Σ for a top eigenvector u₁" holds, so
    :func:`aligned_gain_lower_bound` stays a valid (and the sharpest single-vector) bound.  The
    alternative Tr(P₁Σ)/(m Tr Σ) (projector averaged over the eigenspace) is never larger, hence
    gives a weaker bound, and was not chosen.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian.
    Sigma : (D, D) array
        Symmetric positive semi-definite noise covariance, Σ ≠ 0.
    rtol : float
        Relative tolerance (of max|λ|) under which eigenvalues count as equal to λ₁, ≥ 0.

    Returns
    -------
    float

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, alignment condition
    u₁ᵀΣu₁ ≥ a Tr Σ).
    """
    H, Sigma = _pair(H, Sigma)
    (H, _), (Sigma, _) = _unit(H), _unit(Sigma)  # a is invariant to the scale of H and Σ
    rtol = check_positive(rtol, "rtol", allow_zero=True)
    trace_Sigma = _nonzero_trace(Sigma)
    _, U1 = _top_eigenspace(H, rtol)
    projected = U1.T @ Sigma @ U1
    top = float(np.linalg.eigvalsh(0.5 * (projected + projected.T))[-1])
    return min(max(top / trace_Sigma, 0.0), 1.0)


def aligned_gain_lower_bound(H: FloatArray, Sigma: FloatArray, *, rtol: float = 1e-10) -> float:
    r"""B2's lower bound on the gain from alignment: r ≥ a Dλ₁/Tr H.

    .. math:: r \ge a\,\frac{D\lambda_1}{\mathrm{Tr}\,H}, \qquad
              a = \frac{u_1^\top\Sigma u_1}{\mathrm{Tr}\,\Sigma}

    Proof: for PSD H, Tr(HΣ) = Σ_i λ_i v_iᵀΣv_i ≥ λ₁ u₁ᵀΣu₁ = aλ₁ Tr Σ; divide by
    Tr H Tr Σ / D.  The bound needs H ⪰ 0 (a negative eigenvalue can pull Tr(HΣ) below it), so
    an indefinite H is rejected.  With a degenerate λ₁, a is taken as in :func:`alignment`.

    Parameters
    ----------
    H : (D, D) array
        Symmetric positive semi-definite Hessian with Tr H > 0.
    Sigma : (D, D) array
        Symmetric positive semi-definite noise covariance, Σ ≠ 0.
    rtol : float
        Degeneracy tolerance passed to :func:`alignment`.

    Returns
    -------
    float
        a · Dλ₁ / Tr H, at most the upper end of :func:`gain_bounds`.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2: "u₁ᵀΣu₁ ≥ a Tr Σ ⇒
    r ≥ a Dλ₁/Tr H").
    """
    H, Sigma = _pair(H, Sigma)
    (H, _), (Sigma, _) = _unit(H), _unit(Sigma)  # the bound is invariant to both scales
    check_psd_stack(H[None], "H")
    trace_H = _positive_trace(H)
    a = alignment(H, Sigma, rtol=rtol)
    lam1 = float(np.linalg.eigvalsh(H)[-1])
    with np.errstate(over="ignore", divide="ignore"):
        bound = a * H.shape[0] * lam1 / np.float64(trace_H)
    return float(check_finite_result(bound, "H", "aDλ₁/Tr H (Tr H ≪ λ₁)"))


def hessian_noise_gain(H: FloatArray) -> float:
    r"""Gain r for noise proportional to the Hessian, Σ = cH (c > 0).

    .. math:: r = \frac{D\,\mathrm{Tr}(H^2)}{(\mathrm{Tr}\,H)^2}
              = \frac{D\sum_i \lambda_i^2}{(\sum_i \lambda_i)^2} \ge 1

    (≥ 1 by Cauchy–Schwarz, with equality iff H ∝ I); it grows with the spread of the spectrum.
    Derived symbolically in :func:`sgdnoise.theory.hessian_noise_gain_identity`.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian with Tr H > 0 (PSD for Σ = cH to be a covariance).

    Returns
    -------
    float

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, "for Σ ∝ H,
    r = D Tr(H²)/(Tr H)²").
    """
    H, _ = _unit(_symmetric(H))  # r is invariant to the scale of H
    trace_H = np.float64(_positive_trace(H))
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        r = H.shape[0] * np.einsum("ij,ij->", H, H) / trace_H**2
    return float(check_finite_result(r, "H", "D Tr(H²)/(Tr H)² (Tr H ≪ ‖H‖)"))


# ----------------------------------------------------------------------------------------------
# B1, continuous time: the Ornstein–Uhlenbeck process from the minimum
# ----------------------------------------------------------------------------------------------


def ou_covariance(H: FloatArray, Sigma: FloatArray, t: float | FloatArray) -> FloatArray:
    r"""Covariance at time t of the Ornstein–Uhlenbeck process started at the minimum.

    .. math::
        \mathrm{Cov}_t = \int_0^t e^{-Hs}\,\Sigma\,e^{-Hs}\,ds
        = V \Bigl[\tilde\Sigma_{ij}\,\frac{1 - e^{-(\lambda_i+\lambda_j)t}}{\lambda_i+\lambda_j}
          \Bigr] V^\top

    for dθ = −H(θ − θ*) dt + Σ^{1/2} dW, θ(0) = θ*; H = V diag(λ) Vᵀ, Σ̃ = VᵀΣV.  The bracket is
    t Σ̃_ij where λ_i + λ_j = 0 and is evaluated as t · expm1(x)/x with x = −(λ_i + λ_j)t,
    accurate near that limit.  H may have any sign (a saddle or maximum grows the covariance);
    Cov_t solves dC/dt = Σ − HC − CH, C(0) = 0, and tends to the Lyapunov solution
    HC + CH = Σ as t → ∞ when H ≻ 0.

    To model SGD θ ← θ − η(∇L + ξ), ξ ~ N(0, Σ_g), in time t = ηk, pass Σ = ηΣ_g (the SDE
    dθ = −∇L dt + √η Σ_g^{1/2} dW).

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    Sigma : (D, D) array
        Symmetric positive semi-definite diffusion covariance (per unit time).
    t : float or array
        Time(s) t ≥ 0; any shape.

    Returns
    -------
    array of shape ``np.shape(t) + (D, D)``
        Symmetric PSD covariances.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, continuous time).
    Derived symbolically in :func:`sgdnoise.theory.ou_covariance_symbolic` and
    :func:`sgdnoise.theory.ou_lyapunov_identity`.
    """
    H, Sigma = _pair(H, Sigma)
    t = _times(t)
    lam, V = _eig(H)
    with np.errstate(invalid="ignore", over="ignore"):
        Sigma_eig = V.T @ Sigma @ V
        F = _ou_kernel((lam[:, None] + lam[None, :]), t[..., None, None])
        Cov_eig = Sigma_eig * F
    _finite_or_raise(Cov_eig, "t", "e^{-(λ_i+λ_j)t} for the negative eigenvalues of H")
    with np.errstate(invalid="ignore", over="ignore"):
        Cov = V @ Cov_eig @ V.T
        Cov = 0.5 * Cov + 0.5 * np.swapaxes(Cov, -1, -2)
    return check_finite_result(Cov, "H, Sigma and t", "the covariance")


def ou_expected_loss_increase(H: FloatArray, Sigma: FloatArray,
                              t: float | FloatArray) -> float | FloatArray:
    r"""Expected loss increase at time t of the Ornstein–Uhlenbeck process from the minimum.

    .. math::
        \mathbb E[L_t - L^*] = \tfrac12 \mathrm{Tr}(H\,\mathrm{Cov}_t)
        = \tfrac14 \mathrm{Tr}\bigl((I - e^{-2Ht})\Sigma\bigr)
        = \tfrac14 \sum_i \tilde\Sigma_{ii}\,(1 - e^{-2\lambda_i t})

    for the quadratic L = L* + ½(θ − θ*)ᵀH(θ − θ*).  The middle form holds for every symmetric
    H (a zero eigenvalue contributes nothing); for H ≻ 0 it tends to ¼ Tr Σ as t → ∞, and for
    small t it is (t/2) Tr(HΣ) − (t²/2) Tr(H²Σ) + O(t³) (:func:`ou_loss_increase_small_t`).

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    Sigma : (D, D) array
        Symmetric positive semi-definite diffusion covariance (see :func:`ou_covariance` for the
        SGD scaling).
    t : float or array
        Time(s) t ≥ 0.

    Returns
    -------
    float for a scalar ``t``, else an array of ``np.shape(t)``

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1: E[L_t − L*] =
    ½ Tr(H Cov_t) = ¼ Tr((I − e^{−2Ht})Σ)).  Derived in
    :func:`sgdnoise.theory.ou_loss_increase_symbolic`.
    """
    H, Sigma = _pair(H, Sigma)
    t = _times(t)
    lam, V = _eig(H)
    with np.errstate(over="ignore", invalid="ignore"):
        Sigma_ii = np.einsum("ij,ij->j", V, Sigma @ V)
        growth = -np.expm1(-2.0 * lam * t[..., None])
    _finite_or_raise(growth, "t", "e^{-2λt} for the negative eigenvalues of H")
    with np.errstate(invalid="ignore"):
        value = 0.25 * np.einsum("...i,i->...", growth, Sigma_ii)
    return _as_output(_finite_or_raise(value, "t", "the loss increase"))


def ou_loss_increase_small_t(H: FloatArray, Sigma: FloatArray,
                             t: float | FloatArray) -> float | FloatArray:
    r"""Small-time form of the expected loss increase: (t/2) Tr(HΣ).

    .. math:: \mathbb E[L_t - L^*] = \frac t2 \mathrm{Tr}(H\Sigma)
              - \frac{t^2}{2}\mathrm{Tr}(H^2\Sigma) + O(t^3)

    For H ⪰ 0 and PSD Σ the exact value lies between (t/2) Tr(HΣ) (1 − λ₁t) and
    (t/2) Tr(HΣ) (from x − x²/2 ≤ 1 − e^{−x} ≤ x), so the relative error is at most λ₁t.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    Sigma : (D, D) array
        Symmetric positive semi-definite diffusion covariance.
    t : float or array
        Time(s) t ≥ 0.

    Returns
    -------
    float for a scalar ``t``, else an array of ``np.shape(t)``

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, "≈ (t/2) Tr(HΣ) for small
    t").  The expansion is derived in :func:`sgdnoise.theory.ou_loss_increase_series`.
    """
    H, Sigma = _pair(H, Sigma)
    t = _times(t)
    with np.errstate(over="ignore", invalid="ignore"):
        value = 0.5 * t * indicator(H, Sigma)
    return _as_output(check_finite_result(value, "H, Sigma and t", "(t/2) Tr(HΣ)"))


# ----------------------------------------------------------------------------------------------
# B1, discrete time: θ ← θ − ηHθ + ε
# ----------------------------------------------------------------------------------------------


def _check_eta(eta: Any) -> float:
    return check_positive(eta, "eta")


def _one_minus_products(lam: FloatArray, eta: float) -> FloatArray:
    """1 − ρ_iρ_j = ηλ_i + ηλ_j − η²λ_iλ_j, without cancellation for small ηλ."""
    a = eta * lam
    return a[:, None] + a[None, :] - a[:, None] * a[None, :]


def discrete_covariance(H: FloatArray, S: FloatArray, eta: float,
                        num_steps: int | Any) -> FloatArray:
    r"""Covariance after k steps of the linearised noisy iteration started at the minimum.

    .. math::
        \mathrm{Cov}_k = \sum_{j=0}^{k-1} (I - \eta H)^j\, S\, (I - \eta H)^j
        = V\Bigl[\tilde S_{ij}\,\frac{1 - (\rho_i\rho_j)^k}{1 - \rho_i\rho_j}\Bigr]V^\top,
        \qquad \rho_i = 1 - \eta\lambda_i

    for θ_{k+1} − θ* = (I − ηH)(θ_k − θ*) + ε_k, ε_k ~ N(0, S) i.i.d., θ₀ = θ*; S̃ = VᵀSV.  The
    bracket is k S̃_ij where ρ_iρ_j = 1.  SGD's gradient-noise form θ ← θ − η(Hθ + ξ),
    ξ ~ N(0, Σ), is S = η²Σ; the spec's 2-D toy adds ε ~ N(0, S) to the parameters after a GD
    step, which is this form directly.  Any η > 0 and symmetric H are accepted (unstable
    directions, |ρ| > 1, grow geometrically; a ``ValueError`` is raised on float64 overflow).
    As η → 0 with t = ηk and S = η²Σ, Cov_k / η → :func:`ou_covariance` (H, Σ, t), with an error
    O(η).

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    S : (D, D) array
        Symmetric positive semi-definite covariance of the per-step parameter noise.
    eta : float
        Learning rate η > 0.
    num_steps : int or array of int
        Number(s) of steps k ≥ 0; any shape.

    Returns
    -------
    array of shape ``np.shape(num_steps) + (D, D)``

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, discrete time:
    Cov_k = Σ_{j<k} (I − ηH)^j S (I − ηH)^j).  Derived in
    :func:`sgdnoise.theory.discrete_covariance_symbolic`.
    """
    H, S = _pair(H, S, "S")
    eta = _check_eta(eta)
    k = _step_counts(num_steps)
    lam, V = _eig(H)
    with np.errstate(invalid="ignore", over="ignore"):
        S_eig = V.T @ S @ V
        G = _geometric_kernel(_one_minus_products(lam, eta), k[..., None, None])
        Cov_eig = S_eig * G
    _finite_or_raise(Cov_eig, "H, eta and num_steps",
                     "(1 − ηλ_i)^k for the unstable directions")
    with np.errstate(invalid="ignore", over="ignore"):
        Cov = V @ Cov_eig @ V.T
        Cov = 0.5 * Cov + 0.5 * np.swapaxes(Cov, -1, -2)
    return check_finite_result(Cov, "H, S, eta and num_steps", "the covariance")


def discrete_expected_loss_increase(H: FloatArray, S: FloatArray, eta: float,
                                    num_steps: int | Any) -> float | FloatArray:
    r"""Expected loss increase after k steps of the linearised noisy iteration from the minimum.

    .. math::
        \mathbb E[L_k - L^*] = \tfrac12 \mathrm{Tr}(H\,\mathrm{Cov}_k)
        = \tfrac12 \sum_i \lambda_i \tilde S_{ii}\, \frac{1 - \rho_i^{2k}}{1 - \rho_i^2},
        \qquad \rho_i = 1 - \eta\lambda_i

    exact on the quadratic L = L* + ½(θ − θ*)ᵀH(θ − θ*); see :func:`discrete_covariance` for the
    iteration and the S = η²Σ convention.  After one step it is ½ Tr(HS), the indicator.

    Parameters
    ----------
    H : (D, D) array
        Symmetric Hessian at the minimum.
    S : (D, D) array
        Symmetric positive semi-definite covariance of the per-step parameter noise.
    eta : float
        Learning rate η > 0.
    num_steps : int or array of int
        Number(s) of steps k ≥ 0.

    Returns
    -------
    float for a scalar ``num_steps``, else an array of ``np.shape(num_steps)``

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1: E ΔL_k = ½ Tr(H Cov_k)).
    """
    H, S = _pair(H, S, "S")
    eta = _check_eta(eta)
    k = _step_counts(num_steps)
    lam, V = _eig(H)
    with np.errstate(invalid="ignore", over="ignore"):
        S_ii = np.einsum("ij,ij->j", V, S @ V)
        a = eta * lam
        G = _geometric_kernel(2.0 * a - a * a, k[..., None])
        value = 0.5 * np.einsum("...i,i->...", G, lam * S_ii)
    return _as_output(_finite_or_raise(value, "H, eta and num_steps",
                                       "(1 − ηλ_i)^{2k} for the unstable directions"))


def stationary_covariance_discrete(H: FloatArray, S: FloatArray, eta: float) -> FloatArray:
    r"""Stationary covariance (k → ∞) of the linearised noisy iteration.

    .. math::
        \mathrm{Cov}_\infty = \sum_{j\ge 0} (I - \eta H)^j S (I - \eta H)^j
        = V\Bigl[\frac{\tilde S_{ij}}{1 - \rho_i\rho_j}\Bigr]V^\top, \qquad
        \rho_i = 1 - \eta\lambda_i ,

    the solution of the discrete Lyapunov equation P = (I − ηH) P (I − ηH) + S.  It exists iff
    every |ρ_i| < 1, i.e. 0 < ηλ_i < 2; 1 − ρ_iρ_j is evaluated as ηλ_i + ηλ_j − η²λ_iλ_j.

    Parameters
    ----------
    H : (D, D) array
        Symmetric positive definite Hessian.
    S : (D, D) array
        Symmetric positive semi-definite covariance of the per-step parameter noise (S = η²Σ for
        gradient noise Σ).
    eta : float
        Learning rate with 0 < ηλ_max < 2.

    Returns
    -------
    (D, D) array

    Raises
    ------
    ValueError
        If H is not positive definite (naming ``H``) or ηλ_max ≥ 2 (naming ``eta``).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, the k → ∞ limit of the
    discrete-time covariance).  Checked against the Lyapunov equation in
    :func:`sgdnoise.theory.discrete_lyapunov_identity`.
    """
    H, S = _pair(H, S, "S")
    eta = _check_eta(eta)
    lam, V = _eig(H)
    if not lam[-1] > 0:
        raise ValueError(f"H must be positive definite for a stationary covariance; smallest "
                         f"eigenvalue {lam[-1]:.6g}")
    with np.errstate(over="ignore"):
        eta_lam_max = eta * lam[0]
    if not eta_lam_max < 2:
        raise ValueError(f"eta must satisfy eta * lambda_max < 2 for stability; got "
                         f"eta * lambda_max = {eta_lam_max:.6g}")
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        S_eig = V.T @ S @ V
        Cov = V @ (S_eig / _one_minus_products(lam, eta)) @ V.T
        Cov = 0.5 * Cov + 0.5 * Cov.T
    return check_finite_result(Cov, "H, S and eta", "the stationary covariance")


__all__ = [
    "aligned_gain_lower_bound",
    "alignment",
    "discrete_covariance",
    "discrete_expected_loss_increase",
    "gain_bounds",
    "gain_ratio",
    "hessian_noise_gain",
    "indicator",
    "isotropic_counterpart",
    "ou_covariance",
    "ou_expected_loss_increase",
    "ou_loss_increase_small_t",
    "stationary_covariance_discrete",
]

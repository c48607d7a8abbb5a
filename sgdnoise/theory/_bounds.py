"""The Loewner sandwich (A1) and the diagonal wedge (A2) relating H² , M = E_p[h_p²] and κ* H."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_finite_result,
    check_positive,
    check_square,
    pow2_exponent,
    scale_pow2,
)


@dataclass(frozen=True)
class SandwichMargins:
    r"""Smallest eigenvalues of the two gaps of H² ⪯ M ⪯ κ* H, relative to ‖M‖₂.

    Attributes
    ----------
    lower : float
        λ_min(M − H²)/‖M‖₂; ≥ 0 for any symmetric h_p.
    upper : float or None
        λ_min(κ* H − M)/‖M‖₂; ≥ 0 when every h_p ⪰ 0 (None if κ* was not given).
    """

    lower: float
    upper: float | None

    def holds(self, rtol: float = 1e-10) -> bool:
        """Both margins ≥ −rtol (round-off)."""
        return self.lower >= -rtol and (self.upper is None or self.upper >= -rtol)


def loewner_sandwich(H: FloatArray, M: FloatArray, kappa_star: float | None = None
                     ) -> SandwichMargins:
    r"""Margins of the Loewner sandwich of spec claim A1.

    .. math:: H^2 \preceq M = \mathbb{E}_p[h_p^2] \preceq \kappa^* H

    The left side is Jensen's inequality for the operator-convex map h ↦ h² (it is
    M − H² = E_p[(h_p − H)²] ⪰ 0); the right side uses h_p² ⪯ κ_max(p) h_p for h_p ⪰ 0.

    Parameters
    ----------
    H : (D, D) array
        Mean Hessian H = E_p h_p.
    M : (D, D) array
        Mean squared Hessian M = E_p[h_p²].
    kappa_star : float, optional
        κ* = max_p λ_max(h_p); omit to check the left side only.

    Raises
    ------
    ValueError
        For invalid input; when M = 0 but H ≠ 0 (impossible for M = E_p[h_p²]); and when a
        margin exceeds the float64 range because ‖M‖₂ is tiny next to ‖H‖₂² or κ*‖H‖₂ (the
        sandwich then fails by a factor beyond 10³⁰⁸).  The margins are scale-invariant, so
        (H, M, κ*) are scaled by powers of two to unit size first (exact).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A1).
    """
    H = check_square(H, "H", symmetric=True)
    M = check_square(M, "M", symmetric=True)
    if H.shape != M.shape:
        raise ValueError(f"H and M must have the same shape; got {H.shape} and {M.shape}")
    if kappa_star is not None:
        kappa_star = check_positive(kappa_star, "kappa_star", allow_zero=True)
    if not np.any(M) and np.any(H):
        raise ValueError("M is zero while H is not: M = E_p[h_p²] = 0 forces every h_p, hence "
                         "H, to vanish, and the margins relative to ‖M‖₂ are undefined")
    # the margins are invariant under (H, M, κ*) → (sH, s²M, sκ*): work at unit scale (s a
    # power of two, exact) so that H² and the norms cannot overflow
    e = pow2_exponent(np.abs(H).max(), np.sqrt(np.abs(M).max()),
                      0.0 if kappa_star is None else kappa_star)
    H, M = scale_pow2(H, -e), scale_pow2(M, -2 * e)
    scale = max(float(np.linalg.norm(M, 2)), np.finfo(np.float64).tiny)
    gap_low = M - H @ H
    with np.errstate(over="ignore"):
        lower = float(np.linalg.eigvalsh(0.5 * (gap_low + gap_low.T))[0]) / scale
    check_finite_result(lower, "M", "the lower margin λ_min(M − H²)/‖M‖₂ (‖M‖₂ ≪ ‖H‖₂²)")
    upper = None
    if kappa_star is not None:
        gap_up = scale_pow2(kappa_star, -e) * H - M
        with np.errstate(over="ignore"):
            upper = float(np.linalg.eigvalsh(0.5 * (gap_up + gap_up.T))[0]) / scale
        check_finite_result(upper, "M", "the upper margin λ_min(κ*H − M)/‖M‖₂ (‖M‖₂ ≪ κ*‖H‖₂)")
    return SandwichMargins(lower=lower, upper=upper)


@dataclass(frozen=True)
class Wedge:
    r"""Bounds λ_i² ≤ M_ii ≤ κ* λ_i (and the per-sample M_ii ≤ v_iᵀ K v_i) per eigendirection.

    Attributes
    ----------
    lam : (D,) array
        Eigenvalues λ_i of H.
    M_ii : (D,) array
        Diagonal of M in H's eigenbasis, M_ii = v_iᵀ M v_i, in the order of ``lam``.
    lower : (D,) array
        λ_i².
    upper : (D,) array
        κ* λ_i.
    upper_per_sample : (D,) array or None
        E_p[κ_max(p) v_iᵀ h_p v_i] = v_iᵀ K v_i, never above ``upper``.
    """

    lam: FloatArray
    M_ii: FloatArray
    lower: FloatArray
    upper: FloatArray
    upper_per_sample: FloatArray | None

    def violations(self, rtol: float = 1e-10) -> dict[str, int]:
        """Counts of directions breaking each side, beyond a round-off slack rtol·max|M_ii|."""
        slack = rtol * max(float(np.abs(self.M_ii).max(initial=0.0)), 1e-300)
        out = {
            "lower": int(np.sum(self.M_ii < self.lower - slack)),
            "upper": int(np.sum(self.M_ii > self.upper + slack)),
        }
        if self.upper_per_sample is not None:
            out["upper_per_sample"] = int(np.sum(self.M_ii > self.upper_per_sample + slack))
        return out

    def holds(self, rtol: float = 1e-10) -> bool:
        """True when no side is violated."""
        return not any(self.violations(rtol).values())


def diagonal_wedge(lam: FloatArray, M_ii: FloatArray, kappa_star: float,
                   K_ii: FloatArray | None = None) -> Wedge:
    r"""The diagonal wedge of spec claim A2, in H's eigenbasis.

    .. math::
        \lambda_i^2 \le M_{ii} \le \mathbb{E}_p[\kappa_{\max}(p)\, v_i^\top h_p v_i] \le \kappa^* \lambda_i

    with H = Σ λ_i v_i v_iᵀ, M_ii = v_iᵀ M v_i.  The left side holds for any symmetric h_p
    (Cauchy–Schwarz, then Jensen); the right sides need h_p ⪰ 0.

    Parameters
    ----------
    lam : (D,) array
        Eigenvalues λ_i of H.
    M_ii : (D,) array
        Diagonal of M in the same eigenbasis, M_ii = v_iᵀ M v_i, in the order of ``lam``.
    kappa_star : float
        κ* = max_p κ_max(p).
    K_ii : (D,) array, optional
        v_iᵀ K v_i with K = E_p[κ_max(p) h_p] (:class:`LayerMoments.K`), the tighter bound.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A2).
    """
    lam = as_float_array(lam, "lam", ndim=1)
    M_ii = as_float_array(M_ii, "M_ii", ndim=1)
    if lam.shape != M_ii.shape:
        raise ValueError(f"lam and M_ii must have the same shape; got {lam.shape}, {M_ii.shape}")
    kappa_star = check_positive(kappa_star, "kappa_star", allow_zero=True)
    ups = None
    if K_ii is not None:
        ups = as_float_array(K_ii, "K_ii", ndim=1)
        if ups.shape != lam.shape:
            raise ValueError(f"K_ii must have the shape of lam {lam.shape}; got {ups.shape}")
    with np.errstate(over="ignore"):
        lower, upper = lam**2, kappa_star * lam
    check_finite_result(lower, "lam", "the lower wedge bound λ_i²")
    check_finite_result(upper, "lam and kappa_star", "the upper wedge bound κ*λ_i")
    return Wedge(lam=lam, M_ii=M_ii, lower=lower, upper=upper, upper_per_sample=ups)


__all__ = ["SandwichMargins", "Wedge", "diagonal_wedge", "loewner_sandwich"]

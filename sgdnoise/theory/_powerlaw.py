r"""Power-law fits C_ii ∝ λ_i^γ (or M_ii ∝ λ_i^γ) and the guaranteed interval for the fitted γ.

The exponent identity (spec claim A3).  With κ_eff,i = M_ii/λ_i, log M_ii = log λ_i + log κ_eff,i,
and ordinary least squares is linear in the response, so over *any* set of directions

.. math:: \gamma_{\mathrm{fit}} = 1 + \widehat{\mathrm{slope}}(\log\kappa_{\mathrm{eff}} \sim \log\lambda)

exactly.  Hence γ_fit ∈ [1, 2] **if and only if** that κ_eff slope lies in [0, 1].  A sufficient,
checkable condition (Chebyshev's sum inequality) is that over the window κ_eff,i is non-decreasing
in λ_i and κ_eff,i/λ_i = M_ii/λ_i² is non-increasing in λ_i.  Neither holds automatically on a
finite window: families exist with γ_fit < 1 or γ_fit > 2.

A data-dependent interval guaranteed to contain γ_fit: the OLS slope is the linear form
Σ_i w_i y_i with w_i = (x_i − x̄)/Σ_j (x_j − x̄)², so over the box y_i ∈ [log lo_i, log hi_i] its
extremes are Σ_i min/max(w_i log lo_i, w_i log hi_i).  With the wedge (A2), lo_i = λ_i (for any
symmetric h_p) and hi_i = κ* or the tighter per-sample E_p[κ_max(p) v_iᵀh_pv_i]/λ_i (for PSD h_p).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import (
    NonFiniteResultError,
    as_float_array,
    check_choice,
    check_finite_result,
    check_positive,
    check_positive_int,
    pow2_exponent,
    scale_pow2,
)

#: Window protocols of :func:`fit_power_law`: ``"top"`` (the paper's main protocol) and
#: ``"layerwise"``.
PROTOCOLS: tuple[str, ...] = ("top", "layerwise")
#: Smallest spread of ln λ over a window for a fit: below it eigenvalues are tied to round-off.
MIN_LOG_SPREAD = 1e-8
#: Default tolerance (in log units) of :func:`monotone_condition`, above eigensolver round-off.
MONOTONE_LOG_TOL = 1e-8
#: Default relative eigenvalue floor of the fits: directions with λ_i ≤ REL_FLOOR·λ_max are
#: dropped.  A backward-stable symmetric eigensolver returns the eigenvalues of H + δH with
#: ‖δH‖₂ of order D·ε·‖H‖₂ (ε = 2.2e-16), so an exact zero eigenvalue (a null space, e.g. from
#: dead ReLU units) comes back as round-off of that size, of either sign: 2e-12·λ_max for
#: D = 10⁴.  1e-10 sits above it for every D up to about 4·10⁵ and below any eigenvalue a fit
#: over at most ten decades would use; round-off points would otherwise enter the log–log OLS
#: with huge leverage (log λ ≈ −46 next to a window spanning a few units).
REL_FLOOR = 1e-10
#: Relative round-off slack of the κ* ≥ λ_max check and of the wedge check behind
#: ``ExponentFit.interval_guaranteed`` (as :meth:`sgdnoise.theory.Wedge.holds`).
WEDGE_RTOL = 1e-10


def ols_slope(x: FloatArray, y: FloatArray) -> float:
    r"""Ordinary least-squares slope of y on x.

    .. math:: \hat b = \frac{\sum_i (x_i-\bar x)(y_i-\bar y)}{\sum_i (x_i-\bar x)^2}

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3, fit protocol of A6).
    """
    x = as_float_array(x, "x", ndim=1)
    y = as_float_array(y, "y", ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape; got {x.shape}, {y.shape}")
    if x.size < 2:
        raise ValueError(f"x must hold at least two values for a slope; got {x.size}")
    # the slope scales as 2**(e_y − e_x) under x → 2**e_x x, y → 2**e_y y: work at unit scale
    e_x, e_y = pow2_exponent(x), pow2_exponent(y)
    x, y = scale_pow2(x, -e_x), scale_pow2(y, -e_y)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if sxx <= 0:
        raise ValueError("x must hold at least two distinct values for a slope")
    slope = scale_pow2(float(xc @ (y - y.mean())) / sxx, e_y - e_x)
    return float(check_finite_result(slope, "x and y", "the slope"))


@dataclass(frozen=True)
class PowerLawFit:
    """Result of a log–log OLS fit y ≈ prefactor · λ^slope.

    Attributes
    ----------
    slope : float
        Fitted exponent γ.
    intercept : float
        log10 of the prefactor.
    prefactor : float
        10**intercept, so that y ≈ prefactor · λ^slope.
    r2 : float
        Coefficient of determination of the log–log fit.
    num_points : int
        Directions used.
    index : (num_points,) int array
        Positions (into the arrays passed) of the directions used.
    protocol : str
        The window protocol used, one of ``PROTOCOLS``.
    num_below_floor : int
        Directions the window would have used (λ_i > 0, y_i > 0) but that were dropped as
        round-off because λ_i ≤ rel_floor·λ_max (see :func:`fit_power_law`).
    """

    slope: float
    intercept: float
    prefactor: float
    r2: float
    num_points: int
    index: IntArray = field(repr=False)
    protocol: str = "top"
    num_below_floor: int = 0


def _select(lam: FloatArray, y: FloatArray, top: int | None, protocol: str,
            trim_percentile: float, keep_fraction: float,
            floor: float) -> tuple[IntArray, int]:
    """Positions of the window, and how many of its candidates fell below the floor."""
    order = np.argsort(-lam, kind="stable")
    if protocol == "top":
        if top is not None:
            order = order[:top]
        usable = order[(lam[order] > 0) & (y[order] > 0)]
        keep = lam[usable] > floor
        return usable[keep], int(np.count_nonzero(~keep))
    # layerwise: positive entries above the floor, trim the lowest percentile of either log,
    # keep the top fraction
    usable = order[(lam[order] > 0) & (y[order] > 0)]
    keep = lam[usable] > floor
    below = int(np.count_nonzero(~keep))
    order = usable[keep]
    if order.size == 0:
        return order, below
    lx, ly = np.log10(lam[order]), np.log10(y[order])
    keep = (lx >= np.percentile(lx, trim_percentile)) & (ly >= np.percentile(ly, trim_percentile))
    order = order[keep]
    n_keep = int(np.ceil(keep_fraction * order.size))
    if top is not None:
        n_keep = min(n_keep, top)
    return order[:n_keep], below


def _check_rel_floor(rel_floor: float) -> float:
    rel_floor = check_positive(rel_floor, "rel_floor", allow_zero=True)
    if rel_floor >= 1:
        raise ValueError(f"rel_floor must lie in [0, 1); got {rel_floor}")
    return rel_floor


def fit_power_law(lam: FloatArray, y: FloatArray, *, top: int | None = None,
                  protocol: str = "top", trim_percentile: float = 5.0,
                  keep_fraction: float = 0.8, rel_floor: float = REL_FLOOR) -> PowerLawFit:
    r"""Fit y_i ∝ λ_i^γ by OLS of log10 y on log10 λ, with the paper's window protocols.

    .. math:: \log_{10} y_i = \gamma \log_{10}\lambda_i + b

    Parameters
    ----------
    lam : (D,) array
        Eigenvalues of H, in any order.
    y : (D,) array
        The matching diagonal (C_ii or M_ii) in H's eigenbasis, in the order of ``lam``.
    top : int, optional
        Window size 𝒩 (the paper hand-picks 200–1500 of D = 2500); at least 2.
    protocol : {"top", "layerwise"}
        Window protocol (see Notes).
    trim_percentile : float
        ``"layerwise"`` only: percentile in [0, 100) of log λ and of log y below which points
        are dropped.
    keep_fraction : float
        ``"layerwise"`` only: fraction in (0, 1] of the remaining points kept, largest λ first.
    rel_floor : float
        Relative eigenvalue floor in [0, 1): directions with λ_i ≤ rel_floor·max_i λ_i are
        round-off of a null space, not curvature, and are dropped (default ``REL_FLOOR`` =
        1e-10, above the D·ε·λ_max error of an eigensolver for D up to about 4·10⁵); 0 keeps
        every λ_i > 0.  How many were dropped is ``num_below_floor`` of the result.

    Returns
    -------
    PowerLawFit
        Slope γ, intercept, r², the positions of the directions used and the number dropped by
        the floor.

    Raises
    ------
    ValueError
        If fewer than two usable points with distinct λ remain.

    Notes
    -----
    Two window protocols select the directions that enter the fit:

    * ``"top"`` (the paper's main protocol): sort λ descending, keep the top ``top`` directions
      (all if None), drop entries with λ ≤ 0 or y ≤ 0 and those below the floor, fit.
    * ``"layerwise"``: drop non-positive entries and those below the floor, drop points below
      the ``trim_percentile`` percentile of either log, keep the top ``keep_fraction`` by λ (and
      at most ``top``), fit.

    The floor matters when H has an exact null space (dead ReLU units, redundant inputs): its
    eigenvalues come back as round-off of order 1e-16·λ_max, and their M_ii or C_ii as
    round-off too; kept, a handful of such points sit 30 decades below the window and decide the
    OLS slope, which then changes from one eigensolver run to the next.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A6 fit protocol; authors' code Yikuan-PKU/AWCH).
    """
    lam = as_float_array(lam, "lam", ndim=1)
    y = as_float_array(y, "y", ndim=1)
    if lam.shape != y.shape:
        raise ValueError(f"lam and y must have the same shape; got {lam.shape}, {y.shape}")
    protocol = check_choice(protocol, "protocol", PROTOCOLS)
    if top is not None:
        top = check_positive_int(top, "top", minimum=2)
    trim_percentile = check_positive(trim_percentile, "trim_percentile", allow_zero=True)
    if trim_percentile >= 100:
        raise ValueError(f"trim_percentile must be < 100; got {trim_percentile}")
    keep_fraction = check_positive(keep_fraction, "keep_fraction")
    if keep_fraction > 1:
        raise ValueError(f"keep_fraction must be in (0, 1]; got {keep_fraction}")
    rel_floor = _check_rel_floor(rel_floor)
    floor = rel_floor * max(float(lam.max(initial=0.0)), 0.0)
    idx, below = _select(lam, y, top, protocol, trim_percentile, keep_fraction, floor)
    if idx.size < 2:
        raise ValueError(
            f"only {idx.size} usable point(s) with positive lam and y: cannot fit a power law"
        )
    if np.ptp(np.log(lam[idx])) < MIN_LOG_SPREAD:
        raise ValueError(
            f"lam is constant over the window up to round-off (log-spread "
            f"{np.ptp(np.log(lam[idx])):.1e} < {MIN_LOG_SPREAD:g}): the exponent is undefined "
            "(degenerate eigenvalues leave the eigenbasis, hence M_ii and C_ii, arbitrary)"
        )
    x, v = np.log10(lam[idx]), np.log10(y[idx])
    slope = ols_slope(x, v)
    intercept = float(v.mean() - slope * x.mean())
    resid = v - (slope * x + intercept)
    ss_tot = float(((v - v.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0
    with np.errstate(over="ignore"):
        prefactor = float(np.power(10.0, intercept))
    check_finite_result(prefactor, "y and lam", "the prefactor 10**intercept of the fit")
    return PowerLawFit(slope=slope, intercept=intercept, prefactor=prefactor, r2=r2,
                       num_points=int(idx.size), index=idx, protocol=protocol,
                       num_below_floor=below)


def exponent_interval(lam: FloatArray, kappa_lower: FloatArray, kappa_upper: FloatArray
                      ) -> tuple[float, float]:
    r"""Interval guaranteed to contain γ_fit = 1 + slope(log κ_eff on log λ) given κ_eff bounds.

    .. math::
        \gamma_{\mathrm{fit}} \in \Big[1 + \sum_i \min(w_i \ell_i, w_i u_i),\;
                                       1 + \sum_i \max(w_i \ell_i, w_i u_i)\Big],
        \quad w_i = \frac{x_i-\bar x}{\sum_j (x_j-\bar x)^2}

    with x_i = log λ_i, ℓ_i = log κ_lower,i, u_i = log κ_upper,i (any common log base).
    The interval is attained: the slope is linear in the log κ's, so the extremes sit at corners
    of the box.  Infinite upper bounds give an unbounded side.

    Parameters
    ----------
    lam : (n,) array
        Positive eigenvalues of the fitted window.
    kappa_lower : (n,) array
        Lower bounds 0 < kappa_lower ≤ kappa_eff per direction (A2: λ_i).
    kappa_upper : (n,) array
        Upper bounds kappa_upper ≥ kappa_eff per direction (A2: κ*), possibly infinite.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A2, A3).
    """
    lam = as_float_array(lam, "lam", ndim=1)
    lo = np.asarray(kappa_lower, dtype=np.float64)
    hi = np.asarray(kappa_upper, dtype=np.float64)
    if not (lo.shape == hi.shape == lam.shape):
        raise ValueError("lam, kappa_lower and kappa_upper must have the same shape")
    if np.any(~(lam > 0)) or np.any(~(lo > 0)):
        raise ValueError("lam and kappa_lower must be > 0")
    if np.any(np.isnan(hi)) or np.any(hi < lo * (1 - 1e-12)):
        raise ValueError("kappa_upper must be >= kappa_lower (and not NaN)")
    if lam.size < 2:
        raise ValueError(f"lam must hold at least two values; got {lam.size}")
    x = np.log(lam)
    if np.ptp(x) < MIN_LOG_SPREAD:
        raise ValueError("lam must hold at least two distinct values (beyond round-off)")
    xc = x - x.mean()
    sxx = float(xc @ xc)
    w = xc / sxx
    with np.errstate(invalid="ignore"):
        a, b = w * np.log(lo), w * np.log(hi)
    a = np.where(w == 0, 0.0, a)
    b = np.where(w == 0, 0.0, b)
    return 1.0 + float(np.minimum(a, b).sum()), 1.0 + float(np.maximum(a, b).sum())


@dataclass(frozen=True)
class ExponentFit:
    """γ fitted from M_ii (or C_ii) with the A3 identity, its guaranteed interval and conditions.

    Attributes
    ----------
    gamma : float
        Fitted exponent of M_ii (or C_ii) against λ_i.
    kappa_slope : float
        OLS slope of log κ_eff on log λ over the same window.
    identity_residual : float
        γ − (1 + kappa_slope); zero up to round-off (A3 identity).
    interval : (float, float)
        The range of γ_fit over every κ_eff,i in its wedge [λ_i, upper_i] (see
        :func:`exponent_interval`); a side is infinite when no upper bound was given.  It
        contains ``gamma`` whenever the data lie in the wedge, i.e. when
        ``interval_guaranteed`` is True.
    in_unit_range : bool
        0 ≤ kappa_slope ≤ 1, the exact condition for 1 ≤ γ ≤ 2.
    monotone_condition : bool
        The sufficient condition: κ_eff non-decreasing and κ_eff/λ non-increasing in λ.
    fit : PowerLawFit
        The underlying log–log fit of M_ii on λ_i (window, intercept, r², positions used).
    interval_guaranteed : bool
        True when every direction of the window satisfies the wedge the interval is built on,
        λ_i² ≤ M_ii ≤ upper_i·λ_i (upper_i = min(κ*, kappa_upper_i)), up to a round-off slack of
        ``WEDGE_RTOL``·max M_ii.  The lower side holds for any symmetric h_p; the upper side
        needs PSD h_p and fails for indefinite ones (e.g. tanh with cross-entropy), where some
        κ_eff,i exceed κ*: then the interval is only what the bounds would give, not a
        guarantee, and γ may lie outside it.
    num_below_floor : int
        Directions dropped as null-space round-off by the relative floor (as in
        :class:`PowerLawFit`).
    """

    gamma: float
    kappa_slope: float
    identity_residual: float
    interval: tuple[float, float]
    in_unit_range: bool
    monotone_condition: bool
    fit: PowerLawFit
    interval_guaranteed: bool
    num_below_floor: int


def monotone_condition(lam: FloatArray, kappa_eff: FloatArray, *,
                       tol: float = MONOTONE_LOG_TOL) -> bool:
    r"""Sufficient condition for 1 ≤ γ_fit ≤ 2 (Chebyshev's sum inequality on the OLS slope).

    True when, sorted by λ, κ_eff is non-decreasing and κ_eff/λ is non-increasing, each up to
    ``tol`` in natural-log units (eigensolver round-off on κ_eff grows like ε‖M‖/M_ii, so an
    exact comparison would reject exactly monotone data).

    Parameters
    ----------
    lam : (n,) array
        Positive eigenvalues.
    kappa_eff : (n,) array
        Effective curvatures M_ii/λ_i in the same order.
    tol : float
        Slack in log units for each step of the monotonicity checks.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3; the condition is stated in the docs).
    """
    lam = as_float_array(lam, "lam", ndim=1)
    kappa_eff = as_float_array(kappa_eff, "kappa_eff", ndim=1)
    if lam.shape != kappa_eff.shape:
        raise ValueError(f"lam and kappa_eff must have the same shape; got {lam.shape}, "
                         f"{kappa_eff.shape}")
    if np.any(~(lam > 0)) or np.any(~(kappa_eff > 0)):
        raise ValueError("lam and kappa_eff must be > 0")
    tol = check_positive(tol, "tol", allow_zero=True)
    order = np.argsort(lam, kind="stable")
    k = np.log(kappa_eff[order])
    r = k - np.log(lam[order])
    return bool(np.all(np.diff(k) >= -tol) and np.all(np.diff(r) <= tol))


def fit_exponent(lam: FloatArray, M_ii: FloatArray, *, kappa_star: float | None = None,
                 kappa_upper: FloatArray | None = None, top: int | None = None,
                 protocol: str = "top", trim_percentile: float = 5.0,
                 keep_fraction: float = 0.8, rel_floor: float = REL_FLOOR) -> ExponentFit:
    r"""Fit M_ii ∝ λ_i^γ and report the A3 identity, the guaranteed interval and the conditions.

    The interval uses the wedge: κ_eff,i ≥ λ_i always and κ_eff,i ≤ min(κ*, kappa_upper_i)
    (both need PSD per-sample Hessians).  Without either upper bound the interval is
    unbounded on the side(s) that depend on it.  Whether the data lie in that wedge (so that the
    interval is guaranteed to contain γ) is checked and reported as ``interval_guaranteed``.

    Parameters
    ----------
    lam : (D,) array
        Eigenvalues of H, in any order.
    M_ii : (D,) array
        v_iᵀ M v_i in the order of ``lam``.
    kappa_star : float, optional
        κ* = max_p κ_max(p).  Since λ_max is convex, λ_max(H) = λ_max(E_p h_p) ≤ κ* for any
        symmetric h_p, so κ* < max_i λ_i is refused (``ValueError``, beyond a relative
        round-off of ``WEDGE_RTOL``).
    kappa_upper : (D,) array, optional
        A per-direction upper bound on κ_eff, e.g. (v_iᵀ K v_i)/λ_i with K = E_p[κ_max(p) h_p].
    top : int, optional
        Window size, as in :func:`fit_power_law`.
    protocol : {"top", "layerwise"}
        Window protocol, as in :func:`fit_power_law`.
    trim_percentile : float
        Trimming of the ``"layerwise"`` protocol, as in :func:`fit_power_law`.
    keep_fraction : float
        Kept fraction of the ``"layerwise"`` protocol, as in :func:`fit_power_law`.
    rel_floor : float
        Relative eigenvalue floor, as in :func:`fit_power_law` (default ``REL_FLOOR``).

    Returns
    -------
    ExponentFit
        γ, the κ_eff slope and identity residual, the interval and whether it is guaranteed
        (``interval_guaranteed``), the conditions, and the number of directions dropped by the
        floor.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3).
    """
    fit = fit_power_law(lam, M_ii, top=top, protocol=protocol, trim_percentile=trim_percentile,
                        keep_fraction=keep_fraction, rel_floor=rel_floor)
    idx = fit.index
    lam_all = np.asarray(lam, dtype=np.float64)
    lam_w, M_w = lam_all[idx], np.asarray(M_ii, dtype=np.float64)[idx]
    with np.errstate(over="ignore", under="ignore"):
        kappa_eff = M_w / lam_w
    if not np.all(np.isfinite(kappa_eff) & (kappa_eff > 0)):
        raise NonFiniteResultError(
            "M_ii and lam: κ_eff = M_ii/λ_i leaves the float64 range in the window (a ratio "
            "beyond 1.8e308 or below 5e-324); the identity slope and the interval are undefined")
    kappa_slope = ols_slope(np.log10(lam_w), np.log10(kappa_eff))
    upper = np.full_like(lam_w, np.inf)
    if kappa_star is not None:
        kappa_star = check_positive(kappa_star, "kappa_star")
        lam_max = float(lam_all.max())
        if kappa_star < lam_max * (1.0 - WEDGE_RTOL):
            raise ValueError(
                f"kappa_star = {kappa_star:.6g} is below the largest eigenvalue lam_max = "
                f"{lam_max:.6g}: impossible, since lam_max(H) = lam_max(E_p h_p) <= "
                "max_p lam_max(h_p) = kappa_star for any symmetric h_p (pass κ* of the same "
                "per-sample Hessians as lam)"
            )
        upper = np.minimum(upper, kappa_star)
    if kappa_upper is not None:
        ku = as_float_array(kappa_upper, "kappa_upper", ndim=1)
        if ku.shape != np.shape(lam):
            raise ValueError(f"kappa_upper must have the shape of lam {np.shape(lam)}; got {ku.shape}")
        upper = np.minimum(upper, ku[idx])
    interval = exponent_interval(lam_w, lam_w, np.maximum(upper, lam_w))
    return ExponentFit(
        gamma=fit.slope,
        kappa_slope=kappa_slope,
        identity_residual=fit.slope - (1.0 + kappa_slope),
        interval=interval,
        in_unit_range=bool(0.0 <= kappa_slope <= 1.0),
        monotone_condition=monotone_condition(lam_w, kappa_eff),
        fit=fit,
        interval_guaranteed=_in_wedge(lam_w, M_w, kappa_eff, upper),
        num_below_floor=fit.num_below_floor,
    )


def _in_wedge(lam: FloatArray, M_ii: FloatArray, kappa_eff: FloatArray,
              upper: FloatArray) -> bool:
    """λ_i² ≤ M_ii ≤ upper_i·λ_i for every i, up to WEDGE_RTOL·max M_ii (upper may be inf).

    Compared as λ_i − s/λ_i ≤ κ_eff,i ≤ upper_i + s/λ_i, which cannot overflow.
    """
    slack = WEDGE_RTOL * float(np.abs(M_ii).max(initial=0.0))
    with np.errstate(over="ignore"):
        s = slack / lam
    return bool(np.all(kappa_eff >= lam - s) and np.all(kappa_eff <= upper + s))


__all__ = [
    "MIN_LOG_SPREAD",
    "MONOTONE_LOG_TOL",
    "PROTOCOLS",
    "REL_FLOOR",
    "WEDGE_RTOL",
    "ExponentFit",
    "PowerLawFit",
    "exponent_interval",
    "fit_exponent",
    "fit_power_law",
    "monotone_condition",
    "ols_slope",
]

r"""Power-law escape rate of SGD: noise ∝ loss, log-loss barriers (SPEC part C).

Setting (Mori, Ziyin, Liu & Ueda, ICML 2022, arXiv:2105.09557): mean-square loss
L = (1/2N) Σ_μ (f(θ, x_μ) − y_μ)², per-sample loss ℓ_μ = ½ (f − y)².  Near a minimum the
minibatch noise covariance is Σ(θ) ≈ (2L(θ)/B) H*, H* = H(θ*) (drop ḡḡᵀ, decouple ℓ_μ from
∇f∇fᵀ, Gauss–Newton Hessian).  With SDE time t = ηk (k = SGD steps) the dynamics is

.. math:: d\theta = -\nabla L\, dt + \sqrt{2\eta L(\theta) H^*/B}\; dW_t \qquad \text{(Itô)}

i.e. the diffusion coefficient D(θ) = T L(θ) along an outlier direction of curvature h*, with
temperature T = ηh*/B.  The random time change dτ = L dt turns it into Langevin dynamics on
U = log L at constant temperature T (derived in ``sgdnoise.theory._symbolic_cd``).

Conventions
-----------
* Rates κ are per unit SDE time t = ηk; per SGD step multiply by η (mean first-passage times:
  divide by η to get steps).
* D(θ) is the diffusion coefficient of dX = μ dt + √(2D) dW (generator μ∂ + D∂²): the SDE
  above has D = ηL h*/B in 1-D.
* The SDE is read in the Itô sense (SGD evaluates the noise at the pre-update point).  Read in
  the Stratonovich sense the stationary exponent would be ½ + B/(ηh*) instead of 1 + B/(ηh*).
* h* > 0 is the Hessian eigenvalue at the minimum θ* (typical size of the n outlier
  eigenvalues); h^s < 0 the negative Hessian eigenvalue at the saddle θ^s;
  c = L(θ^s)/L(θ*) > 1.

References
----------
T. Mori, L. Ziyin, K. Liu, M. Ueda, "Power-Law Escape Rate of SGD", ICML 2022,
arXiv:2105.09557 (spec claims C1–C4).  H. A. Kramers, Physica 7 (1940) 284 and J. S. Langer,
Ann. Phys. 54 (1969) 258 (Arrhenius alternatives).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_finite_result,
    check_positive,
    check_positive_int,
    check_psd_stack,
    check_square,
)

# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _is_symbolic(*values: Any) -> bool:
    return any(isinstance(v, sp.Basic) for v in values)


def _scalar_out(x: Any) -> FloatArray | float:
    return np.asarray(x, dtype=np.float64)[()]


def _checked(compute: Callable[[], Any], names: str, what: str) -> FloatArray | float:
    """Evaluate a closed form without floating-point warnings; a non-finite result (overflow,
    inf/inf) is refused with a ``ValueError`` naming the arguments."""
    with np.errstate(all="ignore"):
        value = compute()
    return _scalar_out(check_finite_result(value, names, what))


def _positive(x: Any, name: str) -> FloatArray:
    arr = as_float_array(x, name)
    if arr.size and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0; got minimum {float(arr.min()):.3g}")
    return arr


def _evaluate(func: Any, x: FloatArray, name: str) -> FloatArray:
    """Values of ``func`` on the grid ``x`` (a callable, vectorised or not, or an array)."""
    x = np.asarray(x, dtype=np.float64)
    if callable(func):
        try:  # vectorised callables (or constants) first, then one call per point
            out = np.broadcast_to(np.asarray(func(x), dtype=np.float64), x.shape).copy()
        except (TypeError, ValueError):
            out = np.array([float(np.asarray(func(float(v)), dtype=np.float64))
                            for v in x.ravel()]).reshape(x.shape)
    else:
        out = as_float_array(func, name)
        if out.shape != x.shape:
            raise ValueError(f"{name} must be callable or have the grid's shape {x.shape}; "
                             f"got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} is not finite on the grid")
    return out


def _check_grid(theta: Any) -> FloatArray:
    theta = as_float_array(theta, "theta", ndim=1)
    if theta.size < 2 or np.any(np.diff(theta) <= 0):
        raise ValueError("theta must be a strictly increasing 1-D grid of at least 2 points")
    return theta


def _normalise_log_density(log_p: FloatArray, theta: FloatArray, names: str) -> FloatArray:
    """exp(log_p) normalised by the trapezoid rule on theta, from log space; a log-density or a
    density beyond float64 (e.g. a grid of width 1e-320) is refused naming ``names``."""
    check_finite_result(log_p, names, "the log-density")
    with np.errstate(all="ignore"):
        p = np.exp(log_p - np.max(log_p))
        p = p / np.trapezoid(p, theta)
    return check_finite_result(p, names, "the normalised density")


# ----------------------------------------------------------------------------------------------
# scalar parameters (C2, C4)
# ----------------------------------------------------------------------------------------------


def temperature(*, B: Any, eta: Any, h_star: Any) -> Any:
    r"""Temperature of the time-changed Langevin dynamics on U = log L.

    .. math:: T = \frac{\eta h^*}{B}

    Parameters
    ----------
    B : float, array or sympy.Expr
        Batch size (> 0; sampling with replacement, noise Σ = Σ₁/B).
    eta : float, array or sympy.Expr
        Learning rate (> 0).
    h_star : float, array or sympy.Expr
        Hessian eigenvalue at the minimum (typical outlier size), > 0.

    Returns
    -------
    float, array or sympy.Expr
        T (dimensionless: L is rescaled away by the time change).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec part C: T = ηh*/B).
    """
    if _is_symbolic(B, eta, h_star):
        return eta * h_star / B
    eta, h_star, B = _positive(eta, "eta"), _positive(h_star, "h_star"), _positive(B, "B")
    return _checked(lambda: eta * h_star / B, "B, eta and h_star", "the temperature ηh*/B")


def _inverse_temperature(B: Any, eta: Any, h_star: Any) -> FloatArray | float:
    """1/T = B/(ηh*), checked: finite and > 0 (T itself may overflow or underflow)."""
    eta, h_star, B = _positive(eta, "eta"), _positive(h_star, "h_star"), _positive(B, "B")
    with np.errstate(all="ignore"):
        inv = 1 / (eta * h_star / B)  # as 1/T, unless T itself leaves the float64 range
        direct = B / eta / h_star
        inv = np.where(np.isfinite(inv) & (inv > 0), inv, direct)
    inv = _checked(lambda: inv, "B, eta and h_star", "1/T = B/(ηh*)")
    if np.any(np.asarray(inv) <= 0):
        raise ValueError("B, eta and h_star: 1/T = B/(ηh*) underflows to 0 (T beyond float64)")
    return inv


def phi(*, B: Any, eta: Any, h_star: Any) -> Any:
    r"""Exponent φ of the stationary law P(θ) ∝ L(θ)^{−φ}.

    .. math:: \varphi = 1 + \frac{B}{\eta h^*} = 1 + \frac1T

    Parameters
    ----------
    B, eta, h_star : float, array or sympy.Expr
        Batch size, learning rate, curvature at the minimum (all > 0).

    Returns
    -------
    float, array or sympy.Expr
        φ (the Itô reading of the SDE; a Stratonovich reading would give ½ + 1/T).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C2).
    """
    if _is_symbolic(B, eta, h_star):
        return 1 + 1 / temperature(B=B, eta=eta, h_star=h_star)
    inv = _inverse_temperature(B, eta, h_star)
    return _checked(lambda: 1 + inv, "B, eta and h_star", "φ = 1 + B/(ηh*)")


def escape_exponent(*, B: Any, eta: Any, h_star: Any, n: Any = 1) -> Any:
    r"""Exponent of the power-law escape rate κ ∝ c^{−exponent}.

    .. math:: \frac{B}{\eta h^*} + 1 - \frac n2

    It falls by ½ per added outlier direction (spec claim C4) and is ½ + B/(ηh*) in 1-D.

    Parameters
    ----------
    B, eta, h_star : float, array or sympy.Expr
        Batch size, learning rate, typical outlier curvature at the minimum (all > 0).
    n : int, array or sympy.Expr
        Number of outlier Hessian directions (≥ 1).

    Returns
    -------
    float, array or sympy.Expr
        The exponent; ≤ 0 means the minimum is unstable (n ≥ n_c).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claims C3, C4).
    """
    if _is_symbolic(B, eta, h_star, n):
        return B / (eta * h_star) + 1 - sp.Rational(1, 2) * n
    n_arr = as_float_array(n, "n")
    if n_arr.size and np.any(n_arr < 1):
        raise ValueError(f"n must be >= 1; got minimum {float(n_arr.min()):.3g}")
    inv = _inverse_temperature(B, eta, h_star)
    return _checked(lambda: inv + 1 - n_arr / 2, "B, eta, h_star and n",
                    "the exponent B/(ηh*) + 1 − n/2")


def critical_dimension(*, B: Any, eta: Any, h_star: Any) -> Any:
    r"""Critical number of outlier directions above which minima are unstable.

    .. math:: n_c = 2\Big(\frac{B}{\eta h^*} + 1\Big)

    the n at which :func:`escape_exponent` vanishes: for n ≥ n_c a higher barrier no longer
    slows the escape.

    Parameters
    ----------
    B, eta, h_star : float, array or sympy.Expr
        Batch size, learning rate, typical outlier curvature (all > 0).

    Returns
    -------
    float, array or sympy.Expr
        n_c.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C4).
    """
    if _is_symbolic(B, eta, h_star):
        return 2 * (1 / temperature(B=B, eta=eta, h_star=h_star) + 1)
    inv = _inverse_temperature(B, eta, h_star)
    return _checked(lambda: 2 * (inv + 1), "B, eta and h_star", "n_c = 2(B/(ηh*) + 1)")


# ----------------------------------------------------------------------------------------------
# stationary densities (C2)
# ----------------------------------------------------------------------------------------------


def stationary_density_1d(L: Any, theta: Any, *, B: Any, eta: Any, h_star: Any) -> FloatArray:
    r"""Power-law stationary density P(θ) ∝ L(θ)^{−φ}, normalised on a grid.

    .. math:: P(\theta) = \frac{L(\theta)^{-\varphi}}{\int L^{-\varphi}\, d\theta},
              \qquad \varphi = 1 + \frac{B}{\eta h^*}

    Approximation: the 1-D Itô SDE dθ = −L′ dt + √(2ηL h*/B) dW (noise variance 2ηL h*/B,
    i.e. D = TL with T = ηh*/B).  For that SDE it is exact (see
    :func:`stationary_density_sde_1d`: the zero-flux density is D⁻¹exp(∫−L′/D) = L^{−1−1/T}/T
    for any positive L); it is not exact for discrete SGD, for noise that is not proportional
    to L (e.g. the exact linear-regression noise, see :func:`noise_trace_linear_regression`),
    nor in n-D unless the noise is isotropic (D = TL·I).

    Parameters
    ----------
    L : callable or 1-D array
        The loss (> 0) as a function of θ, or its values on ``theta``.
    theta : 1-D array
        Strictly increasing grid; the density is normalised by the trapezoid rule on it.
    B, eta, h_star : float
        Batch size, learning rate, curvature at the minimum (all > 0).

    Returns
    -------
    1-D array
        P on the grid (computed in log space, so large φ does not overflow).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C2).
    """
    theta = _check_grid(theta)
    exponent = float(phi(B=check_positive(B, "B"), eta=check_positive(eta, "eta"),
                         h_star=check_positive(h_star, "h_star")))
    L_val = _evaluate(L, theta, "L")
    if np.any(L_val <= 0):
        raise ValueError("L must be > 0 on the grid")
    with np.errstate(all="ignore"):
        log_p = -exponent * np.log(L_val)
    return _normalise_log_density(log_p, theta, "L, theta, B, eta and h_star")


def _gauss_legendre_cumulative(drift: Callable[[Any], Any], diffusion: Callable[[Any], Any],
                               theta: FloatArray, order: int = 12) -> FloatArray:
    """∫_{θ_0}^{θ_i} μ/D for every grid point, by Gauss–Legendre on each interval."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    left, right = theta[:-1, None], theta[1:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        half = (right - left) / 2.0
        x = left + half * (nodes[None, :] + 1.0)
    check_finite_result(x, "theta", "the quadrature nodes (grid intervals beyond float64)")
    D = _evaluate(diffusion, x, "diffusion")
    if np.any(D <= 0):
        raise ValueError("diffusion must be > 0 on the grid")
    mu = _evaluate(drift, x, "drift")
    with np.errstate(all="ignore"):  # a non-finite Φ is refused with the log-density
        pieces = np.sum(half * weights[None, :] * (mu / D), axis=1)
        return np.concatenate([[0.0], np.cumsum(pieces)])


def stationary_density_sde_1d(theta: Any, drift: Any, diffusion: Any) -> FloatArray:
    r"""Exact stationary density of a 1-D Itô diffusion by the speed-density formula.

    For :math:`dX = \mu(X)\,dt + \sqrt{2D(X)}\,dW` on an interval with reflecting (or natural)
    ends, the zero-flux solution of the Fokker–Planck equation
    :math:`0 = -\partial_x[\mu p] + \partial_x^2[D p]` is the speed density

    .. math:: p(x) \propto \frac{1}{D(x)} \exp\Big(\int^x \frac{\mu(y)}{D(y)}\, dy\Big).

    With μ = −L′ and D = TL it is L^{−1−1/T}, the power law of :func:`stationary_density_1d`
    (any L > 0).  Conversely, with μ = −L′ the density is L^{−φ} exactly when, on each branch
    where L is monotone, D solves dD/dL = φD/L − 1, i.e. D = L/(φ − 1) + K L^φ: noise ∝ L
    (K = 0, T = 1/(φ − 1)) is the only member without the extra L^φ term (checked in
    ``_symbolic_cd.ito_time_change``).  For D = T·L^α, α ≠ 1, the density is
    L^{−α} exp(−L^{1−α}/(T(1−α))), not a power law; a constant D gives the Gibbs law e^{−L/D}.

    Parameters
    ----------
    theta : 1-D array
        Strictly increasing grid.
    drift, diffusion : callable or 1-D array
        μ and D (> 0).  Callables (vectorised or scalar) are integrated by 12-point
        Gauss–Legendre on every grid interval (spectral accuracy for smooth μ/D); arrays of grid
        values by the trapezoid rule (second order).

    Returns
    -------
    1-D array
        The density on the grid, normalised by the trapezoid rule (log space throughout).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C2); C. W. Gardiner, *Handbook of
    Stochastic Methods*, §5.2 (stationary solution of the 1-D Fokker–Planck equation).
    """
    theta = _check_grid(theta)
    D_val = _evaluate(diffusion, theta, "diffusion")
    if np.any(D_val <= 0):
        raise ValueError("diffusion must be > 0 on the grid")
    if callable(drift) and callable(diffusion):
        Phi = _gauss_legendre_cumulative(drift, diffusion, theta)
    else:
        mu_val = _evaluate(drift, theta, "drift")
        with np.errstate(all="ignore"):
            r = mu_val / D_val
            Phi = np.concatenate([[0.0], np.cumsum(np.diff(theta) * (r[1:] + r[:-1]) / 2.0)])
    with np.errstate(all="ignore"):
        log_p = Phi - np.log(D_val)
    return _normalise_log_density(log_p, theta, "theta, drift and diffusion")


# ----------------------------------------------------------------------------------------------
# escape rates (C3, C4) and the Arrhenius alternatives
# ----------------------------------------------------------------------------------------------


def escape_rate_1d(h_star: Any, h_saddle: Any, c: Any, *, B: Any, eta: Any) -> Any:
    r"""Power-law escape rate of the 1-D SGD SDE over a saddle.

    .. math:: \kappa = \frac{\sqrt{h^* |h^s|}}{2\pi}\; c^{-\left(\frac12 + \frac{B}{\eta h^*}\right)},
              \qquad c = \frac{L(\theta^s)}{L(\theta^*)}

    Derivation: Kramers' rate for the time-changed Langevin dynamics on U = log L at
    temperature T = ηh*/B (curvatures U″ = h/L at the critical points, barrier log c), times
    dτ/dt = L(θ*) near the minimum.  Leading order as T → 0 at fixed c; the log-barrier log c
    replaces the linear barrier ΔL of Arrhenius' law.  The mean time to cross the saddle is
    1/κ (to reach the saddle point itself, 1/(2κ)).

    Parameters
    ----------
    h_star : float, array or sympy.Expr
        Curvature at the minimum, h* > 0 (also sets the noise, 2ηL h*/B).
    h_saddle : float, array or sympy.Expr
        Curvature at the saddle, h^s < 0.
    c : float, array or sympy.Expr
        Loss ratio L(θ^s)/L(θ*) > 1.
    B, eta : float, array or sympy.Expr
        Batch size and learning rate (> 0).

    Returns
    -------
    float, array or sympy.Expr
        κ per unit SDE time t = ηk (per step: ηκ).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, 1-D formula).
    """
    if _is_symbolic(h_star, h_saddle, c, B, eta):
        return (sp.sqrt(h_star * abs(h_saddle)) / (2 * sp.pi)
                * c ** (-(sp.Rational(1, 2) + B / (eta * h_star))))
    h_star = _positive(h_star, "h_star")
    h_saddle = as_float_array(h_saddle, "h_saddle")
    if np.any(h_saddle >= 0):
        raise ValueError("h_saddle must be < 0 (curvature along the escape direction)")
    c = as_float_array(c, "c")
    if np.any(c <= 1):
        raise ValueError(f"c must be > 1 (a loss barrier); got minimum {float(c.min()):.3g}")
    exponent = escape_exponent(B=B, eta=eta, h_star=h_star, n=1)
    return _checked(lambda: np.sqrt(h_star * np.abs(h_saddle)) / (2 * np.pi)
                    * np.exp(-exponent * np.log(c)), "h_star, h_saddle, c, B and eta",
                    "the escape rate")


class SaddleGeometry(NamedTuple):
    """Curvature data entering a Kramers–Langer prefactor.

    Attributes
    ----------
    hess_min, hess_saddle : (n, n) arrays
        Hessians Ĥ(θ*), Ĥ(θ^s) on the escape subspace.
    h_escape : float
        The negative eigenvalue h_e^s of Ĥ(θ^s).
    prefactor : float
        (|h_e^s|/2π) √(det Ĥ(θ*)/|det Ĥ(θ^s)|).
    """

    hess_min: FloatArray
    hess_saddle: FloatArray
    h_escape: float
    prefactor: float


def saddle_geometry(hess_min: Any, hess_saddle: Any, *, n: int | None = None) -> SaddleGeometry:
    r"""Ĥ, h_e^s and the Langer prefactor of an index-1 saddle, on the outlier subspace.

    .. math:: \hat H(\theta) = V_n^\top H(\theta)\, V_n, \qquad
              \text{prefactor} = \frac{|h_e^s|}{2\pi}
              \sqrt{\frac{\det \hat H(\theta^*)}{|\det \hat H(\theta^s)|}}

    Choice (the paper leaves the restriction implicit): V_n holds the eigenvectors of the
    n largest eigenvalues of H(θ*) (the outlier subspace, where the noise ∝ L H* acts); Ĥ is
    the Hessian restricted to that subspace at θ* and at θ^s, and h_e^s is the single negative
    eigenvalue of Ĥ(θ^s) (an index-1 saddle within the subspace).  With n equal to the full
    dimension, Ĥ = H.

    Parameters
    ----------
    hess_min : float or (D, D) array
        Hessian at the minimum, symmetric positive definite.
    hess_saddle : float or (D, D) array
        Hessian at the saddle, symmetric.
    n : int or None
        Number of outlier directions (1 ≤ n ≤ D); None means n = D.

    Returns
    -------
    SaddleGeometry

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, Ĥ and h_e^s);
    J. S. Langer, Ann. Phys. 54 (1969) 258.
    """
    H_min = check_square(np.atleast_2d(as_float_array(hess_min, "hess_min")), "hess_min",
                         symmetric=True)
    H_s = check_square(np.atleast_2d(as_float_array(hess_saddle, "hess_saddle")), "hess_saddle",
                       symmetric=True)
    if H_s.shape != H_min.shape:
        raise ValueError(f"hess_saddle must have the shape of hess_min {H_min.shape}; "
                         f"got {H_s.shape}")
    D = H_min.shape[0]
    n = D if n is None else check_positive_int(n, "n")
    if n > D:
        raise ValueError(f"n must be <= the Hessian size {D}; got {n}")
    eig, V = np.linalg.eigh(H_min)
    if eig[-n] <= 0:
        raise ValueError("hess_min must be positive definite on the outlier subspace")
    Vn = V[:, -n:]
    with np.errstate(over="ignore", invalid="ignore"):
        H_hat_min = Vn.T @ H_min @ Vn
        H_hat_s = Vn.T @ H_s @ Vn
        H_hat_min = H_hat_min / 2 + H_hat_min.T / 2
        H_hat_s = H_hat_s / 2 + H_hat_s.T / 2
    check_finite_result(H_hat_min, "hess_min", "the Hessian on the outlier subspace")
    check_finite_result(H_hat_s, "hess_saddle", "the Hessian on the outlier subspace")
    eig_min = np.linalg.eigvalsh(H_hat_min)
    eig_s = np.linalg.eigvalsh(H_hat_s)
    if np.any(eig_min <= 0):
        raise ValueError("hess_min must be positive definite on the outlier subspace")
    if np.count_nonzero(eig_s < 0) != 1 or np.any(eig_s == 0):
        raise ValueError(
            "hess_saddle must have exactly one negative and no zero eigenvalue on the outlier "
            f"subspace (an index-1 saddle); got eigenvalues {eig_s}"
        )
    h_escape = float(eig_s[0])
    log_ratio = np.sum(np.log(eig_min)) - np.sum(np.log(np.abs(eig_s)))
    prefactor = float(_checked(lambda: abs(h_escape) / (2 * np.pi) * np.exp(0.5 * log_ratio),
                               "hess_min and hess_saddle", "the Langer prefactor"))
    return SaddleGeometry(H_hat_min, H_hat_s, h_escape, prefactor)


def escape_rate(hess_min: Any, hess_saddle: Any, c: Any, *, B: Any, eta: Any, h_star: Any,
                n: int | None = None) -> FloatArray | float:
    r"""Power-law escape rate of the n-dimensional SGD SDE.

    .. math::
        \kappa = \frac{|h_e^s|}{2\pi}\sqrt{\frac{\det\hat H(\theta^*)}{|\det\hat H(\theta^s)|}}
                 \; c^{-\left(\frac{B}{\eta h^*} + 1 - \frac n2\right)}

    Ĥ and h_e^s are defined in :func:`saddle_geometry` (Hessian restricted to the span of the n
    top eigenvectors of H(θ*); h_e^s its negative eigenvalue at the saddle).  Derivation:
    Langer's rate for Langevin dynamics on U = log L at temperature T = ηh*/B in τ-time
    (∇²U = H/L at critical points, so det ∇²U carries L^{−n} and the unstable eigenvalue
    carries 1/L(θ^s)), times dτ/dt = L(θ*).  Assumes noise 2ηL h* I/B on the outlier
    subspace (all outliers of size h*, so the τ-dynamics is reversible); leading order in T.
    For n = 1 it reduces to :func:`escape_rate_1d`.

    Parameters
    ----------
    hess_min, hess_saddle : float or (D, D) array
        Hessians at the minimum (positive definite on the subspace) and at the saddle.
    c : float or array
        Loss ratio L(θ^s)/L(θ*) > 1.
    B, eta, h_star : float
        Batch size, learning rate, typical outlier curvature h* (all > 0).
    n : int or None
        Number of outlier directions; None uses the Hessians' size D.  The exponent and the
        restriction Ĥ both use this n.

    Returns
    -------
    float or array
        κ per unit SDE time t = ηk (broadcast over ``c``).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claims C3, C4).
    """
    geometry = saddle_geometry(hess_min, hess_saddle, n=n)
    n_eff = geometry.hess_min.shape[0]
    c = as_float_array(c, "c")
    if np.any(c <= 1):
        raise ValueError(f"c must be > 1 (a loss barrier); got minimum {float(c.min()):.3g}")
    exponent = escape_exponent(B=check_positive(B, "B"), eta=check_positive(eta, "eta"),
                               h_star=check_positive(h_star, "h_star"), n=n_eff)
    return _checked(lambda: geometry.prefactor * np.exp(-exponent * np.log(c)),
                    "hess_min, hess_saddle, c, B, eta and h_star", "the escape rate")


def kramers_rate(hess_min: Any, hess_saddle: Any, delta_L: Any, *, T: Any) -> FloatArray | float:
    r"""Arrhenius (Kramers–Langer) rate at constant temperature (GLD).

    .. math::
        \kappa = \frac{|h_e^s|}{2\pi}\sqrt{\frac{\det H(\theta^*)}{|\det H(\theta^s)|}}
                 \, e^{-\Delta L/T}, \qquad \Delta L = L(\theta^s) - L(\theta^*)

    for gradient Langevin dynamics dθ = −∇L dt + √(2T) dW with a fixed T (isotropic in all D
    directions, so the full Hessians enter); 1-D: κ = √(h*|h^s|)/(2π) e^{−ΔL/T}.  Leading order
    as T → 0.

    Parameters
    ----------
    hess_min, hess_saddle : float or (D, D) array
        Hessians at the minimum and at the (index-1) saddle.
    delta_L : float or array
        Linear barrier ΔL > 0.
    T : float
        Temperature T > 0 (noise variance 2T per unit time).

    Returns
    -------
    float or array
        κ per unit time.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, Arrhenius alternative);
    H. A. Kramers, Physica 7 (1940) 284; J. S. Langer, Ann. Phys. 54 (1969) 258.
    """
    geometry = saddle_geometry(hess_min, hess_saddle)
    delta_L = _positive(delta_L, "delta_L")
    T = check_positive(T, "T")
    return _checked(lambda: geometry.prefactor * np.exp(-delta_L / T),
                    "hess_min, hess_saddle, delta_L and T", "the Kramers rate")


def arrhenius_rate_frozen_noise(hess_min: Any, hess_saddle: Any, c: Any, *, B: Any, eta: Any,
                                h_star: Any, n: int | None = None) -> FloatArray | float:
    r"""Arrhenius rate with the SGD noise frozen at its value at the minimum.

    With noise 2ηL(θ*)h*/B (constant, on the outlier subspace) the temperature is
    T = ηL(θ*)h*/B and ΔL/T = (c − 1)B/(ηh*), so

    .. math::
        \kappa = \frac{|h_e^s|}{2\pi}\sqrt{\frac{\det\hat H(\theta^*)}{|\det\hat H(\theta^s)|}}
                 \exp\Big(-\frac{B}{\eta h^*}(c - 1)\Big)

    (1-D: √(h*|h^s|)/(2π) e^{−B(c−1)/(ηh*)}).  It agrees with :func:`escape_rate` only as
    c → 1 (log c ≈ c − 1, n = 2); for larger barriers it decays exponentially in c instead of
    as a power.

    Parameters
    ----------
    hess_min, hess_saddle : float or (D, D) array
        Hessians at the minimum and the saddle (restricted as in :func:`saddle_geometry`).
    c : float or array
        Loss ratio L(θ^s)/L(θ*) > 1.
    B, eta, h_star : float
        Batch size, learning rate, curvature at the minimum (> 0).
    n : int or None
        Number of outlier directions (None: the Hessians' size).

    Returns
    -------
    float or array
        κ per unit SDE time t = ηk.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, Arrhenius alternative with
    frozen noise).
    """
    geometry = saddle_geometry(hess_min, hess_saddle, n=n)
    c = as_float_array(c, "c")
    if np.any(c <= 1):
        raise ValueError(f"c must be > 1 (a loss barrier); got minimum {float(c.min()):.3g}")
    inv_T = float(_inverse_temperature(check_positive(B, "B"), check_positive(eta, "eta"),
                                       check_positive(h_star, "h_star")))
    return _checked(lambda: geometry.prefactor * np.exp(-inv_T * (c - 1.0)),
                    "hess_min, hess_saddle, c, B, eta and h_star", "the Arrhenius rate")


# ----------------------------------------------------------------------------------------------
# exact mean first-passage time in 1-D
# ----------------------------------------------------------------------------------------------


#: Default limit on drift/diffusion evaluations of :func:`mean_first_passage_time_1d`.
MAX_EVALUATIONS = 10**5


def _scalar_call(func: Callable[[float], Any], x: float, name: str) -> float:
    value = float(np.asarray(func(x), dtype=np.float64))
    if not np.isfinite(value):
        raise ValueError(f"{name} is not finite at x = {x:.6g}")
    return value


def mean_first_passage_time_1d(
    drift: Callable[[float], Any],
    diffusion: Callable[[float], Any],
    x0: Any,
    a: float,
    b: Any,
    *,
    rtol: float = 1e-10,
    max_evaluations: int = MAX_EVALUATIONS,
) -> FloatArray | float:
    r"""Exact mean first-passage time of a 1-D Itô diffusion, reflecting at a, absorbing at b.

    For :math:`dX = \mu(X)\,dt + \sqrt{2D(X)}\,dW` started at x0 between a reflecting end a and
    an absorbing end b, the mean exit time solves
    :math:`\mu T' + D T'' = -1`, :math:`T'(a) = 0`, :math:`T(b) = 0`.  With the speed density
    :math:`p(z) = e^{\Phi(z)}/D(z)`, :math:`\Phi(z) = \int_a^z \mu/D`, and the scale density
    :math:`s(y) = e^{-\Phi(y)} = 1/(D(y)p(y))` (for a < b):

    .. math::
        T(x_0) = \int_{x_0}^{b} \frac{dy}{D(y)\,p(y)} \int_a^{y} p(z)\, dz
               = \int_{x_0}^{b} F(y)\, dy, \qquad
        F(y) = \int_a^y \frac{e^{\Phi(z) - \Phi(y)}}{D(z)}\, dz .

    F carries only differences of Φ (log space), and obeys F′ = (1 − μF)/D, F(a) = 0; the code
    integrates (F, W = ∫_a F) with ``scipy.integrate.solve_ivp`` (DOP853, purely relative error
    control at tolerance ``rtol``),
    so T = W(b) − W(x0) without forming e^{±Φ}: large barriers overflow only when T itself
    exceeds the float64 range.  If b < a the problem is mirrored (x → −x).  Vectorised over
    ``x0`` and ``b`` (one integration through all the points).

    Parameters
    ----------
    drift, diffusion : callable
        μ(x) and D(x) > 0, called with one float.
    x0 : float or array
        Starting points, between a and b (inclusive).
    a : float
        Reflecting boundary (finite; put it where p is negligible to mimic a natural boundary).
    b : float or array
        Absorbing boundary/boundaries, all on the same side of a; broadcast against ``x0``.
    rtol : float
        Relative tolerance of the ODE solver (≥ 1e-13).  A strong drift towards b (μ/D large
        and positive) makes the equation stiff: it stays accurate but needs more steps.
    max_evaluations : int
        Refuse (``ValueError``) once the solver has called μ and D this many times (default
        10⁵, about four times the most the package's own checks need; a few seconds): an
        extremely stiff problem would otherwise run for hours.

    Returns
    -------
    float or array
        E[τ] in the time unit of the SDE (for the SGD SDE, t = ηk: divide by η for steps).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3: exact 1-D comparison);
    C. W. Gardiner, *Handbook of Stochastic Methods*, §5.2.7 (first passage times).
    """
    if not callable(drift):
        raise ValueError("drift must be callable")  # noqa: TRY004
    if not callable(diffusion):
        raise ValueError("diffusion must be callable")  # noqa: TRY004
    a = float(as_float_array(a, "a", ndim=0))
    x0 = as_float_array(x0, "x0")
    b = as_float_array(b, "b")
    try:
        x0, b = np.broadcast_arrays(x0, b)
    except ValueError as exc:
        raise ValueError(f"b must broadcast against x0; got shapes {b.shape}, {x0.shape}") from exc
    rtol = check_positive(rtol, "rtol")
    if rtol < 1e-13:
        raise ValueError(f"rtol must be >= 1e-13; got {rtol}")
    if np.all(b > a):
        sign = 1.0
    elif np.all(b < a):
        sign = -1.0
    else:
        raise ValueError("b must lie strictly on one side of a (all above or all below)")
    max_evaluations = check_positive_int(max_evaluations, "max_evaluations")
    with np.errstate(over="ignore", invalid="ignore"):
        u0 = sign * (x0 - a)
        ub = sign * (b - a)
    check_finite_result(ub, "a and b", "the distance b − a")
    if np.any(u0 < 0) or np.any(u0 > ub):
        raise ValueError("x0 must lie between a (reflecting) and b (absorbing)")
    if not 1e-6 * float(ub.max()) > 0:
        raise ValueError(f"b must differ from a by more than the float64 resolution; got "
                         f"|b - a| = {float(ub.max()):.3g}")
    calls = [0]

    def coefficients(u: float) -> tuple[float, float]:
        calls[0] += 1
        if calls[0] > max_evaluations:
            raise ValueError(
                f"drift and diffusion: the first-passage ODE needed more than max_evaluations = "
                f"{max_evaluations} evaluations (too stiff: |μ|/D very large between a and b)")
        x = a + sign * u
        mu = sign * _scalar_call(drift, x, "drift")
        D = _scalar_call(diffusion, x, "diffusion")
        if D <= 0:
            raise ValueError(f"diffusion must be > 0; got {D:.3g} at x = {x:.6g}")
        return mu, D

    def rhs(u: float, y: FloatArray) -> FloatArray:
        mu, D = coefficients(u)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.array([(1.0 - mu * y[0]) / D, y[0]])
        return check_finite_result(out, "drift and diffusion",
                                   f"the first-passage integrand at x = {a + sign * u:.6g}")

    points = np.unique(np.concatenate([u0.ravel(), ub.ravel()]))
    W = np.zeros(points.size)
    state = np.zeros(2)
    start = 0.0
    for idx, stop in enumerate(points):
        if stop > start:
            # purely relative error control (atol = the smallest normal float, which changes no
            # error scale rtol·|y| above 1e-290 and only avoids 0/0 when |y| underflows): F and
            # W are positive after the first step, given explicitly as the state starts at zero
            extra: dict[str, Any] = {}
            if start == 0.0:
                extra["first_step"] = 1e-6 * (stop - start)
            with np.errstate(all="ignore"):  # a non-finite state fails the step or the result
                sol = solve_ivp(rhs, (start, stop), state, method="DOP853", rtol=rtol,
                                atol=np.finfo(np.float64).tiny, **extra)
            if not sol.success:
                raise ValueError(f"drift, diffusion, a and b: the first-passage integral "
                                 f"failed between {a + sign * start:.6g} and "
                                 f"{a + sign * stop:.6g}: {sol.message}")
            state = sol.y[:, -1]
            start = stop
        W[idx] = state[1]
    W0 = W[np.searchsorted(points, u0)]
    Wb = W[np.searchsorted(points, ub)]
    return _checked(lambda: Wb - W0, "drift, diffusion, x0, a and b", "the mean passage time")


# ----------------------------------------------------------------------------------------------
# the model of spec C3
# ----------------------------------------------------------------------------------------------


class EscapeParameters(NamedTuple):
    """Curvatures and loss ratio of a minimum–saddle pair.

    Attributes
    ----------
    h_star : float
        Curvature at the minimum along the escape direction.
    h_saddle : float
        Curvature at the saddle along it (< 0).
    c : float
        L(θ^s)/L(θ*).
    L_min, L_saddle : float
        L(θ*), L(θ^s).
    hess_min, hess_saddle : (n, n) arrays
        Full Hessians at the minimum and at the saddle.
    """

    h_star: float
    h_saddle: float
    c: float
    L_min: float
    L_saddle: float
    hess_min: FloatArray
    hess_saddle: FloatArray


@dataclass(frozen=True)
class DoubleWell:
    r"""Double-well loss of spec C3 with n − 1 extra harmonic directions.

    .. math:: L(\theta) = L_0 + a(\theta_0^2 - 1)^2 + \tfrac{k}{2}\sum_{j=1}^{n-1}\theta_j^2

    Minima at θ₀ = ±1 (L = L₀, Hessian diag(8a, k, …)), index-1 saddle at 0
    (L = L₀ + a, Hessian diag(−4a, k, …)): h* = 8a, h^s = −4a, c = 1 + a/L₀.  The SDE of the
    model is dθ = −∇L dt + √(2TL(θ)) dW with isotropic T = ηh*/B, i.e. the SGD noise
    2ηL H*/B when every outlier has curvature h* (the default k = 8a).  Its stationary law is
    exactly L^{−1−1/T}.  Integrating out the harmonic directions gives a 1-D diffusion along θ₀
    with drift −V′ and diffusion T_n V, V(θ₀) = L₀ + a(θ₀² − 1)², where
    T_n = T/(1 − (n − 1)T/2) (:meth:`reduced_temperature`); its exact 1-D first-passage time
    checks the n-D formula.

    Parameters
    ----------
    L0 : float
        Loss at the minima, > 0.
    a : float
        Barrier height L(θ^s) − L(θ*), > 0.
    n : int
        Number of outlier directions (escape direction plus n − 1 harmonic ones).
    k : float or None
        Curvature of the harmonic directions; None means h* = 8a.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, model for exact checks).
    """

    L0: float
    a: float
    n: int = 1
    k: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "L0", check_positive(self.L0, "L0"))
        object.__setattr__(self, "a", check_positive(self.a, "a"))
        object.__setattr__(self, "n", check_positive_int(self.n, "n"))
        k = 8.0 * self.a if self.k is None else check_positive(self.k, "k")
        object.__setattr__(self, "k", k)
        if not np.isfinite(8.0 * self.a + self.L0 + k):
            raise ValueError(f"a = {self.a:.3g} (with L0 and k) is too large: the curvature "
                             "h* = 8a and L(θ^s) = L0 + a must stay within float64")

    def _theta(self, theta: Any) -> FloatArray:
        theta = as_float_array(theta, "theta")
        if self.n == 1 and (theta.ndim == 0 or theta.shape[-1] != 1):
            theta = theta[..., None]
        if theta.ndim == 0 or theta.shape[-1] != self.n:
            raise ValueError(f"theta must have a last axis of length n = {self.n}; "
                             f"got shape {theta.shape}")
        return theta

    def loss(self, theta: Any) -> FloatArray | float:
        """L(θ) for θ of shape (..., n) (or (...) when n = 1)."""
        th = self._theta(theta)
        x = th[..., 0]
        return _checked(lambda: self.L0 + self.a * (x**2 - 1.0) ** 2
                        + 0.5 * self.k * np.sum(th[..., 1:] ** 2, axis=-1),
                        "theta", "the loss L(θ)")

    def gradient(self, theta: Any) -> FloatArray:
        """∇L(θ), shape (..., n)."""
        th = self._theta(theta)
        with np.errstate(all="ignore"):
            g = self.k * th.copy()
            g[..., 0] = 4.0 * self.a * th[..., 0] * (th[..., 0] ** 2 - 1.0)
        return check_finite_result(g, "theta", "the gradient ∇L(θ)")

    def hessian(self, theta: Any) -> FloatArray:
        """∇²L(θ), shape (..., n, n)."""
        th = self._theta(theta)
        H = np.zeros(th.shape + (self.n,))
        idx = np.arange(self.n)
        H[..., idx, idx] = self.k
        with np.errstate(all="ignore"):
            H[..., 0, 0] = self.a * (12.0 * th[..., 0] ** 2 - 4.0)
        return check_finite_result(H, "theta", "the Hessian ∇²L(θ)")

    def escape_parameters(self) -> EscapeParameters:
        """h*, h^s, c = L(θ^s)/L(θ*), the loss values and the full Hessians."""
        theta_min = np.zeros(self.n)
        theta_min[0] = 1.0
        c = float(_checked(lambda: (self.L0 + self.a) / self.L0, "L0 and a",
                           "c = (L0 + a)/L0"))
        return EscapeParameters(
            h_star=8.0 * self.a,
            h_saddle=-4.0 * self.a,
            c=c,
            L_min=self.L0,
            L_saddle=self.L0 + self.a,
            hess_min=self.hessian(theta_min),
            hess_saddle=self.hessian(np.zeros(self.n)),
        )

    def reduced_temperature(self, T: float) -> float:
        r"""Temperature T_n = T/(1 − (n − 1)T/2) of the reduced 1-D diffusion along θ₀.

        With p ∝ L^{−1−1/T} and conductance T L p, the integrals over the n − 1 harmonic
        directions scale as V^{(n−1)/2} times Gamma functions whose ratio gives the effective
        diffusion T V/(1 − (n − 1)T/2).  Requires (n − 1)T < 2.
        """
        T = check_positive(T, "T")
        if (self.n - 1) * (T / 2) >= 1:
            raise ValueError(f"T must be < 2/(n - 1) = {2 / (self.n - 1):.3g} for n = {self.n}")
        return T / (1.0 - (self.n - 1) * T / 2.0)


# ----------------------------------------------------------------------------------------------
# C1: linear regression
# ----------------------------------------------------------------------------------------------


class NoiseTrace(NamedTuple):
    """Exact and decoupled gradient-noise trace of linear regression.

    Attributes
    ----------
    exact : float or array
        𝒩 = E_p‖∇ℓ_p‖² − ‖∇L‖² = 2L Tr H + ‖H δθ‖².
    decoupled : float or array
        2L Tr H.
    loss : float or array
        L = ½(δθᵀ H δθ + σ²).
    relative_gap : float or array
        (exact − decoupled)/decoupled = ‖H δθ‖²/(2L Tr H).
    gap_bound : float or array
        (λ_max/Tr H) · δθᵀHδθ/(δθᵀHδθ + σ²) ≥ relative_gap.
    """

    exact: Any
    decoupled: Any
    loss: Any
    relative_gap: Any
    gap_bound: Any


def noise_trace_linear_regression(H: Any, delta_theta: Any, sigma2: float) -> NoiseTrace:
    r"""Gradient-noise trace of linear regression with Gaussian inputs: exact vs. decoupled.

    Assumptions: x ~ N(0, H) (so the population Hessian is H), y = θ*ᵀx + ε with
    ε ~ N(0, σ²) independent of x, per-sample loss ℓ = ½(θᵀx − y)², δθ = θ − θ*, population
    averages.  Isserlis' theorem gives the per-sample covariance
    Σ₁ = B Σ = 2L H + H δθ δθᵀ H (see ``_symbolic.linear_regression_gradient_moments``), so

    .. math::
        \mathcal N = \mathbb E_p\|\nabla\ell_p\|^2 - \|\nabla L\|^2 = \operatorname{Tr}\Sigma_1
        = 2L\operatorname{Tr}H + \|H\delta\theta\|^2, \qquad
        L = \tfrac12(\delta\theta^\top H\delta\theta + \sigma^2),

    against the decoupled 2L Tr H.  The relative gap ‖Hδθ‖²/(2L Tr H) is at most
    (λ_max/Tr H)·δθᵀHδθ/(δθᵀHδθ + σ²): the decoupling is exact where Hδθ = 0 (at the minimum),
    accurate when the label noise dominates the loss or the spectrum is spread over many
    directions (λ_max ≪ Tr H), and worst in 1-D without label noise, where 𝒩 = 4Lh is twice the
    decoupled value (for x, y ~ N(0, 1) independent, Σ₁ = 4L − 1).

    Parameters
    ----------
    H : (D, D) array
        Input covariance = Hessian, symmetric positive semi-definite.
    delta_theta : (D,) or (K, D) array
        Displacement(s) θ − θ* from the optimum.
    sigma2 : float
        Label-noise variance σ² ≥ 0 (the loss at the optimum is σ²/2).

    Returns
    -------
    NoiseTrace
        Fields of shape () or (K,).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C1, "𝒩 ≈ 2L Tr H");
    L. Isserlis, Biometrika 12 (1918) 134–139.
    """
    H = check_square(H, "H", symmetric=True)
    check_psd_stack(H[None], "H")
    delta = as_float_array(delta_theta, "delta_theta", ndim=(1, 2))
    if delta.shape[-1] != H.shape[0]:
        raise ValueError(f"delta_theta must have last axis {H.shape[0]} to match H; "
                         f"got {delta.shape}")
    sigma2 = check_positive(sigma2, "sigma2", allow_zero=True)
    with np.errstate(over="ignore"):
        trace = float(np.trace(H))
    if trace <= 0:
        raise ValueError("H must have a positive trace")
    with np.errstate(all="ignore"):  # every field is checked below
        Hd = delta @ H
        quad = np.sum(delta * Hd, axis=-1)
        loss = 0.5 * (quad + sigma2)
        decoupled = 2.0 * loss * trace
        gap = np.sum(Hd * Hd, axis=-1)
        exact = decoupled + gap
        relative = np.where(decoupled > 0, gap / np.where(decoupled > 0, decoupled, 1.0), 0.0)
        fraction = np.where(quad + sigma2 > 0, quad / np.where(quad + sigma2 > 0,
                                                                 quad + sigma2, 1.0), 0.0)
        bound = float(np.linalg.eigvalsh(H)[-1]) / trace * fraction
    fields = (exact, decoupled, loss, relative, bound)
    for value, what in zip(fields, NoiseTrace._fields, strict=True):
        check_finite_result(value, "H, delta_theta and sigma2", f"the noise trace field {what}")
    return NoiseTrace(*(_scalar_out(v) for v in fields))


def linear_regression_passage_time_1d(c: Any, *, h: float, sigma2: float, B: float, eta: float,
                                      noise: str = "decoupled") -> FloatArray | float:
    r"""SDE mean first-passage time from the minimum to the level L ≥ c L* (1-D regression).

    Model: x ~ N(0, h), y = θ*x + ε, ε ~ N(0, σ²); L(θ) = ½(h δ² + σ²), L* = σ²/2,
    δ = θ − θ*.  SDE in t = ηk: dδ = −hδ dt + √(2D(δ)) dW with

    .. math::
        D = \frac{\eta}{2B}\,\Sigma_1(\delta), \qquad
        \Sigma_1 = \begin{cases} 2L h & \text{noise = "decoupled" (the paper's model)} \\
                                 2L h + h^2\delta^2 & \text{noise = "exact" (Gaussian inputs)}
                   \end{cases}

    The level is |δ| = b = σ√((c − 1)/h); by symmetry the passage time from δ = 0 equals that of
    the process reflected at 0, computed by :func:`mean_first_passage_time_1d`.  For the
    decoupled noise it grows as c^{B/(ηh) + 1/2} at large c (exponent
    :func:`escape_exponent` with n = 1); the exact noise doubles the effective temperature at
    large c (Σ₁ → 4Lh), so its local slope falls from B/(ηh) + ½ towards B/(2ηh) + ½.

    Parameters
    ----------
    c : float or array
        Level ratios L/L* > 1.
    h : float
        Curvature (input variance), > 0.
    sigma2 : float
        Label-noise variance σ² > 0.
    B, eta : float
        Batch size and learning rate (> 0).
    noise : {"decoupled", "exact"}
        Which noise model.

    Returns
    -------
    float or array
        Mean first-passage time in SDE time t (divide by η for SGD steps).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3, linear-regression experiment).
    """
    h = check_positive(h, "h")
    sigma2 = check_positive(sigma2, "sigma2")
    B = check_positive(B, "B")
    eta = check_positive(eta, "eta")
    if noise not in ("decoupled", "exact"):
        raise ValueError(f"noise must be 'decoupled' or 'exact'; got {noise!r}")
    c = as_float_array(c, "c")
    if np.any(c <= 1):
        raise ValueError(f"c must be > 1; got minimum {float(c.min()):.3g}")
    exact = noise == "exact"

    def drift(d: float) -> float:
        return -h * d

    def diffusion(d: float) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # inf is refused by the caller
            loss = 0.5 * (np.float64(h) * d * d + sigma2)
            sigma1 = 2.0 * loss * h + (h * h * d * d if exact else 0.0)
            return eta * sigma1 / (2.0 * B)

    b = _checked(lambda: np.sqrt(sigma2 * (c - 1.0) / h), "c, sigma2 and h",
                 "the level |δ| = √(σ²(c − 1)/h)")
    return mean_first_passage_time_1d(drift, diffusion, np.zeros_like(b), 0.0, b)


__all__ = [
    "DoubleWell",
    "EscapeParameters",
    "NoiseTrace",
    "SaddleGeometry",
    "arrhenius_rate_frozen_noise",
    "critical_dimension",
    "escape_exponent",
    "escape_rate",
    "escape_rate_1d",
    "kramers_rate",
    "linear_regression_passage_time_1d",
    "mean_first_passage_time_1d",
    "noise_trace_linear_regression",
    "phi",
    "saddle_geometry",
    "stationary_density_1d",
    "stationary_density_sde_1d",
    "temperature",
]

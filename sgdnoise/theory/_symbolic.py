r"""Sympy derivations of the exact identities behind SPEC part A, with numeric companions.

Each ``*_identity`` function builds its objects from free symbols, derives the quantity of interest
(by matrix algebra, differentiation or Wick's theorem, never by typing the result) and returns the
difference between the derivation and the closed form, simplified: the zero matrix or ``0``.  The
tests assert exactly that, so the closed forms used elsewhere in the package carry a symbolic proof
for small dimensions.

Conventions
-----------
* ``E_p`` is the mean over N training samples (population normalisation 1/N); for the
  linear-regression model it is the expectation over the data distribution.
* Σ₁ = E[g gᵀ] − ḡḡᵀ is the per-sample (batch size 1) gradient covariance; the minibatch noise
  covariance is C = Σ₁/B for sampling with replacement.
* All matrices are symmetric; no eigenbasis is involved unless a docstring says so.

The numeric companions (:func:`linear_regression_noise_covariance`,
:func:`linear_regression_gradient_second_moment`, :func:`logistic_noise_factor`) are plain float64
numpy with validated input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

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
# private helpers
# ----------------------------------------------------------------------------------------------


def _symmetric_symbol_matrix(name: str, dim: int) -> sp.Matrix:
    """A dim × dim symmetric matrix whose upper triangle holds real symbols ``name_i_j``."""
    entries = {}
    for i in range(dim):
        for j in range(i, dim):
            entries[i, j] = entries[j, i] = sp.Symbol(f"{name}_{i}_{j}", real=True)
    return sp.Matrix(dim, dim, lambda i, j: entries[i, j])


def _simplify_matrix(A: sp.Matrix) -> sp.Matrix:
    """Entrywise ``expand`` followed by ``simplify`` (polynomial identities vanish at the first)."""
    return A.applyfunc(lambda entry: sp.simplify(sp.expand(entry)))


def _per_sample_hessians(dim: int, num_samples: int) -> list[sp.Matrix]:
    return [_symmetric_symbol_matrix(f"h{p + 1}", dim) for p in range(num_samples)]


def _sample_mean(items: Sequence[sp.Matrix]) -> sp.Matrix:
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total * sp.Rational(1, len(items))


def _wick_moment(cov: sp.Matrix, indices: tuple[int, ...]) -> sp.Expr:
    r"""E[z_{i_1} ⋯ z_{i_n}] for z ~ N(0, cov), by Isserlis' theorem.

    The moment is the sum over all perfect matchings of the index list of the product of the
    matched covariances: pair the first index with each other one in turn and recurse.  An odd
    number of indices gives 0; for four indices this is
    E[z_i z_j z_k z_l] = cov_ij cov_kl + cov_ik cov_jl + cov_il cov_jk.
    """
    if not indices:
        return sp.Integer(1)
    if len(indices) % 2:
        return sp.Integer(0)
    first, rest = indices[0], indices[1:]
    total = sp.Integer(0)
    for pos, partner in enumerate(rest):
        remaining = rest[:pos] + rest[pos + 1 :]
        total += cov[first, partner] * _wick_moment(cov, remaining)
    return total


def _gaussian_expectation(expr: sp.Expr, z: Sequence[sp.Symbol], cov: sp.Matrix) -> sp.Expr:
    """E[expr] for a polynomial ``expr`` in a zero-mean Gaussian vector ``z`` (covariance ``cov``).

    The polynomial is split into monomials; each monomial's moment comes from :func:`_wick_moment`.
    """
    poly = sp.Poly(sp.expand(expr), *z)
    total = sp.Integer(0)
    for exponents, coeff in poly.terms():
        indices = tuple(i for i, power in enumerate(exponents) for _ in range(power))
        total += coeff * _wick_moment(cov, indices)
    return sp.expand(total)


def _logistic_gradient_and_hessian(
    dim: int,
) -> tuple[sp.Matrix, sp.Matrix, sp.Expr, sp.Symbol, sp.Matrix, sp.Matrix]:
    """Per-sample gradient and Hessian of the logistic loss, by differentiation w.r.t. w."""
    w = sp.Matrix([sp.Symbol(f"w_{i}", real=True) for i in range(dim)])
    x = sp.Matrix([sp.Symbol(f"x_{i}", real=True) for i in range(dim)])
    y = sp.Symbol("y", real=True)
    margin = (w.T * x)[0, 0]
    q = 1 / (1 + sp.exp(-margin))
    loss = -y * sp.log(q) - (1 - y) * sp.log(1 - q)
    g = sp.Matrix([sp.diff(loss, w_i) for w_i in w])
    h = sp.hessian(loss, list(w))
    return g, h, q, y, w, x


# ----------------------------------------------------------------------------------------------
# symbolic identities
# ----------------------------------------------------------------------------------------------


def variance_identity(dim: int = 2, num_samples: int = 2) -> sp.Matrix:
    r"""Residual of the variance decomposition of the squared Hessian; the zero matrix.

    .. math:: \mathbb{E}_p[h_p^2] - H^2 - \mathbb{E}_p[(h_p - H)^2] = 0,
              \qquad H = \mathbb{E}_p h_p

    so that :math:`\mathrm{Var}_p(h) = M - H^2 \succeq 0` with :math:`M = \mathbb{E}_p[h_p^2]`.

    Parameters
    ----------
    dim : int
        Size D of the symbolic symmetric per-sample Hessians h_p (entries are free real symbols).
    num_samples : int
        Number N of samples; ``E_p`` is the plain mean (1/N) Σ_p.

    Returns
    -------
    sympy.Matrix
        The simplified D × D residual (zero for every D and N).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, objects: M and Var_p(h); used by claims A1
    and A5).
    """
    dim = check_positive_int(dim, "dim")
    num_samples = check_positive_int(num_samples, "num_samples")
    h = _per_sample_hessians(dim, num_samples)
    H = _sample_mean(h)
    M = _sample_mean([h_p * h_p for h_p in h])
    variance = _sample_mean([(h_p - H) * (h_p - H) for h_p in h])
    return _simplify_matrix(M - H * H - variance)


def commutator_identity(
    dim: int = 2, num_samples: int = 2, c: sp.Expr = sp.Symbol("c")
) -> sp.Matrix:
    r"""Residual of the commutator identity for C = cM; the zero matrix.

    .. math:: [cM, H] - c\,[\mathrm{Var}_p(h), H] = 0, \qquad
              M = \mathbb{E}_p[h_p^2],\ \mathrm{Var}_p(h) = \mathbb{E}_p[(h_p - H)^2],\
              [A, B] = AB - BA

    It holds because M = Var_p(h) + H² and H² commutes with H: if the noise covariance is
    proportional to M, its failure to commute with H comes only from the spread of the h_p.

    Parameters
    ----------
    dim : int
        Size D of the symbolic symmetric per-sample Hessians h_p.
    num_samples : int
        Number N of samples; ``E_p`` is the plain mean (1/N) Σ_p.
    c : sympy.Expr or number
        Proportionality constant of C = cM (e.g. σ_w²/(2B) in claim A4).

    Returns
    -------
    sympy.Matrix
        The simplified D × D residual (zero).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5, "if C = cM then [C, H] = c[Var_p(h), H]").
    """
    dim = check_positive_int(dim, "dim")
    num_samples = check_positive_int(num_samples, "num_samples")
    c = sp.sympify(c)
    h = _per_sample_hessians(dim, num_samples)
    H = _sample_mean(h)
    M = _sample_mean([h_p * h_p for h_p in h])
    variance = _sample_mean([(h_p - H) * (h_p - H) for h_p in h])
    C = c * M
    return _simplify_matrix((C * H - H * C) - c * (variance * H - H * variance))


def ols_slope(x: Sequence[Any], y: Sequence[Any]) -> Any:
    r"""Ordinary-least-squares slope of ``y`` regressed on ``x`` (with intercept).

    .. math:: \hat\beta = \frac{\sum_i (x_i - \bar x)(y_i - \bar y)}{\sum_i (x_i - \bar x)^2}

    Plain arithmetic: the entries may be floats or sympy expressions; the result is of the same
    kind (not simplified).

    Parameters
    ----------
    x : sequence of float or sympy.Expr
        Regressor, of length n ≥ 2.
    y : sequence of float or sympy.Expr
        Response, of the same length as ``x``.

    Returns
    -------
    float or sympy.Expr
        The slope. A ``ValueError`` is raised when ``x`` is constant (zero denominator).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claims A3 and A6: the OLS fit of log M_ii or
    log C_ii on log λ_i).
    """
    x, y = list(x), list(y)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 points; got {len(x)}")
    if len(y) != len(x):
        raise ValueError(f"y must have the same length as x ({len(x)}); got {len(y)}")
    n = len(x)
    x_mean = sum(x) / n
    y_mean = sum(y) / n
    numerator = sum((x_i - x_mean) * (y_i - y_mean) for x_i, y_i in zip(x, y, strict=True))
    denominator = sum((x_i - x_mean) ** 2 for x_i in x)
    if denominator == 0:
        raise ValueError("x must not be constant (the OLS slope is undefined)")
    return numerator / denominator


def ols_exponent_identity(num_points: int = 3) -> sp.Expr:
    r"""Residual of the exponent identity of claim A3; zero.

    With :math:`x_i = \log\lambda_i`, :math:`k_i = \log\kappa_{\mathrm{eff},i}` and
    :math:`\kappa_{\mathrm{eff},i} = M_{ii}/\lambda_i` (so :math:`\log M_{ii} = x_i + k_i`),

    .. math:: \gamma_{\mathrm{fit}} = \hat\beta(\log M_{ii} \text{ on } \log\lambda_i)
              = 1 + \hat\beta(\log\kappa_{\mathrm{eff},i} \text{ on } \log\lambda_i)

    exactly, over any set of n ≥ 2 directions with distinct λ_i: the OLS slope is linear in the
    response and the slope of x on itself is 1.  "Diagonal" means in H's eigenbasis
    (M_ii = v_iᵀ M v_i); the base of the logarithm does not matter.

    Parameters
    ----------
    num_points : int
        Number n ≥ 2 of directions; x_i and k_i are free real symbols.

    Returns
    -------
    sympy.Expr
        :math:`\hat\beta(y, x) - (1 + \hat\beta(k, x))`, simplified (zero).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3, exponent identity).
    """
    num_points = check_positive_int(num_points, "num_points", minimum=2)
    x = sp.symbols(f"x_0:{num_points}", real=True)
    k = sp.symbols(f"k_0:{num_points}", real=True)
    y = [x_i + k_i for x_i, k_i in zip(x, k, strict=True)]
    residual = ols_slope(x, y) - (1 + ols_slope(x, k))
    return sp.simplify(sp.cancel(sp.together(residual)))


def linear_regression_gradient_moments(dim: int = 2) -> dict[str, sp.Matrix | sp.Expr]:
    r"""Gradient moments of linear regression with Gaussian inputs, derived by Isserlis' theorem.

    Model: :math:`x \sim \mathcal N(0, S)`, label :math:`y = w_*^\top x + \varepsilon` with
    :math:`\varepsilon \sim \mathcal N(0, \sigma^2)` independent of x, per-sample loss
    :math:`\ell = \tfrac12 (w^\top x - y)^2`, error :math:`e = w - w_*`, per-sample gradient
    :math:`g = x (x^\top e - \varepsilon)`.  Then

    .. math::
        \mathbb E[g g^\top] &= 2 S e e^\top S + (e^\top S e)\, S + \sigma^2 S, \qquad
        \bar g = S e, \\
        \Sigma_1 &= \mathbb E[g g^\top] - \bar g \bar g^\top
                  = S e e^\top S + (e^\top S e)\, S + \sigma^2 S
                  = 2L\, S + S e e^\top S, \qquad L = \tfrac12 (e^\top S e + \sigma^2).

    At the optimum (e = 0) this is :math:`\Sigma_1 = \sigma^2 H` with H = S: C ∝ H holds exactly
    there and only there.  The derivation treats :math:`z = (x, \varepsilon)` as one zero-mean
    Gaussian vector of covariance diag(S, σ²), expands each entry of g gᵀ, g and ℓ into monomials
    of z and replaces every monomial by its Wick sum over pairings (for four factors
    :math:`\mathbb E[z_i z_j z_k z_l] = S_{ij}S_{kl} + S_{ik}S_{jl} + S_{il}S_{jk}`).
    Expectations are population ones (over the data distribution); Σ₁ is the per-sample
    (batch size 1) covariance, C = Σ₁/B with replacement.

    Parameters
    ----------
    dim : int
        Input dimension D; S (symmetric, entries ``S_i_j``), e (``e_i``) and σ² (``sigma2``) are
        free symbols.

    Returns
    -------
    dict
        ``"E_ggT"`` (derived E[g gᵀ]), ``"g_mean"`` (derived E[g], D × 1), ``"Sigma1"``,
        ``"loss"`` (derived L = E ℓ, a scalar), ``"Sigma1_closed_form"``, ``"residual"``
        (Σ₁ minus the closed form, simplified: zero), ``"residual_2L"`` (Σ₁ − (2L·S + S e eᵀ S),
        zero), and the symbols used: ``"S"`` (D × D), ``"e"`` (D × 1), ``"sigma2"``.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A7, linear regression with Gaussian label
    noise).  L. Isserlis, Biometrika 12 (1918) 134–139 (Gaussian moment theorem).
    """
    dim = check_positive_int(dim, "dim")
    S = _symmetric_symbol_matrix("S", dim)
    e = sp.Matrix([sp.Symbol(f"e_{i}", real=True) for i in range(dim)])
    sigma2 = sp.Symbol("sigma2", nonnegative=True)

    x = sp.Matrix([sp.Symbol(f"x_{i}", real=True) for i in range(dim)])
    noise = sp.Symbol("epsilon", real=True)
    z = [*x, noise]
    cov_z = sp.diag(S, sp.Matrix([[sigma2]]))

    residual_scalar = (x.T * e)[0, 0] - noise  # wᵀx − y = xᵀe − ε
    g = x * residual_scalar

    def expect(expr: sp.Expr) -> sp.Expr:
        return _gaussian_expectation(expr, z, cov_z)

    E_ggT = (g * g.T).applyfunc(expect)
    g_mean = g.applyfunc(expect)
    loss = expect(sp.Rational(1, 2) * residual_scalar**2)
    Sigma1 = (E_ggT - g_mean * g_mean.T).applyfunc(sp.expand)

    quad = (e.T * S * e)[0, 0]
    Se = S * e
    closed_form = Se * Se.T + quad * S + sigma2 * S
    return {
        "E_ggT": E_ggT,
        "g_mean": g_mean,
        "Sigma1": Sigma1,
        "loss": loss,
        "Sigma1_closed_form": closed_form,
        "residual": _simplify_matrix(Sigma1 - closed_form),
        "residual_2L": _simplify_matrix(Sigma1 - (2 * loss * S + Se * Se.T)),
        "S": S,
        "e": e,
        "sigma2": sigma2,
    }


def logistic_gradient_identity(dim: int = 2) -> sp.Matrix:
    r"""Residual of the per-sample gradient–Hessian identity of logistic regression; zero matrix.

    Binary logistic regression with margin :math:`z = w^\top x`, :math:`q = \sigma(z)`, label
    y ∈ {0, 1} (any real y works) and :math:`\ell = -y\log q - (1-y)\log(1-q)`.  Differentiating
    ℓ with respect to w gives :math:`g = (q - y)\,x` and :math:`h = q(1-q)\,x x^\top`, hence

    .. math:: g g^\top = \frac{(q - y)^2}{q(1-q)}\, h

    so per-sample gradient outer products follow h (and, near convergence, h²/‖x‖²), not H.
    Here g and h are obtained by sympy differentiation of ℓ, not typed in.

    Parameters
    ----------
    dim : int
        Dimension of w and x (free real symbols).

    Returns
    -------
    sympy.Matrix
        :math:`g g^\top - \frac{(q-y)^2}{q(1-q)} h`, simplified (zero).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A7, binary logistic regression).
    """
    dim = check_positive_int(dim, "dim")
    g, h, q, y, _, _ = _logistic_gradient_and_hessian(dim)
    residual = g * g.T - ((q - y) ** 2 / (q * (1 - q))) * h
    return residual.applyfunc(sp.simplify)


# ----------------------------------------------------------------------------------------------
# numeric companions
# ----------------------------------------------------------------------------------------------


def _check_linear_regression_input(
    S: Any, e: Any, sigma2: Any
) -> tuple[FloatArray, FloatArray, float]:
    S = check_square(S, "S", symmetric=True)
    check_psd_stack(S[None], "S")
    e = as_float_array(e, "e", ndim=1)
    if e.shape[0] != S.shape[0]:
        raise ValueError(f"e must have shape ({S.shape[0]},) to match S; got {e.shape}")
    sigma2 = check_positive(sigma2, "sigma2", allow_zero=True)
    return S, e, sigma2


def linear_regression_noise_covariance(S: FloatArray, e: FloatArray, sigma2: float) -> FloatArray:
    r"""Per-sample gradient covariance Σ₁ of linear regression with Gaussian inputs.

    .. math:: \Sigma_1 = S e e^\top S + (e^\top S e)\, S + \sigma^2 S
              = 2L\,S + S e e^\top S, \qquad L = \tfrac12(e^\top S e + \sigma^2)

    Parameters
    ----------
    S : (D, D) array
        Input covariance (x ~ N(0, S)); symmetric positive semi-definite. It is also the
        Hessian H of the population loss.
    e : (D,) array
        Error e = w − w* of the current weights.
    sigma2 : float
        Label-noise variance σ² ≥ 0 (y = w*ᵀx + ε, ε ~ N(0, σ²)).

    Returns
    -------
    (D, D) array
        Population per-sample (batch size 1) covariance; the minibatch noise covariance is
        C = Σ₁/B with replacement.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A7); derived in
    :func:`linear_regression_gradient_moments`.
    """
    S, e, sigma2 = _check_linear_regression_input(S, e, sigma2)
    with np.errstate(over="ignore", invalid="ignore"):
        Se = S @ e
        Sigma1 = np.outer(Se, Se) + (float(e @ Se) + sigma2) * S
    return check_finite_result(Sigma1, "S, e and sigma2", "Σ₁")


def linear_regression_gradient_second_moment(
    S: FloatArray, e: FloatArray, sigma2: float
) -> FloatArray:
    r"""Uncentred second moment E[g gᵀ] of the linear-regression per-sample gradient.

    .. math:: \mathbb E[g g^\top] = 2 S e e^\top S + (e^\top S e)\, S + \sigma^2 S,
              \qquad g = x (x^\top e - \varepsilon)

    Parameters
    ----------
    S : (D, D) array
        Input covariance (x ~ N(0, S)); symmetric positive semi-definite.
    e : (D,) array
        Error e = w − w*.
    sigma2 : float
        Label-noise variance σ² ≥ 0.

    Returns
    -------
    (D, D) array
        Population second moment; subtracting ḡḡᵀ = S e eᵀ S gives Σ₁.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A7); L. Isserlis, Biometrika 12 (1918)
    134–139.  Derived in :func:`linear_regression_gradient_moments`.
    """
    S, e, sigma2 = _check_linear_regression_input(S, e, sigma2)
    with np.errstate(over="ignore", invalid="ignore"):
        Se = S @ e
        moment = 2.0 * np.outer(Se, Se) + (float(e @ Se) + sigma2) * S
    return check_finite_result(moment, "S, e and sigma2", "E[g gᵀ]")


def logistic_noise_factor(q: FloatArray | float, y: FloatArray | float) -> FloatArray:
    r"""Factor relating g gᵀ to h for one sample of logistic regression, elementwise.

    .. math:: \frac{(q - y)^2}{q(1-q)}, \qquad g g^\top = \frac{(q-y)^2}{q(1-q)}\, h

    Parameters
    ----------
    q : float or array
        Predicted probability σ(wᵀx), strictly inside (0, 1).
    y : float or array
        Label in [0, 1] (0 or 1 for hard labels; the identity also holds for soft labels);
        broadcast against ``q``.

    Returns
    -------
    float64 array (0-d for scalar input)
        The factor, of the broadcast shape.  For a hard label it is (1 − q)/q (y = 1) or
        q/(1 − q) (y = 0): it vanishes as the sample is fit, where g gᵀ ≈ h²/‖x‖².

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A7); derived in
    :func:`logistic_gradient_identity`.
    """
    q = as_float_array(q, "q")
    y = as_float_array(y, "y")
    if np.any((q <= 0.0) | (q >= 1.0)):
        raise ValueError(
            f"q must lie strictly inside (0, 1); got values in [{q.min():.3g}, {q.max():.3g}]"
        )
    if np.any((y < 0.0) | (y > 1.0)):
        raise ValueError(f"y must lie in [0, 1]; got values in [{y.min():.3g}, {y.max():.3g}]")
    try:
        np.broadcast_shapes(q.shape, y.shape)
    except ValueError as exc:
        raise ValueError(
            f"y must broadcast against q; got shapes y {y.shape} and q {q.shape}"
        ) from exc
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        factor = (q - y) ** 2 / (q * (1.0 - q))
    return np.asarray(check_finite_result(factor, "q", "(q − y)²/(q(1 − q)) (q too close to 0 "
                                          "or 1)"), dtype=np.float64)


__all__ = [
    "commutator_identity",
    "linear_regression_gradient_moments",
    "linear_regression_gradient_second_moment",
    "linear_regression_noise_covariance",
    "logistic_gradient_identity",
    "logistic_noise_factor",
    "ols_exponent_identity",
    "ols_slope",
    "variance_identity",
]

r"""Sympy derivations behind SPEC parts C (power-law escape) and D (epoch-based noise).

Each function derives its result from definitions (a recursion, an expectation, a generator, a
sum), never by typing the answer, and returns the derived expressions together with residuals
against the closed forms of :mod:`sgdnoise.theory._powerlaw_escape` and
:mod:`sgdnoise.theory._epoch_noise` (zero, or one for ratios).  Where sympy cannot close a
symbolic simplification (sums with a symbolic upper limit), the derived expression is returned
and the tests compare it with the numeric closed form at random points.

Conventions are those of the two modules: AR(2) x_{k+1} = a x_k + b x_{k−1} + u_k (heavy ball:
a = 1 + β − ηλ, b = −β, u = −ηξ, Var ξ = C on the minibatch scale); SDE time t = ηk; Itô
calculus; D is the diffusion coefficient of dX = μ dt + √(2D) dW.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from sgdnoise._validate import check_positive_int
from sgdnoise.theory._epoch_noise import (
    _flat_limit_expression,
    correlation_time,
    velocity_variance_iid,
    weight_variance_iid,
)
from sgdnoise.theory._powerlaw_escape import escape_exponent, escape_rate_1d
from sgdnoise.theory._symbolic import linear_regression_gradient_moments

# ----------------------------------------------------------------------------------------------
# part D
# ----------------------------------------------------------------------------------------------


def _generic(expr: sp.Expr) -> sp.Expr:
    """Replace every Piecewise left by ``summation`` with its generic branch.

    Finite geometric sums come back as Piecewise((special, Eq(ratio, 1)), (generic, True)) and
    infinite ones as Piecewise((closed form, |ratio| < 1), (divergent Sum, True)); the branch
    kept is the first whose condition is not an equality (ratio ≠ 1, resp. convergence, which
    hold for 0 ≤ β < 1 and 0 < ηλ < 2).
    """
    return expr.replace(
        lambda e: isinstance(e, sp.Piecewise),
        lambda e: next(branch for branch, cond in e.args if not isinstance(cond, sp.Eq)),
    )


def yule_walker_ar2(a: Any, b: Any, noise: Any) -> dict[str, sp.Expr]:
    r"""Stationary autocovariances γ(0), γ(1), γ(2) of an AR(2), from the Yule–Walker equations.

    For :math:`x_{k+1} = a x_k + b x_{k-1} + u_k` with white u of variance ``noise``, the three
    equations :math:`\gamma(h) = \mathbb E[x_{k+1} x_{k+1-h}]`, h = 0, 1, 2, are built by
    substituting the recursion into the products and replacing
    :math:`\mathbb E[x_i x_j] \to \gamma(|i-j|)`, :math:`\mathbb E[u_k x_j] \to 0` (j ≤ k),
    :math:`\mathbb E[u_k^2] \to` noise; the linear system is then solved:

    .. math:: \gamma(0) = a\gamma(1) + b\gamma(2) + \sigma_u^2,\quad
              \gamma(1) = a\gamma(0) + b\gamma(1),\quad \gamma(2) = a\gamma(1) + b\gamma(0).

    Parameters
    ----------
    a, b : sympy.Expr or number
        AR coefficients (heavy ball: a = 1 + β − ηλ, b = −β).
    noise : sympy.Expr or number
        Variance of u (heavy ball: η²C).

    Returns
    -------
    dict
        ``"gamma0"``, ``"gamma1"``, ``"gamma2"`` (simplified) and ``"equations"``.

    Raises
    ------
    ValueError
        If the equations have no unique solution (numeric a, b with a root of the AR(2) on
        the unit circle, e.g. b = 1 or a + b = 1).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D2); G. U. Yule (1927), G. Walker (1931).
    """
    a, b, noise = sp.sympify(a), sp.sympify(b), sp.sympify(noise)
    x_k, x_km1, x_km2, u_k = sp.symbols("x_k x_km1 x_km2 u_k")
    g0, g1, g2 = sp.symbols("gamma0 gamma1 gamma2")
    lag = {(x_k, x_k): g0, (x_km1, x_km1): g0, (x_km2, x_km2): g0,
           (x_k, x_km1): g1, (x_km1, x_km2): g1, (x_k, x_km2): g2}

    def expect(expr: sp.Expr) -> sp.Expr:
        poly = sp.Poly(sp.expand(expr), x_k, x_km1, x_km2, u_k)
        total = sp.Integer(0)
        variables = (x_k, x_km1, x_km2, u_k)
        for powers, coeff in poly.terms():
            factors = [v for v, p in zip(variables, powers, strict=True) for _ in range(p)]
            if u_k in factors:
                value = noise if factors == [u_k, u_k] else sp.Integer(0)
            else:
                key = tuple(factors)
                value = lag.get(key, lag.get(key[::-1]))
            total += coeff * value
        return total

    x_next = a * x_k + b * x_km1 + u_k
    equations = [
        sp.Eq(g0, expect(x_next * x_next)),
        sp.Eq(g1, expect(x_next * x_k)),
        sp.Eq(g2, expect(x_next * x_km1)),
    ]
    solutions = sp.solve(equations, [g0, g1, g2], dict=True)
    if len(solutions) != 1 or set(solutions[0]) != {g0, g1, g2}:
        raise ValueError(
            f"a and b: the Yule–Walker equations have no unique solution for a = {a}, b = {b} "
            "(an AR(2) with a root on the unit circle has no stationary covariance)")
    solution = solutions[0]
    return {
        "gamma0": sp.factor(sp.simplify(solution[g0])),
        "gamma1": sp.factor(sp.simplify(solution[g1])),
        "gamma2": sp.factor(sp.simplify(solution[g2])),
        "equations": equations,
    }


def stationary_covariance_ar2(a: Any, b: Any, noise: Any) -> sp.Matrix:
    r"""Stationary covariance of the AR(2) state (x_k, x_{k−1}), from :func:`yule_walker_ar2`.

    .. math:: P = \begin{pmatrix} \gamma(0) & \gamma(1) \\ \gamma(1) & \gamma(0) \end{pmatrix},
              \qquad P = A P A^\top + \sigma_u^2 e_1 e_1^\top,\
              A = \begin{pmatrix} a & b \\ 1 & 0 \end{pmatrix}

    Parameters
    ----------
    a, b : sympy.Expr or number
        AR coefficients.
    noise : sympy.Expr or number
        Variance of the innovation u.

    Returns
    -------
    sympy.Matrix
        The 2 × 2 covariance (it also solves the discrete Lyapunov equation above).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D2).
    """
    yw = yule_walker_ar2(a, b, noise)
    return sp.Matrix([[yw["gamma0"], yw["gamma1"]], [yw["gamma1"], yw["gamma0"]]])


def ar2_variance_derivation() -> dict[str, sp.Expr]:
    r"""Heavy-ball weight and velocity variances from Yule–Walker, against the closed forms.

    With a = 1 + β − ηλ, b = −β, Var u = η²C:

    .. math:: \mathrm{Var}\,x = \gamma(0) = \frac{\eta C(1+\beta)}{(1-\beta)\lambda(2(1+\beta)-\eta\lambda)},
              \quad \mathrm{Var}\,v = 2(\gamma(0) - \gamma(1)),
              \quad \tau = \gamma(0)/\mathrm{Var}\,v = \frac{1+\beta}{2\eta\lambda}

    Returns
    -------
    dict
        ``"variance"``, ``"velocity_variance"``, ``"correlation_time"`` (derived) and the
        simplified residuals ``"residual"``, ``"velocity_residual"``,
        ``"correlation_time_residual"`` against :func:`weight_variance_iid`,
        :func:`velocity_variance_iid`, :func:`correlation_time` (all zero); the symbols under
        ``"symbols"``.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claims D2, D4).
    """
    lam, C, eta, beta = sp.symbols("lam C eta beta", positive=True)
    P = stationary_covariance_ar2(1 + beta - eta * lam, -beta, eta**2 * C)
    var_x = P[0, 0]
    var_v = sp.simplify(2 * (P[0, 0] - P[0, 1]))
    tau = sp.simplify(var_x / var_v)
    return {
        "variance": var_x,
        "velocity_variance": var_v,
        "correlation_time": tau,
        "residual": sp.simplify(var_x - weight_variance_iid(lam, C, eta, beta)),
        "velocity_residual": sp.simplify(var_v - velocity_variance_iid(lam, C, eta, beta)),
        "correlation_time_residual": sp.simplify(tau - correlation_time(lam, eta, beta)),
        "symbols": (lam, C, eta, beta),
    }


def momentum_forms_identity(num_steps: int = 5) -> list[sp.Expr]:
    r"""Heavy-ball and PyTorch momentum give the same iterates; both obey the AR(2) recursion.

    Heavy ball: :math:`v_{k+1} = \beta v_k - \eta \hat g_k`, :math:`x_{k+1} = x_k + v_{k+1}`;
    PyTorch: :math:`b_{k+1} = \beta b_k + \hat g_k`, :math:`x_{k+1} = x_k - \eta b_{k+1}`
    (constant η, v₀ = b₀ = 0), with :math:`\hat g_k = \lambda x_k + \xi_k` and free symbols ξ_k.
    The iterates are expanded symbolically and compared; then
    :math:`x_{k+1} - [(1+\beta-\eta\lambda)x_k - \beta x_{k-1} - \eta\xi_k]` is checked for
    k ≥ 1.

    Parameters
    ----------
    num_steps : int
        Number of updates (≥ 2).

    Returns
    -------
    list of sympy.Expr
        The residuals, heavy-ball minus PyTorch for every iterate and the AR(2) residuals for
        both forms; all expand to zero.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D, both momentum forms).
    """
    num_steps = check_positive_int(num_steps, "num_steps", minimum=2)
    lam, eta, beta, x0 = sp.symbols("lam eta beta x0")
    xi = sp.symbols(f"xi_0:{num_steps}")
    x_hb, v = [x0], sp.Integer(0)
    x_pt, buf = [x0], sp.Integer(0)
    for k in range(num_steps):
        v = beta * v - eta * (lam * x_hb[-1] + xi[k])
        x_hb.append(sp.expand(x_hb[-1] + v))
        buf = beta * buf + (lam * x_pt[-1] + xi[k])
        x_pt.append(sp.expand(x_pt[-1] - eta * buf))
    residuals = [sp.expand(p - q) for p, q in zip(x_hb, x_pt, strict=True)]
    for xs in (x_hb, x_pt):
        for k in range(1, num_steps):
            ar2 = (1 + beta - eta * lam) * xs[k] - beta * xs[k - 1] - eta * xi[k]
            residuals.append(sp.expand(xs[k + 1] - ar2))
    return residuals


def epoch_autocorrelation_derivation() -> dict[str, sp.Expr]:
    r"""The phase-averaged epoch autocorrelation and its sum rule, with symbolic M.

    Two updates at lag h (1 ≤ h < M) share an epoch for the phases m = 0 … M − 1 − h of the
    first one, i.e. with probability :math:`\frac1M\sum_{m=0}^{M-1-h} 1 = (M-h)/M`; their
    covariance is then −C/(M − 1) (M exchangeable noises with zero sum).  Hence
    :math:`R(h) = -C(M-h)/(M(M-1))` and

    .. math:: \sum_{h=-(M-1)}^{M-1} R(h) = C + 2\sum_{h=1}^{M-1} R(h) = 0 .

    The pair covariance itself is derived from Var(Σ_m ξ_m) = MC + M(M−1)ρ = 0.

    Returns
    -------
    dict
        ``"pair_covariance"`` (−C/(M−1)), ``"same_epoch_probability"`` ((M−h)/M), ``"R"``
        (R(h) for 1 ≤ h < M), ``"sum_rule"`` (the simplified total: 0) and the symbols.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D1).
    """
    M, h, m = sp.symbols("M h m", positive=True, integer=True)
    C, rho = sp.symbols("C rho")
    pair = sp.solve(sp.Eq(M * C + M * (M - 1) * rho, 0), rho)[0]
    probability = sp.simplify(sp.summation(1, (m, 0, M - 1 - h)) / M)
    R = sp.simplify(pair * probability)
    total = sp.simplify(C + 2 * sp.summation(R, (h, 1, M - 1)))
    return {
        "pair_covariance": pair,
        "same_epoch_probability": probability,
        "R": R,
        "sum_rule": total,
        "symbols": (M, h, C),
    }


def epoch_spectrum_derivation() -> dict[str, sp.Expr]:
    r"""Fourier sum of the epoch autocorrelation, derived by summing the series.

    .. math::
        S(\omega) = C - \frac{C}{M(M-1)} \sum_{h=1}^{M-1} (M-h)\,(z^h + z^{-h}),\qquad
        z = e^{i\omega}

    with the finite sums done by sympy for symbolic M; compare with the closed form
    :math:`\frac{CM}{M-1}\big[1 - \sin^2(M\omega/2)/(M^2\sin^2(\omega/2))\big]` of
    ``epoch_noise_spectrum`` (also returned, as ``"closed_form"``).

    Returns
    -------
    dict
        ``"derived"`` and ``"closed_form"`` (expressions in ω, M, C) and the symbols.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D1, spectrum with S(0) = 0).
    """
    omega = sp.Symbol("omega", real=True)
    M, h = sp.symbols("M h", positive=True, integer=True)
    C = sp.Symbol("C", positive=True)
    z = sp.Symbol("z")
    partial = _generic(sp.summation((M - h) * z**h, (h, 1, M - 1)))
    series = partial.subs(z, sp.exp(sp.I * omega)) + partial.subs(z, sp.exp(-sp.I * omega))
    derived = C - C / (M * (M - 1)) * series
    closed = C * M / (M - 1) * (1 - sp.sin(M * omega / 2) ** 2 / (M**2 * sp.sin(omega / 2) ** 2))
    return {"derived": derived, "closed_form": closed, "symbols": (omega, M, C)}


def _impulse_response_at_flat_limit() -> tuple[sp.Expr, sp.Symbol, sp.Symbol]:
    """G(j) at λ = 0 by solving G(j) = (1+β)G(j−1) − βG(j−2), G(0) = 1, G(1) = 1 + β."""
    beta = sp.Symbol("beta", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    G = sp.Function("G")
    sol = sp.rsolve(G(j) - (1 + beta) * G(j - 1) + beta * G(j - 2), G(j),
                    {G(0): 1, G(1): 1 + beta})
    return sp.simplify(sol), beta, j


def epoch_flat_limit_derivation() -> dict[str, sp.Expr]:
    r"""Flat-limit (λ → 0) phase-averaged epoch variance, derived from the impulse response.

    Steps: G₀(j) = (1 − β^{j+1})/(1 − β) solves the λ = 0 recursion (``rsolve``);
    :math:`\delta_0(h) = \gamma(0) - \gamma(h)
    = \tfrac12\big[\sum_{j\ge0}(G(j+h) - G(j))^2 + \sum_{j<h} G(j)^2\big]` (an identity for
    λ > 0 whose right side has a finite limit, taken term by term);
    :math:`V_0/(\eta^2 C) = \frac{2}{M(M-1)}\sum_{h=1}^{M-1}(M - h)\,\delta_0(h)`.

    Returns
    -------
    dict
        ``"impulse_response"`` (G₀(j)), ``"delta"`` (δ₀(h)), ``"variance"`` (V₀/(η²C), symbolic
        M), ``"closed_form"`` (the expression of ``weight_variance_epoch_flat_limit`` with
        η = C = 1), ``"residual"`` (their simplified difference: 0) and the symbols.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3, flat limit).
    """
    G0, beta, j = _impulse_response_at_flat_limit()
    h = sp.Symbol("h", integer=True, positive=True)
    M = sp.Symbol("M", integer=True, positive=True)
    tail = _generic(sp.summation(sp.expand((G0.subs(j, j + h) - G0) ** 2), (j, 0, sp.oo)))
    head = _generic(sp.summation(sp.expand(G0**2), (j, 0, h - 1)))
    delta = sp.simplify(sp.powsimp(sp.expand((tail + head) / 2)))
    variance = _generic(sp.summation(sp.expand((M - h) * delta), (h, 1, M - 1)))
    variance = variance * 2 / (M * (M - 1))
    closed = _flat_limit_expression(sp.Integer(1), sp.Integer(1), beta, M)
    residual = sp.simplify(sp.factor(sp.together(sp.expand(sp.powsimp(variance - closed)))))
    return {
        "impulse_response": G0,
        "delta": delta,
        "variance": variance,
        "closed_form": closed,
        "residual": residual,
        "symbols": (beta, M, h, j),
    }


def epoch_variance_sgd_derivation() -> dict[str, sp.Expr]:
    r"""Phase-averaged epoch weight variance for plain SGD (β = 0), in closed form in M.

    With a = 1 − ηλ: G(j) = aʲ (``rsolve``), γ(h) = Σ_j G(j)G(j+h) = aʰ/(1 − a²) (|a| < 1), and

    .. math:: \mathrm{Var}\,x = \eta^2\Big[C\gamma(0) - \frac{2C}{M(M-1)}
              \sum_{h=1}^{M-1}(M-h)\,\gamma(h)\Big]
              = \frac{2\eta^2 C}{M(M-1)(1-a^2)}\Big[\frac{M(M-1)}{2}
              - \frac{a\,(M(1-a) - 1 + a^M)}{(1-a)^2}\Big].

    Returns
    -------
    dict
        ``"variance"`` (expression in λ, C, η, M), ``"gamma"`` (γ(h)) and the symbols.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3, β = 0).
    """
    lam, C, eta = sp.symbols("lam C eta", positive=True)
    M = sp.Symbol("M", integer=True, positive=True)
    h, j = sp.symbols("h j", integer=True, nonnegative=True)
    a = sp.Symbol("a", positive=True)
    G = sp.Function("G")
    Gj = sp.rsolve(G(j) - a * G(j - 1), G(j), {G(0): 1})
    gamma = sp.simplify(_generic(sp.summation(sp.expand(Gj * Gj.subs(j, j + h)), (j, 0, sp.oo))))
    R_sum = _generic(sp.summation(sp.expand((M - h) * gamma), (h, 1, M - 1)))
    variance = eta**2 * (C * gamma.subs(h, 0) - 2 * C / (M * (M - 1)) * R_sum)
    return {"variance": variance.subs(a, 1 - eta * lam), "gamma": gamma,
            "symbols": (lam, C, eta, M)}


# ----------------------------------------------------------------------------------------------
# part C
# ----------------------------------------------------------------------------------------------


def ito_time_change() -> dict[str, sp.Expr]:
    r"""The random time change dτ = L dt and the stationary law of the SGD SDE, by Itô's rule.

    SDE (1-D, Itô, t = ηk): :math:`d\theta = -L'\,dt + \sqrt{2TL}\,dW_t`, T = ηh*/B.

    * Exact: with dτ = L(θ_t) dt the time-changed process has generator
      :math:`\mathcal L_\tau = \mathcal L_t / L`; for any f,
      :math:`(-L'f' + TLf'')/L = -U'f' + Tf''`, U = log L: Langevin dynamics on U at constant
      temperature T (``"generator_residual"``).  The noise becomes additive because the
      quadratic variation 2TL dt equals 2T dτ (``"quadratic_variation_residual"``); no Itô
      correction arises from the change of time itself.
    * Itô's rule for U = log L in τ-time gives drift −U′² + TU″ and diffusion 2TU′², those of
      Langevin dynamics on U (``"ito_drift_residual"``, ``"ito_diffusion_residual"``); the
      term TU″ is the Itô correction.
    * Stationary laws: q_τ ∝ e^{−U/T} = L^{−1/T} has zero flux in τ-time; the t-time density is
      p_t ∝ q_τ/L = L^{−1−1/T} (time spent in dθ scales as dt = dτ/L) and has zero flux for
      the t-SDE (``"flux_tau"``, ``"flux_t"``).  The same p_t is also stationary for
      D = TL + K L^{1+1/T}, any K (``"flux_family"``): with drift −L′ these are all the
      diffusions with law L^{−1−1/T}, and D ∝ L is the one with K = 0.  The exponent read off the speed density is
      −(1 + 1/T) in the Itô reading (``"exponent_ito"``) and −(½ + 1/T) in the Stratonovich
      reading, whose extra drift ½σσ′ = TL′/2 is exactly the Itô–Stratonovich correction
      (``"exponent_stratonovich"``).
    * Approximations (not derived here): Σ ≈ (2L/B)H* (decoupling, frozen Hessian), the SDE
      limit of discrete SGD (η → 0), isotropic noise on the outlier subspace in n-D, and
      κ_t ≈ L(θ*)κ_τ (leading order in T) when rates are converted back.

    Returns
    -------
    dict
        Residuals (simplified; zero), the two exponents, and the symbols/functions used.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec part C: random time change, claim C2).
    """
    theta = sp.Symbol("theta", real=True)
    T = sp.Symbol("T", positive=True)
    L = sp.Function("L", positive=True)(theta)
    f = sp.Function("f")(theta)
    U = sp.log(L)
    Lp = sp.diff(L, theta)
    drift_t = -Lp
    sigma_t = sp.sqrt(2 * T * L)
    D_t = sigma_t**2 / 2

    def generator(func: sp.Expr, drift: sp.Expr, D: sp.Expr) -> sp.Expr:
        return drift * sp.diff(func, theta) + D * sp.diff(func, theta, 2)

    generator_residual = sp.simplify(generator(f, drift_t, D_t) / L
                                     - generator(f, -sp.diff(U, theta), T))
    quadratic_variation = sp.simplify(sigma_t**2 / L - 2 * T)
    # Itô's rule for U in t-time, then divided by dτ/dt = L
    ito_drift_t = sp.diff(U, theta) * drift_t + sp.Rational(1, 2) * sp.diff(U, theta, 2) * sigma_t**2
    ito_diff_t = (sp.diff(U, theta) * sigma_t) ** 2
    Up = sp.diff(U, theta)
    langevin_drift = -Up**2 + T * sp.diff(U, theta, 2)
    langevin_diff = 2 * T * Up**2
    ito_drift_residual = sp.simplify(ito_drift_t / L - langevin_drift)
    ito_diff_residual = sp.simplify(ito_diff_t / L - langevin_diff)
    # stationary densities and fluxes
    q_tau = sp.exp(-U / T)
    flux_tau = sp.simplify(-Up * q_tau - T * sp.diff(q_tau, theta))
    p_t = q_tau / L
    flux_t = sp.simplify(drift_t * p_t - sp.diff(D_t * p_t, theta))
    # the whole family of diffusions with the same power law: D = T L + K L^{1+1/T}
    K = sp.Symbol("K", nonnegative=True)
    D_family = T * L + K * L ** (1 + 1 / T)
    flux_family = sp.simplify(drift_t * p_t - sp.diff(D_family * p_t, theta))
    # exponent from the speed density p ∝ exp(∫μ/D)/D: d log p/dθ = μ/D − D'/D
    log_p_slope_ito = drift_t / D_t - sp.diff(D_t, theta) / D_t
    exponent_ito = sp.simplify(log_p_slope_ito / (Lp / L))
    strat_drift = drift_t + sp.Rational(1, 2) * sigma_t * sp.diff(sigma_t, theta)
    log_p_slope_strat = strat_drift / D_t - sp.diff(D_t, theta) / D_t
    exponent_strat = sp.simplify(log_p_slope_strat / (Lp / L))
    return {
        "generator_residual": generator_residual,
        "quadratic_variation_residual": quadratic_variation,
        "ito_drift_residual": ito_drift_residual,
        "ito_diffusion_residual": ito_diff_residual,
        "flux_tau": flux_tau,
        "flux_t": flux_t,
        "flux_family": flux_family,
        "density_t": sp.simplify(p_t),
        "exponent_ito": exponent_ito,
        "exponent_stratonovich": exponent_strat,
        "symbols": (theta, T, L),
    }


def _log_loss_curvature_at_critical_point(h: sp.Expr, L_value: sp.Expr) -> sp.Expr:
    """U″ = (log L)″ = L″/L − L′²/L² evaluated where L′ = 0, L″ = h, L = L_value."""
    theta = sp.Symbol("theta")
    L = sp.Function("L")(theta)
    U2 = sp.diff(sp.log(L), theta, 2)
    d1, d2 = sp.diff(L, theta), sp.diff(L, theta, 2)
    return sp.simplify(U2.subs(d2, h).subs(d1, 0).subs(L, L_value))


def escape_rate_time_change_1d() -> dict[str, sp.Expr]:
    r"""1-D power-law escape rate from Kramers' law in τ-time, against ``escape_rate_1d``.

    In τ-time the dynamics is Langevin on U = log L at temperature T = ηh*/B; Kramers:
    :math:`\kappa_\tau = \frac{\sqrt{U''(\theta^*)|U''(\theta^s)|}}{2\pi} e^{-\Delta U/T}` with
    U″ = h/L at critical points (derived from U = log L) and ΔU = log c; back in t-time
    :math:`\kappa_t = L(\theta^*)\kappa_\tau`:

    .. math:: \kappa_t = \frac{\sqrt{h^*|h^s|}}{2\pi}\, c^{-(1/2 + B/(\eta h^*))}.

    Returns
    -------
    dict
        ``"rate"`` (derived κ_t), ``"ratio"`` (κ_t / escape_rate_1d, simplified: 1) and the
        symbols (h*, |h^s|, L*, L^s, B, η).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C3); H. A. Kramers, Physica 7 (1940).
    """
    h_star, k_s, L_min, L_s, B, eta = sp.symbols("h_star k_s L_min L_s B eta", positive=True)
    T = eta * h_star / B
    U2_min = _log_loss_curvature_at_critical_point(h_star, L_min)
    U2_s = _log_loss_curvature_at_critical_point(-k_s, L_s)
    barrier = sp.log(L_s) - sp.log(L_min)
    kappa_tau = sp.sqrt(U2_min * sp.Abs(U2_s)) / (2 * sp.pi) * sp.exp(-barrier / T)
    kappa_t = L_min * kappa_tau
    closed = escape_rate_1d(h_star, -k_s, L_s / L_min, B=B, eta=eta)
    ratio = sp.simplify(sp.powsimp(sp.expand_power_base(kappa_t / closed, force=True), force=True))
    return {"rate": kappa_t, "ratio": ratio, "symbols": (h_star, k_s, L_min, L_s, B, eta)}


def escape_rate_time_change(n: int = 2) -> dict[str, Any]:
    r"""n-D power-law escape rate from Langer's formula in τ-time (diagonal Hessians).

    Outlier subspace of dimension n with isotropic noise 2ηLh*I/B; in τ-time Langevin on
    U = log L at T = ηh*/B.  At critical points ∇²U = H/L, so with Hessian eigenvalues
    h₁ … h_n at θ* and −k₁, s₂ … s_n at θ^s (escape direction first):

    .. math:: \kappa_\tau = \frac{k_1/L^s}{2\pi}
              \sqrt{\frac{\prod_i h_i / (L^*)^n}{k_1 \prod_{j\ge2} s_j/(L^s)^n}}\, c^{-1/T},
              \qquad \kappa_t = L^*\kappa_\tau
              = \frac{k_1}{2\pi}\sqrt{\frac{\det\hat H(\theta^*)}{|\det\hat H(\theta^s)|}}
                c^{-(B/(\eta h^*) + 1 - n/2)} .

    Parameters
    ----------
    n : int
        Dimension of the outlier subspace (≥ 1).

    Returns
    -------
    dict
        ``"rate"`` (derived κ_t), ``"ratio"`` (κ_t over the closed form built from
        ``escape_exponent``: 1), ``"hess_min"`` / ``"hess_saddle"`` (the eigenvalue symbols) and
        the scalar symbols (h*, L*, L^s, B, η).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claims C3, C4); J. S. Langer, Ann. Phys.
    54 (1969) 258.
    """
    n = check_positive_int(n, "n")
    h_star, L_min, L_s, B, eta = sp.symbols("h_star L_min L_s B eta", positive=True)
    h = sp.symbols(f"h_1:{n + 1}", positive=True)
    k1 = sp.Symbol("k_1", positive=True)
    s = sp.symbols(f"s_2:{n + 1}", positive=True)
    T = eta * h_star / B
    U2_min = [_log_loss_curvature_at_critical_point(h_i, L_min) for h_i in h]
    U2_s = [_log_loss_curvature_at_critical_point(-k1, L_s)]
    U2_s += [_log_loss_curvature_at_critical_point(s_j, L_s) for s_j in s]
    det_min = sp.Mul(*U2_min)
    det_s = sp.Mul(*U2_s)
    unstable = sp.Abs(U2_s[0])
    c = L_s / L_min
    kappa_tau = unstable / (2 * sp.pi) * sp.sqrt(det_min / sp.Abs(det_s)) * sp.exp(
        -sp.log(c) / T)
    kappa_t = L_min * kappa_tau
    prefactor = k1 / (2 * sp.pi) * sp.sqrt(sp.Mul(*h) / (k1 * sp.Mul(*s)))
    closed = prefactor * c ** (-escape_exponent(B=B, eta=eta, h_star=h_star, n=n))
    ratio = sp.simplify(sp.powsimp(sp.expand_power_base(kappa_t / closed, force=True), force=True))
    return {"rate": kappa_t, "ratio": ratio, "hess_min": h, "hess_saddle": (-k1, *s),
            "symbols": (h_star, L_min, L_s, B, eta)}


def noise_trace_identity(dim: int = 2) -> dict[str, sp.Expr]:
    r"""Trace of the linear-regression noise covariance: exact form and decoupling gap.

    From Isserlis' theorem (``_symbolic.linear_regression_gradient_moments``: x ~ N(0, S),
    y = w*ᵀx + ε, ε ~ N(0, σ²)):

    .. math:: \operatorname{Tr}\Sigma_1 = 2L\operatorname{Tr}S + \|S e\|^2,\qquad
              \text{1-D: } \Sigma_1 = 4Lh - h\sigma^2

    Parameters
    ----------
    dim : int
        Input dimension D.

    Returns
    -------
    dict
        ``"trace_residual"`` (Tr Σ₁ − (2L Tr S + ‖Se‖²): 0), ``"gap"`` (Tr Σ₁ − 2L Tr S, derived),
        and for D = 1 ``"one_dim_residual"`` (Σ₁ − (4Lh − hσ²): 0).

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C1); L. Isserlis, Biometrika 12
    (1918) 134–139.
    """
    dim = check_positive_int(dim, "dim")
    moments = linear_regression_gradient_moments(dim)
    S, e, loss = moments["S"], moments["e"], moments["loss"]
    trace = sp.expand(moments["Sigma1"].trace())
    Se = S * e
    out = {
        "trace_residual": sp.simplify(trace - (2 * loss * S.trace() + (Se.T * Se)[0, 0])),
        "gap": sp.simplify(trace - 2 * loss * S.trace()),
    }
    if dim == 1:
        h, sigma2 = S[0, 0], moments["sigma2"]
        out["one_dim_residual"] = sp.simplify(moments["Sigma1"][0, 0] - (4 * loss * h - h * sigma2))
    return out


__all__ = [
    "ar2_variance_derivation",
    "epoch_autocorrelation_derivation",
    "epoch_flat_limit_derivation",
    "epoch_spectrum_derivation",
    "epoch_variance_sgd_derivation",
    "escape_rate_time_change",
    "escape_rate_time_change_1d",
    "ito_time_change",
    "momentum_forms_identity",
    "noise_trace_identity",
    "stationary_covariance_ar2",
    "yule_walker_ar2",
]

r"""Sympy derivations of the closed forms of spec part B (claims B1, B2).

Each function builds the objects from free symbols and *derives* the quantity (by integrating,
summing a series, differentiating or expanding a Taylor series), never by typing the result;
functions named ``*_identity`` return the difference between a derivation and the closed form
used in :mod:`sgdnoise.theory._anisotropic`, which simplifies to zero.

Conventions
-----------
* Diagonal derivations work in H's eigenbasis: H = diag(λ_0, …, λ_{D−1}) (symbols ``lam_i``,
  positive), Σ or S a symmetric matrix of free real symbols (``Sigma_i_j``, ``S_i_j``).  Any
  symmetric H is orthogonally diagonalisable and both the OU integral and the geometric sum are
  equivariant under θ → Qθ, so this is no loss of generality; the ``*_identity`` functions check
  the basis-free equations (Lyapunov ODE, one-step recursion) for a general symmetric 2 × 2 H.
* A general 2 × 2 rotation is parametrised rationally (Cayley transform)
  R(τ) = [[1 − τ², −2τ], [2τ, 1 − τ²]]/(1 + τ²), which reaches every rotation but the half
  turn (equivalent to the identity for H = RΛRᵀ), so residuals are rational functions and
  vanish exactly.
* Continuous time: dθ = −Hθ dt + Σ^{1/2} dW from θ(0) = 0; discrete time:
  θ ← (I − ηH)θ + ε, ε ~ N(0, S) (S = η²Σ for gradient noise Σ).

References
----------
Z. Zhu, J. Wu, B. Yu, L. Wu, J. Ma, ICML 2019, arXiv:1803.00195 (spec claims B1, B2).
"""

from __future__ import annotations

import sympy as sp

from sgdnoise._validate import check_positive_int
from sgdnoise.theory._symbolic import _simplify_matrix, _symmetric_symbol_matrix

# ----------------------------------------------------------------------------------------------
# private helpers
# ----------------------------------------------------------------------------------------------


def _eigenvalue_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"lam_{i}", positive=True) for i in range(dim))


def _rational_residual(expr: sp.Expr) -> sp.Expr:
    """A rational expression brought over one denominator with its numerator expanded.

    The result is 0 exactly when ``expr`` vanishes identically as a rational function (much
    faster than ``simplify`` on the nested fractions of a rotated basis).
    """
    numerator, denominator = sp.fraction(sp.together(expr))
    numerator = sp.expand(numerator)
    return sp.Integer(0) if numerator == 0 else numerator / denominator


def _cayley_rotation(tau: sp.Symbol) -> sp.Matrix:
    """The 2 × 2 rotation R(τ) = (I − A)(I + A)⁻¹, A = [[0, τ], [−τ, 0]], with rational entries."""
    return sp.Matrix([[1 - tau**2, -2 * tau], [2 * tau, 1 - tau**2]]) / (1 + tau**2)


def _ou_integral(dim: int) -> tuple[sp.Matrix, sp.Matrix, tuple[sp.Symbol, ...], sp.Symbol]:
    """∫₀ᵗ e^{−Hs} Σ e^{−Hs} ds for H = diag(λ), by sympy's matrix exponential and integration."""
    lam = _eigenvalue_symbols(dim)
    t, s = sp.symbols("t s", positive=True)
    Sigma = _symmetric_symbol_matrix("Sigma", dim)
    propagator = (-sp.diag(*lam) * s).exp()
    integrand = propagator * Sigma * propagator
    Cov = integrand.applyfunc(lambda entry: sp.integrate(entry, (s, 0, t)))
    return Cov, Sigma, lam, t


# ----------------------------------------------------------------------------------------------
# continuous time
# ----------------------------------------------------------------------------------------------


def ou_covariance_symbolic(dim: int = 2) -> dict[str, sp.Basic]:
    r"""Derive the Ornstein–Uhlenbeck covariance Cov_t = ∫₀ᵗ e^{−Hs}Σe^{−Hs} ds in H's eigenbasis.

    .. math::
        (\mathrm{Cov}_t)_{ij} = \Sigma_{ij}\int_0^t e^{-(\lambda_i+\lambda_j)s}\,ds
        = \Sigma_{ij}\,\frac{1 - e^{-(\lambda_i+\lambda_j)t}}{\lambda_i+\lambda_j}
        \quad(= t\,\Sigma_{ij} \text{ if } \lambda_i+\lambda_j = 0)

    e^{−Hs} comes from sympy's matrix exponential of the diagonal −Hs and each entry is
    integrated by sympy; the scalar kernel ∫₀ᵗ e^{−cs} ds is also integrated for a real c of
    either sign, which gives both branches of the closed form.

    Parameters
    ----------
    dim : int
        Dimension D of H = diag(lam_0, …) (positive symbols) and of the symmetric Σ.

    Returns
    -------
    dict
        ``"integral"`` (derived D × D matrix), ``"closed_form"``, ``"residual"`` (their
        simplified difference: zero), ``"kernel"`` (∫₀ᵗ e^{−cs} ds for real c, a ``Piecewise``),
        ``"c"``, ``"lam"``, ``"Sigma"``, ``"t"``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, continuous time); numeric
    form :func:`sgdnoise.theory.ou_covariance`.
    """
    dim = check_positive_int(dim, "dim")
    Cov, Sigma, lam, t = _ou_integral(dim)
    closed = sp.Matrix(dim, dim, lambda i, j: Sigma[i, j]
                       * (1 - sp.exp(-(lam[i] + lam[j]) * t)) / (lam[i] + lam[j]))
    c = sp.Symbol("c", real=True)
    s = sp.Symbol("s", positive=True)
    kernel = sp.integrate(sp.exp(-c * s), (s, 0, t))
    return {
        "integral": Cov,
        "closed_form": closed,
        "residual": _simplify_matrix(Cov - closed),
        "kernel": kernel,
        "c": c,
        "lam": lam,
        "Sigma": Sigma,
        "t": t,
    }


def ou_lyapunov_identity() -> dict[str, sp.Matrix]:
    r"""Residuals showing that the eigenbasis closed form solves the OU covariance equation.

    For a general symmetric 2 × 2 H = RΛRᵀ (R the Cayley rotation R(τ), Λ = diag(λ₁, λ₂) of
    either sign) and Σ = RΣ̃Rᵀ with Σ̃ symmetric and arbitrary, the closed form
    C(t) = R[Σ̃_ij (1 − e^{−(λ_i+λ_j)t})/(λ_i+λ_j)]Rᵀ satisfies

    .. math:: \frac{dC}{dt} = \Sigma - HC - CH, \qquad C(0) = 0,

    the (basis-free) moment equation of dθ = −Hθ dt + Σ^{1/2}dW, whose unique solution is
    ∫₀ᵗ e^{−Hs}Σe^{−Hs} ds.  After differentiating, each exponential e^{−(λ_i+λ_j)t} is replaced
    by a free symbol, so the residual is a rational function that vanishes identically.

    Returns
    -------
    dict
        ``"ode_residual"`` and ``"initial_value"`` (2 × 2 zero matrices), ``"H"``, ``"Sigma"``,
        ``"closed_form"``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, Cov_t); numeric form
    :func:`sgdnoise.theory.ou_covariance`.
    """
    tau = sp.Symbol("tau", real=True)
    lam = sp.symbols("lambda_1 lambda_2", real=True)
    t = sp.Symbol("t", nonnegative=True)
    R = _cayley_rotation(tau)
    H = R * sp.diag(*lam) * R.T
    Sigma_eig = _symmetric_symbol_matrix("Sigma", 2)
    Sigma = R * Sigma_eig * R.T
    F = sp.Matrix(2, 2, lambda i, j: (1 - sp.exp(-(lam[i] + lam[j]) * t)) / (lam[i] + lam[j]))
    C = R * Sigma_eig.multiply_elementwise(F) * R.T
    decay = {sp.exp(-(lam[i] + lam[j]) * t): sp.Symbol(f"E_{i}_{j}")
             for i in range(2) for j in range(i, 2)}
    ode = (C.diff(t) - (Sigma - H * C - C * H)).subs(decay)
    return {
        "ode_residual": ode.applyfunc(_rational_residual),
        "initial_value": C.subs(t, 0).applyfunc(_rational_residual),
        "H": H,
        "Sigma": Sigma,
        "closed_form": C,
    }


def ou_loss_increase_symbolic(dim: int = 2) -> sp.Expr:
    r"""Derive E[L_t − L*] = ½ Tr(H Cov_t) of the OU process from the minimum, H = diag(λ).

    .. math:: \tfrac12\mathrm{Tr}(H\,\mathrm{Cov}_t)
              = \tfrac14\sum_i \Sigma_{ii}\,(1 - e^{-2\lambda_i t})
              = \tfrac14\mathrm{Tr}\bigl((I - e^{-2Ht})\Sigma\bigr)

    Cov_t is the integral derived in :func:`ou_covariance_symbolic` (not the closed form).

    Parameters
    ----------
    dim : int
        Dimension D.

    Returns
    -------
    sympy.Expr
        In the symbols ``lam_i`` (positive), ``Sigma_i_i`` (real) and ``t`` (positive).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1); numeric form
    :func:`sgdnoise.theory.ou_expected_loss_increase`.
    """
    dim = check_positive_int(dim, "dim")
    Cov, _, lam, _ = _ou_integral(dim)
    return sp.simplify(sp.Rational(1, 2) * (sp.diag(*lam) * Cov).trace())


def ou_loss_increase_series(dim: int = 2, order: int = 3) -> sp.Expr:
    r"""Taylor polynomial in t of the derived OU loss increase (the O(t^order) term dropped).

    .. math:: \tfrac12\mathrm{Tr}(H\,\mathrm{Cov}_t) = \frac t2\mathrm{Tr}(H\Sigma)
              - \frac{t^2}{2}\mathrm{Tr}(H^2\Sigma) + \frac{t^3}{3}\mathrm{Tr}(H^3\Sigma) - \dots

    Parameters
    ----------
    dim : int
        Dimension D.
    order : int
        Number of Taylor terms kept, counting the vanishing constant (≥ 2): ``order=3`` keeps
        t and t².

    Returns
    -------
    sympy.Expr
        A polynomial in ``t``, expanded.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, "≈ (t/2) Tr(HΣ) for small
    t"); numeric form :func:`sgdnoise.theory.ou_loss_increase_small_t`.
    """
    dim = check_positive_int(dim, "dim")
    order = check_positive_int(order, "order", minimum=2)
    loss = ou_loss_increase_symbolic(dim)
    t = sp.Symbol("t", positive=True)
    return sp.expand(sp.series(loss, t, 0, order).removeO())


# ----------------------------------------------------------------------------------------------
# discrete time
# ----------------------------------------------------------------------------------------------


def _discrete_sum(dim: int) -> tuple[sp.Matrix, sp.Matrix, tuple[sp.Symbol, ...], sp.Symbol,
                                     sp.Symbol]:
    """Σ_{j<k} (I − ηH)^j S (I − ηH)^j for H = diag(λ), summed by sympy."""
    lam = _eigenvalue_symbols(dim)
    eta = sp.Symbol("eta", positive=True)
    k = sp.Symbol("k", integer=True, nonnegative=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    S = _symmetric_symbol_matrix("S", dim)
    A_j = sp.diag(*[(1 - eta * l) ** j for l in lam])
    term = A_j * S * A_j
    return term.applyfunc(lambda entry: sp.summation(entry, (j, 0, k - 1))), S, lam, eta, k


def discrete_covariance_symbolic(dim: int = 2) -> dict[str, sp.Basic]:
    r"""Derive Cov_k = Σ_{j<k} (I − ηH)^j S (I − ηH)^j in H's eigenbasis by summing the series.

    .. math:: (\mathrm{Cov}_k)_{ij} = S_{ij}\sum_{m=0}^{k-1}(\rho_i\rho_j)^m
              = S_{ij}\begin{cases} k & \rho_i\rho_j = 1\\
                \dfrac{1 - (\rho_i\rho_j)^k}{1 - \rho_i\rho_j} & \text{otherwise}\end{cases},
              \qquad \rho_i = 1 - \eta\lambda_i

    The geometric sum over a symbolic step count k is done by ``sympy.summation``.

    Parameters
    ----------
    dim : int
        Dimension D of H = diag(lam_0, …) and S.

    Returns
    -------
    dict
        ``"sum"`` (derived, entries are ``Piecewise``), ``"closed_form"``, ``"residual"`` (zero
        matrix), ``"lam"``, ``"S"``, ``"eta"``, ``"k"``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, discrete time); numeric
    form :func:`sgdnoise.theory.discrete_covariance`.
    """
    dim = check_positive_int(dim, "dim")
    Cov, S, lam, eta, k = _discrete_sum(dim)

    def closed_entry(i: int, j: int) -> sp.Expr:
        q = (1 - eta * lam[i]) * (1 - eta * lam[j])
        return S[i, j] * sp.Piecewise((k, sp.Eq(q, 1)), ((1 - q**k) / (1 - q), True))

    closed = sp.Matrix(dim, dim, closed_entry)
    residual = (Cov - closed).applyfunc(lambda e: sp.simplify(sp.piecewise_fold(e)))
    return {"sum": Cov, "closed_form": closed, "residual": residual, "lam": lam, "S": S,
            "eta": eta, "k": k}


def discrete_loss_increase_symbolic(dim: int = 2) -> sp.Expr:
    r"""Derive E[L_k − L*] = ½ Tr(H Cov_k) of the discrete iteration from the minimum, H = diag(λ).

    .. math:: \tfrac12\mathrm{Tr}(H\,\mathrm{Cov}_k)
              = \tfrac12\sum_i \lambda_i S_{ii}\sum_{m<k} (1 - \eta\lambda_i)^{2m}

    with the sum over m done by ``sympy.summation`` (see :func:`discrete_covariance_symbolic`).

    Parameters
    ----------
    dim : int
        Dimension D.

    Returns
    -------
    sympy.Expr
        In ``lam_i`` (positive), ``S_i_i`` (real), ``eta`` (positive) and ``k`` (non-negative
        integer); contains ``Piecewise`` for the ρ_i² = 1 branch.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, E ΔL_k = ½ Tr(H Cov_k));
    numeric form :func:`sgdnoise.theory.discrete_expected_loss_increase`.
    """
    dim = check_positive_int(dim, "dim")
    Cov, _, lam, _, _ = _discrete_sum(dim)
    return sp.Rational(1, 2) * (sp.diag(*lam) * Cov).trace()


def discrete_lyapunov_identity() -> dict[str, sp.Matrix]:
    r"""Residuals showing that the eigenbasis closed forms solve the discrete moment equations.

    For a general symmetric 2 × 2 H = RΛRᵀ (Cayley rotation R(τ), Λ = diag(λ₁, λ₂) of either
    sign), A = I − ηH, S = RS̃Rᵀ with S̃ arbitrary symmetric, ρ_i = 1 − ηλ_i and
    G_ij(k) = (1 − (ρ_iρ_j)^k)/(1 − ρ_iρ_j):

    .. math::
        \mathrm{Cov}_{k+1} = A\,\mathrm{Cov}_k A + S,\quad \mathrm{Cov}_0 = 0
        \quad\text{for}\quad \mathrm{Cov}_k = R\,[\tilde S_{ij} G_{ij}(k)]\,R^\top,

    and P = R[S̃_ij/(1 − ρ_iρ_j)]Rᵀ solves the discrete Lyapunov equation P = APA + S.  The
    powers (ρ_iρ_j)^k are free symbols P_ij, and (ρ_iρ_j)^{k+1} = ρ_iρ_j P_ij, so every residual
    is a rational function that vanishes identically.

    Returns
    -------
    dict
        ``"recursion_residual"``, ``"initial_value"``, ``"stationary_residual"`` (2 × 2 zero
        matrices), ``"H"``, ``"S"``, ``"eta"``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B1, discrete time); numeric
    forms :func:`sgdnoise.theory.discrete_covariance` and
    :func:`sgdnoise.theory.stationary_covariance_discrete`.
    """
    tau = sp.Symbol("tau", real=True)
    lam = sp.symbols("lambda_1 lambda_2", real=True)
    eta = sp.Symbol("eta", positive=True)
    R = _cayley_rotation(tau)
    H = R * sp.diag(*lam) * R.T
    S_eig = _symmetric_symbol_matrix("S", 2)
    S = R * S_eig * R.T
    A = sp.eye(2) - eta * H
    rho = [1 - eta * l for l in lam]
    power = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"P_{min(i, j)}_{max(i, j)}"))

    def covariance(powers: sp.Matrix) -> sp.Matrix:
        G = sp.Matrix(2, 2, lambda i, j: (1 - powers[i, j]) / (1 - rho[i] * rho[j]))
        return R * S_eig.multiply_elementwise(G) * R.T

    next_power = sp.Matrix(2, 2, lambda i, j: rho[i] * rho[j] * power[i, j])
    recursion = covariance(next_power) - (A * covariance(power) * A + S)
    stationary = R * S_eig.multiply_elementwise(
        sp.Matrix(2, 2, lambda i, j: 1 / (1 - rho[i] * rho[j]))) * R.T
    return {
        "recursion_residual": recursion.applyfunc(_rational_residual),
        "initial_value": covariance(sp.ones(2, 2)).applyfunc(_rational_residual),
        "stationary_residual": (stationary - (A * stationary * A + S)).applyfunc(
            _rational_residual),
        "H": H,
        "S": S,
        "eta": eta,
    }


# ----------------------------------------------------------------------------------------------
# B2
# ----------------------------------------------------------------------------------------------


def hessian_noise_gain_identity(dim: int = 2) -> sp.Expr:
    r"""Residual of B2's gain for Hessian-proportional noise; zero.

    With Σ = cH (c > 0) and Σ̄ = (Tr Σ/D) I,

    .. math:: \frac{\mathrm{Tr}(H\Sigma)}{\mathrm{Tr}(H\bar\Sigma)}
              - \frac{D\,\mathrm{Tr}(H^2)}{(\mathrm{Tr}\,H)^2} = 0

    for a symmetric H of free real symbols (the ratio is formed from the matrices, not typed in).

    Parameters
    ----------
    dim : int
        Dimension D.

    Returns
    -------
    sympy.Expr
        The simplified residual (0).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B2, "for Σ ∝ H,
    r = D Tr(H²)/(Tr H)²"); numeric form :func:`sgdnoise.theory.hessian_noise_gain`.
    """
    dim = check_positive_int(dim, "dim")
    H = _symmetric_symbol_matrix("H", dim)
    c = sp.Symbol("c", positive=True)
    Sigma = c * H
    Sigma_bar = (Sigma.trace() / dim) * sp.eye(dim)
    r = (H * Sigma).trace() / (H * Sigma_bar).trace()
    return _rational_residual(r - dim * (H * H).trace() / H.trace() ** 2)


__all__ = [
    "discrete_covariance_symbolic",
    "discrete_loss_increase_symbolic",
    "discrete_lyapunov_identity",
    "hessian_noise_gain_identity",
    "ou_covariance_symbolic",
    "ou_loss_increase_series",
    "ou_loss_increase_symbolic",
    "ou_lyapunov_identity",
]

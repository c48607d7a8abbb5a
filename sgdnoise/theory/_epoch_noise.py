r"""Epoch-based (without-replacement) SGD noise and the weight variance it leaves (SPEC part D).

Setting (Kühn & Rosenow, arXiv:2306.05300): quadratic loss, noise frozen at the minimum and
commuting with the Hessian H, so each eigendirection (eigenvalue λ) evolves on its own.  With
heavy-ball momentum ``v ← βv − ηĝ, θ ← θ + v`` and ĝ = λx + ξ along the eigendirection, the
coordinate x (deviation from the minimum) is the AR(2) process

.. math:: x_{k+1} = (1 + \beta - \eta\lambda)\, x_k - \beta\, x_{k-1} - \eta\, \xi_k .

The PyTorch form ``b ← βb + ĝ, θ ← θ − ηb`` gives the same recursion for constant η (its buffer is
b = −v/η), so every result here holds for both forms.

Conventions
-----------
* ``C`` is the variance of the noise ξ of one batch-mean gradient along the eigendirection
  (minibatch scale).  For i.i.d. batches drawn with replacement C = σ₁²/S; for random
  reshuffling (each epoch a fresh permutation of the N samples cut into M = N/S batches of size
  S) the batch means of one epoch are exchangeable, sum to zero and have
  C = σ₁² (N − S)/(S (N − 1)), pairwise covariance −C/(M − 1), and are independent across
  epochs.  σ₁² = v_iᵀ Σ₁ v_i is the per-sample gradient variance along the eigenvector v_i.
* Time is counted in updates k; the velocity is v_k = x_k − x_{k−1} (the heavy-ball v after
  update k).
* Position within an epoch: ``position = m`` means the weight x after m of the epoch's M updates
  (m = 0: at an epoch boundary, after all updates of the previous epoch and none of the new one).
  "Phase-averaged" means the mean over the M positions, i.e. over all steps.
* Stationary variances require 0 ≤ β < 1 and 0 < ηλ < 2(1 + β) (the AR(2) is stable exactly
  there), λ > 0 and 2 ≤ M ≤ 2⁵³.
* Every sum over the M lags of an epoch is evaluated in O(log M) operations by doubling, in a
  form free of the cancellations of the geometric closed forms (:mod:`sgdnoise.theory._ar2_sums`);
  a result beyond the float64 range raises a ``ValueError`` naming the arguments.

References
----------
M. Kühn, B. Rosenow, "Correlated Noise in Epoch-Based Stochastic Gradient Descent: Implications
for Weight Variances", arXiv:2306.05300 (v3 2025: "Anti-Correlated Noise in Epoch-Based SGD…"),
spec claims D1–D5.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_finite_result,
    check_positive_int,
    pow2_exponent,
    scale_pow2,
)
from sgdnoise.theory import _ar2_sums

_REFERENCE = "Kühn & Rosenow, arXiv:2306.05300"
#: Largest number of batches per epoch accepted: float64 represents every integer up to 2⁵³.
MAX_M = 2**53
#: Default memory limit of :func:`weight_variance_epoch_profile` (1 GiB).
PROFILE_MAX_BYTES = 1 << 30
# float64 temporaries per output entry of the profile (u, prefix sums, partial, s, quad, output)
_PROFILE_FLOATS_PER_ENTRY = 12

# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _is_symbolic(*values: Any) -> bool:
    """True when any argument is a sympy object (then plain arithmetic, no numeric checks)."""
    return any(isinstance(v, sp.Basic) for v in values)


def _scalar_out(x: Any) -> FloatArray | float:
    """A float64 array, or a numpy float64 scalar for 0-d results."""
    return np.asarray(x, dtype=np.float64)[()]


def _checked(compute: Callable[[], Any], what: str,
             names: str = "lam, C, eta and beta") -> FloatArray | float:
    """Evaluate a closed form without floating-point warnings and refuse a non-finite result
    (overflow, or inf − inf) with a ``ValueError`` naming the arguments (finite input is
    validated before, so only the float64 range can be exceeded here)."""
    with np.errstate(all="ignore"):
        value = compute()
    return _scalar_out(check_finite_result(value, names, what))


def _check_positive_array(x: Any, name: str) -> FloatArray:
    arr = as_float_array(x, name)
    if arr.size and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0; got minimum {float(arr.min()):.3g}")
    return arr


def _check_nonnegative_array(x: Any, name: str) -> FloatArray:
    arr = as_float_array(x, name)
    if arr.size and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0; got minimum {float(arr.min()):.3g}")
    return arr


def _check_beta(beta: Any) -> FloatArray:
    arr = as_float_array(beta, "beta")
    if arr.size and np.any((arr < 0) | (arr >= 1)):
        raise ValueError(
            f"beta must lie in [0, 1); got values in [{float(arr.min()):.3g}, {float(arr.max()):.3g}]"
        )
    return arr


def _check_stable(lam: Any, eta: Any, beta: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
    """λ > 0, η > 0, 0 ≤ β < 1, 0 < ηλ < 2(1+β); the three broadcast against each other."""
    lam = _check_positive_array(lam, "lam")
    eta = _check_positive_array(eta, "eta")
    beta = _check_beta(beta)
    try:
        lam, eta, beta = np.broadcast_arrays(lam, eta, beta)
    except ValueError as exc:
        raise ValueError(
            f"lam, eta and beta must broadcast together; got shapes {np.shape(lam)}, "
            f"{np.shape(eta)}, {np.shape(beta)}"
        ) from exc
    with np.errstate(over="ignore"):  # ηλ beyond float64 is unstable, and reported as such
        eta_lam = eta * lam
    unstable = eta_lam >= 2.0 * (1.0 + beta)
    if np.any(unstable):
        with np.errstate(over="ignore"):
            worst = float(np.max(eta_lam / (2.0 * (1.0 + beta))))
        raise ValueError(
            "lam is outside the stable range 0 < eta*lam < 2(1 + beta) "
            f"(largest eta*lam/(2(1+beta)) = {worst:.3g})"
        )
    return lam, eta, beta


def _check_M(M: Any) -> int:
    M = check_positive_int(M, "M", minimum=2)
    if M > MAX_M:
        raise ValueError(f"M must be <= 2**53 (float64 counts batches exactly up to there); got {M}")
    return M


def _check_position(position: Any, M: int) -> int | None:
    if position is None:
        return None
    if isinstance(position, bool) or not isinstance(position, numbers.Integral):
        raise ValueError(  # noqa: TRY004
            f"position must be None or an integer in [0, M); got {position!r}"
        )
    if not 0 <= int(position) < M:
        raise ValueError(f"position must lie in [0, {M}) (M = {M}); got {position}")
    return int(position)


# ----------------------------------------------------------------------------------------------
# D1: noise autocorrelation and spectrum
# ----------------------------------------------------------------------------------------------


def epoch_autocorrelation(h: Any, C: Any, M: int) -> FloatArray | float:
    r"""Phase-averaged autocorrelation of epoch-based batch noise at integer lag h.

    .. math::
        R(h) = \begin{cases} C & h = 0 \\
        -\dfrac{C\,(M - |h|)}{M (M - 1)} & 1 \le |h| < M \\ 0 & |h| \ge M \end{cases}

    Two batch noises at lag 1 ≤ |h| < M fall in the same epoch with probability (M − |h|)/M
    (averaged uniformly over the phase of the first one in its epoch), and then have covariance
    −C/(M − 1); otherwise they are independent.  Hence the sum rule
    :math:`\sum_h R(h) = 0`: no noise power at zero frequency.  For i.i.d. batches
    R(h) = C δ_{h0}.

    Parameters
    ----------
    h : int or int array
        Lag in updates (any sign).
    C : float or array
        Variance of one batch-mean noise along the eigendirection (minibatch scale; with random
        reshuffling C = σ₁²(N − S)/(S(N − 1))); C ≥ 0, broadcast against ``h``.
    M : int
        Batches per epoch, M = N/S, 2 ≤ M ≤ 2⁵³.

    Returns
    -------
    float or array
        R(h), of the broadcast shape of ``h`` and ``C``.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D1).
    """
    M = _check_M(M)
    h_arr = np.asarray(h)
    integer = h_arr.dtype != bool and np.issubdtype(h_arr.dtype, np.integer)
    whole_float = (np.issubdtype(h_arr.dtype, np.floating) and bool(np.all(np.isfinite(h_arr)))
                   and bool(np.all(h_arr == np.round(h_arr))))
    if not (integer or whole_float):
        raise ValueError(f"h must hold integer lags; got dtype {h_arr.dtype}")
    # lags at or beyond M contribute 0: clip before the integer cast (no overflow for huge h)
    lag = np.minimum(np.abs(h_arr), M).astype(np.int64)
    C = _check_nonnegative_array(C, "C")
    R = np.where(lag == 0, 1.0, np.where(lag < M, -(M - lag) / (M * (M - 1.0)), 0.0))
    return _checked(lambda: C * R, "the autocorrelation", "C")


def epoch_noise_spectrum(omega: Any, C: Any, M: int) -> FloatArray | float:
    r"""Power spectrum of epoch-based batch noise (Fourier sum of :func:`epoch_autocorrelation`).

    .. math::
        S(\omega) = \sum_{h} R(h)\, e^{-i\omega h}
                  = \frac{C M}{M - 1}\left[1 - \frac{\sin^2(M\omega/2)}{M^2 \sin^2(\omega/2)}\right]

    It follows from the Fejér kernel
    :math:`\sum_{|h|<M} (M - |h|) e^{-i\omega h} = \sin^2(M\omega/2)/\sin^2(\omega/2)`.
    S(0) = 0 (the sum rule), S(2πk/M) = CM/(M − 1) for k ≢ 0 (mod M), and
    :math:`\frac{1}{2\pi}\int_{-\pi}^{\pi} S\, d\omega = R(0) = C`.  Convention: ω in radians
    per update, 2π-periodic; i.i.d. batches give the flat S(ω) = C.  Near ω = 0,
    S ≈ C M (M + 1) ω²/12.

    Parameters
    ----------
    omega : float or array
        Angular frequency (radians per update), finite.
    C : float or array
        Batch-noise variance along the eigendirection (minibatch scale), C ≥ 0.
    M : int
        Batches per epoch (2 ≤ M ≤ 2⁵³).

    Returns
    -------
    float or array
        S(ω) ≥ 0, of the broadcast shape of ``omega`` and ``C``.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D1, "no power at zero frequency").
    """
    M = _check_M(M)
    omega = as_float_array(omega, "omega")
    C = _check_nonnegative_array(C, "C")
    e_C = pow2_exponent(C)  # S is linear in C: compute for C at unit scale, scale back exactly
    C = scale_pow2(C, -e_C)
    # 2π-periodic: reduce to [−π, π) (huge |ω| first reduced exactly, so ω + π cannot overflow)
    omega = np.where(np.abs(omega) > 1e15, np.remainder(omega, 2.0 * np.pi), omega)
    omega = np.remainder(omega + np.pi, 2.0 * np.pi) - np.pi
    half = np.sin(omega / 2.0)
    small = np.abs(half) < 1e-300
    ratio = np.where(small, 1.0, np.sin(M * omega / 2.0) / (M * np.where(small, 1.0, half)))
    S = C * M / (M - 1.0) * (1.0 - ratio**2)
    return _checked(lambda: scale_pow2(np.maximum(S, 0.0), e_C), "the spectrum", "C")


# ----------------------------------------------------------------------------------------------
# AR(2) response
# ----------------------------------------------------------------------------------------------


def ar2_impulse_response(lam: Any, eta: Any, beta: Any, *, num_steps: int) -> FloatArray:
    r"""Impulse response G(j), j = 0 … num_steps − 1, of the heavy-ball AR(2) recursion.

    With :math:`a = 1 + \beta - \eta\lambda`, the recursion
    :math:`x_{k+1} = a x_k - \beta x_{k-1} + u_k` has the solution
    :math:`x_n = \sum_{j \ge 0} G(j)\, u_{n-1-j}` (here u_k = −ηξ_k), with
    G(0) = 1, G(1) = a, G(j) = a G(j−1) − β G(j−2).  In closed form, with the characteristic
    roots :math:`r_{1,2} = (a \pm \sqrt{a^2 - 4\beta})/2`:

    .. math::
        G(j) = \begin{cases}
          \dfrac{r_1^{j+1} - r_2^{j+1}}{r_1 - r_2} & a^2 > 4\beta \text{ (real, distinct)} \\
          (j+1)\,(a/2)^j & a^2 = 4\beta \text{ (critically damped)} \\
          \beta^{j/2}\, \dfrac{\sin((j+1)\omega)}{\sin\omega},\
          \cos\omega = \dfrac{a}{2\sqrt\beta} & a^2 < 4\beta \text{ (complex roots)}
        \end{cases}

    and G(j) = a^j for β = 0.  The real case is evaluated as
    :math:`r_1^{j+1}\,(1 - (r_2/r_1)^{j+1})/(r_1 - r_2)` with
    :math:`\log(r_2/r_1) = -2\,\mathrm{artanh}(\sqrt{a^2-4\beta}/|a|)` and ``expm1``, so there is
    no cancellation near critical damping.

    Parameters
    ----------
    lam : float or array
        Curvature λ (any finite real; the response exists also outside the stable range).
    eta, beta : float or array
        Learning rate η > 0 and heavy-ball momentum 0 ≤ β < 1; broadcast with ``lam``.
    num_steps : int
        Number of lags returned (≥ 1).

    Returns
    -------
    array, shape ``broadcast(lam, eta, beta).shape + (num_steps,)``
        G(0), …, G(num_steps − 1).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D: AR(2) per eigendirection).
    """
    num_steps = check_positive_int(num_steps, "num_steps")
    lam = as_float_array(lam, "lam")
    eta = _check_positive_array(eta, "eta")
    beta = _check_beta(beta)
    lam, eta, beta = np.broadcast_arrays(lam, eta, beta)
    j = np.arange(num_steps, dtype=np.float64)
    with np.errstate(all="ignore"):  # non-finite values are refused once, at the end
        a = (1.0 + beta - eta * lam)[..., None]
        b = beta[..., None]
        disc = a * a - 4.0 * b
        # beta == 0: a^j (0**0 == 1)
        first_order = np.power(a, j)
        # real distinct roots
        root = np.sqrt(np.where(disc > 0, disc, 1.0))
        abs_a = np.abs(a)
        sign = np.where(a < 0, -1.0, 1.0)
        r1_abs = (abs_a + root) / 2.0
        u = np.arctanh(np.where(disc > 0, root / np.where(abs_a > 0, abs_a, 1.0), 0.5))
        real = (sign**j) * np.exp((j + 1.0) * np.log(np.where(r1_abs > 0, r1_abs, 1.0))) \
            * (-np.expm1(-2.0 * (j + 1.0) * u)) / root
        # critically damped
        critical = (j + 1.0) * np.power(a / 2.0, j)
        # complex roots
        neg = np.sqrt(np.where(disc < 0, -disc, 1.0))
        rho = np.sqrt(np.where(b > 0, b, 1.0))
        omega = np.arctan2(neg, a)
        sin_omega = neg / (2.0 * rho)
        complex_ = np.power(rho, j) * np.sin((j + 1.0) * omega) / sin_omega
    out = np.where(b == 0, first_order,
                   np.where(disc > 0, real, np.where(disc == 0, critical, complex_)))
    return np.asarray(check_finite_result(out, "lam, eta, beta and num_steps",
                                          "the impulse response G(j)"), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# D2: i.i.d. batches
# ----------------------------------------------------------------------------------------------


def weight_variance_iid(lam: Any, C: Any, eta: Any, beta: Any = 0.0) -> Any:
    r"""Stationary weight variance along one Hessian eigendirection, i.i.d. batches.

    .. math:: \mathrm{Var}\,x = \frac{\eta C (1+\beta)}{(1-\beta)\,\lambda\,(2(1+\beta)-\eta\lambda)}
              = \eta^2 C \sum_{j\ge0} G(j)^2

    Parameters
    ----------
    lam, C : float, array or sympy.Expr
        Eigenvalue λ > 0 of H; noise variance along its eigenvector (minibatch scale, Σ₁/B).
    eta, beta : float, array or sympy.Expr
        Learning rate, heavy-ball momentum (v ← βv − ηĝ); stable for 0 < ηλ < 2(1+β).

    Returns
    -------
    float, array or sympy.Expr
        The variance (sympy input gives the unevaluated expression; numeric input is checked
        and returned as float64).  With C ∝ H (C = κλ) it is nearly the same in every direction
        where ηλ ≪ 1: the "isotropic weight variance".

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D2).
    """
    if _is_symbolic(lam, C, eta, beta):
        return eta * C * (1 + beta) / ((1 - beta) * lam * (2 * (1 + beta) - eta * lam))
    lam, eta, beta = _check_stable(lam, eta, beta)
    C = _check_nonnegative_array(C, "C")
    return _checked(lambda: eta * C * (1 + beta) / ((1 - beta) * lam * (2 * (1 + beta) - eta * lam)),
                    "the stationary weight variance")


def velocity_variance_iid(lam: Any, C: Any, eta: Any, beta: Any = 0.0) -> Any:
    r"""Stationary variance of the velocity v_k = x_k − x_{k−1}, i.i.d. batches.

    .. math:: \mathrm{Var}\,v = 2\big(\gamma(0) - \gamma(1)\big)\eta^2 C
              = \frac{2\eta^2 C}{(1-\beta)\,(2(1+\beta) - \eta\lambda)}

    using the AR(2) Yule–Walker relation γ(1) = (1 + β − ηλ) γ(0)/(1 + β).  It tends to a
    constant as λ → 0.

    Parameters
    ----------
    lam, C : float, array or sympy.Expr
        Curvature λ > 0; batch-noise variance along the eigendirection (minibatch scale).
    eta, beta : float, array or sympy.Expr
        Learning rate; heavy-ball momentum (stable for 0 < ηλ < 2(1+β)).

    Returns
    -------
    float, array or sympy.Expr
        Var v (heavy-ball v; the PyTorch buffer b = −v/η has variance Var v/η²).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D4).
    """
    if _is_symbolic(lam, C, eta, beta):
        return 2 * eta**2 * C / ((1 - beta) * (2 * (1 + beta) - eta * lam))
    lam, eta, beta = _check_stable(lam, eta, beta)
    C = _check_nonnegative_array(C, "C")
    return _checked(lambda: 2 * eta**2 * C / ((1 - beta) * (2 * (1 + beta) - eta * lam)),
                    "the stationary velocity variance")


# ----------------------------------------------------------------------------------------------
# correlated noise: exact sums
# ----------------------------------------------------------------------------------------------


def _delta_sequence(lam: FloatArray, eta: FloatArray, beta: FloatArray, length: int) -> FloatArray:
    r"""δ(h) = γ(0) − γ(h), h = 0 … length − 1, with γ(h) = Σ_j G(j) G(j+h).

    Recursion (from γ(h) = aγ(h−1) − βγ(h−2), h ≥ 2, and γ(1) = aγ(0)/(1+β)):
    δ(0) = 0, δ(1) = w/(1+β), δ(h) = w + a δ(h−1) − β δ(h−2), where
    w = ηλγ(0) = (1+β)/((1−β)(2(1+β) − ηλ)) stays finite as λ → 0.  All δ(h) ≥ 0
    (Cauchy–Schwarz), so sums of them carry no cancellation.  The affine recursion runs on the
    state (δ(h+1), δ(h), 1), unrolled by doubling (:func:`sgdnoise.theory._ar2_sums.orbit`).
    """
    shape = lam.shape
    lam_f, eta_f, beta_f = (np.ravel(v) for v in (lam, eta, beta))
    w = (1.0 + beta_f) / ((1.0 - beta_f) * (2.0 * (1.0 + beta_f) - eta_f * lam_f))
    T = np.zeros((lam_f.size, 3, 3))
    T[:, 0, 0] = 1.0 + beta_f - eta_f * lam_f
    T[:, 0, 1] = -beta_f
    T[:, 0, 2] = w
    T[:, 1, 0] = 1.0
    T[:, 2, 2] = 1.0
    v0 = np.stack([w / (1.0 + beta_f), np.zeros_like(w), np.ones_like(w)], axis=1)
    states = _ar2_sums.orbit(T, v0, length)
    return states[:, :, 1].reshape(shape + (length,))


def _output_delta(delta: FloatArray, output: str) -> FloatArray:
    """δ for the weight (as given) or for the velocity, δ_v(h) = γ_v(0) − γ_v(h).

    γ_v(h) = 2γ(h) − γ(h+1) − γ(|h−1|) for v_k = x_k − x_{k−1}, hence
    δ_v(h) = 2δ(1) + 2δ(h) − δ(h+1) − δ(|h−1|); the input must reach one lag further.
    """
    if output == "weight":
        return delta[..., :-1]
    d = delta
    h = np.arange(d.shape[-1] - 1)
    prev = d[..., np.abs(h - 1)]
    return 2.0 * d[..., 1:2] + 2.0 * d[..., :-1] - d[..., 1:] - prev


def _output_gamma0(lam: FloatArray, eta: FloatArray, beta: FloatArray, output: str) -> FloatArray:
    """γ(0) = Σ_j G(j)² for the weight, γ_v(0) = 2δ(1) for the velocity."""
    if output == "weight":
        return (1 + beta) / ((1 - beta) * eta * lam * (2 * (1 + beta) - eta * lam))
    return 2.0 / ((1 - beta) * (2 * (1 + beta) - eta * lam))


def stationary_variance_correlated(
    lam: Any, eta: Any, beta: Any, R: Any, *, output: str = "weight"
) -> FloatArray | float:
    r"""Exact stationary variance of the AR(2) driven by stationary noise of finite memory.

    For noise with autocorrelation R(h) = Cov(ξ_k, ξ_{k+h}), R(h) = 0 for |h| > H,

    .. math::
        \mathrm{Var}\,x = \eta^2 \sum_{h=-H}^{H} R(h)\,\gamma(h)
        = \eta^2\Big[\gamma(0) \sum_{h} R(h) - 2\sum_{h=1}^{H} R(h)\,\delta(h)\Big],
        \qquad \gamma(h) = \sum_{j\ge0} G(j)G(j+h),\ \delta(h) = \gamma(0) - \gamma(h)

    with G from :func:`ar2_impulse_response`.  The second form is used: δ(h) ≥ 0 comes from a
    recursion without 1/λ, so for zero-sum noise (epoch sampling) the only cancellation left is
    the rounding of Σ_h R(h) times γ(0) ∝ 1/λ.  For the velocity v_k = x_k − x_{k−1} the same
    formula holds with γ_v(h) = 2γ(h) − γ(h+1) − γ(|h−1|).  The sums over h are finite; the
    infinite sums over j are in closed form (Yule–Walker), so the result is exact.

    Parameters
    ----------
    lam, eta, beta : float or array
        Curvature λ > 0, learning rate η > 0, momentum 0 ≤ β < 1 with 0 < ηλ < 2(1+β);
        broadcast together.
    R : 1-D array
        R(0), R(1), …, R(H) (the noise is stationary, R(−h) = R(h)), in the units of C.
    output : {"weight", "velocity"}
        Which variance: of x, or of v_k = x_k − x_{k−1}.

    Returns
    -------
    float or array
        The stationary variance, of the broadcast shape of ``lam``, ``eta``, ``beta``.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claims D2–D4: variance from the AR(2) response and
    the noise autocorrelation).
    """
    if output not in ("weight", "velocity"):
        raise ValueError(f"output must be 'weight' or 'velocity'; got {output!r}")
    lam, eta, beta = _check_stable(lam, eta, beta)
    R = as_float_array(R, "R", ndim=1)
    if R.size < 1:
        raise ValueError("R must hold at least R(0)")
    H = R.size - 1

    def variance() -> FloatArray:
        delta = _output_delta(_delta_sequence(lam, eta, beta, H + 2), output)
        total = R[0] + 2.0 * np.sum(R[1:])
        gamma0 = _output_gamma0(lam, eta, beta, output)
        var = gamma0 * total - 2.0 * np.sum(R[1:] * delta[..., 1:H + 1], axis=-1)
        return eta**2 * var

    return _checked(variance, "the stationary variance", "lam, eta, beta and R")


# ----------------------------------------------------------------------------------------------
# D3: epoch sampling, exact
# ----------------------------------------------------------------------------------------------


def _phase_averaged_epoch(lam: FloatArray, eta: FloatArray, beta: FloatArray, M: int,
                          output: str) -> FloatArray:
    r"""Var/(η²C) phase-averaged: (2/(M(M−1))) Σ_{h=1}^{M−1} (M − h) δ_out(h); Σ_h R(h) = 0.

    The weight sum B = Σ_{h<M} (M − h) δ(h) comes from :func:`sgdnoise.theory._ar2_sums.delta_sums`
    in O(log M) operations.  For the velocity, δ_v(h) = 2δ(1) + 2δ(h) − δ(h+1) − δ(h−1) is
    (with e(h) = δ(h+1) − δ(h)) the constant 2δ(1) minus a difference e(h) − e(h−1), whose
    weighted sum telescopes:

    .. math:: \sum_{h=1}^{M-1} (M-h)\,\delta_v(h) = M(M-1)\,\delta(1) + (M-1)\,\delta(1)
              - (\delta(M) - \delta(1)) = M^2 \delta(1) - \delta(M).
    """
    B, d1, dM = _ar2_sums.delta_sums(lam, eta, beta, M)
    total = B if output == "weight" else float(M) ** 2 * d1 - dM
    return (2.0 / (M * (M - 1.0)) * total).reshape(lam.shape)


def _epoch_position_variance(lam: FloatArray, eta: FloatArray, beta: FloatArray, M: int,
                             output: str, m: int) -> FloatArray:
    r"""Var/(η²C) at position m within the epoch, in O(log M) operations.

    State s_k = (x_k, v_k), one step s_{k+1} = B s_k + b u_k with b = (1, 1)ᵀ (see
    :mod:`sgdnoise.theory._ar2_sums`), output y = c s with c = (1, 0) (weight) or (0, 1)
    (velocity); the output's impulse response is g(j) = cBʲb.  Write the epoch noises as
    ξ = √(M/(M−1)) (ζ − ζ̄) with ζ i.i.d. of variance C (this reproduces variance C and
    covariance −C/(M−1)).  At position m the lags j = 0 … m−1 belong to the current epoch (its
    remaining M − m noises have not acted yet) and the lags m + kM + i, i < M, to the k-th
    previous epoch.  Then

        Var/(η²C) = M/(M−1) · [ Σ_{i<m} g(i)² − (Σ_{i<m} g(i))²/M  +  s_mᵀ Q s_m ],

    with s_m = Bᵐb, F = Bᴹ, K = Σ_{i<M} (r_i − r̄)ᵀ(r_i − r̄) (rows r_i = cBⁱ, centred over
    the epoch), and Q = Σ_{k≥0} Fᵏᵀ K Fᵏ, the solution of Q = FᵀQF + K.  The first bracket is
    the centred scatter of g over the first m lags plus (Σg)²(M − m)/(mM), both non-negative;
    every sum comes from the doubling segments of :mod:`sgdnoise.theory._ar2_sums`, and Q from
    its geometric tail (relative truncation error below 2⁻⁵⁶).
    """
    c, b = _ar2_sums.OUTPUTS[output], _ar2_sums.INPUT
    E1 = _ar2_sums.step_minus_identity(lam, eta, beta)
    seg_m, seg_M = _ar2_sums.segments(E1, c, (m, M))
    Q = _ar2_sums.epoch_tail(seg_M.K, seg_M.P, seg_M.E)
    if m == 0:
        partial = np.zeros(E1.shape[0])
    else:
        # g(0) = cb = 1, so Σ_{i<m} g(i) = m + c SE_m b
        sum_g = m + np.einsum("i,kij,j->k", c, seg_m.SE, b)
        scatter = np.einsum("i,kij,j->k", b, seg_m.K, b)
        partial = scatter + sum_g**2 * ((M - m) / (m * float(M)))
    s = b + np.einsum("kij,j->ki", seg_m.E, b)
    quad = np.einsum("ki,kij,kj->k", s, Q, s)
    return (M / (M - 1.0) * (partial + quad)).reshape(lam.shape)


def _epoch_weight_profile(lam: FloatArray, eta: FloatArray, beta: FloatArray,
                          M: int) -> FloatArray:
    r"""Var x_m/(η²C) for every m = 0 … M − 1, shape lam.shape + (M,), vectorised (O(M)).

    The formula of :func:`_epoch_position_variance` for the weight, with s_m = Bᵐb = b + W_m
    (W_m = (Bᵐ − I)b from :func:`sgdnoise.theory._ar2_sums.column_deviations`), g(i) = 1 + u_i,
    u_i = W_i[0] = G(i) − 1, and the prefix sums S₁(m) = Σ_{i<m} u_i, S₂(m) = Σ_{i<m} u_i²:

    .. math:: \sum_{i<m} g_i^2 - \frac{(\sum_{i<m} g_i)^2}{M}
              = \frac{(M-m)(m + 2S_1)}{M} + S_2 - \frac{S_1^2}{M}

    which keeps the dominant m(M − m)/M exact when g ≈ 1 (flat directions).
    """
    c, b = _ar2_sums.OUTPUTS["weight"], _ar2_sums.INPUT
    E1 = _ar2_sums.step_minus_identity(lam, eta, beta)
    (seg_M,) = _ar2_sums.segments(E1, c, (M,))
    Q = _ar2_sums.epoch_tail(seg_M.K, seg_M.P, seg_M.E)
    W = _ar2_sums.column_deviations(E1, b, M)
    u = W[:, :, 0]
    K = u.shape[0]
    S1 = np.zeros((K, M))
    S2 = np.zeros((K, M))
    np.cumsum(u[:, :-1], axis=1, out=S1[:, 1:])
    np.cumsum(u[:, :-1] ** 2, axis=1, out=S2[:, 1:])
    m = np.arange(M, dtype=np.float64)
    partial = (M - m) * (m + 2.0 * S1) / M + S2 - S1**2 / M
    s0, s1 = 1.0 + W[:, :, 0], 1.0 + W[:, :, 1]
    quad = (Q[:, 0, 0, None] * s0 * s0 + (Q[:, 0, 1] + Q[:, 1, 0])[:, None] * s0 * s1
            + Q[:, 1, 1, None] * s1 * s1)
    return (M / (M - 1.0) * (partial + quad)).reshape(lam.shape + (M,))


def _epoch_variance(lam: Any, C: Any, eta: Any, beta: Any, M: int, position: Any,
                    output: str) -> FloatArray | float:
    lam, eta, beta = _check_stable(lam, eta, beta)
    C = _check_nonnegative_array(C, "C")
    M = _check_M(M)
    m = _check_position(position, M)

    def variance() -> FloatArray:
        if m is None:
            core = _phase_averaged_epoch(lam, eta, beta, M, output)
        else:
            core = _epoch_position_variance(lam, eta, beta, M, output, m)
        return eta**2 * C * core

    return _checked(variance, f"the stationary {output} variance")


def weight_variance_epoch(lam: Any, C: Any, eta: Any, beta: Any, M: int, *,
                          position: int | None = None) -> FloatArray | float:
    r"""Exact stationary weight variance with epoch-based (without-replacement) batches.

    Batch noises of one epoch have variance C and pairwise covariance −C/(M − 1) (they sum to
    zero); different epochs are independent.  Phase-averaged (``position=None``, all steps
    weighted equally), from the AR(2) response and the autocorrelation of
    :func:`epoch_autocorrelation`:

    .. math::
        \mathrm{Var}\,x = \eta^2 \sum_h R(h)\gamma(h)
        = \frac{2\eta^2 C}{M(M-1)} \sum_{h=1}^{M-1} (M - h)\,\big(\gamma(0) - \gamma(h)\big),
        \qquad \gamma(h) = \sum_{j\ge0} G(j)G(j+h)

    (the sum rule Σ_h R(h) = 0 removes the γ(0) ∝ 1/λ term, so the flat limit λ → 0 is finite).
    At ``position=m`` (the weight after m of the epoch's M updates; m = 0 is the epoch boundary),
    with g = G and the rows r_i = e₁ᵀAⁱ of the companion matrix A = [[1+β−ηλ, −β], [1, 0]]:

    .. math::
        \mathrm{Var}\,x_m = \frac{\eta^2 C M}{M-1}\Big[\sum_{i<m} G(i)^2
            - \tfrac1M\Big(\sum_{i<m} G(i)\Big)^2 + s_m^\top Q\, s_m\Big],\quad
        Q = \sum_{k\ge0} (A^{M})^{k\top} K (A^{M})^{k},\
        K = \sum_{i<M} (r_i - \bar r)^\top (r_i - \bar r)

    with s_m = Aᵐ(1, 0)ᵀ = (G(m), G(m−1)).  The first two terms are the current, incomplete
    epoch; the quadratic form is the geometric tail over all previous epochs, summed by doubling
    to a proven relative truncation error below 2⁻⁵⁶ (see the module source).  Every sum over
    the epoch is itself evaluated by doubling, so any M costs O(log M) operations.  The mean of
    the M position variances equals the phase average.

    Parameters
    ----------
    lam, C : float or array
        Curvature λ > 0; variance C ≥ 0 of one batch-mean noise along the eigendirection
        (minibatch scale, without replacement: σ₁²(N − S)/(S(N − 1)) for batches of S of N).
    eta, beta : float or array
        Learning rate η > 0 and heavy-ball momentum 0 ≤ β < 1 (also the PyTorch form) with
        0 < ηλ < 2(1 + β); ``lam``, ``eta``, ``beta`` and ``C`` broadcast together.
    M : int
        Batches per epoch (2 ≤ M ≤ 2⁵³; any M costs O(log M) operations).  M → ∞ recovers
        :func:`weight_variance_iid`; M = 1 (full batch) has no noise at all and is not
        accepted.
    position : int or None
        None for the phase average; m in [0, M) for the variance at that position.  The
        boundary value (m = 0) is far smaller than the phase average when λ is small: report
        which one a measurement estimates.

    Returns
    -------
    float or array
        The stationary variance.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3).
    """
    return _epoch_variance(lam, C, eta, beta, M, position, "weight")


def weight_variance_epoch_profile(lam: Any, C: Any, eta: Any, beta: Any, M: int, *,
                                  max_bytes: int = PROFILE_MAX_BYTES) -> FloatArray:
    r"""Stationary weight variance at every position m = 0 … M−1 within the epoch.

    .. math:: V_m = \mathrm{Var}\,x_{eM + m}, \qquad \frac1M\sum_{m=0}^{M-1} V_m =
              \text{phase average}

    Same exact sums as :func:`weight_variance_epoch` with ``position=m``, for all m at once:
    O(M) vectorised work (the output itself has M entries per curvature), no Python loop.

    Parameters
    ----------
    lam, C, eta, beta : float or array
        As in :func:`weight_variance_epoch` (broadcast together).
    M : int
        Batches per epoch (2 ≤ M ≤ 2⁵³).
    max_bytes : int
        Refuse (``ValueError`` naming ``M``) when the working memory, about
        12 × 8 bytes per output entry, would exceed this (default 1 GiB).

    Returns
    -------
    array, shape ``broadcast(lam, eta, beta, C).shape + (M,)``
        V_0 (epoch boundary) … V_{M−1}.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3, pitfall: boundary vs. phase average).
    """
    lam, eta, beta = _check_stable(lam, eta, beta)
    C = _check_nonnegative_array(C, "C")
    M = _check_M(M)
    max_bytes = check_positive_int(max_bytes, "max_bytes")
    try:
        out_shape = np.broadcast_shapes(lam.shape, C.shape)
    except ValueError as exc:
        raise ValueError(f"C must broadcast against lam, eta and beta; got shapes {C.shape} and "
                         f"{lam.shape}") from exc
    entries = (int(np.prod(out_shape, dtype=np.int64)) + lam.size) * M
    need = _PROFILE_FLOATS_PER_ENTRY * 8 * entries
    if need > max_bytes:
        raise ValueError(
            f"M = {M} positions for {lam.size} curvature(s) need about {need / 2**30:.3g} GiB "
            f"of working memory (> max_bytes = {max_bytes}); use weight_variance_epoch with "
            "position=m for the positions you need (O(log M) each), or raise max_bytes"
        )
    with np.errstate(all="ignore"):
        value = eta[..., None] ** 2 * C[..., None] * _epoch_weight_profile(lam, eta, beta, M)
    return np.asarray(check_finite_result(value, "lam, C, eta and beta",
                                          "the stationary weight variance"), dtype=np.float64)


def velocity_variance_epoch(lam: Any, C: Any, eta: Any, beta: Any, M: int, *,
                            position: int | None = None) -> FloatArray | float:
    r"""Exact stationary variance of the velocity v_k = x_k − x_{k−1} with epoch-based batches.

    .. math::
        \mathrm{Var}\,v = \frac{2\eta^2 C}{M(M-1)} \sum_{h=1}^{M-1} (M - h)\,
            \big(\gamma_v(0) - \gamma_v(h)\big), \qquad
        \gamma_v(h) = 2\gamma(h) - \gamma(h+1) - \gamma(|h-1|)

    (phase average), where γ_v is the autocovariance sum of the velocity response
    G(j) − G(j−1).  ``position=m`` gives the variance of the velocity of the update that
    produced x after m of the epoch's updates (the block formula of
    :func:`weight_variance_epoch` with output vector (1, −1)).

    Parameters
    ----------
    lam, C, eta, beta : float or array
        As in :func:`weight_variance_epoch`.
    M : int
        Batches per epoch (2 ≤ M ≤ 2⁵³; O(log M) operations).
    position : int or None
        None (phase average) or m in [0, M).

    Returns
    -------
    float or array
        Var v (heavy-ball v; the PyTorch buffer is b = −v/η).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D4).
    """
    return _epoch_variance(lam, C, eta, beta, M, position, "velocity")


def correlation_time(lam: Any, eta: Any, beta: Any = 0.0, M: int | None = None, *,
                     position: int | None = None) -> Any:
    r"""Correlation time τ = Var x / Var v of the weight along one eigendirection (in updates).

    .. math:: \tau = \frac{\mathrm{Var}\,x}{\mathrm{Var}\,v},\qquad v_k = x_k - x_{k-1};
              \qquad \tau_{\mathrm{iid}} = \frac{1+\beta}{2\eta\lambda}

    For i.i.d. batches (``M=None``) τ ∝ 1/λ everywhere.  With epoch sampling (``M`` given),
    τ → τ_iid (∝ 1/λ) above the crossover curvature and tends to a λ-independent constant below
    it, because both variances become λ-independent in the flat limit.  C cancels.

    Parameters
    ----------
    lam, eta, beta : float, array (or sympy.Expr for the i.i.d. case)
        Curvature λ > 0, learning rate, momentum (0 < ηλ < 2(1+β)).
    M : int or None
        Batches per epoch (2 ≤ M ≤ 2⁵³) for epoch sampling; None for i.i.d. batches.
    position : int or None
        With ``M``: None (phase-averaged variances) or the position m in [0, M) at which both
        variances are taken.

    Returns
    -------
    float, array or sympy.Expr
        τ in updates (multiply by η for SDE time t = ηk).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D4).
    """
    if M is None:
        if position is not None:
            raise ValueError("position requires M (epoch sampling); got M=None")
        if _is_symbolic(lam, eta, beta):
            return (1 + beta) / (2 * eta * lam)
        lam, eta, beta = _check_stable(lam, eta, beta)
        return _checked(lambda: (1 + beta) / (2 * eta * lam), "the correlation time",
                        "lam, eta and beta")
    x = weight_variance_epoch(lam, 1.0, eta, beta, M, position=position)
    v = velocity_variance_epoch(lam, 1.0, eta, beta, M, position=position)
    return _checked(lambda: np.asarray(x) / np.asarray(v), "the correlation time",
                    "lam, eta and beta")


def weight_variance_epoch_flat_limit(C: Any, eta: Any, beta: Any, M: int) -> FloatArray | float:
    r"""Phase-averaged epoch weight variance in the flat limit λ → 0 (closed form).

    .. math::
        V_0 = \frac{\eta^2 C}{M(M-1)(1-\beta)^2}\left[\frac{M(M^2-1)}{6}
        - \frac{2\beta}{1-\beta^2}\left(\frac{M(M-1)}{2}
        - \frac{\beta\,(M(1-\beta) - 1 + \beta^M)}{(1-\beta)^2}\right)\right]

    It is the limit of :func:`weight_variance_epoch` with δ(h) = γ(0) − γ(h) taken at λ = 0,
    δ₀(h) = [h − 2β(1 − βʰ)/(1 − β²)]/(2(1 − β)²), summed over h (derived in
    ``sgdnoise.theory._symbolic_cd.epoch_flat_limit_derivation``).  For β = 0:
    V₀ = η²C(M + 1)/6.  The variance no longer depends on λ (∝ λ when C ∝ H).

    Parameters
    ----------
    C : float or array
        Batch-noise variance along the eigendirection (minibatch scale), C ≥ 0.
    eta, beta : float or array
        Learning rate η > 0, momentum 0 ≤ β < 1.
    M : int
        Batches per epoch (2 ≤ M ≤ 2⁵³).

    Returns
    -------
    float or array
        V₀.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3, flat limit).
    """
    if _is_symbolic(C, eta, beta, M):
        return _flat_limit_expression(C, eta, beta, M)
    eta = _check_positive_array(eta, "eta")
    beta = _check_beta(beta)
    C = _check_nonnegative_array(C, "C")
    M = _check_M(M)
    return _checked(lambda: _flat_limit_expression(C, eta, beta, M), "the flat-limit variance",
                    "C, eta and beta")


def _flat_limit_expression(C: Any, eta: Any, beta: Any, M: Any) -> Any:
    inner = M * (M - 1) / 2 - beta * (M * (1 - beta) - 1 + beta**M) / (1 - beta) ** 2
    bracket = M * (M**2 - 1) / 6 - 2 * beta / (1 - beta**2) * inner
    return eta**2 * C / (M * (M - 1) * (1 - beta) ** 2) * bracket


def crossover_curvature(eta: Any, beta: Any, M: int) -> Any:
    r"""Crossover curvature λ_c between the flat (epoch-dominated) and the i.i.d. regime.

    Definition: λ_c is where the small-λ asymptote of the i.i.d. variance,
    :math:`\eta C/(2(1-\beta)\lambda)` (:func:`weight_variance_iid` for ηλ ≪ 1), equals the
    flat-limit epoch variance V₀ of :func:`weight_variance_epoch_flat_limit`:

    .. math:: \lambda_c = \frac{\eta C}{2(1-\beta)\,V_0}
              \;\xrightarrow{\ \beta = 0\ }\; \frac{3}{\eta (M+1)},
              \qquad \lambda_c \approx \frac{3(1-\beta)}{\eta M}\ (M \gg 1/(1-\beta))

    C cancels.  Well above λ_c the epoch variance matches the i.i.d. one (ratio 1 − O(λ_c/λ));
    well below, the ratio is ≈ λ/λ_c ≪ 1.  It is the curvature at which the relaxation time
    (1 − β)/(ηλ) of the direction is about a third of an epoch.

    Parameters
    ----------
    eta, beta : float, array or sympy.Expr
        Learning rate η > 0, momentum 0 ≤ β < 1.
    M : int or sympy.Expr
        Batches per epoch (2 ≤ M ≤ 2⁵³).

    Returns
    -------
    float, array or sympy.Expr
        λ_c.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D3, crossover λ_c(η, β, M)).
    """
    if _is_symbolic(eta, beta, M):
        return eta / (2 * (1 - beta) * _flat_limit_expression(1, eta, beta, M))
    eta = _check_positive_array(eta, "eta")
    beta = _check_beta(beta)
    M = _check_M(M)
    return _checked(lambda: eta / (2 * (1 - beta) * _flat_limit_expression(1.0, eta, beta, M)),
                    "the crossover curvature", "eta and beta")


# ----------------------------------------------------------------------------------------------
# D5: loss
# ----------------------------------------------------------------------------------------------


def _check_lam_variances(lam: Any, variances: Any) -> tuple[FloatArray, FloatArray]:
    lam = _check_nonnegative_array(lam, "lam")
    variances = _check_nonnegative_array(variances, "variances")
    if lam.ndim == 0 or lam.shape[-1] < 1:
        raise ValueError(f"lam must hold at least one eigenvalue along its last axis; got {lam.shape}")
    try:
        np.broadcast_shapes(lam.shape, variances.shape)
    except ValueError as exc:
        raise ValueError(
            f"variances must broadcast against lam; got shapes {variances.shape} and {lam.shape}"
        ) from exc
    return lam, variances


def excess_loss(lam: Any, variances: Any) -> FloatArray | float:
    r"""Mean excess loss of a quadratic loss from the per-direction weight variances.

    .. math:: \mathbb E[L] - L^* = \tfrac12 \sum_i \lambda_i\, \mathrm{Var}\,x_i

    exact for a quadratic loss with zero-mean x (any noise law).  Pass the variances of
    :func:`weight_variance_epoch` for epoch sampling, or those of :func:`weight_variance_iid`.

    Parameters
    ----------
    lam : array (..., D)
        Hessian eigenvalues λ_i ≥ 0 (last axis = directions).
    variances : array
        Var x_i, broadcast against ``lam``.

    Returns
    -------
    float or array
        The excess loss (sum over the last axis).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D5, mean excess loss).
    """
    lam, variances = _check_lam_variances(lam, variances)
    return _checked(lambda: 0.5 * np.sum(lam * variances, axis=-1), "the excess loss",
                    "lam and variances")


def excess_loss_constant_variance(lam: Any, variance: Any) -> FloatArray | float:
    r"""Mean excess loss predicted by a constant ("isotropic") weight variance.

    .. math:: \mathbb E[L] - L^* = \tfrac12\, \sigma_x^2 \sum_i \lambda_i

    the prediction of D2 with C ∝ H (every direction has the same variance σ_x²).  Compare it
    with :func:`excess_loss` of the epoch variances, which is much smaller when many directions
    are flatter than the crossover curvature.

    Parameters
    ----------
    lam : array (..., D)
        Hessian eigenvalues λ_i ≥ 0.
    variance : float or array
        The common weight variance σ_x² ≥ 0 (broadcast against ``lam`` without its last axis).

    Returns
    -------
    float or array
        The excess loss.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D5, constant-variance prediction).
    """
    lam = _check_nonnegative_array(lam, "lam")
    if lam.ndim == 0 or lam.shape[-1] < 1:
        raise ValueError(f"lam must hold at least one eigenvalue along its last axis; got {lam.shape}")
    variance = _check_nonnegative_array(variance, "variance")
    return _checked(lambda: 0.5 * variance * np.sum(lam, axis=-1), "the excess loss",
                    "lam and variance")


def loss_variance(lam: Any, variances: Any) -> FloatArray | float:
    r"""Stationary variance of the loss for Gaussian, independent weight fluctuations.

    .. math:: \mathrm{Var}\,L = \mathrm{Var}\Big(\tfrac12\sum_i \lambda_i x_i^2\Big)
              = \tfrac12 \sum_i \lambda_i^2\, (\mathrm{Var}\,x_i)^2

    Assumptions: x_i zero-mean Gaussian (Var x_i² = 2 (Var x_i)²) and independent across
    eigendirections.  Independence holds exactly at second order here (C commutes with H, so
    the noises of different eigendirections are uncorrelated at every lag); Gaussianity is a
    central-limit approximation (x is a weighted sum of many batch noises), least accurate for
    the stiffest directions.  SPEC D5 leaves open whether "loss fluctuations" means this or
    :func:`excess_loss`; both are offered.

    Parameters
    ----------
    lam : array (..., D)
        Hessian eigenvalues λ_i ≥ 0.
    variances : array
        Var x_i, broadcast against ``lam``.

    Returns
    -------
    float or array
        Var L (sum over the last axis).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D5, open reading: variance of L).
    """
    lam, variances = _check_lam_variances(lam, variances)
    return _checked(lambda: 0.5 * np.sum(lam**2 * variances**2, axis=-1), "the loss variance",
                    "lam and variances")


__all__ = [
    "ar2_impulse_response",
    "correlation_time",
    "crossover_curvature",
    "epoch_autocorrelation",
    "epoch_noise_spectrum",
    "excess_loss",
    "excess_loss_constant_variance",
    "loss_variance",
    "stationary_variance_correlated",
    "velocity_variance_epoch",
    "velocity_variance_iid",
    "weight_variance_epoch",
    "weight_variance_epoch_flat_limit",
    "weight_variance_epoch_profile",
    "weight_variance_iid",
]

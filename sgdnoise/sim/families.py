r"""Random matrices and per-sample Hessian families with known curvature-moment behaviour.

These constructors feed the property tests of spec part A and the public Hypothesis
strategies of :mod:`sgdnoise.verify.strategies`.  Every function returns float64 numpy arrays,
takes its randomness from an explicit ``rng`` (a ``numpy.random.Generator`` or a non-negative
integer seed) and raises a ``ValueError`` naming the offending argument.

Families of per-sample Hessians h_p (stacked as ``h``, shape (N, D, D)), with H = E_p h_p,
M = E_p[h_p²] and the fitted exponent γ of M_ii ∝ λ_i^γ in H's eigenbasis (spec claim A3):

================================  ===========================================  =========
constructor                       h_p                                          γ
================================  ===========================================  =========
:func:`identical_hessians`        H for every p (M = H²)                       2 exactly
:func:`rank_one_equal_curvature`  κ u_p u_pᵀ, ‖u_p‖ = 1 (M = κH)               1 exactly
:func:`random_rank_r`             rank-r PSD, random eigenvectors and spectra  data
:func:`kronecker_family`          G_p ⊗ a_p a_pᵀ, a dense layer's exact block  data
:func:`window_breaking_family`    κ_i v_i v_iᵀ, n_i samples per direction      1/2 or 3
:func:`symmetric_hessians`        indefinite, Haar eigenvectors, random signs  data
================================  ===========================================  =========

Exact population moments (no sampling error) of Gaussian families, for which γ_fit ∈ [1, 2]
is a theorem (see each docstring), are given by :func:`population_linear_regression`,
:func:`population_wishart` and :func:`population_kronecker`; :func:`wishart_hessians` draws the
matching finite samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_choice,
    check_positive,
    check_positive_int,
    check_psd_stack,
    check_rng,
    check_square,
)
from sgdnoise.theory import haar_orthogonal, kronecker_hessians

#: Largest spread, in decades, accepted for a spectrum (λ² must stay a normal float64).
MAX_DECADES: float = 100.0

#: The exact fitted exponent γ of :func:`window_breaking_family`, on every window.
WINDOW_BREAKING_EXPONENTS: dict[str, float] = {"below": 0.5, "above": 3.0}

# window_breaking_family: κ_i = n_i^(-power); with λ_i = n_i κ_i / N the points (log λ, log M)
# lie on one line of slope (1 − 2·power)/(1 − power): 1/2 for power 1/3, 3 for power 2.
_WINDOW_BREAKING_POWER: dict[str, float] = {"below": 1.0 / 3.0, "above": 2.0}


def _check_decades(value: Any, name: str, *, allow_zero: bool = False) -> float:
    v = check_positive(value, name, allow_zero=allow_zero)
    if v > MAX_DECADES:
        raise ValueError(f"{name} must be <= {MAX_DECADES:g}; got {value}")
    return v


def _check_dense(count: int, D: int, what: str) -> None:
    """Refuse (MemoryLimitError) before allocating ``count`` float64 D×D matrices."""
    check_allocation(count * D * D * 8, f"{what} ({count} x {D}x{D} float64)")


def _symmetrize(a: FloatArray) -> FloatArray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _check_covariance(S: Any, name: str = "S") -> FloatArray:
    S = check_square(S, name, symmetric=True)
    S = _symmetrize(S)
    check_psd_stack(S[None], name)
    return S


def log_uniform_spectrum(D: int, *, rng: np.random.Generator | int, decades: float = 3.0,
                         decay: float | None = None, lam_max: float = 1.0,
                         jitter: float = 0.0) -> FloatArray:
    r"""A positive spectrum in descending order, log-uniform over decades or a power law.

    Without ``decay``: λ_1 = lam_max, λ_D = lam_max·10^(−decades) exactly (for D ≥ 2), and the
    D − 2 interior values have log10 λ uniform in between.  With ``decay = d``:

    .. math:: \lambda_i = \lambda_{\max}\, i^{-d}, \qquad i = 1, \dots, D

    (``decades`` is then ignored).  ``jitter = j > 0`` multiplies each λ_i by 10^u with
    u ~ U(−j/2, j/2), independently, and re-sorts; it breaks exact power laws and ties mildly.

    Parameters
    ----------
    D : int
        Number of eigenvalues, ≥ 1.
    rng : numpy.random.Generator or int
        Source of randomness (unused for a power law without jitter).
    decades : float
        Spread log10(λ_1/λ_D), in (0, 100].
    decay : float, optional
        Power-law exponent d > 0.
    lam_max : float
        Largest eigenvalue (before jitter), > 0.
    jitter : float
        Width in decades of the multiplicative jitter, ≥ 0.

    Returns
    -------
    lam : (D,) array
        Positive, non-increasing.

    References
    ----------
    Spec "Random families for property tests" (spectra); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    D = check_positive_int(D, "D")
    rng = check_rng(rng)
    lam_max = check_positive(lam_max, "lam_max")
    jitter = _check_decades(jitter, "jitter", allow_zero=True)
    if decay is None:
        decades = _check_decades(decades, "decades")
        if D == 1:
            exponents = np.zeros(1)
        else:
            interior = np.sort(rng.uniform(-decades, 0.0, size=D - 2))[::-1]
            exponents = np.concatenate([[0.0], interior, [-decades]])
    else:
        decay = check_positive(decay, "decay")
        exponents = -decay * np.log10(np.arange(1, D + 1, dtype=np.float64))
    if jitter > 0:
        exponents = exponents + rng.uniform(-0.5 * jitter, 0.5 * jitter, size=D)
    lam = lam_max * 10.0**exponents
    return np.sort(lam)[::-1].copy()


def random_symmetric(spectrum: Any, *, rng: np.random.Generator | int) -> FloatArray:
    r"""V diag(spectrum) Vᵀ with V Haar-distributed on the orthogonal group; any real spectrum.

    Parameters
    ----------
    spectrum : (D,) array
        Real eigenvalues (any sign).
    rng : numpy.random.Generator or int

    Returns
    -------
    A : (D, D) array
        Exactly symmetric.

    References
    ----------
    Spec "Random families for property tests"; Mezzadri, Notices AMS 54 (2007) for the Haar draw.
    """
    spectrum = as_float_array(spectrum, "spectrum", ndim=1)
    if spectrum.size < 1:
        raise ValueError("spectrum must hold at least one eigenvalue")
    rng = check_rng(rng)
    _check_dense(5, spectrum.size, "random_symmetric")
    V = haar_orthogonal(spectrum.size, rng)
    return _symmetrize((V * spectrum) @ V.T)


def random_psd(spectrum: Any, *, rng: np.random.Generator | int) -> FloatArray:
    r"""Symmetric PSD matrix V diag(spectrum) Vᵀ of a given spectrum, V Haar-random.

    .. math:: A = V \,\mathrm{diag}(\lambda)\, V^\top, \qquad V \sim \mathrm{Haar}(O(D))

    Parameters
    ----------
    spectrum : (D,) array
        Non-negative eigenvalues.
    rng : numpy.random.Generator or int

    Returns
    -------
    A : (D, D) array
        Exactly symmetric, eigenvalues ``spectrum`` up to round-off.

    References
    ----------
    Spec "Random families for property tests" (PSD matrices of given spectrum); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    spectrum = as_float_array(spectrum, "spectrum", ndim=1)
    if spectrum.size and spectrum.min() < 0:
        raise ValueError(f"spectrum must be >= 0 for a PSD matrix; got min {spectrum.min():.3g}")
    return random_symmetric(spectrum, rng=rng)


def commuting_pair(D: int, *, rng: np.random.Generator | int,
                   decades: float = 3.0) -> tuple[FloatArray, FloatArray]:
    r"""A commuting PSD pair (C, H): one Haar eigenbasis, two log-uniform spectra.

    Both spectra are sorted the same way, so C_ii grows with λ_i as SGD noise does; [C, H] = 0 up
    to round-off.

    Parameters
    ----------
    D : int
        Dimension, ≥ 1.
    rng : numpy.random.Generator or int
    decades : float
        Spread of each spectrum (see :func:`log_uniform_spectrum`).

    Returns
    -------
    C : (D, D) array
        Noise-covariance-like PSD matrix.
    H : (D, D) array
        Hessian-like PSD matrix with the eigenvectors of C.

    References
    ----------
    Spec "Random families for property tests" (commuting pairs) and claim A5; Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    D = check_positive_int(D, "D")
    rng = check_rng(rng)
    _check_dense(7, D, "commuting_pair")
    lam = log_uniform_spectrum(D, rng=rng, decades=decades)
    c = log_uniform_spectrum(D, rng=rng, decades=decades)
    V = haar_orthogonal(D, rng)
    return _symmetrize((V * c) @ V.T), _symmetrize((V * lam) @ V.T)


def noncommuting_pair(D: int, *, rng: np.random.Generator | int,
                      decades: float = 3.0) -> tuple[FloatArray, FloatArray]:
    r"""A generic PSD pair (C, H) with independent Haar eigenbases (the A5 random baseline law).

    Given the two spectra, ε(C, H) has exactly the law of the spectrum-preserving random
    baseline, so E[ε²] equals the square of
    :func:`sgdnoise.theory.expected_random_commutator`.

    Parameters
    ----------
    D : int
        Dimension, ≥ 1.
    rng : numpy.random.Generator or int
    decades : float
        Spread of each spectrum.

    Returns
    -------
    C : (D, D) array
        Noise-covariance-like PSD matrix.
    H : (D, D) array
        Hessian-like PSD matrix, eigenvectors independent of those of C.

    References
    ----------
    Spec "Random families for property tests" (non-commuting pairs) and claim A5; Zhang, Yang &
    Tu, arXiv:2602.05600.
    """
    D = check_positive_int(D, "D")
    rng = check_rng(rng)
    _check_dense(7, D, "noncommuting_pair")
    lam = log_uniform_spectrum(D, rng=rng, decades=decades)
    c = log_uniform_spectrum(D, rng=rng, decades=decades)
    return random_psd(c, rng=rng), random_psd(lam, rng=rng)


def _anisotropic_sqrt(D: int, rng: np.random.Generator, decades: float) -> FloatArray:
    """S^{1/2} for a covariance S with Haar eigenvectors and spectrum spanning ``decades``."""
    s = log_uniform_spectrum(D, rng=rng, decades=decades)
    return random_psd(np.sqrt(s), rng=rng)


def identical_hessians(H: Any, N: int) -> FloatArray:
    r"""Family (i): every per-sample Hessian equals H, so M = H² and γ = 2 exactly.

    .. math:: h_p = H \;\Rightarrow\; M = H^2, \quad \kappa_{\mathrm{eff},i} = \lambda_i

    Parameters
    ----------
    H : (D, D) array
        Symmetric matrix (symmetrised exactly).
    N : int
        Number of samples, ≥ 1.

    Returns
    -------
    h : (N, D, D) array

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3, the γ = 2 limit; spec "Random families" (i)).
    """
    H = _symmetrize(check_square(H, "H", symmetric=True))
    N = check_positive_int(N, "N")
    _check_dense(N, H.shape[0], "identical_hessians")
    return np.broadcast_to(H, (N, *H.shape)).copy()


def rank_one_equal_curvature(D: int, N: int, *, rng: np.random.Generator | int,
                             kappa: float = 1.0, decades: float = 3.0) -> FloatArray:
    r"""Family (ii): rank-one per-sample Hessians of equal curvature, so M = κH and γ = 1 exactly.

    .. math::
        h_p = \kappa\, u_p u_p^\top,\quad u_p = \frac{S^{1/2} z_p}{\|S^{1/2} z_p\|},\quad
        z_p \sim \mathcal N(0, I) \;\Rightarrow\; h_p^2 = \kappa h_p,\; M = \kappa H

    S has Haar eigenvectors and a spectrum spanning ``decades`` decades, so H is anisotropic
    (its spectrum spans roughly as many decades).  H has full rank (almost surely) when N ≥ D.

    Parameters
    ----------
    D : int
        Dimension, ≥ 1.
    N : int
        Number of samples, ≥ 1.
    rng : numpy.random.Generator or int
    kappa : float
        The common curvature κ > 0 (every κ_max(p) = κ = κ*).
    decades : float
        Anisotropy of the direction distribution.

    Returns
    -------
    h : (N, D, D) array

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3, the γ = 1 limit; spec "Random families" (ii)).
    """
    D = check_positive_int(D, "D")
    N = check_positive_int(N, "N")
    rng = check_rng(rng)
    kappa = check_positive(kappa, "kappa")
    decades = _check_decades(decades, "decades")
    _check_dense(2 * N + 5, D, "rank_one_equal_curvature")
    S_sqrt = _anisotropic_sqrt(D, rng, decades)
    x = rng.standard_normal((N, D)) @ S_sqrt
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return kappa * (u[:, :, None] * u[:, None, :])


def random_rank_r(D: int, N: int, *, rng: np.random.Generator | int, rank: int = 2,
                  decades: float = 3.0, spectrum_decades: float = 1.0) -> FloatArray:
    r"""Family (iii): rank-r PSD per-sample Hessians, random eigenvectors and random spectra.

    .. math::
        h_p = Q_p\,\mathrm{diag}(\sigma_p)\,Q_p^\top, \quad Q_p = \mathrm{qr}(S^{1/2} Z_p),\quad
        \log_{10}\sigma_{p,k} \sim U(-\text{spectrum\_decades}, 0)

    with Z_p a D×r standard Gaussian matrix and S anisotropic (Haar eigenvectors, spectrum over
    ``decades`` decades), so the eigenvectors favour S's top directions.

    Parameters
    ----------
    D : int
        Dimension, ≥ 1.
    N : int
        Number of samples, ≥ 1.
    rng : numpy.random.Generator or int
    rank : int
        Rank r of every h_p, 1 ≤ r ≤ D.
    decades : float
        Anisotropy of the eigenvector distribution.
    spectrum_decades : float
        Spread of each per-sample spectrum, ≥ 0 (0: every h_p is a rank-r projector).

    Returns
    -------
    h : (N, D, D) array

    References
    ----------
    Spec "Random families for property tests" (iii); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    D = check_positive_int(D, "D")
    N = check_positive_int(N, "N")
    rng = check_rng(rng)
    rank = check_positive_int(rank, "rank")
    if rank > D:
        raise ValueError(f"rank must be <= D = {D}; got {rank}")
    decades = _check_decades(decades, "decades")
    spectrum_decades = _check_decades(spectrum_decades, "spectrum_decades", allow_zero=True)
    _check_dense(2 * N + 5, D, "random_rank_r")
    S_sqrt = _anisotropic_sqrt(D, rng, decades)
    Z = S_sqrt @ rng.standard_normal((N, D, rank))
    Q = np.linalg.qr(Z)[0]
    sigma = 10.0 ** rng.uniform(-spectrum_decades, 0.0, size=(N, rank))
    h = np.einsum("pik,pk,pjk->pij", Q, sigma, Q)
    return _symmetrize(h)


def symmetric_hessians(D: int, N: int, *, rng: np.random.Generator | int,
                       decades: float = 3.0) -> FloatArray:
    r"""Indefinite symmetric per-sample Hessians (for the claims that need no PSD assumption).

    .. math:: h_p = V_p\,\mathrm{diag}(s_p \circ \mu_p)\,V_p^\top

    with V_p Haar, μ_p a log-uniform spectrum over ``decades`` decades and s_p independent
    random signs, so h_p is generally indefinite (as near saddles or with smooth activations).

    Parameters
    ----------
    D : int
        Dimension, ≥ 1.
    N : int
        Number of samples, ≥ 1.
    rng : numpy.random.Generator or int
    decades : float
        Spread of each |spectrum|.

    Returns
    -------
    h : (N, D, D) array

    References
    ----------
    Spec claim A1 (H² ⪯ M for any symmetric h_p); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    D = check_positive_int(D, "D")
    N = check_positive_int(N, "N")
    rng = check_rng(rng)
    decades = _check_decades(decades, "decades")
    _check_dense(N + 5, D, "symmetric_hessians")
    out = np.empty((N, D, D))
    for p in range(N):
        mu = log_uniform_spectrum(D, rng=rng, decades=decades)
        signs = rng.choice([-1.0, 1.0], size=D)
        out[p] = random_symmetric(signs * mu, rng=rng)
    return out


def kronecker_family(out: int, inn: int, N: int, *, rng: np.random.Generator | int,
                     decades: float = 2.0, gauss_newton_rank: int | None = None,
                     residual: float = 0.0) -> tuple[FloatArray, FloatArray]:
    r"""Family (iv): dense-layer Kronecker factors (G_p, a_p) with h_p = G_p ⊗ a_p a_pᵀ.

    Inputs a_p ~ N(0, S) with S anisotropic (Haar eigenvectors, spectrum over ``decades``
    decades).  Output-side curvature G_p (out × out):

    * default, softmax cross-entropy: G_p = diag(q_p) − q_p q_pᵀ with q_p = softmax(z_p),
      z_p ~ N(0, 4 I); for out = 1, binary logistic G_p = q_p(1 − q_p), q_p = sigmoid(z_p);
    * ``gauss_newton_rank = r``: Gauss–Newton G_p = J_p J_pᵀ, J_p an out×r Gaussian matrix / √r;
    * ``residual = ρ > 0`` adds ρ·diag(ξ_p), ξ_p ~ N(0, I): the residual term that smooth
      activations add to the Gauss–Newton form (G_p is then generally indefinite).

    The dense per-sample Hessians (row-major vec(W), D = out·inn) are
    ``sgdnoise.theory.kronecker_hessians(G, a)``.

    Parameters
    ----------
    out : int
        Output width of the layer, ≥ 1.
    inn : int
        Input width of the layer, ≥ 1.
    N : int
        Number of samples, ≥ 1.
    rng : numpy.random.Generator or int
    decades : float
        Anisotropy of the inputs.
    gauss_newton_rank : int, optional
        Rank of a Gauss–Newton G_p (≥ 1); default softmax.
    residual : float
        Scale ρ ≥ 0 of the indefinite residual term.

    Returns
    -------
    G : (N, out, out) array
        Symmetric; PSD when ``residual == 0``.
    a : (N, inn) array

    References
    ----------
    Spec part A, "Dense-layer structure" and "Random families" (iv); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    out = check_positive_int(out, "out")
    inn = check_positive_int(inn, "inn")
    N = check_positive_int(N, "N")
    rng = check_rng(rng)
    decades = _check_decades(decades, "decades")
    residual = check_positive(residual, "residual", allow_zero=True)
    if gauss_newton_rank is not None:
        gauss_newton_rank = check_positive_int(gauss_newton_rank, "gauss_newton_rank")
    S_sqrt = _anisotropic_sqrt(inn, rng, decades)
    a = rng.standard_normal((N, inn)) @ S_sqrt
    if gauss_newton_rank is not None:
        J = rng.standard_normal((N, out, gauss_newton_rank)) / np.sqrt(gauss_newton_rank)
        G = J @ np.swapaxes(J, 1, 2)
    elif out == 1:
        z = 2.0 * rng.standard_normal(N)
        # q(1 − q) = sigmoid(z)·sigmoid(−z), without the cancellation in 1 − q
        G = (1.0 / (1.0 + np.exp(-z)) / (1.0 + np.exp(z)))[:, None, None]
    else:
        z = 2.0 * rng.standard_normal((N, out))
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        # diag(q) − qqᵀ = Σ_{i<j} q_i q_j (e_i − e_j)(e_i − e_j)ᵀ: the diagonal q_i Σ_{j≠i} q_j is
        # summed without the cancellation in q_i(1 − q_i), so G is PSD to round-off of its norm
        off = 1.0 - np.eye(out)
        rest = (q[:, None, :] * off).sum(axis=2)
        G = -(q[:, :, None] * q[:, None, :]) * off + (q * rest)[:, :, None] * np.eye(out)
    if residual > 0:
        xi = rng.standard_normal((N, out))
        G = G + residual * xi[:, :, None] * np.eye(out)
    return _symmetrize(G), a


def kronecker_family_hessians(out: int, inn: int, N: int, *, rng: np.random.Generator | int,
                              **kwargs: Any) -> FloatArray:
    r"""Dense h_p = G_p ⊗ a_p a_pᵀ (N, out·inn, out·inn) of :func:`kronecker_family`.

    Parameters
    ----------
    out : int
        Output width of the layer, as for :func:`kronecker_family`.
    inn : int
        Input width of the layer, as for :func:`kronecker_family`.
    N : int
        Number of samples, as for :func:`kronecker_family`.
    rng : numpy.random.Generator or int
        Source of randomness, as for :func:`kronecker_family`.
    **kwargs
        ``decades``, ``gauss_newton_rank`` and ``residual``, as for :func:`kronecker_family`.

    Returns
    -------
    h : (N, D, D) array, D = out·inn

    References
    ----------
    Spec part A, "Dense-layer structure"; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    G, a = kronecker_family(out, inn, N, rng=rng, **kwargs)
    return kronecker_hessians(G, a)


def _counts(D: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """D positive integers summing to N, not all equal (N ≥ D + 1)."""
    n = 1 + rng.multinomial(N - D, rng.dirichlet(np.ones(D)))
    if np.all(n == n[0]):  # all equal (each ≥ 2 since N > D): move one sample
        n[0] -= 1
        n[1] += 1
    return n


def window_breaking_family(D: int, N: int, *, rng: np.random.Generator | int,
                           side: str = "below") -> FloatArray:
    r"""Family (v): rank-one Hessians along H's eigenvectors whose fitted γ leaves [1, 2].

    Direction v_i (columns of a Haar V) receives n_i ≥ 1 of the N samples, each with
    h_p = κ_i v_i v_iᵀ, so that

    .. math::
        \lambda_i = \frac{n_i \kappa_i}{N}, \qquad M_{ii} = \frac{n_i \kappa_i^2}{N}, \qquad
        \kappa_{\mathrm{eff},i} = \kappa_i.

    The counts n_i are random (not all equal) and κ_i = n_i^(−a): every point (log λ_i, log M_ii)
    lies on one line of slope (1 − 2a)/(1 − a).  ``side="below"`` takes a = 1/3 (κ_eff falls as
    λ grows), so γ_fit = 1/2; ``side="above"`` takes a = 2 (κ_eff/λ grows with λ), so
    γ_fit = 3 — on every window with two distinct λ (see ``WINDOW_BREAKING_EXPONENTS``).  The
    wedge-based interval of :func:`sgdnoise.theory.fit_exponent` still contains γ_fit: the
    finite-window fit is not confined to [1, 2] although every h_p is PSD.

    Parameters
    ----------
    D : int
        Dimension, ≥ 2.
    N : int
        Number of samples, ≥ D + 1 (two distinct counts are needed).
    rng : numpy.random.Generator or int
    side : {"below", "above"}
        Which side of [1, 2] the fitted exponent leaves on.

    Returns
    -------
    h : (N, D, D) array
        PSD, rank one each, in random sample order.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A3: the finite-window slope is not
    unconditionally inside [1, 2]; spec "Random families" (v)).
    """
    D = check_positive_int(D, "D", minimum=2)
    N = check_positive_int(N, "N")
    if N < D + 1:
        raise ValueError(f"N must be >= D + 1 = {D + 1} for two distinct counts; got {N}")
    side = check_choice(side, "side", ("below", "above"))
    rng = check_rng(rng)
    _check_dense(2 * N + 3, D, "window_breaking_family")
    V = haar_orthogonal(D, rng)
    n = _counts(D, N, rng)
    kappa = n.astype(np.float64) ** (-_WINDOW_BREAKING_POWER[side])
    direction = rng.permutation(np.repeat(np.arange(D), n))
    v = V[:, direction].T  # (N, D)
    h = kappa[direction][:, None, None] * (v[:, :, None] * v[:, None, :])
    return _symmetrize(h)


def wishart_hessians(S: Any, N: int, *, rng: np.random.Generator | int,
                     rank: int = 1) -> FloatArray:
    r"""h_p = Σ_{k≤r} x_{pk} x_{pk}ᵀ with x_{pk} ~ N(0, S) i.i.d.: squared-loss Hessians.

    For rank 1 this is the per-sample Hessian of linear regression ½(xᵀw − y)² with Gaussian
    inputs of covariance S; its population moments are :func:`population_wishart`.

    Parameters
    ----------
    S : (D, D) array
        Symmetric PSD input covariance.
    N : int
        Number of samples, ≥ 1.
    rng : numpy.random.Generator or int
    rank : int
        Number r ≥ 1 of outer products per sample.

    Returns
    -------
    h : (N, D, D) array

    References
    ----------
    Spec claim A7 (linear regression) and "Random families" (iii); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    S = _check_covariance(S)
    N = check_positive_int(N, "N")
    rng = check_rng(rng)
    rank = check_positive_int(rank, "rank")
    _check_dense(2 * N + 4, S.shape[0], "wishart_hessians")
    lam, V = np.linalg.eigh(S)
    S_sqrt = (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T
    X = S_sqrt @ rng.standard_normal((N, S.shape[0], rank))
    return _symmetrize(X @ np.swapaxes(X, 1, 2))


def population_wishart(S: Any, rank: int = 1) -> tuple[FloatArray, FloatArray]:
    r"""Exact H and M of h = Σ_{k≤r} x_k x_kᵀ, x_k ~ N(0, S) i.i.d. (Isserlis' theorem).

    .. math::
        H = r S, \qquad M = \mathbb{E}[h^2] = r(r+1) S^2 + r\,\mathrm{tr}(S)\, S

    In S's eigenbasis κ_eff,i = ((r+1)/r) λ_i + tr S: non-decreasing in λ_i while
    κ_eff,i/λ_i = (r+1)/r + tr S/λ_i is non-increasing, so the monotone condition of A3 holds
    and γ_fit ∈ [1, 2] on every window.

    Parameters
    ----------
    S : (D, D) array
        Symmetric PSD covariance.
    rank : int
        r ≥ 1.

    Returns
    -------
    H : (D, D) array
        H = r S.
    M : (D, D) array
        M = r(r+1) S² + r tr(S) S.

    References
    ----------
    Isserlis, Biometrika 12 (1918); spec claims A3 and A7; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    S = _check_covariance(S)
    rank = check_positive_int(rank, "rank")
    _check_dense(5, S.shape[0], "population_wishart")
    S2 = S @ S
    M = rank * (rank + 1) * S2 + rank * np.trace(S) * S
    return rank * S, _symmetrize(M)


def population_linear_regression(S: Any) -> tuple[FloatArray, FloatArray]:
    r"""Exact H and M for linear regression with Gaussian inputs: h_p = x_p x_pᵀ, x ~ N(0, S).

    .. math:: H = S, \qquad M = 2 S^2 + \mathrm{tr}(S)\, S, \qquad
              \kappa_{\mathrm{eff},i} = 2\lambda_i + \mathrm{tr}\,S

    so the monotone sufficient condition of A3 holds and γ_fit ∈ [1, 2] on every window.

    Parameters
    ----------
    S : (D, D) array
        Symmetric PSD input covariance.

    Returns
    -------
    H : (D, D) array
        H = S.
    M : (D, D) array
        M = 2 S² + tr(S) S.

    References
    ----------
    Spec claims A3 and A7; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    return population_wishart(S, 1)


def population_kronecker(G: Any, S: Any) -> tuple[FloatArray, FloatArray]:
    r"""Exact H and M of a dense layer with fixed output curvature G and inputs a ~ N(0, S).

    .. math::
        h = G \otimes a a^\top \;\Rightarrow\;
        H = G \otimes S, \qquad M = G^2 \otimes \mathbb{E}[\|a\|^2 a a^\top]
          = G^2 \otimes (2 S^2 + \mathrm{tr}(S)\, S)

    (row-major vec(W), as :func:`sgdnoise.theory.kronecker_hessians`).  With g_j, s_k the
    eigenvalues of G ≻ 0 and S, the eigen-directions of H form the product grid
    λ_jk = g_j s_k with κ_eff,jk = g_j (2 s_k + tr S).  Over the full grid, log κ_eff = log g_j +
    f(log s_k) with 0 ≤ f′ ≤ 1, so the OLS slope of log κ_eff on log λ is
    (Var log g + Cov(log s, f)) / (Var log g + Var log s) ∈ [0, 1], i.e. γ_fit ∈ [1, 2] on the
    full window; for out = 1 the monotone condition holds on every window.

    Parameters
    ----------
    G : (out, out) array
        Symmetric output-side curvature, shared by all samples.
    S : (inn, inn) array
        Symmetric PSD input covariance.

    Returns
    -------
    H : (D, D) array
        H = G ⊗ S, with D = out·inn.
    M : (D, D) array
        M = G² ⊗ (2 S² + tr(S) S).

    References
    ----------
    Spec part A, "Dense-layer structure", claim A3; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    G = _symmetrize(check_square(G, "G", symmetric=True))
    S = _check_covariance(S)
    _check_dense(5, G.shape[0] * S.shape[0], "population_kronecker")
    H = np.kron(G, S)
    M = np.kron(G @ G, 2.0 * (S @ S) + np.trace(S) * S)
    return _symmetrize(H), _symmetrize(M)


__all__ = [
    "MAX_DECADES",
    "WINDOW_BREAKING_EXPONENTS",
    "commuting_pair",
    "identical_hessians",
    "kronecker_family",
    "kronecker_family_hessians",
    "log_uniform_spectrum",
    "noncommuting_pair",
    "population_kronecker",
    "population_linear_regression",
    "population_wishart",
    "random_psd",
    "random_rank_r",
    "random_symmetric",
    "rank_one_equal_curvature",
    "symmetric_hessians",
    "window_breaking_family",
    "wishart_hessians",
]

r"""Approximate commutation of C and H (spec claim A5) and its spectrum-preserving random baseline.

.. math:: \varepsilon(C, H) = \frac{\|CH - HC\|_F}{\|C\|_F\,\|H\|_F}

The baseline keeps both spectra and replaces the eigenvectors by Haar-random rotations.  By
invariance of the Haar measure it suffices to rotate C in H's eigenbasis.  Its mean square has a
closed form (fourth moments of a Haar orthogonal matrix, i ≠ j):

.. math::
    \mathbb{E}\|[Q\Lambda_C Q^\top, \Lambda_H]\|_F^2 =
    \frac{(D\,\mathrm{tr}\Lambda_C^2 - (\mathrm{tr}\Lambda_C)^2)\,
          2(D\,\mathrm{tr}\Lambda_H^2 - (\mathrm{tr}\Lambda_H)^2)}{(D-1)D(D+2)}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_positive_int, check_rng, check_square
from sgdnoise.theory._eigenbasis import EigenBasis, eigenbasis


def _pair(C: FloatArray, H: FloatArray) -> tuple[FloatArray, FloatArray]:
    C = check_square(C, "C", symmetric=True)
    H = check_square(H, "H", symmetric=True)
    if C.shape != H.shape:
        raise ValueError(f"C and H must have the same shape; got {C.shape} and {H.shape}")
    if not np.any(C) or not np.any(H):
        raise ValueError("C and H must be non-zero for a relative commutator")
    return C, H


def commutation_error(C: FloatArray, H: FloatArray) -> float:
    r"""ε(C, H) = ‖CH − HC‖_F / (‖C‖_F ‖H‖_F), 0 for commuting pairs, at most √2.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5).
    """
    C, H = _pair(C, H)
    CH = C @ H
    return float(np.linalg.norm(CH - CH.T) / (np.linalg.norm(C) * np.linalg.norm(H)))


def haar_orthogonal(D: int, rng: np.random.Generator | int) -> FloatArray:
    """A Haar-distributed D×D orthogonal matrix (QR of a Gaussian matrix with sign correction).

    References
    ----------
    Mezzadri, "How to generate random matrices from the classical compact groups",
    Notices AMS 54 (2007).
    """
    D = check_positive_int(D, "D")
    rng = check_rng(rng)
    check_allocation(3 * D * D * 8, f"haar_orthogonal: a {D}x{D} orthogonal matrix")
    Q, R = np.linalg.qr(rng.standard_normal((D, D)))
    return Q * np.sign(np.diag(R))


def _seed_and_generator(rng: np.random.Generator | int) -> tuple[int | None, np.random.Generator]:
    """The integer seed to record (None for a Generator) and the generator to draw from."""
    seed = int(rng) if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) else None
    return seed, check_rng(rng)


def _commutator_in_basis(C_eig: FloatArray, lam: FloatArray) -> float:
    """‖[C_eig, diag(lam)]‖_F, using [A, Λ]_ij = A_ij (λ_j − λ_i)."""
    diff = lam[None, :] - lam[:, None]
    return float(np.sqrt(np.sum((C_eig * diff) ** 2)))


def expected_random_commutator(eig_C: FloatArray, eig_H: FloatArray) -> float:
    r"""Root-mean-square ε under the Haar baseline, in closed form (see module docstring).

    References
    ----------
    Moments of Haar orthogonal matrices: Collins & Śniady, Commun. Math. Phys. 264 (2006);
    spec claim A5 (baseline).
    """
    a = np.asarray(eig_C, dtype=np.float64)
    h = np.asarray(eig_H, dtype=np.float64)
    if a.shape != h.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("eig_C and eig_H must be 1-D of equal length >= 2")
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(h)):
        raise ValueError("eig_C and eig_H must be finite")
    if not np.any(a) or not np.any(h):
        raise ValueError("eig_C and eig_H must not be all zero: the relative commutator is undefined")
    D = a.size
    num = (D * (a @ a) - a.sum() ** 2) * 2 * (D * (h @ h) - h.sum() ** 2) / ((D - 1) * D * (D + 2))
    return float(np.sqrt(max(num, 0.0)) / (np.linalg.norm(a) * np.linalg.norm(h)))


@dataclass(frozen=True)
class RandomBaseline:
    """Seeded Monte-Carlo of ε under Haar-random eigenvectors (spectra kept).

    Attributes
    ----------
    mean : float
        Mean of ``samples``.
    std : float
        Standard deviation of ``samples`` (ddof = 1; 0 for a single sample).
    samples : (num_samples,) array
        ε of each Haar draw, in draw order.
    expected_rms : float
        Closed-form root-mean-square (:func:`expected_random_commutator`).
    seed : int or None
        The integer seed passed as ``rng``, which reproduces ``samples``; None when a
        ``Generator`` was passed.
    """

    mean: float
    std: float
    samples: FloatArray = field(repr=False)
    expected_rms: float
    seed: int | None


def random_commutation_baseline(C: FloatArray, H: FloatArray, *, num_samples: int = 8,
                                rng: np.random.Generator | int = 0,
                                basis: EigenBasis | None = None) -> RandomBaseline:
    r"""Spectrum-preserving random baseline of ε(C, H).

    Each sample draws a Haar orthogonal Q and evaluates ε(QΛ_CQᵀ, Λ_H) in H's eigenbasis, which by
    Haar invariance has the law of ε with both eigenbases replaced independently.

    Parameters
    ----------
    C : (D, D) symmetric array
        Noise covariance (ε is invariant to its scale).
    H : (D, D) symmetric array
        Mean Hessian.
    num_samples : int
        Monte-Carlo draws (each costs one D×D QR and two GEMMs); 0 uses the closed-form
        root-mean-square instead (``mean = expected_rms``, ``std = 0``, no samples).
    rng : Generator or int
        Seed or generator; an int seed is recorded in the result.
    basis : EigenBasis, optional
        H's eigendecomposition, if already computed.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5).
    """
    C, H = _pair(C, H)
    num_samples = check_positive_int(num_samples, "num_samples", minimum=0)
    seed, rng = _seed_and_generator(rng)
    eb = basis if basis is not None else eigenbasis(H)
    return _baseline(np.linalg.eigvalsh(C), eb.lam, num_samples, rng, seed)


def _baseline(eig_C: FloatArray, lam: FloatArray, num_samples: int, rng: np.random.Generator,
              seed: int | None) -> RandomBaseline:
    norm = np.linalg.norm(eig_C) * np.linalg.norm(lam)
    expected = expected_random_commutator(eig_C, lam)
    out = np.empty(num_samples)
    for s in range(num_samples):
        Q = haar_orthogonal(lam.size, rng)
        C_rot = (Q * eig_C) @ Q.T
        out[s] = _commutator_in_basis(C_rot, lam) / norm
    if num_samples == 0:
        return RandomBaseline(mean=expected, std=0.0, samples=out, expected_rms=expected,
                              seed=seed)
    return RandomBaseline(mean=float(out.mean()),
                          std=float(out.std(ddof=1)) if num_samples > 1 else 0.0, samples=out,
                          expected_rms=expected, seed=seed)


def window_commutation(C_eig: FloatArray, lam: FloatArray, window: slice | np.ndarray) -> float:
    r"""Windowed commutation error on P_S = V_S V_Sᵀ, computed in H's eigenbasis.

    .. math:: \frac{\|P_S [C,H] P_S\|_F}{\|P_S C P_S\|_F\,\|P_S H P_S\|_F}

    Parameters
    ----------
    C_eig : (D, D) array
        VᵀCV with V the eigenvectors of H (descending order).
    lam : (D,) array
        Eigenvalues of H in the same order.
    window : slice or index array
        The eigen-directions S (e.g. ``slice(0, k)`` for the top-k).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5, eigen-windows).
    """
    idx = np.arange(lam.size)[window]
    if idx.size < 1:
        raise ValueError("window selects no eigen-direction")
    sub = C_eig[np.ix_(idx, idx)]
    l_s = lam[idx]
    denom = np.linalg.norm(sub) * np.linalg.norm(l_s)
    if denom == 0:
        raise ValueError("window has zero C or H block: the relative commutator is undefined")
    return _commutator_in_basis(sub, l_s) / float(denom)


def diagonal_energy(C_eig: FloatArray) -> float:
    r"""Fraction of C's Frobenius energy on the diagonal of H's eigenbasis, ‖diag(VᵀCV)‖²/‖VᵀCV‖²_F.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5, companion metrics).
    """
    C_eig = check_square(C_eig, "C_eig")
    total = float(np.sum(C_eig**2))
    if total == 0:
        raise ValueError("C_eig is zero: diagonal energy is undefined")
    return float(np.sum(np.diag(C_eig) ** 2)) / total


@dataclass(frozen=True)
class CommutationReport:
    """All A5 metrics for one (C, H) pair.

    Attributes
    ----------
    epsilon : float
        ε(C, H).
    baseline : RandomBaseline
        Spectrum-preserving Haar baseline of ε for the same pair
        (:func:`random_commutation_baseline`).
    ratio : float
        epsilon / baseline.mean (≪ 1 means "approximately commuting").
    windows : dict[str, float]
        Windowed errors, e.g. ``{"top": …, "bulk": …}``.
    diagonal_energy : float
        Fraction of C's Frobenius energy on the diagonal of H's eigenbasis
        (:func:`diagonal_energy`); 1 when C and H commute and H has distinct eigenvalues.
    spearman : float or None
        Spearman rank correlation of C_ii and λ_i (None when either is constant).
    """

    epsilon: float
    baseline: RandomBaseline
    ratio: float
    windows: dict[str, float]
    diagonal_energy: float
    spearman: float | None


def commutation_metrics(C: FloatArray, H: FloatArray, *, top_k: int | None = None,
                        num_baseline: int = 8, rng: np.random.Generator | int = 0,
                        basis: EigenBasis | None = None) -> CommutationReport:
    r"""ε(C, H), its random baseline, top-k and bulk windows, diagonal energy and Spearman ρ.

    Parameters
    ----------
    C : (D, D) symmetric array
        Noise covariance (ε is invariant to its scale).
    H : (D, D) symmetric array
        Mean Hessian; its eigenbasis defines the windows.
    top_k : int, optional
        Size of the top window (default: max(2, D // 10), at most D − 1); the bulk window is
        the rest.
    num_baseline : int
        Haar samples for the baseline (0: closed-form root-mean-square only).
    rng : Generator or int
        Seed or generator of the baseline; an int seed is recorded in ``baseline.seed``.
    basis : EigenBasis, optional
        H's eigendecomposition, if already computed.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A5).
    """
    C, H = _pair(C, H)
    D = C.shape[0]
    eb = basis if basis is not None else eigenbasis(H)
    if D < 2:
        raise ValueError(f"C and H must be at least 2x2 for windows; got D = {D}")
    k = min(max(2, D // 10), D - 1) if top_k is None else check_positive_int(top_k, "top_k")
    if k >= D:
        raise ValueError(f"top_k must be < D = {D}; got {k}")
    num_baseline = check_positive_int(num_baseline, "num_baseline", minimum=0)
    seed, rng = _seed_and_generator(rng)
    C_eig = eb.V.T @ C @ eb.V
    C_eig = 0.5 * (C_eig + C_eig.T)
    eps = _commutator_in_basis(C_eig, eb.lam) / float(np.linalg.norm(C_eig) * np.linalg.norm(eb.lam))
    base = _baseline(np.linalg.eigvalsh(C_eig), eb.lam, num_baseline, rng, seed)
    windows = {"top": window_commutation(C_eig, eb.lam, slice(0, k))}
    if D - k >= 2:
        windows["bulk"] = window_commutation(C_eig, eb.lam, slice(k, D))
    C_ii = np.diag(C_eig)
    rho = (float(scipy.stats.spearmanr(C_ii, eb.lam).statistic)
           if np.ptp(C_ii) > 0 and np.ptp(eb.lam) > 0 else None)
    return CommutationReport(epsilon=eps, baseline=base, ratio=eps / base.mean, windows=windows,
                             diagonal_energy=diagonal_energy(C_eig), spearman=rho)


__all__ = [
    "CommutationReport",
    "RandomBaseline",
    "commutation_error",
    "commutation_metrics",
    "diagonal_energy",
    "expected_random_commutator",
    "haar_orthogonal",
    "random_commutation_baseline",
    "window_commutation",
]

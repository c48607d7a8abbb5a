"""Synthetic data sets, drawn from an explicit ``numpy.random.Generator``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_positive, check_positive_int, check_rng
from sgdnoise.sim._overflow import finite_result


class RegressionData(NamedTuple):
    """Inputs ``x`` (N, d), targets ``y`` (N,), and the teacher ``w_star`` (d,) that made them."""

    x: FloatArray
    y: FloatArray
    w_star: FloatArray


class ClassificationData(NamedTuple):
    """Inputs ``x`` (N, d) and integer labels ``y`` (N,) in ``range(num_classes)``."""

    x: FloatArray
    y: IntArray
    num_classes: int


@finite_result
def gaussian_regression(N: int, S: FloatArray, *, sigma: float, rng: np.random.Generator,
                        w_star: FloatArray | None = None) -> RegressionData:
    r"""Teacher–student linear regression: x ~ N(0, S), y = w*ᵀx + ε, ε ~ N(0, σ²).

    Parameters
    ----------
    N : int
        Number of samples.
    S : (d, d) array
        Input covariance (symmetric PSD).
    sigma : float
        Label-noise standard deviation (≥ 0).
    rng : numpy.random.Generator
    w_star : (d,) array, optional
        Teacher weights; drawn N(0, I/d) if omitted.

    References
    ----------
    Spec claims A7 (Isserlis form of Σ₁) and C1.
    """
    N = check_positive_int(N, "N")
    S = as_float_array(S, "S", ndim=2)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"S must be square; got shape {S.shape}")
    sigma = check_positive(sigma, "sigma", allow_zero=True)
    rng = check_rng(rng)
    d = S.shape[0]
    eig, vec = np.linalg.eigh(0.5 * (S + S.T))
    if eig.min() < -1e-12 * max(abs(eig.max()), 1e-300):
        raise ValueError("S must be positive semi-definite")
    root = vec * np.sqrt(np.clip(eig, 0, None))
    x = rng.standard_normal((N, d)) @ root.T
    if w_star is None:
        w_star = rng.standard_normal(d) / np.sqrt(d)
    w_star = as_float_array(w_star, "w_star", ndim=1)
    if w_star.shape != (d,):
        raise ValueError(f"w_star must have shape ({d},); got {w_star.shape}")
    y = x @ w_star + sigma * rng.standard_normal(N)
    return RegressionData(x=x, y=y, w_star=w_star)


@finite_result
def gaussian_mixture(N: int, d: int, num_classes: int, *, rng: np.random.Generator,
                     separation: float = 2.0, decades: float = 1.0) -> ClassificationData:
    r"""Gaussian-mixture classification: class means at distance ~``separation``, anisotropic noise.

    Class k has mean μ_k ~ separation·N(0, I/d)·√d/√2 and covariance diag(s) with s log-spaced over
    ``decades`` decades (so the input spectrum, and hence the Hessian's, spans several scales);
    labels are balanced (N // num_classes per class, remainder to the first classes).

    References
    ----------
    Spec part A, "Experiments" (synthetic stand-in for the paper's class subsets).
    """
    N = check_positive_int(N, "N")
    d = check_positive_int(d, "d")
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
    separation = check_positive(separation, "separation", allow_zero=True)
    decades = check_positive(decades, "decades", allow_zero=True)
    rng = check_rng(rng)
    means = separation * rng.standard_normal((num_classes, d)) / np.sqrt(2.0)
    scales = np.logspace(0, -decades / 2, d)
    y = np.arange(N) % num_classes
    rng.shuffle(y)
    x = means[y] + rng.standard_normal((N, d)) * scales
    return ClassificationData(x=x, y=y.astype(np.int64), num_classes=num_classes)


__all__ = ["ClassificationData", "RegressionData", "gaussian_mixture", "gaussian_regression"]

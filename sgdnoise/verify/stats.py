"""Small statistics shared by the claims: binomial intervals and standard-error z-scores."""

from __future__ import annotations

import numpy as np
from scipy import stats

from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_positive, check_positive_int


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval for a binomial proportion.

    .. math::
        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}
             {1 + \frac{z^2}{n}}, \qquad z = \Phi^{-1}\!\left(\tfrac{1 + \text{confidence}}{2}\right).

    Unlike the normal (Wald) interval it stays inside [0, 1] and has a non-zero width at
    p̂ = 0 and p̂ = 1, where the escape counts of SPEC B3 often sit.  Computed by
    ``scipy.stats.binomtest(successes, trials).proportion_ci(method="wilson")``; this wrapper
    validates the counts and returns plain floats.

    Parameters
    ----------
    successes, trials : int
        0 ≤ successes ≤ trials, trials ≥ 1.
    confidence : float
        Two-sided coverage in (0, 1).

    Returns
    -------
    (low, high) : tuple of float

    References
    ----------
    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    J. Am. Stat. Assoc. 22 (1927) 209–212 (used for spec claim B3).
    """
    n = check_positive_int(trials, "trials")
    if isinstance(successes, bool) or not isinstance(successes, (int, np.integer)):
        raise ValueError(f"successes must be an integer; got {successes!r}")  # noqa: TRY004
    k = int(successes)
    if not 0 <= k <= n:
        raise ValueError(f"successes must be in [0, trials]; got {successes} of {trials}")
    c = check_positive(confidence, "confidence")
    if c >= 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=c, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def z_scores(measured: FloatArray, predicted: FloatArray, standard_error: FloatArray) -> FloatArray:
    """(measured − predicted) / standard_error, elementwise; a zero standard error needs equality.

    Where the standard error is zero the score is 0 if measured equals predicted and inf
    otherwise, so a degenerate estimator can never pass by division by zero.
    """
    m = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    se = np.asarray(standard_error, dtype=np.float64)
    if np.any(se < 0) or not np.all(np.isfinite(se)):
        raise ValueError("standard_error must be finite and non-negative")
    diff = m - p
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
    return z


__all__ = ["wilson_interval", "z_scores"]

r"""Censored first-passage statistics: Kaplan–Meier survival, restricted mean, exponential rate.

A first-passage experiment runs R replicas for at most K steps; replica i reports a time
tᵢ and a flag: either the level was reached at tᵢ (an *event*) or it was not reached by tᵢ = K
(*right-censored*: the passage time is only known to exceed K).  Every estimator here uses the
censored runs; none drops them (dropping them would bias the mean passage time downwards).

The product-limit estimate comes from ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``.
SciPy has no restricted mean survival time, and its censored exponential fit
(``scipy.stats.expon.fit`` on ``CensoredData``) maximises the likelihood numerically, so the
restricted mean and the closed-form MLE d/E (with its robust standard error) are written here.

References
----------
E. L. Kaplan, P. Meier, J. Am. Stat. Assoc. 53 (1958) 457 (product-limit estimator);
M. Greenwood, Reports on Public Health 33 (1926) (variance); J. F. Lawless, *Statistical Models
and Methods for Lifetime Data*, 2nd ed. (2003), §1.2, §2.2, §3.5 (exponential MLE with
censoring, restricted mean).  Used for spec claims C3 and C4 (Mori et al., arXiv:2105.09557).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_positive


class SurvivalCurve(NamedTuple):
    """Kaplan–Meier estimate at the distinct event times.

    Attributes
    ----------
    times : (m,) array
        Distinct event times, increasing.
    survival : (m,) array
        Ŝ(t) just after each event time (right-continuous step function, Ŝ = 1 before the
        first event).
    standard_error : (m,) array
        Greenwood standard error of Ŝ.
    at_risk, events : (m,) arrays
        Number at risk just before, and number of events at, each time.
    """

    times: FloatArray
    survival: FloatArray
    standard_error: FloatArray
    at_risk: FloatArray
    events: FloatArray


class RateEstimate(NamedTuple):
    """Exponential escape-rate MLE with right-censoring.

    Attributes
    ----------
    rate : float
        κ̂ = d / E (events per unit exposure time).
    standard_error : float
        Model-based s.e. κ̂/√d (exact asymptotics when passage times are exponential).
    robust_standard_error : float
        Ratio-estimator (sandwich) s.e. √(Σ(dᵢ − κ̂eᵢ)²)/E, valid without the exponential
        assumption; with no censoring 1/κ̂ is the sample mean and this gives its usual s.e.
    events : int
        d, the number of uncensored runs.
    exposure : float
        E = Σᵢ eᵢ, the total observed time (events at their passage time, censored runs at
        their censoring time).
    mean_time : float
        1/κ̂, the mean first-passage time under the exponential model (the sample mean when
        nothing is censored).
    log_mean_time_se : float
        s.e. of log(1/κ̂) from the robust s.e. (robust s.e./κ̂).
    """

    rate: float
    standard_error: float
    robust_standard_error: float
    events: int
    exposure: float
    mean_time: float
    log_mean_time_se: float


class RestrictedMean(NamedTuple):
    """Restricted mean survival time μ(τ) = ∫₀^τ Ŝ(t) dt with its standard error."""

    mean: float
    standard_error: float
    tau: float


def _check(times: Any, censored: Any) -> tuple[FloatArray, np.ndarray]:
    t = as_float_array(times, "times", ndim=1)
    if t.size == 0:
        raise ValueError("times must not be empty")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0")
    c = np.asarray(censored)
    if c.dtype != np.bool_:
        raise ValueError(f"censored must be a boolean array; got dtype {c.dtype}")
    if c.shape != t.shape:
        raise ValueError(f"censored must have the shape of times {t.shape}; got {c.shape}")
    return t, c


def kaplan_meier(times: Any, censored: Any) -> SurvivalCurve:
    r"""Kaplan–Meier (product-limit) survival function with Greenwood standard errors.

    .. math::
        \hat S(t) = \prod_{t_j \le t}\Big(1 - \frac{d_j}{n_j}\Big), \qquad
        \widehat{\mathrm{Var}}\,\hat S(t) = \hat S(t)^2 \sum_{t_j\le t}\frac{d_j}{n_j(n_j-d_j)}

    with d_j events at the distinct event time t_j and n_j runs at risk just before it (runs
    censored at t_j count as at risk at t_j: events precede censoring at ties).

    Ŝ is computed by ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData(uncensored=…,
    right=…)`` and kept at the event times; the counts n_j, d_j and Greenwood's standard
    error are those behind ``ecdf(...).sf.confidence_interval(method="linear")``, whose
    band Ŝ ± z·s.e. (clipped to [0, 1]) this standard error reproduces.  For a band with
    better coverage near 0 and 1 use that method with ``method="log-log"``.

    Parameters
    ----------
    times : (R,) array
        Event or censoring times, ≥ 0.
    censored : (R,) bool array
        True where the run did not reach the level (time = censoring time).

    Returns
    -------
    SurvivalCurve

    References
    ----------
    Kaplan & Meier (1958); Greenwood (1926) (spec claims C3, C4: censored passage times).
    """
    t, c = _check(times, censored)
    event_times = np.unique(t[~c])
    sf = stats.ecdf(stats.CensoredData(uncensored=t[~c], right=t[c])).sf
    # scipy's step function is evaluated at every distinct time (censoring times included);
    # the curve is reported at the event times, where it changes
    at = np.searchsorted(sf.quantiles, event_times)
    survival = np.asarray(sf.probabilities, dtype=np.float64)[at]
    # at risk before u: runs with time >= u; events at u: uncensored runs with time == u
    at_risk = (t.size - np.searchsorted(np.sort(t), event_times, side="left")).astype(np.float64)
    ev_sorted = np.sort(t[~c])
    events = (np.searchsorted(ev_sorted, event_times, side="right")
              - np.searchsorted(ev_sorted, event_times, side="left")).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
    se = survival * np.sqrt(np.cumsum(terms))
    return SurvivalCurve(event_times, survival, se, at_risk, events)


def restricted_mean(times: Any, censored: Any, tau: float | None = None) -> RestrictedMean:
    r"""Restricted mean first-passage time μ(τ) = E min(T, τ) = ∫₀^τ Ŝ(t) dt.

    .. math::
        \hat\mu(\tau) = \int_0^\tau \hat S(t)\,dt, \qquad
        \widehat{\mathrm{Var}}\,\hat\mu = \sum_{t_j \le \tau}
        \frac{A_j^2\, d_j}{n_j (n_j - d_j)}, \quad A_j = \int_{t_j}^{\tau}\hat S(t)\,dt

    It equals the sample mean when nothing is censored (τ ≥ max time) and is a lower bound of
    the mean otherwise: it never drops censored runs.

    Parameters
    ----------
    times, censored
        As in :func:`kaplan_meier`.
    tau : float, optional
        Horizon (default: the largest time, e.g. the censoring step).

    Returns
    -------
    RestrictedMean

    References
    ----------
    Lawless (2003), §3.5; Kaplan & Meier (1958) (spec claims C3, C4).
    """
    t, c = _check(times, censored)
    tau = float(t.max()) if tau is None else check_positive(tau, "tau")
    km = kaplan_meier(t, c)
    keep = km.times <= tau
    tj = km.times[keep]
    S = km.survival[keep]
    knots = np.concatenate([[0.0], tj, [tau]])
    levels = np.concatenate([[1.0], S])
    pieces = levels * np.diff(knots)
    mean = float(pieces.sum())
    # A_j = area from t_j to tau = sum of pieces after knot j
    tail = np.cumsum(pieces[::-1])[::-1][1:]
    n, d = km.at_risk[keep], km.events[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > d, d / (n * (n - d)), 0.0)
    var = float(np.sum(tail**2 * w))
    if t.size > 1 and not c.any() and tau >= t.max():
        var = float(np.var(t, ddof=1) / t.size)
    return RestrictedMean(mean, math.sqrt(var), tau)


def exponential_rate(times: Any, censored: Any) -> RateEstimate:
    r"""Maximum-likelihood escape rate of exponential passage times under right-censoring.

    .. math::
        \hat\kappa = \frac{d}{E}, \quad d = \#\{\text{events}\}, \quad E = \sum_i e_i,
        \qquad \mathrm{s.e.} = \frac{\hat\kappa}{\sqrt d}, \qquad
        \mathrm{s.e.}_{\text{robust}} = \frac{\sqrt{\sum_i (\delta_i - \hat\kappa e_i)^2}}{E}

    (eᵢ the observed time of run i, δᵢ = 1 for an event).  Censored runs contribute their
    exposure eᵢ to E and nothing to d; with no censoring 1/κ̂ is the sample mean.

    Parameters
    ----------
    times, censored
        As in :func:`kaplan_meier`.

    Returns
    -------
    RateEstimate

    Raises
    ------
    ValueError
        If no run has an event (the rate is then not estimable: only a bound) or the exposure
        is zero.

    References
    ----------
    Lawless (2003), §2.2 (exponential MLE with censoring); spec claims C3, C4.
    """
    t, c = _check(times, censored)
    d = int(np.count_nonzero(~c))
    E = float(t.sum())
    if d == 0:
        raise ValueError("censored: every run is censored, so the rate is not estimable "
                         "(run longer or lower the level)")
    if E <= 0:
        raise ValueError("times: the total exposure is zero")
    rate = d / E
    delta = (~c).astype(np.float64)
    robust = math.sqrt(float(np.sum((delta - rate * t) ** 2))) / E
    return RateEstimate(rate, rate / math.sqrt(d), robust, d, E, 1.0 / rate, robust / rate)


__all__ = ["RateEstimate", "RestrictedMean", "SurvivalCurve", "exponential_rate", "kaplan_meier",
           "restricted_mean"]

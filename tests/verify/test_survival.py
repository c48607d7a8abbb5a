"""Censored first-passage statistics against brute-force references."""

import math

import numpy as np
import pytest

from sgdnoise.verify.survival import exponential_rate, kaplan_meier, restricted_mean


def _km_bruteforce(t, c, u):
    s = 1.0
    for tj in np.unique(t[~c]):
        if tj > u:
            break
        n = np.sum(t >= tj)
        d = np.sum((t == tj) & ~c)
        s *= 1 - d / n
    return s


def test_kaplan_meier_matches_the_product_limit_definition():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 30, 200).astype(float)
    c = rng.random(200) < 0.3
    km = kaplan_meier(t, c)
    for tj, s in zip(km.times, km.survival, strict=True):
        assert s == pytest.approx(_km_bruteforce(t, c, tj), rel=1e-12)


def test_without_censoring_everything_reduces_to_the_sample_mean():
    rng = np.random.default_rng(1)
    t = rng.exponential(3.0, 500)
    c = np.zeros(500, dtype=bool)
    rm = restricted_mean(t, c)
    est = exponential_rate(t, c)
    assert rm.mean == pytest.approx(t.mean(), rel=1e-12)
    assert rm.standard_error == pytest.approx(t.std(ddof=1) / math.sqrt(500), rel=1e-12)
    assert est.mean_time == pytest.approx(t.mean(), rel=1e-12)
    # robust s.e. of 1/κ̂ equals sd/√n with the 1/n variance
    assert est.log_mean_time_se * est.mean_time == pytest.approx(t.std() / math.sqrt(500),
                                                                rel=1e-10)


def test_exponential_mle_with_censoring_is_unbiased_within_its_error():
    # True rate 0.2; censoring at 4 (about 45 % censored).  The MLE d/E has asymptotic s.e.
    # κ/√d; over 5000 runs d ≈ 2750, so s.e. ≈ 0.2/52 ≈ 0.004: accept 4 s.e.
    rng = np.random.default_rng(2)
    t = rng.exponential(5.0, 5000)
    c = t > 4.0
    t = np.minimum(t, 4.0)
    est = exponential_rate(t, c)
    assert abs(est.rate - 0.2) <= 4 * est.standard_error
    assert est.robust_standard_error == pytest.approx(est.standard_error, rel=0.1)
    naive = 1.0 / t[~c].mean()            # dropping censored runs is badly biased
    assert abs(naive - 0.2) > 10 * est.standard_error


def test_restricted_mean_with_censoring_estimates_e_min_t_tau():
    # E min(T, τ) = (1 − e^{−λτ})/λ for exponential T; Greenwood-type s.e. from the estimator.
    rng = np.random.default_rng(3)
    t = rng.exponential(5.0, 4000)
    c = t > 6.0
    rm = restricted_mean(np.minimum(t, 6.0), c, tau=6.0)
    truth = 5.0 * (1 - math.exp(-6.0 / 5.0))
    assert abs(rm.mean - truth) <= 4 * rm.standard_error


@pytest.mark.parametrize(("times", "censored", "name"), [
    ([], [], "times"), ([1.0, -1.0], [False, False], "times"), ([1.0], [0], "censored"),
    ([1.0, 2.0], [False], "censored"), ([1.0, 2.0], [True, True], "censored"),
])
def test_invalid_inputs_name_the_argument(times, censored, name):
    with pytest.raises(ValueError, match=name):
        exponential_rate(np.asarray(times, dtype=float), np.asarray(censored))


# ------------------------------------------------------------------- scipy vs the written-out form


def _kaplan_meier_reference(t, c):
    """The product-limit estimate and Greenwood s.e. written out with numpy (the reference the
    scipy-based :func:`kaplan_meier` must reproduce)."""
    event_times = np.unique(t[~c])
    at_risk = t.size - np.searchsorted(np.sort(t), event_times, side="left")
    ev_sorted = np.sort(t[~c])
    events = (np.searchsorted(ev_sorted, event_times, side="right")
              - np.searchsorted(ev_sorted, event_times, side="left"))
    at_risk, events = at_risk.astype(float), events.astype(float)
    survival = np.cumprod(1.0 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
    return event_times, survival, survival * np.sqrt(np.cumsum(terms)), at_risk, events


def _censored_samples():
    rng = np.random.default_rng(7)
    yield rng.integers(0, 30, 200).astype(float), rng.random(200) < 0.3      # many ties
    t = rng.exponential(5.0, 500)
    yield np.minimum(t, 6.0), t > 6.0                                      # censored at a horizon
    yield rng.exponential(1.0, 50), np.zeros(50, dtype=bool)               # no censoring
    yield np.array([1.0, 2.0, 2.0, 5.0, 2.0, 3.0, 7.0]), np.array(
        [False, False, False, False, True, True, True])                     # a tie event/censored
    yield np.array([3.0, 4.0]), np.array([True, True])                    # every run censored
    yield np.array([0.0, 0.0, 1.0]), np.array([False, False, False])        # events at t = 0, S → 0


@pytest.mark.parametrize("case", range(6))
def test_kaplan_meier_agrees_with_the_written_out_reference(case):
    t, c = list(_censored_samples())[case]
    km = kaplan_meier(t, c)
    ref = _kaplan_meier_reference(t, c)
    for got, want in zip(km, ref, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [0, 1, 3])   # (2 ends at Ŝ = 0, where scipy's band is NaN)
def test_greenwood_standard_error_reproduces_scipys_band(case):
    from scipy import stats

    t, c = list(_censored_samples())[case]
    km = kaplan_meier(t, c)
    sf = stats.ecdf(stats.CensoredData(uncensored=t[~c], right=t[c])).sf
    ci = sf.confidence_interval(0.9, method="linear")
    z = stats.norm.ppf(0.95)
    at = np.searchsorted(sf.quantiles, km.times)
    finite = np.isfinite(km.standard_error)
    np.testing.assert_allclose(np.clip(km.survival - z * km.standard_error, 0, 1)[finite],
                               ci.low.probabilities[at][finite], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.clip(km.survival + z * km.standard_error, 0, 1)[finite],
                               ci.high.probabilities[at][finite], rtol=1e-12, atol=1e-12)


def _restricted_mean_reference(t, c, tau):
    """μ(τ) by brute force: the area under the reference step function, pieces added one by one."""
    times, survival, _, n, d = _kaplan_meier_reference(t, c)
    area, last, level, var_terms = 0.0, 0.0, 1.0, []
    for tj, s, nj, dj in zip(times, survival, n, d, strict=True):
        if tj > tau:
            break
        area += level * (tj - last)
        last, level = tj, s
        var_terms.append((tj, dj / (nj * (nj - dj)) if nj > dj else 0.0))
    area += level * (tau - last)
    var = 0.0
    for tj, w in var_terms:   # A_j = ∫_{t_j}^τ Ŝ, integrated piece by piece
        A, lo, lev = 0.0, tj, None
        for tk, s in zip(times, survival, strict=True):
            if tk < tj:
                continue
            if lev is not None:
                A += lev * (min(tk, tau) - lo)
                lo = min(tk, tau)
            lev = s
            if tk >= tau:
                break
        A += lev * (tau - lo) if lo < tau else 0.0
        var += A * A * w
    return area, var


@pytest.mark.parametrize("case", [0, 1, 3])
def test_restricted_mean_agrees_with_a_brute_force_area(case):
    t, c = list(_censored_samples())[case]
    tau = float(t.max())
    rm = restricted_mean(t, c, tau=tau)
    area, var = _restricted_mean_reference(t, c, tau)
    assert rm.mean == pytest.approx(area, rel=1e-12)
    assert rm.standard_error == pytest.approx(math.sqrt(var), rel=1e-10)

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

"""Wilson intervals and z-scores used by the claims."""

import math

import numpy as np
import pytest
from scipy import stats

from sgdnoise.verify.stats import wilson_interval, z_scores


def _wilson_closed_form(k, n, confidence=0.95):
    """The Wilson score interval written out (the reference the scipy-based version must match)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("n", [1, 2, 7, 40, 1000, 7000])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.999])
def test_wilson_agrees_with_the_closed_form(n, confidence):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n} - {-1}):
        lo, hi = wilson_interval(k, n, confidence=confidence)
        ref_lo, ref_hi = _wilson_closed_form(k, n, confidence)
        assert abs(lo - ref_lo) <= 1e-12 and abs(hi - ref_hi) <= 1e-12, (k, n)
        assert isinstance(lo, float) and isinstance(hi, float)


def test_wilson_matches_closed_form_and_scipy():
    lo, hi = wilson_interval(7, 40)
    ref = stats.binomtest(7, 40).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ref.low, rel=1e-12)
    assert hi == pytest.approx(ref.high, rel=1e-12)


@pytest.mark.parametrize("k", [0, 40])
def test_wilson_has_width_at_the_edges(k):
    lo, hi = wilson_interval(k, 40)
    assert 0.0 <= lo < hi <= 1.0
    assert hi - lo > 0.05


def test_wilson_coverage_by_enumeration():
    # Exact coverage over the binomial law (no sampling): close to 95 % for moderate n, p.
    n, p = 60, 0.3
    k = np.arange(n + 1)
    covered = np.array([lo <= p <= hi for lo, hi in (wilson_interval(int(i), n) for i in k)])
    coverage = stats.binom.pmf(k, n, p)[covered].sum()
    assert 0.93 <= coverage <= 0.97


@pytest.mark.parametrize(("args", "name"), [
    ((5, 0), "trials"), ((-1, 10), "successes"), ((11, 10), "successes"),
    ((2.5, 10), "successes"), ((True, 10), "successes"),
])
def test_wilson_rejects_bad_counts(args, name):
    with pytest.raises(ValueError, match=name):
        wilson_interval(*args)


def test_wilson_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 10, confidence=1.0)


def test_z_scores_handle_zero_standard_error():
    z = z_scores([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], [0.0, 0.25, 0.5])
    np.testing.assert_array_equal(z, [0.0, -2.0, 0.0])
    assert np.isinf(z_scores([1.0], [2.0], [0.0])[0])
    with pytest.raises(ValueError, match="standard_error"):
        z_scores([1.0], [1.0], [-1.0])

"""Philox4x32-10 streams: known answers, numba == numpy, derived variates, statistics, validation.

Statistical tolerances: every check compares an estimate with its exact expectation in units of
the estimator's standard error (SE) and accepts |z| ≤ 5 (a two-sided false-alarm probability of
6e-7 per check for a Gaussian estimate; the seeds are fixed, so the outcome is deterministic and
the bound only guards against choosing a lucky seed).
"""

import math

import numpy as np
import pytest
from scipy import stats

from sgdnoise import backends
from sgdnoise.sim import philox

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")
Z_MAX = 5.0

# Random123 known-answer vectors: counter[4], key[2] -> out[4]
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_known_answers_numpy(counter, key, expected):
    out = philox.philox4x32(np.array(counter, dtype=np.uint32), np.array(key, dtype=np.uint32))
    assert out.dtype == np.uint32
    assert tuple(int(w) for w in out) == expected


@needs_numba
@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_known_answers_numba(counter, key, expected):
    out = philox.philox4x32_numba(*counter, *key)
    assert tuple(int(w) for w in out) == expected


def test_vectorised_over_leading_axes_matches_one_by_one():
    rng = np.random.default_rng(0)
    counters = rng.integers(0, 2**32, size=(3, 4, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(3, 1, 2), dtype=np.uint64)
    out = philox.philox4x32(counters, keys)
    assert out.shape == (3, 4, 4)
    for i in range(3):
        for j in range(4):
            np.testing.assert_array_equal(out[i, j], philox.philox4x32(counters[i, j], keys[i, 0]))


@needs_numba
def test_numba_words_equal_numpy_bit_for_bit():
    rng = np.random.default_rng(1)
    counters = rng.integers(0, 2**32, size=(500, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(500, 2), dtype=np.uint64)
    ref = philox.philox4x32(counters, keys)
    fast = np.array([philox.philox4x32_numba(*c, *k) for c, k in zip(counters, keys, strict=True)],
                    dtype=np.uint64)
    np.testing.assert_array_equal(fast, ref.astype(np.uint64))


def test_stream_layout_blocks_and_words():
    """Normal j and draw j come from block j // 2 of counter (i lo, i hi, replica, tag)."""
    seed, rep, tag = 2**40 + 12345, 7, 3
    k0, k1 = philox.seed_key(seed)
    assert (k0, k1) == (seed & 0xFFFFFFFF, seed >> 32)
    block = 2**33 + 5                                   # exercises the high counter word
    w = philox.philox4x32(np.array([block & 0xFFFFFFFF, block >> 32, rep, tag], dtype=np.uint64),
                          np.array([k0, k1], dtype=np.uint64)).astype(np.uint64)
    u1 = float(philox.uniform53(w[0], w[1]))
    u2 = float(philox.uniform53(w[2], w[3]))
    r = math.sqrt(-2.0 * math.log(1.0 - u1))
    z = philox.normals(seed, rep, tag, 2 * block, 2)
    np.testing.assert_allclose(z, [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)],
                               rtol=1e-15, atol=1e-15)
    n = 1000
    draws = philox.integers(seed, rep, tag, 2 * block, 2, n)
    expect = [((int(w[0]) << 32 | int(w[1])) * n) >> 64, ((int(w[2]) << 32 | int(w[3])) * n) >> 64]
    assert draws.tolist() == expect


def test_uniform53_extremes_and_exactness():
    top = np.uint64(0xFFFFFFFF)
    assert float(philox.uniform53(0, 0)) == 0.0
    assert float(philox.uniform53(top, top)) == 1.0 - 2.0**-53
    # the 53 bits are exactly the top 27 of a and the top 26 of b
    a, b = 0xDEADBEEF, 0x12345678
    assert float(philox.uniform53(a, b)) * 2**53 == ((a >> 5) << 26) + (b >> 6)


def test_bounded_integer_identity_against_exact_integers():
    """((hi·n) + ((lo·n) >> 32)) >> 32 = ⌊(hi·2³² + lo)·n / 2⁶⁴⌋, checked with Python integers."""
    rng = np.random.default_rng(2)
    hi = rng.integers(0, 2**32, 2000, dtype=np.uint64)
    lo = rng.integers(0, 2**32, 2000, dtype=np.uint64)
    edges = np.array([0, 1, 2**31, 2**32 - 1], dtype=np.uint64)
    hi = np.concatenate([hi, np.repeat(edges, 4)])
    lo = np.concatenate([lo, np.tile(edges, 4)])
    for n in (1, 2, 3, 1000, 2**31 + 7, 2**32 - 1):
        got = philox._bounded(hi, lo, np.uint64(n), np)
        exact = [((int(h) << 32 | int(lw)) * n) >> 64 for h, lw in zip(hi, lo, strict=True)]
        assert got.tolist() == exact
        assert int(got.max()) < n


@needs_numba
def test_numba_integers_equal_numpy_bit_for_bit():
    seed = 987654321987
    k0, k1 = philox.seed_key(seed)
    for n in (1, 5, 4096, 2**32 - 1):
        ref = philox.integers(seed, 3, philox.BATCH, 11, 40, n)
        fast = [philox.integer_numba(k0, k1, 3, philox.BATCH, d, n) for d in range(11, 51)]
        assert ref.tolist() == fast


@needs_numba
def test_numba_normals_equal_numpy():
    """Same words, same formula; libm may differ from numpy's vector math by an ulp."""
    seed = 31337
    k0, k1 = philox.seed_key(seed)
    ref = philox.normals(seed, 5, philox.NOISE, 0, 4000)
    fast = np.array([philox.normal_pair_numba(k0, k1, 5, philox.NOISE, b) for b in range(2000)])
    np.testing.assert_allclose(fast.reshape(-1), ref, rtol=1e-15, atol=1e-15)


@needs_numba
@pytest.mark.parametrize("start", [0, 3, 10])
@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_numba_permutation_equals_numpy(start, n):
    seed = 5
    k0, k1 = philox.seed_key(seed)
    out = np.empty(n, dtype=np.int64)
    philox.permutation_numba(k0, k1, 2, philox.PERMUTATION, start, out)
    np.testing.assert_array_equal(out, philox.permutation(seed, 2, philox.PERMUTATION, start, n))


def _fisher_yates_reference(seed, replica, tag, start, n, size):
    """The documented Fisher–Yates, one swap at a time, draws from :func:`philox.integers`."""
    a = list(range(n))
    d = start
    for i in range(n - 1, n - 1 - size, -1):
        j = int(philox.integers(seed, replica, tag, d, 1, i + 1)[0])
        a[i], a[j] = a[j], a[i]
        d += 1
    return a


def test_permutation_and_sample_follow_the_documented_fisher_yates():
    for n, start in ((1, 0), (6, 0), (9, 5)):
        ref = _fisher_yates_reference(11, 4, 2, start, n, n - 1)
        assert philox.permutation(11, 4, 2, start, n).tolist() == ref
        for size in (0, 1, n // 2, n):
            ref_s = _fisher_yates_reference(11, 4, 2, start, n, min(size, n - 1))
            sample = philox.sample_without_replacement(11, 4, 2, start, n, size)
            assert sample.tolist() == [ref_s[n - 1 - t] for t in range(size)]
            assert len(set(sample.tolist())) == size


def test_shapes_follow_replica_shape_and_rows_are_their_own_streams():
    reps = np.arange(6).reshape(2, 3)
    z = philox.normals(1, reps, 0, 3, 5)
    k = philox.integers(1, reps, 1, 3, 4, 10)
    p = philox.permutation(1, reps, 2, 0, 8)
    s = philox.sample_without_replacement(1, reps, 1, 0, 8, 3)
    assert z.shape == (2, 3, 5) and k.shape == (2, 3, 4) and p.shape == (2, 3, 8)
    assert s.shape == (2, 3, 3) and k.dtype == np.int64 and p.dtype == np.int64
    for r in range(6):
        i, j = divmod(r, 3)
        np.testing.assert_array_equal(z[i, j], philox.normals(1, r, 0, 3, 5))
        np.testing.assert_array_equal(k[i, j], philox.integers(1, r, 1, 3, 4, 10))
        np.testing.assert_array_equal(p[i, j], philox.permutation(1, r, 2, 0, 8))
        np.testing.assert_array_equal(s[i, j], philox.sample_without_replacement(1, r, 1, 0, 8, 3))
    assert philox.normals(1, 0, 0, 0, 0).shape == (0,)


def test_windows_of_a_stream_agree():
    whole = philox.normals(9, 2, 0, 0, 31)
    for start, count in ((0, 31), (1, 10), (7, 3), (30, 1)):
        np.testing.assert_array_equal(philox.normals(9, 2, 0, start, count),
                                      whole[start:start + count])
    ints = philox.integers(9, 2, 1, 0, 31, 17)
    np.testing.assert_array_equal(philox.integers(9, 2, 1, 5, 9, 17), ints[5:14])


def test_normal_moments_within_standard_errors():
    """n normals: mean (SE 1/√n), variance (SE √(2/n)), E z⁴ = 3 (SE √(96/n))."""
    n = 400_000
    z = philox.normals(123, 0, philox.NOISE, 0, n)
    assert abs(z.mean()) / math.sqrt(1 / n) < Z_MAX
    assert abs(z.var() - 1) / math.sqrt(2 / n) < Z_MAX
    assert abs((z**4).mean() - 3) / math.sqrt(96 / n) < Z_MAX
    # distribution: Kolmogorov–Smirnov against N(0, 1) (fixed seed; p-value far from 0)
    assert stats.kstest(z[:50_000], "norm").pvalue > 1e-4


def test_uniform53_moments_within_standard_errors():
    """u in [0, 1): mean ½ (SE √(1/(12n))), and the z0/z1 pair is uncorrelated (SE 1/√n)."""
    n = 200_000
    blocks = np.arange(n, dtype=np.uint64)
    w = philox._block_words(77, np.asarray(0, dtype=np.uint64), 0, blocks, np)
    u = philox._uniform53(w[0], w[1], np)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) / math.sqrt(1 / (12 * n)) < Z_MAX
    z = philox.normals(77, 0, 0, 0, 2 * n).reshape(n, 2)
    assert abs(np.mean(z[:, 0] * z[:, 1])) / math.sqrt(1 / n) < Z_MAX


def test_integers_chi_square_uniform():
    """Counts of n = 7 values over 70 000 draws: χ² with 6 degrees of freedom below its 0.9999
    quantile (a fixed-seed check; the 0.9999 level keeps false alarms negligible)."""
    n, m = 7, 70_000
    k = philox.integers(4, 1, philox.BATCH, 0, m, n)
    counts = np.bincount(k, minlength=n)
    chi2 = ((counts - m / n) ** 2 / (m / n)).sum()
    assert chi2 < stats.chi2.ppf(0.9999, n - 1)


def test_permutations_uniform_chi_square():
    """60 000 permutations of 3 elements (one per replica): the 6 outcomes, χ² with 5 d.o.f."""
    reps = np.arange(60_000)
    p = philox.permutation(8, reps, philox.PERMUTATION, 0, 3)
    code = p[:, 0] * 9 + p[:, 1] * 3 + p[:, 2]
    _, counts = np.unique(code, return_counts=True)
    assert counts.size == 6
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < stats.chi2.ppf(0.9999, 5)


def test_sample_without_replacement_marginals():
    """Each of n = 10 indices is in a size-3 sample with probability 3/10: χ² with 9 d.o.f."""
    reps = np.arange(30_000)
    s = philox.sample_without_replacement(3, reps, philox.BATCH, 4, 10, 3)
    assert (np.sort(s, axis=1)[:, 1:] != np.sort(s, axis=1)[:, :-1]).all()
    counts = np.bincount(s.reshape(-1), minlength=10)
    expect = 30_000 * 3 / 10
    assert ((counts - expect) ** 2 / expect).sum() < stats.chi2.ppf(0.9999, 9)


def test_streams_independent_across_replica_tag_and_seed():
    """Sample correlations of normals between streams: |r| < 5/√n (SE of r is 1/√n)."""
    n = 100_000
    base = philox.normals(5, 0, 0, 0, n)
    others = [philox.normals(5, 1, 0, 0, n), philox.normals(5, 0, 1, 0, n),
              philox.normals(6, 0, 0, 0, n), philox.normals(5, 2**31, 0, 0, n),
              philox.normals(5 + 2**32, 0, 0, 0, n)]
    for other in others:
        assert not np.array_equal(other[:10], base[:10])
        assert abs(np.corrcoef(base, other)[0, 1]) * math.sqrt(n) < Z_MAX
    # and no short-range serial correlation inside a stream
    assert abs(np.corrcoef(base[:-1], base[1:])[0, 1]) * math.sqrt(n) < Z_MAX


@pytest.mark.parametrize(("call", "match"), [
    (lambda: philox.normals(-1, 0, 0, 0, 3), "seed"),
    (lambda: philox.normals(2**64, 0, 0, 0, 3), "seed"),
    (lambda: philox.normals(1.5, 0, 0, 0, 3), "seed"),
    (lambda: philox.normals(1, -1, 0, 0, 3), "replica"),
    (lambda: philox.normals(1, 2**32, 0, 0, 3), "replica"),
    (lambda: philox.normals(1, np.array([0.5]), 0, 0, 3), "replica"),
    (lambda: philox.normals(1, 0, 2**32, 0, 3), "tag"),
    (lambda: philox.normals(1, 0, 0, -2, 3), "start"),
    (lambda: philox.normals(1, 0, 0, 0, -3), "count"),
    (lambda: philox.integers(1, 0, 0, 0, 3, 0), "n"),
    (lambda: philox.integers(1, 0, 0, 0, 3, 2**32), "n"),
    (lambda: philox.permutation(1, 0, 0, 0, 0), "n"),
    (lambda: philox.sample_without_replacement(1, 0, 0, 0, 4, 5), "size"),
    (lambda: philox.philox4x32(np.zeros(3), np.zeros(2)), "counter"),
    (lambda: philox.seed_key(True), "seed"),
])
def test_invalid_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numba_versions_are_built_lazily_and_listed():
    for name in philox._NUMBA_NAMES:
        assert name in philox.__all__
    with pytest.raises(AttributeError):
        philox.not_a_function  # noqa: B018

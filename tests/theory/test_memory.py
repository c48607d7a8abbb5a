"""Dense paths estimate their bytes first and refuse past the limit, instantly, pointing to the
operator path."""

import time

import numpy as np
import pytest

from sgdnoise import _memory, theory
from sgdnoise._memory import ENV_VAR, MemoryLimitError, check_allocation, memory_limit, parse_bytes
from sgdnoise.sim import families
from sgdnoise.sim.models.linear import LinearRegression
from sgdnoise.sim.models.mlp import MLP

GB = 1e9


@pytest.mark.parametrize(("text", "expect"), [
    ("4096", 4096), ("8e9", 8_000_000_000), ("512M", 512 * 1024**2), ("8G", 8 * 1024**3),
    ("1.5t", int(1.5 * 1024**4)), ("2GiB", 2 * 1024**3), (" 3k ", 3 * 1024),
])
def test_parse_bytes(text, expect):
    assert parse_bytes(text) == expect


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "nan", "inf"])
def test_parse_bytes_refuses_nonsense(text):
    with pytest.raises(ValueError, match=ENV_VAR):
        parse_bytes(text)


def test_limit_precedence(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: 10 * 1024**3)
    monkeypatch.delenv(ENV_VAR, raising=False)
    limit, source = memory_limit()
    assert limit == int(_memory.DEFAULT_FRACTION * 10 * 1024**3) and "available" in source
    monkeypatch.setenv(ENV_VAR, "2G")
    assert memory_limit() == (2 * 1024**3, f"environment variable {ENV_VAR}")
    assert memory_limit(1000) == (1000, "max_bytes argument")
    monkeypatch.setenv(ENV_VAR, "  ")
    assert memory_limit()[0] == int(_memory.DEFAULT_FRACTION * 10 * 1024**3)
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: None)
    assert memory_limit()[0] is None
    check_allocation(10**15, "anything")   # no limit known: nothing refused


@pytest.mark.parametrize("bad", [0, -5, float("nan"), True, "8G"])
def test_invalid_max_bytes(bad):
    with pytest.raises(ValueError, match="max_bytes"):
        memory_limit(bad)


def test_available_memory_is_read():
    avail = _memory.available_memory_bytes()
    assert avail is None or avail > 0


def test_error_names_size_array_and_operator_path():
    with pytest.raises(MemoryLimitError) as info:
        check_allocation(int(40.5 * GB), "H, M (22500x22500)", max_bytes=GB)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    for part in ("40.5 GB", "limit of 1 GB", "H, M (22500x22500)", "max_bytes argument",
                 "kronecker_layer_operators", "MLP.curvature_operators", "top_eigenbasis"):
        assert part in msg, part


def test_wide_layer_refuses_instantly(monkeypatch):
    """A 150×150 layer (D = 22 500) with N = 1 000 samples used to work for 15 s before a
    MemoryError; the dense moments now refuse before any work, naming the size."""
    monkeypatch.setenv(ENV_VAR, "1G")
    rng = np.random.default_rng(0)
    g = rng.standard_normal((150, 150))
    G = np.broadcast_to(g @ g.T, (1000, 150, 150))        # one 150×150 block, viewed N times
    a = np.broadcast_to(rng.standard_normal(150), (1000, 150))
    delta = np.broadcast_to(rng.standard_normal(150), (1000, 150))
    start = time.perf_counter()
    with pytest.raises(MemoryLimitError, match=r"22500x22500.*40\.5 GB"):
        theory.kronecker_layer_moments(G, a, delta)
    assert time.perf_counter() - start < 2.0
    # the same layer as operators: no dense matrix, products of the right size
    ops = theory.kronecker_layer_operators(G[:8], a[:8], delta[:8])
    assert ops.H.shape == (22500, 22500)
    assert ops.H.apply(np.ones((22500, 2))).shape == (22500, 2)
    with pytest.raises(MemoryLimitError, match="4.05 GB"):
        ops.H.to_dense()


def _mlp_case():
    net = MLP((3, 4, 2), bias=True)
    rng = np.random.default_rng(1)
    return net, net.init(rng), rng.standard_normal((5, 3)), rng.integers(0, 2, 5)


def _mlp_call(method, *args):
    net, w, x, y = _mlp_case()
    return getattr(net, method)(w, x, y, *args)


def _layer(rng):
    G = rng.standard_normal((6, 2, 2))
    return G + np.swapaxes(G, 1, 2), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))


DENSE_CALLS = {
    "hessian_moments": lambda r: theory.hessian_moments(families.random_rank_r(4, 3, rng=r)),
    "max_curvatures": lambda r: theory.max_curvatures(families.random_rank_r(4, 3, rng=r)),
    "dense_layer_moments": lambda r: theory.dense_layer_moments(
        families.random_rank_r(4, 3, rng=r)),
    "gradient_covariance": lambda r: theory.gradient_covariance(r.standard_normal((5, 4))),
    "kronecker_hessians": lambda r: theory.kronecker_hessians(*_layer(r)[:2]),
    "kronecker_layer_moments": lambda r: theory.kronecker_layer_moments(*_layer(r)),
    "eigenbasis": lambda r: theory.eigenbasis(np.eye(4)),
    "haar_orthogonal": lambda r: theory.haar_orthogonal(4, r),
    "random_symmetric": lambda r: families.random_symmetric(np.ones(4), rng=r),
    "commuting_pair": lambda r: families.commuting_pair(4, rng=r),
    "noncommuting_pair": lambda r: families.noncommuting_pair(4, rng=r),
    "identical_hessians": lambda r: families.identical_hessians(np.eye(4), 3),
    "rank_one_equal_curvature": lambda r: families.rank_one_equal_curvature(4, 3, rng=r),
    "random_rank_r": lambda r: families.random_rank_r(4, 3, rng=r),
    "symmetric_hessians": lambda r: families.symmetric_hessians(4, 3, rng=r),
    "window_breaking_family": lambda r: families.window_breaking_family(4, 9, rng=r),
    "wishart_hessians": lambda r: families.wishart_hessians(np.eye(4), 3, rng=r),
    "population_wishart": lambda r: families.population_wishart(np.eye(4)),
    "population_kronecker": lambda r: families.population_kronecker(np.eye(2), np.eye(2)),
    "kronecker_family_hessians": lambda r: families.kronecker_family_hessians(2, 2, 3, rng=r),
    "MLP.hessian": lambda r: _mlp_call("hessian"),
    "MLP.per_sample_hessians": lambda r: _mlp_call("per_sample_hessians"),
    "MLP.layer_factors": lambda r: _mlp_call("layer_factors", 0),
    "LinearRegression.per_sample_hessians": lambda r: LinearRegression(
        r.standard_normal((5, 4)), r.standard_normal(5)).per_sample_hessians(),
    "LinearRegression.hessian": lambda r: LinearRegression(
        r.standard_normal((5, 4)), r.standard_normal(5)).hessian(),
    "BlockOperator.to_dense": lambda r: theory.kronecker_layer_operators(
        *_layer(r)).H.to_dense(),
}


@pytest.mark.parametrize("name", sorted(DENSE_CALLS))
def test_every_dense_path_checks_before_allocating(name, monkeypatch):
    call = DENSE_CALLS[name]
    monkeypatch.setenv(ENV_VAR, "1G")
    call(np.random.default_rng(2))                  # works under a generous limit
    monkeypatch.setenv(ENV_VAR, "40")               # 40 bytes: every D×D refused
    with pytest.raises(MemoryLimitError, match="GB"):
        call(np.random.default_rng(2))


def test_the_check_is_cheap():
    start = time.perf_counter()
    for _ in range(200):
        check_allocation(8, "one float")
    assert (time.perf_counter() - start) / 200 < 2e-3

"""Fast first passage of B = 1 SGD on 1-D linear regression against the replica engine."""

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.dynamics import (
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    first_passage_times,
    sgd,
    simulate,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(500)
    return x, 0.3 * x + rng.standard_normal(500)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_passage_matches_the_replica_engine(backend, data):
    if backend not in backends.available():
        pytest.skip(f"{backend} not available")
    x, y = data
    problem = LinearRegressionProblem(x[:, None], y)
    level = 1.6 * problem.loss_star
    ref = simulate(problem, sgd(1), eta=0.1, num_steps=2000, num_replicas=48, seed=7,
                   theta0=problem.theta_star, observe=[FirstPassage(loss=level, stop=True)],
                   execution="numpy")
    out = first_passage_times(x, y, eta=0.1, level=level, num_steps=2000, num_replicas=48,
                              seed=7, theta0=problem.theta_star[0], execution=backend)
    assert ref.censored.any() and not ref.censored.all()      # both kinds of runs occur
    np.testing.assert_array_equal(out.first_passage, ref.first_passage)
    np.testing.assert_array_equal(out.censored, ref.censored)
    np.testing.assert_allclose(out.theta, ref.theta[:, 0], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(out.first_passage_time, ref.first_passage_time)
    assert out.time_unit == ref.time_unit


def test_numba_is_thread_independent_and_splits_by_replica_start(data):
    if "numba" not in backends.available():
        pytest.skip("numba not available")
    x, y = data
    kw = {"eta": 0.1, "level": 1.0, "num_steps": 3000, "seed": 3}
    one = first_passage_times(x, y, num_replicas=40, execution=Execution("numba", num_threads=1),
                              **kw)
    two = first_passage_times(x, y, num_replicas=40, execution=Execution("numba", num_threads=2),
                              **kw)
    np.testing.assert_array_equal(one.first_passage, two.first_passage)
    tail = first_passage_times(x, y, num_replicas=15,
                               execution=Execution("numba", replica_start=25), **kw)
    np.testing.assert_array_equal(tail.first_passage, one.first_passage[25:])


def test_level_below_start_gives_zero(data):
    x, y = data
    out = first_passage_times(x, y, eta=0.1, level=-1.0, num_steps=10, num_replicas=3, seed=0,
                              execution="numpy")
    assert np.all(out.first_passage == 0) and not out.censored.any()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"eta": 0.0}, "eta"), ({"level": float("nan")}, "level"), ({"num_steps": -1}, "num_steps"),
    ({"num_replicas": 0}, "num_replicas"), ({"seed": -1}, "seed"),
    ({"theta0": np.zeros(5)}, "theta0"), ({"execution": "fortran"}, "backend"),
    ({"execution": Execution(replica_start=2**32 - 1)}, "replica_start"),
])
def test_invalid_arguments_name_the_argument(kwargs, name, data):
    x, y = data
    base = {"eta": 0.1, "level": 1.0, "num_steps": 10, "num_replicas": 2, "seed": 0,
            "execution": "numpy"}
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        first_passage_times(x, y, **base)


def test_mismatched_data_is_refused(data):
    x, _ = data
    with pytest.raises(ValueError, match="y"):
        first_passage_times(x, x[:-1], eta=0.1, level=1.0, num_steps=1, num_replicas=1, seed=0)


@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize(("num_replicas", "num_steps", "c"), [
    (1, 0, 1.02), (5, 1, 1.02), (33, 2, 1.02), (33, 3, 1.02), (70, 4, 1.02), (70, 5, 1.02),
    (300, 37, 1.02), (600, 1500, 1.4),
])
def test_numba_kernel_is_bit_identical_to_the_numpy_reference(num_replicas, num_steps, c,
                                                               num_threads, data):
    # Lanes, lane refills, tasks of 256 replicas, the last one or two steps run one at a time:
    # none may change a bit.  Starts spread around θ* and a level c·L* near the typical
    # starting loss give passages at step 0, at num_steps and censored runs (70 replicas,
    # 5 steps); c = 1.4 gives passages spread over 1 … 1500 steps at even and odd steps and a
    # few censored runs, so lanes are refilled many times at different steps.
    if "numba" not in backends.available():
        pytest.skip("numba not available")
    x, y = data
    problem = LinearRegressionProblem(x[:, None], y)
    rng = np.random.default_rng(num_replicas + num_steps)
    theta0 = problem.theta_star[0] + 0.1 * rng.standard_normal(num_replicas)
    kw = {"eta": 0.1, "level": c * problem.loss_star, "num_steps": num_steps,
          "num_replicas": num_replicas, "seed": 11, "theta0": theta0}
    ref = first_passage_times(x, y, execution=Execution("numpy", replica_start=5), **kw)
    out = first_passage_times(x, y, execution=Execution("numba", num_threads=num_threads,
                                                        replica_start=5), **kw)
    np.testing.assert_array_equal(out.first_passage, ref.first_passage)
    np.testing.assert_array_equal(out.theta, ref.theta)
    np.testing.assert_array_equal(out.loss, ref.loss)
    fp = ref.first_passage
    if num_steps == 5:
        assert (fp == 0).any() and (fp == num_steps).any() and ref.censored.any()
    if num_steps == 1500:
        assert (fp % 2 == 1).any() and (fp[fp > 0] % 2 == 0).any() and (fp > 500).any()
        assert ref.censored.any()


def test_first_passage_time_is_eta_times_steps(data):
    """SDE time t = ητ; a censored replica carries its censoring time η·K."""
    x, y = data
    out = first_passage_times(x, y, eta=0.1, level=0.6, num_steps=300, num_replicas=30, seed=3,
                              execution="numpy")
    assert out.censored.any() and not out.censored.all()
    steps = np.where(out.censored, 300, out.first_passage)
    np.testing.assert_array_equal(out.first_passage_time, 0.1 * steps.astype(float))
    assert "eta" in out.time_unit and len(out) == 5


def test_old_keywords_name_their_replacement(data):
    from sgdnoise.sim.dynamics import MovedArgumentError

    x, y = data
    for old in ({"backend": "numpy"}, {"replica_start": 3}, {"num_threads": 1}):
        with pytest.raises(MovedArgumentError, match=f"{next(iter(old))}= is now execution="):
            first_passage_times(x, y, eta=0.1, level=1.0, num_steps=1, num_replicas=1, seed=0,
                                **old)

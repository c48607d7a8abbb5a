"""Fast first passage of B = 1 SGD on 1-D linear regression against the replica engine."""

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.dynamics import LinearRegressionProblem, first_passage_times, sgd, simulate


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
                   theta0=problem.theta_star, first_passage_loss=level,
                   stop_at_first_passage=True, backend="numpy")
    out = first_passage_times(x, y, eta=0.1, level=level, num_steps=2000, num_replicas=48,
                              seed=7, theta0=problem.theta_star[0], backend=backend)
    assert ref.censored.any() and not ref.censored.all()      # both kinds of runs occur
    np.testing.assert_array_equal(out.first_passage, ref.first_passage)
    np.testing.assert_array_equal(out.censored, ref.censored)
    np.testing.assert_allclose(out.theta, ref.theta[:, 0], rtol=0, atol=1e-13)


def test_numba_is_thread_independent_and_splits_by_replica_start(data):
    if "numba" not in backends.available():
        pytest.skip("numba not available")
    x, y = data
    kw = {"eta": 0.1, "level": 1.0, "num_steps": 3000, "seed": 3, "backend": "numba"}
    one = first_passage_times(x, y, num_replicas=40, num_threads=1, **kw)
    two = first_passage_times(x, y, num_replicas=40, num_threads=2, **kw)
    np.testing.assert_array_equal(one.first_passage, two.first_passage)
    tail = first_passage_times(x, y, num_replicas=15, replica_start=25, **kw)
    np.testing.assert_array_equal(tail.first_passage, one.first_passage[25:])


def test_level_below_start_gives_zero(data):
    x, y = data
    out = first_passage_times(x, y, eta=0.1, level=-1.0, num_steps=10, num_replicas=3, seed=0,
                              backend="numpy")
    assert np.all(out.first_passage == 0) and not out.censored.any()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"eta": 0.0}, "eta"), ({"level": float("nan")}, "level"), ({"num_steps": -1}, "num_steps"),
    ({"num_replicas": 0}, "num_replicas"), ({"seed": -1}, "seed"),
    ({"theta0": np.zeros(5)}, "theta0"), ({"backend": "fortran"}, "backend"),
])
def test_invalid_arguments_name_the_argument(kwargs, name, data):
    x, y = data
    base = {"eta": 0.1, "level": 1.0, "num_steps": 10, "num_replicas": 2, "seed": 0, "backend": "numpy"}
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        first_passage_times(x, y, **base)


def test_mismatched_data_is_refused(data):
    x, _ = data
    with pytest.raises(ValueError, match="y"):
        first_passage_times(x, x[:-1], eta=0.1, level=1.0, num_steps=1, num_replicas=1, seed=0)

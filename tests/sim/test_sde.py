"""Euler–Maruyama replicas of the SGD SDE: backends agree, formulas, exact passage times."""

import math

import numpy as np
import pytest

from sgdnoise import backends, theory
from sgdnoise.sim.dynamics import double_well_gradient, double_well_loss, simulate_sde

needs_numba = pytest.mark.skipif("numba" not in backends.available(), reason="numba missing")


def test_loss_and_gradient_match_the_theory_model():
    rng = np.random.default_rng(0)
    th = rng.standard_normal((20, 3))
    dw = theory.DoubleWell(L0=0.3, a=1.5, n=3)
    np.testing.assert_allclose(double_well_loss(th, L0=0.3, a=1.5), dw.loss(th), rtol=1e-14)
    np.testing.assert_allclose(double_well_gradient(th, L0=0.3, a=1.5), dw.gradient(th),
                               rtol=1e-14)
    # central differences
    eps = 1e-6
    num = np.stack([(double_well_loss(th + eps * e, L0=0.3, a=1.5)
                     - double_well_loss(th - eps * e, L0=0.3, a=1.5)) / (2 * eps)
                    for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(double_well_gradient(th, L0=0.3, a=1.5), num, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif("cupy" not in backends.available(),
                    reason="cupy with a CUDA device is not available here")
@pytest.mark.parametrize("noise", ["sgd", "constant"])
def test_cupy_matches_numpy_reference(noise):
    kw = {"L0": 0.5, "a": 1.0, "n": 3, "noise": noise, "eta": 0.0625, "B": 1.0, "dt": 0.005,
          "num_steps": 800, "num_replicas": 16, "seed": 5, "first_passage_loss": 0.9,
          "record_every": 40, "temperature": 0.4 if noise == "constant" else None}
    ref = simulate_sde(backend="numpy", **kw)
    gpu = simulate_sde(backend="cupy", **kw)
    assert gpu.config["backend"] == "cupy"
    np.testing.assert_array_equal(gpu.first_passage, ref.first_passage)
    np.testing.assert_allclose(gpu.theta, ref.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gpu.trajectory, ref.trajectory, rtol=0, atol=1e-12, equal_nan=True)


@needs_numba
@pytest.mark.parametrize("noise", ["sgd", "frozen", "constant"])
@pytest.mark.parametrize("n", [1, 3])
def test_numba_matches_numpy_reference(noise, n):
    kw = {"L0": 0.5, "a": 1.0, "n": n, "noise": noise, "eta": 0.0625, "B": 1.0, "dt": 0.005, "num_steps": 1500,
              "num_replicas": 12, "seed": 11, "first_passage_position": -0.5, "record_every": 50,
              "temperature": 0.4 if noise == "constant" else None}
    ref = simulate_sde(backend="numpy", **kw)
    fast = simulate_sde(backend="numba", **kw)
    one = simulate_sde(backend="numba", num_threads=1, **kw)
    np.testing.assert_array_equal(fast.first_passage, ref.first_passage)
    np.testing.assert_allclose(fast.theta, ref.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.trajectory, ref.trajectory, rtol=0, atol=1e-12,
                               equal_nan=True)
    np.testing.assert_array_equal(one.theta, fast.theta)


def test_one_step_is_the_euler_maruyama_formula():
    from sgdnoise.sim import philox

    th0 = np.array([[0.7, 0.2]])
    run = simulate_sde(L0=0.4, a=1.2, n=2, eta=0.1, B=2.0, dt=0.01, num_steps=1, num_replicas=1,
                       seed=5, theta0=th0, backend="numpy")
    z = philox.normals(5, 0, philox.NOISE, 0, 2)
    L = double_well_loss(th0[0], L0=0.4, a=1.2)
    D = 0.1 / 2.0 * L * np.array([8 * 1.2, 8 * 1.2])
    grad = double_well_gradient(th0[0], L0=0.4, a=1.2)
    expected = th0[0] - 0.01 * grad + np.sqrt(2 * D * 0.01) * z
    np.testing.assert_allclose(run.theta[0], expected, rtol=1e-14)


@needs_numba
def test_mean_passage_time_matches_exact_quadrature():
    # T = 0.5, c = 3: exact MFPT from θ = 1 to θ ≤ −0.5 (reflecting at 3).  With R = 400 runs
    # the sample mean has relative s.e. ≈ sd/mean/√R ≈ 1/20 (passage times nearly exponential);
    # accept 4 s.e. of the measured mean.
    T, a, L0 = 0.5, 1.0, 0.5
    run = simulate_sde(L0=L0, a=a, eta=T / 8, B=1.0, dt=0.004, num_steps=200_000,
                       num_replicas=400, seed=1, first_passage_position=-0.5)
    assert not run.censored.any()
    t = run.first_passage_time
    exact = theory.mean_first_passage_time_1d(lambda x: -4 * a * x * (x * x - 1),
                                              lambda x: T * (L0 + a * (x * x - 1) ** 2),
                                              1.0, 3.0, -0.5)
    se = t.std(ddof=1) / math.sqrt(t.size)
    assert abs(t.mean() - exact) <= 4 * se


def test_loss_passage_and_censoring():
    run = simulate_sde(L0=1.0, a=1.0, eta=0.05, dt=0.01, num_steps=50, num_replicas=4, seed=0,
                       first_passage_loss=100.0, backend="numpy")
    assert run.censored.all() and np.all(run.first_passage_time == 50 * 0.01)
    run = simulate_sde(L0=1.0, a=1.0, eta=0.05, dt=0.01, num_steps=50, num_replicas=4, seed=0,
                       first_passage_loss=0.5, backend="numpy")
    assert np.all(run.first_passage == 0)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"L0": 0.0}, "L0"), ({"a": -1.0}, "a"), ({"n": 0}, "n"), ({"noise": "pink"}, "noise"),
    ({"dt": 0.0}, "dt"), ({"num_steps": -2}, "num_steps"), ({"num_replicas": 0}, "num_replicas"),
    ({"seed": 2**64}, "seed"), ({"noise": "constant"}, "temperature"),
    ({"temperature": 1.0}, "temperature"), ({"theta0": np.zeros(3)}, "theta0"),
    ({"first_passage_loss": 1.0, "first_passage_position": 0.0}, "first_passage_position"),
    ({"first_passage_loss": float("inf")}, "first_passage_loss"), ({"k": 0.0}, "k"),
    ({"record_every": 0}, "record_every"), ({"backend": "x"}, "backend"),
])
def test_invalid_arguments_name_the_argument(kwargs, name):
    base = {"L0": 1.0, "a": 1.0, "dt": 0.01, "num_steps": 5, "num_replicas": 2, "seed": 0, "backend": "numpy"}
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        simulate_sde(**base)

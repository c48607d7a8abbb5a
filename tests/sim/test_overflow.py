"""Float64 overflow in ``sgdnoise.sim``: finite input gives finite output or an error naming the
overflow, never a silent inf/NaN or a RuntimeWarning.  Each case is a counterexample that the
fuzz suite (``tests/fuzz/test_fuzz_sim.py``) found, reduced to its smallest form."""

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim import TrainConfig, train
from sgdnoise.sim.data import gaussian_regression
from sgdnoise.sim.dynamics import (
    LinearRegressionProblem,
    ModelProblem,
    QuadraticProblem,
    Toy2DProblem,
    double_well_gradient,
    double_well_loss,
    minibatch_gradient_covariance,
    simulate_sde,
    structured_covariance,
)
from sgdnoise.sim.families import population_wishart
from sgdnoise.sim.models import (
    ClippedReluNetwork,
    LinearRegression,
    LogisticRegression,
    PerSampleQuadratic,
    SoftmaxRegression,
    Toy2D,
)
from sgdnoise.sim.models.toy import FLAT_HESSIAN
from sgdnoise.sim.training import DivergenceError

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")


# ------------------------------------------------------------------------------- problems
def test_linear_regression_problem_refuses_data_whose_least_squares_overflow():
    with pytest.raises(ValueError, match="X, y: the least-squares quantities"):
        LinearRegressionProblem(np.array([[1e200], [1.0]]), np.zeros(2))


@pytest.mark.parametrize(("problem", "theta"), [
    (LinearRegressionProblem(np.array([[13408.0]]), np.zeros(1)), [1e150]),
    (Toy2DProblem(np.zeros((1, 2))), [1e160, 0.0]),
    (QuadraticProblem(np.eye(1)), [1e160]),
    (ModelProblem(LinearRegression(np.ones((1, 1)), np.zeros(1))), [1e160]),
])
def test_problem_loss_raises_where_it_overflows(problem, theta):
    with pytest.raises(FloatingPointError, match="loss: L\\(theta\\) overflows float64"):
        problem.loss(np.array(theta))
    assert np.isfinite(problem.loss(np.zeros(len(theta))))


# ------------------------------------------------------------------------------------- SDE
@pytest.mark.parametrize("kw", [{"a": 1e308}, {"noise": "frozen", "eta": 1.34e154, "L0": 1.34e154},
                                {"dt": 1e300, "eta": 1e10}])
def test_simulate_sde_refuses_noise_that_overflows(kw):
    args = {"L0": 0.1, "a": 1.0, "dt": 0.01, "num_steps": 2, "num_replicas": 1, "seed": 0,
            "backend": "numpy", **kw}
    with pytest.raises(ValueError, match="overflow float64"):
        simulate_sde(**args)


def test_double_well_raises_where_it_overflows():
    with pytest.raises(FloatingPointError, match="double_well_loss"):
        double_well_loss([1e100], L0=1.0, a=1.0)
    with pytest.raises(FloatingPointError, match="double_well_gradient"):
        double_well_gradient([1e120], L0=1.0, a=1.0)
    assert double_well_loss([1e50], L0=1.0, a=1.0) == pytest.approx(1e200)


# ------------------------------------------------------------------------ noise covariances
def test_minibatch_covariance_survives_an_intermediate_overflow():
    """Σ₁ = ((1e154)² + (1e154)²)/2 = 1e308 is a float64, although the sum is not."""
    G = np.array([[1e154], [-1e154]])
    np.testing.assert_allclose(minibatch_gradient_covariance(G, 1), [[1e308]], rtol=1e-15)
    with pytest.raises(FloatingPointError, match="Σ̂ overflows float64"):
        minibatch_gradient_covariance(10 * G, 1)


def test_structured_covariance_of_a_tiny_or_huge_sigma():
    """trace / Tr Σ overflowed for Tr Σ = 1e-320; eigh of Σ near 1e308 returned NaN."""
    tiny = structured_covariance("diag", np.diag([1e-320, 0.0]), trace=1.0)
    np.testing.assert_array_equal(tiny, np.diag([1.0, 0.0]))
    S = np.array([[2.0, 1.0], [1.0, 2.0]])
    huge = structured_covariance("full", 0.85e308 * S, trace=1.0)
    np.testing.assert_allclose(huge, structured_covariance("full", S, trace=1.0), rtol=1e-12)
    with pytest.raises(FloatingPointError, match="overflows float64"):
        structured_covariance("dynamic", 1e308 * np.eye(3))        # Tr Σ = 3e308


# ----------------------------------------------------------------------------------- models
@pytest.mark.parametrize(("call", "name"), [
    (lambda: LinearRegression(np.ones((1, 1)), np.zeros(1)).loss(np.array([1e160])),
     "LinearRegression"),
    (lambda: SoftmaxRegression(np.array([[1.8e8]]), np.array([0]), 2, bias=False)
     .loss(np.array([1e300, -1e300])), "SoftmaxRegression"),
    (lambda: LogisticRegression(np.array([[1e200]]), np.array([1.0]))
     .per_sample_hessians(np.array([1e-200])), "LogisticRegression.per_sample_hessians"),
    (lambda: PerSampleQuadratic(np.ones((1, 1, 1)), np.zeros((1, 1)))
     .loss(np.array([1.35e154])), "PerSampleQuadratic"),
    (lambda: Toy2D(np.zeros((1, 2))).loss(np.array([1e200, 0.0])), "Toy2D"),
    (lambda: ClippedReluNetwork(1, 2).loss(np.zeros(4), np.zeros((1, 1)), np.array([1.4e154])),
     "ClippedReluNetwork"),
    (lambda: population_wishart(1e300 * np.eye(2)), "population_wishart"),
    (lambda: gaussian_regression(2, np.diag([1e179, 0.0]), sigma=0.0, rng=1,
                                 w_star=np.array([1e219, 0.0])), "gaussian_regression"),
])
def test_models_families_and_data_raise_where_they_overflow(call, name):
    with pytest.raises(FloatingPointError, match=name):
        call()


def test_toy_branch_of_huge_weights_is_compared_without_overflow():
    """At w = (1e200, 1e200) both branches overflow; in units of 1e200 the flat one (f₂ = 2
    against f₁ = 200) is active, where comparing inf ≤ inf picked the sharp one."""
    h = Toy2D(np.zeros((1, 2))).per_sample_hessians(np.array([1e200, 1e200]))
    np.testing.assert_array_equal(h[0], FLAT_HESSIAN)


def test_logistic_fit_that_diverges_names_eta():
    model = LogisticRegression(np.array([[1e10], [-1e10]]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="eta: gradient descent diverged"):
        model.fit(eta=1e300, num_steps=3)


# -------------------------------------------------------------------------------- training
def test_train_counts_an_overflow_reported_by_the_model_as_divergence():
    """A model may raise FloatingPointError from loss_and_gradient (as the models of
    sgdnoise.sim.models do): that step's batch loss is not finite."""
    class Overflowing:
        calls = 0

        def loss_and_gradient(self, w, x, y):
            Overflowing.calls += 1
            if Overflowing.calls > 2:
                raise FloatingPointError("the result is not finite in float64")
            return 1.0, np.zeros_like(w)

    with pytest.raises(DivergenceError) as info:
        train(Overflowing(), np.zeros(2), np.zeros((4, 2)), np.zeros(4),
              TrainConfig(eta=0.1, batch_size=1, num_epochs=1, sampler="shuffle_once"))
    assert (info.value.step, info.value.reason) == (1, "non-finite batch loss")


@pytest.mark.parametrize("name", ["eta", "clip_norm", "weight_decay"])
def test_float32_training_refuses_scalars_beyond_float32(name):
    kw = {"eta": 0.1, "batch_size": 1, "num_epochs": 1, "dtype": "float32", name: 1e39}
    with pytest.raises(ValueError, match=f"{name} must be at most 3.403e\\+38"):
        TrainConfig(**kw)


@needs_numba
def test_float32_numba_epoch_takes_a_huge_rate_without_warning():
    from sgdnoise.sim.models import MLP, _mlp_numba

    model = MLP((2, 2), activation="identity", loss="mse", bias=False)
    w, v = np.ones(4, dtype=np.float32), np.zeros(4, dtype=np.float32)
    x, T = np.ones((2, 2), dtype=np.float32), np.zeros((2, 2), dtype=np.float32)
    _, status, index, _, _ = _mlp_numba.sgd_epoch(
        model._kernel_spec(), w, v, x, T, np.arange(2), np.array([0, 2]), lr=1e300, beta=0.0,
        heavy_ball=True, clip_norm=None, weight_decay=0.0, divergence_factor=1e300, loss0=None)
    assert (status, index) == (4, 0)          # inf rate: non-finite weights after the update


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clipping_a_gradient_whose_squared_norm_overflows(backend, dtype):
    """A finite gradient with ‖g‖² beyond the dtype's range was scaled by c/inf = 0: the step
    was silently skipped.  One identity layer, mse: g = (w·x − y) x with x = s, y = 0."""
    from sgdnoise.sim.models import MLP

    s = 1e160 if dtype == "float64" else 1e19   # g ≈ s², ‖g‖² ≈ s⁴ overflows, g does not
    model = MLP((2, 1), activation="identity", loss="mse", bias=False)
    x, y = np.full((1, 2), s), np.zeros((1, 1))
    w0 = np.full(2, 1.0 / s)
    cfg = TrainConfig(eta=1.0 / s, batch_size=1, num_epochs=1, clip_norm=1.0, dtype=dtype)
    res = train(model, w0, x, y, cfg, backend=backend)
    # g = 2s·(1, 1) points along (1, 1): the clipped step is η·(1, 1)/√2, not 0
    np.testing.assert_allclose(res.w - w0, -np.ones(2) / (s * np.sqrt(2)), rtol=1e-5)

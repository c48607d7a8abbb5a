"""One divergence story: every entry point of ``sgdnoise.sim`` that iterates (``simulate`` on all
backends and problems, ``simulate_sde``, ``first_passage_times``, ``train``) raises
``DivergenceError`` (a ``RuntimeError`` with ``step``, ``epoch``, ``loss``, ``lr`` and, for the
replica functions, ``replica``), with a message that names what diverged, the step, the loss at
the last finite point, the learning rate and advice in the function's own options; the numba
backend reports the same replica and step as the numpy reference.

The cases are chosen so that divergence is decided far from round-off: θ grows geometrically by
a factor ≥ 2 per step, so the two backends (which differ by ≈1e-15 relative) cannot disagree on
the step at which a value overflows.
"""

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim import MLP, TrainConfig, datasets, train
from sgdnoise.sim import DivergenceError as ExportedDivergenceError
from sgdnoise.sim.dynamics import (
    LinearRegressionProblem,
    ModelProblem,
    QuadraticProblem,
    Record,
    Toy2DProblem,
    first_passage_times,
    gd,
    langevin,
    sgd,
    simulate,
    simulate_sde,
)
from sgdnoise.sim.models import LinearRegression, toy_data
from sgdnoise.sim.training import DivergenceError

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")
BOTH = ["numpy", pytest.param("numba", marks=needs_numba)]

_RNG = np.random.default_rng(1)
X_LIN = _RNG.normal(size=(24, 3))
Y_LIN = _RNG.normal(size=24)
LIN = LinearRegressionProblem(X_LIN, Y_LIN)
TOY = Toy2DProblem(toy_data(0, N=30))
TRAIN_OPTIONS = ("clip_norm", "schedule", "divergence_factor")


def _raises(fn, *args, **kwargs):
    with pytest.raises(DivergenceError) as info:
        fn(*args, **kwargs)
    return info.value


def test_divergence_error_is_one_runtime_error_class_with_its_attributes():
    assert ExportedDivergenceError is DivergenceError
    assert issubclass(DivergenceError, RuntimeError)
    err = DivergenceError(7, 1, 2.5, 0.1, "non-finite gradient")
    assert (err.step, err.epoch, err.loss, err.lr, err.replica) == (7, 1, 2.5, 0.1, None)
    assert str(err).startswith("training diverged at step 7 (epoch 1): non-finite gradient;")


# --------------------------------------------------------------------------------- simulate
@pytest.mark.parametrize(("kind", "step", "loss"), [("full", 193, "1.62e+306"),
                                                      ("leading", 198, "6.434e+307")])
def test_full_and_leading_langevin_raise_divergence_error_not_linalg_error(kind, step, loss):
    """Reproducer: Σ̂ overflowed and reached ``eigh``, which raised numpy's LinAlgError."""
    noise = langevin(kind, B=2, k=1 if kind == "leading" else None)
    err = _raises(simulate, LIN, noise, eta=5.0, num_steps=3000, num_replicas=6, seed=3)
    assert (err.replica, err.step, err.epoch, err.lr) == (5, step, None, 5.0)
    assert np.isfinite(err.loss) and err.loss > 1e300
    msg = str(err)
    assert msg.startswith(f"replica 5 (stream 5) diverged at step {step}: the noise statistics "
                          f"of step {step - 1}")
    assert f"loss {loss} at step {step - 1}" in msg and "learning rate 5." in msg
    assert "epoch" not in msg
    assert "FirstPassage(loss=" in msg and not any(o in msg for o in TRAIN_OPTIONS)


@pytest.mark.parametrize(("problem", "noise", "kw", "expected"), [
    (LIN, langevin("diag", B=2), {}, (5, 194, None, 3)),
    (LIN, langevin("dynamic", B=2), {}, (5, 205, None, 3)),
    (LIN, sgd(4, scheme="reshuffle"), {}, (0, 704, 117, 1)),
    (LIN, sgd(4), {"form": "parameter", "noise_trace": 0.5}, (0, 245, None, 3)),
    (TOY, gd(), {}, (0, 382, None, 1)),
    (TOY, sgd(3, scheme="reshuffle"), {}, (1, 383, 38, 1)),
    (TOY, langevin("full", B=2), {}, (0, 329, None, 3)),
    (TOY, langevin("eigvec1", B=2), {}, (0, 329, None, 3)),
    (TOY, langevin("leading", k=1, B=2), {"form": "parameter", "noise_trace": 0.1},
     (0, 329, None, 3)),
])
@pytest.mark.parametrize("backend", BOTH)
def test_simulate_divergence_names_replica_step_and_epoch_on_every_backend(problem, noise, kw,
                                                                          expected, backend):
    eta = 5.0 if problem is LIN else 2.0
    err = _raises(simulate, problem, noise, eta=eta, num_steps=3000, num_replicas=6, seed=3,
                  execution=backend, **kw)
    replica, step, epoch, code = expected
    assert (err.replica, err.step, err.epoch, err.lr) == (replica, step, epoch, eta)
    reason = "non-finite parameters" if code == 1 else "the noise statistics"
    assert err.reason.startswith(reason)
    msg = str(err)
    where = f"step {step}" + ("" if epoch is None else f" (epoch {epoch})")
    assert msg.startswith(f"replica {replica} (stream {replica}) diverged at {where}: ")
    assert f"at step {step - 1}" in msg and "Lower eta" in msg
    assert ("noise_trace" in msg) == ("noise_trace" in kw)
    assert not any(o in msg for o in TRAIN_OPTIONS)


def test_simulate_divergence_of_a_model_problem_reaches_no_linear_algebra():
    """ModelProblem (numpy only) with Hessian-shaped noise: the Hessian and Σ̂ are checked."""
    problem = ModelProblem(LinearRegression(X_LIN, Y_LIN))
    err = _raises(simulate, problem, langevin("leading", k=2, B=2), eta=5.0, num_steps=3000,
                  num_replicas=6, seed=3, theta0=np.zeros(3))
    assert (err.replica, err.step) == (5, 195)


@pytest.mark.parametrize("backend", BOTH)
def test_simulate_flags_a_loss_that_overflows_while_theta_is_finite(backend):
    """GD on λ = 1 with η = 3: θ_k = θ₀(−2)^k.  After 700 steps θ ≈ 5e210 is finite but
    L = θ²/2 is not: the run must not return loss_final = inf."""
    problem = QuadraticProblem(np.array([[1.0]]))
    err = _raises(simulate, problem, gd(), eta=3.0, num_steps=700, num_replicas=2, seed=0,
                  theta0=np.array([[0.0], [1.0]]), observe=[Record(every=100, loss=True)],
                  execution=backend)
    # θ_500 = 2^500 ≈ 3e150 (L ≈ 5e301), θ_600 ≈ 4e180 (L overflows)
    assert (err.replica, err.step) == (1, 600)
    assert err.loss == pytest.approx(0.5 * 4.0 ** 500) and "at step 500" in str(err)
    assert "the loss is not finite although θ is" in str(err)


@pytest.mark.parametrize("backend", BOTH)
def test_simulate_refuses_a_theta0_whose_loss_overflows(backend):
    with pytest.raises(ValueError, match="theta0: the loss at theta0 is not finite"):
        simulate(QuadraticProblem(np.eye(2)), gd(), eta=0.1, num_steps=3, num_replicas=1,
                 seed=0, theta0=np.array([1e200, 0.0]), execution=backend)


def test_const_noise_from_an_overflowing_sigma_hat_is_refused():
    """x ≈ 1e100, residuals ≈ 1e60: L ≈ 1e120·… is finite, Σ̂ ≈ r²x² ≈ 1e320 is not."""
    problem = LinearRegressionProblem(1e100 * X_LIN, Y_LIN)
    with pytest.raises(ValueError, match="theta0: the trace of Σ̂ at theta0"):
        simulate(problem, langevin("const", B=2), eta=0.1, num_steps=3, num_replicas=1,
                 seed=0, theta0=np.full(3, 1e-40))


# -------------------------------------------------------------------------------------- SDE
@pytest.mark.parametrize("backend", BOTH)
def test_simulate_sde_raises_divergence_error_with_replica_step_and_loss(backend):
    """Reproducer: Euler–Maruyama with Δt = 0.3 ≫ 1/(8a) overflowed and raised ValueError."""
    err = _raises(simulate_sde, L0=0.1, a=1.0, n=2, noise="sgd", eta=1.0, dt=0.3,
                  num_steps=1000, num_replicas=4, seed=0, backend=backend)
    assert (err.replica, err.step, err.epoch, err.lr) == (1, 6, None, 1.0)
    assert err.loss == pytest.approx(1.088e120, rel=1e-3)
    msg = str(err)
    assert msg.startswith("replica 1 (stream 1) diverged at step 6: ")
    assert "at step 5" in msg and "dt 0.3" in msg and "Lower dt" in msg
    assert not any(o in msg for o in TRAIN_OPTIONS)


def test_simulate_sde_refuses_a_theta0_whose_loss_overflows():
    with pytest.raises(ValueError, match="theta0: the loss at theta0"):
        simulate_sde(L0=0.1, a=1.0, dt=0.01, num_steps=3, num_replicas=1, seed=0,
                     theta0=[1e100], backend="numpy")


# ---------------------------------------------------------------------------- first passage
@pytest.mark.parametrize("backend", BOTH)
def test_first_passage_times_raises_divergence_error_with_the_last_finite_loss(backend):
    """Reproducer: η = 50 makes a replica's step overflow (ValueError before)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=20)
    y = x + 0.1 * rng.normal(size=20)
    err = _raises(first_passage_times, x, y, eta=50.0, level=1.7e308, num_steps=5000,
                  num_replicas=40, seed=0, execution=backend)
    assert (err.replica, err.step, err.epoch, err.lr) == (11, 135, None, 50.0)
    assert err.loss == pytest.approx(1.0762711176537334e305, rel=1e-12)
    msg = str(err)
    assert msg.startswith("replica 11 (stream 11) diverged at step 135: ")
    assert "at step 134" in msg and "Lower eta" in msg
    assert not any(o in msg for o in TRAIN_OPTIONS)


def test_first_passage_times_refuses_a_theta0_whose_loss_overflows():
    with pytest.raises(ValueError, match="theta0: the loss at theta0"):
        first_passage_times([1.0, 2.0], [0.0, 1.0], eta=0.1, level=1.0, num_steps=3,
                            num_replicas=1, seed=0, theta0=1e200, execution="numpy")


# ------------------------------------------------------------------------------------ train
def _tanh_digits():
    data = datasets.digits(classes=[0, 1, 2], samples_per_class=100, rng=0)
    model = MLP((64, 32, 3), activation="tanh", loss="cross_entropy")
    return model, model.init(np.random.default_rng(0)), data.x, data.y


@pytest.mark.parametrize("backend", BOTH)
def test_train_flags_a_cross_entropy_blow_up_at_eta_1e4(backend):
    """Reproducer: tanh units saturate, so the logits (and the loss) grow like η instead of
    overflowing: the loss reached ≈ 9000× its initial value, under the old factor 1e6."""
    model, w0, x, y = _tanh_digits()
    err = _raises(train, model, w0, x, y, TrainConfig(eta=1e4, batch_size=50, num_epochs=5),
                  backend=backend)
    assert (err.step, err.epoch, err.lr, err.replica) == (1, 0, 1e4, None)
    assert err.loss == pytest.approx(1.481e4, rel=1e-3)
    msg = str(err)
    assert msg.startswith("training diverged at step 1 (epoch 0): batch loss above 1000× the "
                          "initial loss 1.079 (divergence_factor); batch loss 1.481e+04 at "
                          "step 1, learning rate 1e+04.")
    assert "raise divergence_factor" in msg


@pytest.mark.parametrize("backend", BOTH)
def test_train_never_returns_weights_that_overflowed_in_the_last_update(backend):
    """One step, finite loss and gradient, w0 − ηg beyond float64: nothing non-finite back."""
    rng = np.random.default_rng(0)
    model = MLP((3, 4, 2), activation="tanh", loss="mse")
    x, y, w0 = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), model.init(rng)
    err = _raises(train, model, w0, x, 100 * y,
                  TrainConfig(eta=1e308, batch_size=8, num_epochs=1), backend=backend)
    assert (err.step, err.epoch) == (0, 0)
    assert err.reason == "non-finite weights after the update"
    assert np.isfinite(err.loss) and "batch loss 4596 at step 0" in str(err)


@pytest.mark.parametrize("backend", BOTH)
def test_train_flags_an_overflowing_full_data_loss(backend):
    rng = np.random.default_rng(0)
    model = MLP((3, 4, 2), activation="tanh", loss="mse")
    x, y, w0 = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), model.init(rng)
    err = _raises(train, model, w0, x, y, TrainConfig(eta=1e306, batch_size=8, num_epochs=1),
                  backend=backend)
    assert (err.step, err.epoch) == (0, 0)
    assert err.reason == "non-finite full-data loss at the end of the epoch"


@pytest.mark.parametrize("backend", BOTH)
def test_train_flags_a_non_finite_gradient_of_a_finite_loss(backend):
    """z = Wx ≈ 2e153 (loss ≈ 2e306) but ∂L/∂W = (z − t) x ≈ 2e313 overflows."""
    model = MLP((2, 1), activation="identity", loss="mse", bias=False)
    x, y = np.full((4, 2), 1e160), np.zeros((4, 1))
    err = _raises(train, model, np.full(2, 1e-7), x, y,
                  TrainConfig(eta=0.1, batch_size=2, num_epochs=1), backend=backend)
    assert (err.step, err.epoch, err.reason) == (0, 0, "non-finite gradient")
    assert err.loss == pytest.approx(2e306)


@pytest.mark.parametrize("backend", BOTH)
def test_train_refuses_w0_whose_loss_is_not_finite(backend):
    model = MLP((2, 1), activation="identity", loss="mse", bias=False)
    with pytest.raises(ValueError, match="w0: the full-data loss at the initial weights"):
        train(model, np.full(2, 1e200), np.ones((4, 2)), np.zeros((4, 1)),
              TrainConfig(eta=0.1, batch_size=2, num_epochs=1), backend=backend)


def test_train_reports_the_previous_batch_loss_when_the_loss_is_not_finite():
    """A non-finite batch loss at step k: the loss shown is batch k − 1's."""
    class Exploding:
        calls = 0

        def loss_and_gradient(self, w, x, y):
            Exploding.calls += 1
            value = np.inf if Exploding.calls > 3 else 1.0 + Exploding.calls
            return value, np.zeros_like(w)

    err = _raises(train, Exploding(), np.zeros(2), np.zeros((8, 2)), np.zeros(8),
                  TrainConfig(eta=0.1, batch_size=2, num_epochs=3, sampler="shuffle_once"))
    # call 1 is L(w0); calls 2, 3 are steps 0, 1 (losses 3, 4), call 4 is step 2
    assert (err.step, err.epoch, err.loss) == (2, 0, 4.0)
    assert "non-finite batch loss; batch loss 4 at step 1" in str(err)

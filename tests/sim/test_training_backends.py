"""SGD training backends: the compiled numba epoch against the numpy reference epoch.

Both backends draw the same batches from the same numpy generator, so their trajectories differ
only by round-off (sums in another order): after a few epochs of these O(1) problems the final
weights agree to ``RTOL`` = 1e-10, far above the ≈1e-15 seen and far below any real difference
(one step of a wrong update rule moves the weights by ≈η‖g‖ ≈ 1e-3).
"""

import subprocess
import sys

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.models import ACTIVATIONS, LOSSES, MLP
from sgdnoise.sim.training import DivergenceError, TrainConfig, load_checkpoint, train

RTOL = 1e-10
ATOL = 1e-12

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")

COMBOS = [(act, loss, bias) for act in ACTIVATIONS for loss in LOSSES for bias in (False, True)]


def _problem(act="relu", loss="cross_entropy", bias=False, *, widths=(6, 5, 4, 3), N=45,
             seed=0):
    """A small MLP and data: widths not multiples of the kernels' blocks, odd batch sizes."""
    rng = np.random.default_rng(seed)
    model = MLP(widths, activation=act, loss=loss, bias=bias)
    x = rng.standard_normal((N, widths[0]))
    y = (rng.standard_normal((N, widths[-1])) if loss == "mse"
         else rng.integers(0, widths[-1], N))
    return model, model.init(rng), x, y


def _both(model, w0, x, y, cfg, **kwargs):
    ref = train(model, w0, x, y, cfg, backend="numpy", **kwargs)
    fast = train(model, w0, x, y, cfg, backend="numba", **kwargs)
    assert (ref.backend, fast.backend) == ("numpy", "numba")
    return ref, fast


def _assert_same_run(fast, ref):
    np.testing.assert_allclose(fast.w, ref.w, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(fast.velocity, ref.velocity, rtol=RTOL, atol=ATOL)
    assert fast.steps == ref.steps
    assert fast.history["epoch"] == ref.history["epoch"]
    assert fast.history["lr"] == ref.history["lr"]
    for key in ("batch_loss", "loss"):
        np.testing.assert_allclose(fast.history[key], ref.history[key], rtol=RTOL)


# every option at once: cosine rate, PyTorch momentum, clipping, weight decay, partial last batch
FULL = {"eta": 0.2, "batch_size": 7, "num_epochs": 3, "drop_last": False, "momentum": 0.6,
        "momentum_style": "pytorch", "schedule": "cosine", "eta_min": 0.01, "clip_norm": 0.3,
        "weight_decay": 1e-2, "seed": 2}


@needs_numba
@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_numba_epoch_matches_numpy_for_every_activation_and_loss(act, loss, bias):
    model, w0, x, y = _problem(act, loss, bias)
    ref, fast = _both(model, w0, x, y, TrainConfig(**FULL))
    _assert_same_run(fast, ref)
    assert np.abs(ref.w - w0).max() > 1e-3  # it trained


@needs_numba
@pytest.mark.parametrize(
    "options",
    [
        {"momentum": 0.9, "momentum_style": "heavy_ball"},
        {"momentum": 0.9, "momentum_style": "pytorch", "schedule": "cosine", "eta_min": 0.01},
        {"momentum": 0.5, "schedule": "cosine", "t_max": 2},
        {"weight_decay": 0.05},
        {"sampler": "replacement", "drop_last": False},
        {"sampler": "iid"},
        {"sampler": "shuffle_once", "drop_last": False},
        {"batch_size": 1},
        {"batch_size": 45, "momentum": 0.3},
        {"batch_size": 4, "drop_last": False},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_numba_epoch_matches_numpy_for_each_option(options):
    model, w0, x, y = _problem("tanh", "cross_entropy", True, seed=1)
    cfg = TrainConfig(**{"eta": 0.1, "batch_size": 8, "num_epochs": 3, "seed": 5, **options})
    ref, fast = _both(model, w0, x, y, cfg)
    _assert_same_run(fast, ref)


@needs_numba
def test_clipping_is_active_and_matches():
    model, w0, x, y = _problem("gelu", "mse", False, seed=3)
    base = {"eta": 0.05, "batch_size": 5, "num_epochs": 2, "momentum": 0.5}
    # the unclipped minibatch gradients are far above the clip norm
    norms = [np.linalg.norm(model.gradient(w0, x[k::9], y[k::9])) for k in range(9)]
    assert min(norms) > 5 * 0.1
    ref, fast = _both(model, w0, x, y, TrainConfig(**base, clip_norm=0.1))
    _assert_same_run(fast, ref)
    unclipped = train(model, w0, x, y, TrainConfig(**base), backend="numba")
    assert np.abs(unclipped.w - fast.w).max() > 1e-3


@needs_numba
@pytest.mark.parametrize(
    ("act", "options"),
    [("relu", {"momentum": 0.9}),
     ("tanh", {"clip_norm": 0.2, "weight_decay": 1e-2, "momentum": 0.5,
               "momentum_style": "pytorch"})],
)
def test_numba_threads_do_not_change_the_result(act, options):
    # wide enough that every thread gets samples and gradient rows; partial last batch
    model, w0, x, y = _problem(act, "cross_entropy", True, widths=(20, 18, 14, 5), N=70)
    cfg = TrainConfig(eta=0.1, batch_size=13, num_epochs=2, drop_last=False, **options)
    runs = [train(model, w0, x, y, cfg, backend="numba", num_threads=k) for k in (1, 2, 3)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.w, runs[0].w)
        np.testing.assert_array_equal(run.velocity, runs[0].velocity)
        assert run.history == runs[0].history
    _assert_same_run(runs[0], train(model, w0, x, y, cfg))


def _divergence(model, w0, x, y, cfg, backend, num_threads=1):
    with pytest.raises(DivergenceError) as info:
        train(model, w0, x, y, cfg, backend=backend, num_threads=num_threads)
    return info.value


@needs_numba
@pytest.mark.parametrize("num_threads", [1, 2])
@pytest.mark.parametrize(
    ("loss", "options", "reason"),
    [("cross_entropy", {"eta": 40.0, "divergence_factor": 3.0}, "above 3×"),
     ("cross_entropy", {"eta": 1.2, "divergence_factor": 10.0}, "above 10×"),  # in epoch 3
     ("mse", {"eta": 30.0, "divergence_factor": 1e300}, "non-finite"),
     ("mse", {"eta": 30.0, "momentum": 0.9, "clip_norm": 1e200, "divergence_factor": 1e300},
      "non-finite")],
)
def test_divergence_is_reported_identically(loss, options, reason, num_threads):
    model, w0, x, y = _problem("identity", loss, True, seed=2)
    cfg = TrainConfig(**{"batch_size": 8, "num_epochs": 200, **options})
    ref = _divergence(model, w0, x, y, cfg, "numpy")
    fast = _divergence(model, w0, x, y, cfg, "numba", num_threads=num_threads)
    assert reason in str(ref)
    assert (fast.step, fast.epoch, fast.lr) == (ref.step, ref.epoch, ref.lr)
    assert str(fast).split(": ")[1].split(";")[0] == str(ref).split(": ")[1].split(";")[0]
    if np.isfinite(ref.loss):
        assert fast.loss == pytest.approx(ref.loss, rel=1e-8)
    else:
        assert not np.isfinite(fast.loss)


@needs_numba
def test_divergence_at_the_first_step():
    model, w0, x, y = _problem("relu", "cross_entropy", False)
    cfg = TrainConfig(eta=0.1, batch_size=9, num_epochs=1, divergence_factor=0.5)
    ref = _divergence(model, w0, x, y, cfg, "numpy")
    fast = _divergence(model, w0, x, y, cfg, "numba")
    assert fast.step == ref.step == 0
    assert fast.loss == pytest.approx(ref.loss, rel=1e-12)


@needs_numba
def test_resume_after_a_crash_continues_the_same_numba_trajectory(tmp_path):
    model, w0, x, y = _problem("sigmoid", "softmax_mse", True, seed=6)
    cfg = TrainConfig(eta=0.3, batch_size=6, num_epochs=5, momentum=0.9, drop_last=False,
                      schedule="cosine", seed=3)
    full = train(model, w0, x, y, cfg, backend="numba")
    ckpt = tmp_path / "run.npz"

    def crash_at_2(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, w0, x, y, cfg, checkpoint=ckpt, progress=crash_at_2, backend="numba")
    assert load_checkpoint(ckpt)[2]["epoch"] == 2
    seen = []
    resumed = train(model, w0, x, y, cfg, checkpoint=ckpt, resume=True, backend="numba",
                    progress=lambda e, n, loss: seen.append((e, n, loss)))
    np.testing.assert_array_equal(resumed.w, full.w)
    np.testing.assert_array_equal(resumed.velocity, full.velocity)
    assert resumed.history == full.history and resumed.steps == full.steps
    assert seen == [(e, 5, full.history["batch_loss"][e - 1]) for e in (3, 4, 5)]
    # the numpy reference run, resumed from the same checkpoint, stays on the same trajectory
    with pytest.raises(KeyboardInterrupt):
        train(model, w0, x, y, cfg, checkpoint=tmp_path / "ref.npz", progress=crash_at_2)
    ref = train(model, w0, x, y, cfg, checkpoint=tmp_path / "ref.npz", resume=True)
    _assert_same_run(resumed, ref)


@needs_numba
def test_auto_backend_picks_numba_for_an_mlp():
    model, w0, x, y = _problem()
    cfg = TrainConfig(eta=0.1, batch_size=9, num_epochs=1)
    assert train(model, w0, x, y, cfg, backend="auto").backend == "numba"


@needs_numba
@pytest.mark.parametrize(("act", "loss", "bias"), [("relu", "cross_entropy", False),
                                                   ("gelu", "softmax_mse", True),
                                                   ("tanh", "mse", True)])
def test_numba_full_data_loss_matches_numpy(act, loss, bias):
    model, w, x, y = _problem(act, loss, bias, N=600)  # more than one block of samples
    assert model.loss(w, x, y, backend="numba") == pytest.approx(model.loss(w, x, y), rel=1e-13)


@needs_numba
def test_numba_full_data_loss_does_not_depend_on_the_thread_count():
    import numba

    model, w, x, y = _problem("tanh", "cross_entropy", True, N=1000)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = model.loss(w, x, y, backend="numba")
    finally:
        numba.set_num_threads(threads)
    assert model.loss(w, x, y, backend="numba") == one


class LeastSquares:
    """ℓ = ½ (xᵀw − y)², a model with no compiled path."""

    def loss_and_gradient(self, w, x, y):
        r = x @ w - y
        return 0.5 * float(r @ r) / len(y), x.T @ r / len(y)


class ScaledMLP(MLP):
    """An MLP subclass with its own gradient: the compiled kernel would ignore it."""

    def loss_and_gradient(self, w, x, y, *, chunk=4096):
        loss, g = super().loss_and_gradient(w, x, y, chunk=chunk)
        return 2 * loss, 2 * g


def test_auto_backend_falls_back_to_numpy_without_a_kernel():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3))
    res = train(LeastSquares(), np.zeros(3), x, x[:, 0],
                TrainConfig(eta=0.1, batch_size=5, num_epochs=1), backend="auto")
    assert res.backend == "numpy"


@pytest.mark.parametrize(
    ("model", "backend", "match"),
    [(LeastSquares(), "numba", "LeastSquares has no compiled path"),
     (ScaledMLP((6, 5, 4, 3)), "numba", "ScaledMLP has no compiled path"),
     (MLP((6, 5, 4, 3)), "cupy", "backend"),
     (MLP((6, 5, 4, 3)), "fast", "backend")],
)
def test_invalid_backend(model, backend, match):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 6))
    w0 = np.zeros(6 * 5 + 5 * 4 + 4 * 3)
    with pytest.raises(ValueError, match=match):
        train(model, w0, x, rng.integers(0, 3, 20),
              TrainConfig(eta=0.1, batch_size=5, num_epochs=1), backend=backend)


def test_invalid_num_threads():
    model, w0, x, y = _problem()
    with pytest.raises(ValueError, match="num_threads"):
        train(model, w0, x, y, TrainConfig(eta=0.1, batch_size=5, num_epochs=1), num_threads=0)


@needs_numba
@pytest.mark.parametrize(
    ("change", "match"),
    [({"w0": np.zeros(7)}, "w0"), ({"x": np.ones((45, 2))}, "x"),
     ({"y": np.full(45, 7)}, "y")],
)
def test_numba_backend_validates_its_inputs(change, match):
    model, w0, x, y = _problem()
    args = {"w0": w0, "x": x, "y": y, **change}
    with pytest.raises(ValueError, match=match):
        train(model, args["w0"], args["x"], args["y"],
              TrainConfig(eta=0.1, batch_size=5, num_epochs=1), backend="numba")


def test_numpy_training_does_not_import_numba():
    code = ("import sys, numpy as np; from sgdnoise.sim.models import MLP; "
            "from sgdnoise.sim.training import TrainConfig, train; "
            "m = MLP((2, 3, 2)); x = np.ones((4, 2)); y = np.array([0, 1, 0, 1]); "
            "train(m, m.init(0), x, y, TrainConfig(eta=0.1, batch_size=2, num_epochs=1)); "
            "print('numba' in sys.modules, 'sgdnoise.sim.models._mlp_numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

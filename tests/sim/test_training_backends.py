"""SGD training backends: the compiled numba epoch against the numpy reference epoch.

Both backends draw the same batches from the same numpy generator, so their trajectories differ
only by round-off (sums in another order): after a few epochs of these O(1) problems the final
weights agree to ``RTOL`` = 1e-10, far above the ≈1e-15 seen and far below any real difference
(one step of a wrong update rule moves the weights by ≈η‖g‖ ≈ 1e-3).

float32 runs (``TrainConfig(dtype="float32")``) round every operation to a relative
u = 2⁻²⁴ ≈ 6e-8 instead of 1.1e-16.  The backends sum in different orders, so a gradient entry
(a sum of at most K = 7·6 = 42 products here, plus a few roundings in the softmax and the
back-propagated δ's) differs between them by at most about K·u ≈ 2.5e-6 of its size, typically
√K·u ≈ 4e-7.  One epoch is S ≤ 7 steps of η|ĝ| ≤ 0.2·1, so the weights drift apart by at most
S·η·K·u ≈ 3.5e-6 (max|w| ≈ 1–2), and these clipped, small-step runs do not amplify earlier
differences (perturbing w0 changes the weights after an epoch by at most the perturbation's own
size).  ``RTOL32`` = 1e-4 of max|w| thus leaves a margin of 30 over that worst case and of ~700
over what is seen (≤ 1.5e-7), while one wrong step moves the weights by η|ĝ| ≈ 1e-2.  (A ReLU
unit whose pre-activation lies within round-off of 0 could switch differently in the two
backends; with O(1) random pre-activations that has a chance of order 1e-6 per run.)  Rounding
x and w0 to float32 adds u·|w| per weight, so the same limit holds for float32 against float64.
Within one backend float32 results do not depend on the thread count, bit for bit, as in
float64.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.models import ACTIVATIONS, LOSSES, MLP
from sgdnoise.sim.training import DivergenceError, TrainConfig, load_checkpoint, train

RTOL = 1e-10
ATOL = 1e-12
RTOL32 = 1e-4  # relative to max|w|: float32 round-off over one epoch, see the module docstring

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
    assert (fast.step, fast.epoch, fast.lr, fast.reason) == (ref.step, ref.epoch, ref.lr,
                                                             ref.reason)
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


# --------------------------------------------------------------------------- float32

def _assert_close32(fast, ref):
    """Weights, momentum buffers and losses within float32 round-off (module docstring)."""
    scale = np.abs(ref.w).max()
    assert np.abs(fast.w - ref.w).max() <= RTOL32 * scale
    assert np.abs(fast.velocity - ref.velocity).max() <= RTOL32 * max(np.abs(ref.velocity).max(),
                                                                       scale)
    assert fast.steps == ref.steps and fast.history["lr"] == ref.history["lr"]
    for key in ("batch_loss", "loss"):
        np.testing.assert_allclose(fast.history[key], ref.history[key], rtol=RTOL32)


def _is_float32_valued(a):
    return a.dtype == np.float64 and np.array_equal(a.astype(np.float32).astype(np.float64), a)


@needs_numba
@pytest.mark.parametrize(("act", "loss", "bias"), COMBOS)
def test_float32_numba_epoch_matches_float32_numpy(act, loss, bias):
    model, w0, x, y = _problem(act, loss, bias)
    cfg = TrainConfig(**{**FULL, "num_epochs": 1, "dtype": "float32"})
    ref, fast = _both(model, w0, x, y, cfg)
    _assert_close32(fast, ref)
    for run in (ref, fast):
        assert _is_float32_valued(run.w) and _is_float32_valued(run.velocity)
    assert np.abs(ref.w - w0).max() > 1e-3  # it trained


@needs_numba
@pytest.mark.parametrize(("act", "loss", "bias", "options"),
                         [("relu", "cross_entropy", False, {}),
                          ("tanh", "softmax_mse", True, {"momentum": 0.9}),
                          ("gelu", "mse", True, {"clip_norm": 0.3, "weight_decay": 0.01})])
def test_float32_run_is_close_to_float64_but_not_equal(act, loss, bias, options):
    model, w0, x, y = _problem(act, loss, bias, seed=4)
    kw = {"eta": 0.1, "batch_size": 7, "num_epochs": 1, **options}
    r64 = train(model, w0, x, y, TrainConfig(**kw), backend="numba")
    for backend in ("numba", "numpy"):
        r32 = train(model, w0, x, y, TrainConfig(**kw, dtype="float32"), backend=backend)
        _assert_close32(r32, r64)
        assert np.abs(r32.w - r64.w).max() > 0  # really another precision


@needs_numba
@pytest.mark.parametrize(
    ("act", "options"),
    [("relu", {"momentum": 0.9}),
     ("tanh", {"clip_norm": 0.2, "weight_decay": 1e-2, "momentum": 0.5,
               "momentum_style": "pytorch"})],
)
def test_float32_threads_do_not_change_the_result(act, options):
    model, w0, x, y = _problem(act, "cross_entropy", True, widths=(20, 18, 14, 5), N=70)
    cfg = TrainConfig(eta=0.1, batch_size=13, num_epochs=2, drop_last=False, dtype="float32",
                      **options)
    runs = [train(model, w0, x, y, cfg, backend="numba", num_threads=k) for k in (1, 2, 3)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.w, runs[0].w)
        np.testing.assert_array_equal(run.velocity, runs[0].velocity)
        assert run.history == runs[0].history


@needs_numba
def test_float32_resume_continues_the_same_numba_trajectory(tmp_path):
    model, w0, x, y = _problem("gelu", "cross_entropy", True, seed=6)
    cfg = TrainConfig(eta=0.3, batch_size=6, num_epochs=4, momentum=0.9, drop_last=False,
                      clip_norm=1.0, schedule="cosine", seed=3, dtype="float32")
    full = train(model, w0, x, y, cfg, backend="numba")
    ckpt = tmp_path / "run.npz"

    def crash_at_2(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, w0, x, y, cfg, checkpoint=ckpt, progress=crash_at_2, backend="numba")
    w_mid, v_mid, _ = load_checkpoint(ckpt)
    assert w_mid.dtype == v_mid.dtype == np.float32
    resumed = train(model, w0, x, y, cfg, checkpoint=ckpt, resume=True, backend="numba")
    np.testing.assert_array_equal(resumed.w, full.w)
    np.testing.assert_array_equal(resumed.velocity, full.velocity)
    assert resumed.history == full.history and resumed.steps == full.steps


@needs_numba
@pytest.mark.parametrize(
    ("loss", "options", "reason"),
    [("cross_entropy", {"eta": 40.0, "divergence_factor": 3.0}, "above 3×"),
     ("mse", {"eta": 30.0, "divergence_factor": 1e300}, "non-finite")],
)
def test_float32_divergence_is_reported_identically(loss, options, reason):
    # an exploding float32 run overflows earlier (at 3.4e38), at the same step in both backends
    model, w0, x, y = _problem("identity", loss, True, seed=2)
    cfg = TrainConfig(**{"batch_size": 8, "num_epochs": 200, "dtype": "float32", **options})
    ref = _divergence(model, w0, x, y, cfg, "numpy")
    fast = _divergence(model, w0, x, y, cfg, "numba")
    assert reason in str(ref) and reason in str(fast)
    assert (fast.step, fast.epoch, fast.lr) == (ref.step, ref.epoch, ref.lr)
    if np.isfinite(ref.loss):
        assert fast.loss == pytest.approx(ref.loss, rel=RTOL32)


@needs_numba
def test_float32_full_data_loss_matches_numpy():
    model, w, x, y = _problem("tanh", "cross_entropy", True, N=600)
    from sgdnoise.sim.models import _mlp_numba

    T = np.eye(3)[y]
    w32, x32 = w.astype(np.float32), x.astype(np.float32)
    fast = _mlp_numba.mean_loss(model._kernel_spec(), w32, x32, T.astype(np.float32))
    ref = model.loss_and_gradient(w32, x32, y)[0]
    exact = model.loss(w32.astype(np.float64), x32.astype(np.float64), y)
    # sums of 256 (numba) or 600 (numpy) float32 losses: at most 600·u ≈ 4e-5 apart
    assert fast == pytest.approx(exact, rel=RTOL32) and ref == pytest.approx(exact, rel=RTOL32)
    assert fast != exact  # computed in float32


def test_numpy_reference_gradient_is_float32_for_float32_weights():
    model, w, x, y = _problem("sigmoid", "softmax_mse", True)
    loss64, g64 = model.loss_and_gradient(w, x, y)
    loss32, g32 = model.loss_and_gradient(w.astype(np.float32), x, y)
    assert g64.dtype == np.float64 and g32.dtype == np.float32 and isinstance(loss32, float)
    assert np.abs(g32 - g64).max() <= RTOL32 * np.abs(g64).max()
    assert loss32 == pytest.approx(loss64, rel=RTOL32)
    # x is rounded to float32 either way: a float32 x gives the same numbers
    loss_x32, g_x32 = model.loss_and_gradient(w.astype(np.float32), x.astype(np.float32), y)
    np.testing.assert_array_equal(g_x32, g32)
    assert loss_x32 == loss32


@needs_numba
def test_sgd_epoch_refuses_mixed_precision():
    from sgdnoise.sim.models import _mlp_numba

    model, w, x, y = _problem()
    T = np.eye(3)[y]
    w32 = w.astype(np.float32)
    kw = {"lr": 0.1, "beta": 0.0, "heavy_ball": True, "clip_norm": None, "weight_decay": 0.0,
          "divergence_factor": 1e6, "loss0": None}
    rows, starts = np.arange(45), np.array([0, 45])
    with pytest.raises(ValueError, match="x must be"):
        _mlp_numba.sgd_epoch(model._kernel_spec(), w32, np.zeros_like(w32), x,
                             T.astype(np.float32), rows, starts, **kw)
    with pytest.raises(ValueError, match="v must be"):
        _mlp_numba.sgd_epoch(model._kernel_spec(), w32, np.zeros_like(w), x.astype(np.float32),
                             T.astype(np.float32), rows, starts, **kw)


# the float32 specialisation, compiled afresh (a cached one keeps no types) with the kernels'
# own compile options but serial, so that numba's typing of every variable can be read back
_TYPED_CHECK = textwrap.dedent("""
    import json
    import numba
    import numpy as np
    from sgdnoise.sim.models import MLP, _mlp_numba as K

    model = MLP((6, 5, 4, 3), activation="gelu", bias=True)
    widths, offsets, bias, act, loss = model._kernel_spec()
    f = np.float32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6)).astype(f)
    T = np.eye(3, dtype=f)[rng.integers(0, 3, 16)]
    w = model.init(rng).astype(f)
    epoch = numba.njit(error_model="numpy")(K._sgd_epoch_kernel.py_func)
    epoch(w, np.zeros_like(w), widths, offsets, 1, act, loss, x, T, np.arange(16),
          np.array([0, 8, 16]), f(0.1), f(0.5), True, f(1.0), f(0.1), 1e6, False, 1.0,
          np.zeros(2), 1)
    full_loss = numba.njit(error_model="numpy")(K._mean_loss_kernel.py_func)
    full_loss(w, widths, offsets, 1, act, loss, x, T, 8, np.zeros(2))
    out = {}
    for name, disp in [("_sgd_epoch_kernel", epoch), ("_mean_loss_kernel", full_loss),
                       *vars(K).items()]:
        if isinstance(disp, numba.core.registry.CPUDispatcher):
            for sig, cres in disp.overloads.items():
                if any("float32" in str(t) for t in sig):
                    out[name] = {k: str(v) for k, v in cres.type_annotation.typemap.items()}
    print(json.dumps(out))
""")

# float64 on purpose: the divergence test (as numpy's Python floats), the float64 losses it
# records, and the loss of each 256-sample block of the full-data loss
_FLOAT64_NAMES = {"loss0", "divergence_factor", "losses", "block_sums"}


@needs_numba
@pytest.mark.slow  # compiles the whole float32 kernel afresh: 10–20 s
def test_float32_kernels_compute_in_float32(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # a fresh cache: compile, keep types
    out = subprocess.run([sys.executable, "-c", _TYPED_CHECK], capture_output=True, text=True,
                         check=True, env=env)
    typemaps = json.loads(out.stdout)
    checked = set(typemaps) - {"_check_loss"}  # the divergence test, float64 on purpose
    assert {"_sgd_epoch_kernel", "_mean_loss_kernel", "_dense_forward", "_dense_weight_gradient",
            "_activate", "_times_derivative", "_minibatch_deltas", "_loss_value_and_gradient",
            "_sgd_update", "_sum_of_squares"} <= checked
    wrong = {}
    for name in checked:
        for var, typ in typemaps[name].items():
            if not (typ == "float64" or typ.startswith("array(float64")):
                continue
            base = var.removeprefix("arg.").split(".")[0]
            # literals and module constants before their conversion to the arrays' dtype, and
            # float64 values read back from the divergence test
            harmless = var.startswith("$") and ("const" in var or "load_global" in var
                                                or "unpack_sequence" in var)
            if not harmless and base not in _FLOAT64_NAMES:
                wrong.setdefault(name, []).append(f"{var}: {typ}")
    assert not wrong, f"float64 arithmetic in the float32 kernels: {wrong}"
    # the accumulators of the dense layers, for instance, are float32
    assert typemaps["_dense_forward"]["s00"] == "float32"
    assert typemaps["_sgd_epoch_kernel"]["total"] == "float32"
    assert typemaps["_loss_value_and_gradient"]["total"] == "float32"


# a run saved before float32 existed (sgdnoise 66ce3f8): the default stays the same float64 run
_SAVED_FULL_RELU = {
    "loss": [1.2106320535790247, 1.1249296890335, 1.104007691160465],
    "w[:3]": [0.43584671846316614, -0.4390813043229559, 0.20784241156014374],
    "w·w": 17.58945377879987,
    "v·v": 0.15217008736701038,
}


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_default_float64_run_matches_a_run_saved_before_float32(backend):
    model, w0, x, y = _problem("relu", "cross_entropy", False)
    res = train(model, w0, x, y, TrainConfig(**FULL), backend=backend)
    assert res.w.dtype == res.velocity.dtype == np.float64
    saved = _SAVED_FULL_RELU
    # float64 round-off of a 21-step run (≈1e-15; numba and numpy differ by 2e-16 here)
    np.testing.assert_allclose(res.history["loss"], saved["loss"], rtol=1e-12)
    np.testing.assert_allclose(res.w[:3], saved["w[:3]"], rtol=1e-12)
    assert res.w @ res.w == pytest.approx(saved["w·w"], rel=1e-12)
    assert res.velocity @ res.velocity == pytest.approx(saved["v·v"], rel=1e-12)

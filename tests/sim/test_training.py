"""SGD training: update rules, schedules, clipping, divergence, checkpoint and resume."""

import json
import math

import numpy as np
import pytest

from sgdnoise.sim.training import DTYPES, DivergenceError, TrainConfig, load_checkpoint, train

# float32 runs against float64 runs of the same problem.  float32 rounds every operation (and x,
# y, w0) to a relative u = 2⁻²⁴ ≈ 6e-8.  Here a gradient entry is a sum of at most K = 8·5 = 40
# products, and a run is S = 24 steps (3 epochs of 8) of size η|ĝ| with η ≤ 0.1, on a contracting
# problem (ηλ < 2), so the two precisions end at most about S·η·K·u·max|ĝ| + S·u·max|w|
# ≈ 6e-6·max|ĝ| + 1.4e-6·max|w| apart (every rounding error of one sign; |ĝ|, |w| ≲ 1) and
# typically √(S·K)·u ≈ 2e-6 of that (seen: 4e-8 to 1.4e-7).  FLOAT32_RTOL = 1e-4 of max|w|
# keeps a margin of 10 over the bound, while one wrong update moves the weights by η|ĝ| ≈ 1e-2.
FLOAT32_RTOL = 1e-4


class LeastSquares:
    """ℓ = ½ (xᵀw − y)², mean over the batch."""

    def loss_and_gradient(self, w, x, y):
        r = x @ w - y
        return 0.5 * float(r @ r) / len(y), x.T @ r / len(y)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5))
    y = x @ rng.standard_normal(5) + 0.1 * rng.standard_normal(64)
    return LeastSquares(), x, y


def test_training_reduces_loss(problem):
    model, x, y = problem
    res = train(model, np.zeros(5), x, y, TrainConfig(eta=0.1, batch_size=8, num_epochs=20))
    assert res.history["loss"][-1] < 0.05 * model.loss_and_gradient(np.zeros(5), x, y)[0]
    assert res.steps == 20 * 8


def test_same_seed_same_trajectory_and_other_seed_differs(problem):
    model, x, y = problem
    cfg = TrainConfig(eta=0.05, batch_size=8, num_epochs=3, momentum=0.9, seed=4)
    a = train(model, np.zeros(5), x, y, cfg)
    b = train(model, np.zeros(5), x, y, cfg)
    c = train(model, np.zeros(5), x, y, TrainConfig(eta=0.05, batch_size=8, num_epochs=3,
                                                    momentum=0.9, seed=5))
    np.testing.assert_array_equal(a.w, b.w)
    assert not np.array_equal(a.w, c.w)


def test_momentum_styles_agree_for_constant_rate_and_differ_for_cosine(problem):
    model, x, y = problem
    kw = {"eta": 0.05, "batch_size": 8, "num_epochs": 4, "momentum": 0.8}
    hb = train(model, np.zeros(5), x, y, TrainConfig(**kw, momentum_style="heavy_ball"))
    pt = train(model, np.zeros(5), x, y, TrainConfig(**kw, momentum_style="pytorch"))
    np.testing.assert_allclose(hb.w, pt.w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hb.velocity, -0.05 * pt.velocity, rtol=1e-12, atol=1e-14)
    hb_c = train(model, np.zeros(5), x, y, TrainConfig(**kw, schedule="cosine"))
    pt_c = train(model, np.zeros(5), x, y, TrainConfig(**kw, schedule="cosine",
                                                       momentum_style="pytorch"))
    assert np.abs(hb_c.w - pt_c.w).max() > 1e-6


def test_cosine_schedule_values():
    cfg = TrainConfig(eta=0.1, batch_size=1, num_epochs=10, schedule="cosine", eta_min=0.01)
    assert cfg.learning_rate(0) == pytest.approx(0.1)
    assert cfg.learning_rate(5) == pytest.approx(0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi / 2)))
    assert cfg.learning_rate(10) == pytest.approx(0.01)


def test_clipping_bounds_every_step(problem):
    model, x, y = problem
    y = 100 * y  # large gradients
    cfg = TrainConfig(eta=0.01, batch_size=8, num_epochs=1, clip_norm=0.5, sampler="shuffle_once")
    w = np.zeros(5)
    res = train(model, w, x, y, cfg)
    # one epoch = 8 steps of size at most eta * clip_norm
    assert np.linalg.norm(res.w - w) <= 8 * 0.01 * 0.5 + 1e-12


def test_divergence_raises_with_step_loss_and_rate(problem):
    model, x, y = problem
    with pytest.raises(DivergenceError, match=r"step \d+ .*learning rate 50") as info:
        train(model, np.zeros(5), x, y, TrainConfig(eta=50.0, batch_size=8, num_epochs=50))
    assert info.value.step >= 0 and info.value.lr == 50.0


def test_resume_after_a_crash_continues_the_same_trajectory(problem, tmp_path):
    model, x, y = problem
    cfg = TrainConfig(eta=0.05, batch_size=8, num_epochs=6, momentum=0.9, sampler="reshuffle",
                      seed=3)
    full = train(model, np.zeros(5), x, y, cfg)
    ckpt = tmp_path / "run.npz"

    def crash_at_3(epoch, total, loss):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, progress=crash_at_3)
    _, _, state = load_checkpoint(ckpt)
    assert state["epoch"] == 3
    resumed = train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.w, full.w)
    assert resumed.history == full.history and resumed.steps == full.steps


def test_shuffle_once_resume_keeps_its_permutation(problem, tmp_path):
    model, x, y = problem
    cfg = TrainConfig(eta=0.05, batch_size=8, num_epochs=4, sampler="shuffle_once", seed=1)
    full = train(model, np.zeros(5), x, y, cfg)
    ckpt = tmp_path / "r.npz"

    def stop(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, progress=stop)
    resumed = train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.w, full.w)


def test_resume_with_another_config_is_refused(problem, tmp_path):
    model, x, y = problem
    ckpt = tmp_path / "r.npz"
    train(model, np.zeros(5), x, y, TrainConfig(eta=0.05, batch_size=8, num_epochs=1),
          checkpoint=ckpt)
    with pytest.raises(ValueError, match="another config"):
        train(model, np.zeros(5), x, y, TrainConfig(eta=0.1, batch_size=8, num_epochs=2),
              checkpoint=ckpt, resume=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"eta": 0.0}, "eta"), ({"batch_size": 0}, "batch_size"), ({"momentum": 1.0}, "momentum"),
     ({"sampler": "bogus"}, "sampler"), ({"schedule": "step"}, "schedule"),
     ({"momentum_style": "nesterov"}, "momentum_style"), ({"clip_norm": -1.0}, "clip_norm"),
     ({"seed": -1}, "seed"), ({"dtype": "float16"}, "dtype"), ({"dtype": np.float32}, "dtype")],
)
def test_invalid_config(kwargs, match):
    base = {"eta": 0.1, "batch_size": 4, "num_epochs": 1}
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**base, **kwargs})


class RecordingLeastSquares(LeastSquares):
    """Least squares that records the dtypes it is given and computes in them."""

    def __init__(self):
        self.seen = set()

    def loss_and_gradient(self, w, x, y):
        self.seen.add((w.dtype.name, x.dtype.name, y.dtype.name))
        return super().loss_and_gradient(w, x, y)


def _max_rel_diff(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_float64_is_the_default_and_explicit_float64_is_the_same_run(problem):
    model, x, y = problem
    kw = {"eta": 0.05, "batch_size": 8, "num_epochs": 3, "momentum": 0.9, "clip_norm": 1.0}
    assert TrainConfig(**kw).dtype == "float64" and DTYPES == ("float64", "float32")
    a = train(model, np.zeros(5), x, y, TrainConfig(**kw))
    b = train(model, np.zeros(5), x, y, TrainConfig(**kw, dtype="float64"))
    np.testing.assert_array_equal(a.w, b.w)
    assert a.history == b.history and a.w.dtype == np.float64


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9, "clip_norm": 1.0,
                                          "weight_decay": 0.01, "momentum_style": "pytorch"}])
def test_float32_run_computes_in_float32_and_reports_float64(problem, options):
    model, x, y = problem
    recorder = RecordingLeastSquares()
    kw = {"eta": 0.1, "batch_size": 8, "num_epochs": 3, **options}
    r32 = train(recorder, np.zeros(5), x, y, TrainConfig(**kw, dtype="float32"))
    r64 = train(model, np.zeros(5), x, y, TrainConfig(**kw))
    assert recorder.seen == {("float32", "float32", "float32")}
    for arr in (r32.w, r32.velocity):
        assert arr.dtype == np.float64
        np.testing.assert_array_equal(arr.astype(np.float32).astype(np.float64), arr)
    assert all(isinstance(v, float) for v in r32.history["loss"] + r32.history["batch_loss"])
    assert 0 < _max_rel_diff(r32.w, r64.w) <= FLOAT32_RTOL  # close, but really float32
    np.testing.assert_allclose(r32.history["loss"], r64.history["loss"], rtol=FLOAT32_RTOL)


def test_float32_update_matches_a_hand_written_float32_step():
    # one batch, one step: the update must be the float32 arithmetic of the formula, bit for bit
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal(6)
    w0 = rng.standard_normal(4)
    cfg = TrainConfig(eta=0.3, batch_size=6, num_epochs=1, momentum=0.5, clip_norm=0.7,
                      weight_decay=0.02, momentum_style="pytorch", dtype="float32")
    res = train(LeastSquares(), w0, x, y, cfg)
    f = np.float32
    w, x32, y32 = w0.astype(f), x.astype(f), y.astype(f)
    idx = np.random.default_rng(cfg.seed).permutation(6)  # the one batch: all rows, reshuffled
    g = x32[idx].T @ (x32[idx] @ w - y32[idx]) / 6
    n = np.linalg.norm(g)
    if n > 0.7:
        g = g * (f(0.7) / n)
    g = g + f(0.02) * w
    v = g  # b ← βb + ĝ from b = 0
    np.testing.assert_array_equal(res.w, (w - f(0.3) * v).astype(np.float64))
    np.testing.assert_array_equal(res.velocity, v.astype(np.float64))


def test_float32_resume_continues_bit_for_bit_and_keeps_float32(problem, tmp_path):
    model, x, y = problem
    cfg = TrainConfig(eta=0.05, batch_size=8, num_epochs=5, momentum=0.9, seed=3,
                      dtype="float32")
    full = train(model, np.zeros(5), x, y, cfg)
    ckpt = tmp_path / "run.npz"

    def crash_at_2(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, progress=crash_at_2)
    w_mid, v_mid, state = load_checkpoint(ckpt)
    assert w_mid.dtype == v_mid.dtype == np.float32 and state["config"]["dtype"] == "float32"
    resumed = train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.w, full.w)
    np.testing.assert_array_equal(resumed.velocity, full.velocity)
    assert resumed.history == full.history and resumed.steps == full.steps
    with pytest.raises(ValueError, match="another config"):
        train(model, np.zeros(5), x, y, TrainConfig(**{**cfg.__dict__, "dtype": "float64"}),
              checkpoint=ckpt, resume=True)


def test_checkpoint_without_dtype_resumes_as_float64(problem, tmp_path):
    # a checkpoint written before TrainConfig had a dtype field
    model, x, y = problem
    cfg = TrainConfig(eta=0.05, batch_size=8, num_epochs=4, momentum=0.9, seed=1)
    full = train(model, np.zeros(5), x, y, cfg)
    ckpt = tmp_path / "old.npz"

    def stop(epoch, total, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, progress=stop)
    w, v, state = load_checkpoint(ckpt)
    del state["config"]["dtype"]
    np.savez(ckpt, w=w, v=v, state=np.array(json.dumps(state)))
    resumed = train(model, np.zeros(5), x, y, cfg, checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.w, full.w)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"w0": np.full(5, 1e39)}, "w0"), ({"x": np.full((64, 5), -1e39)}, "x"),
     ({"y": np.full(64, 1e39)}, "y")],
)
def test_float32_refuses_values_beyond_its_range(problem, change, match):
    model, x, y = problem
    args = {"w0": np.zeros(5), "x": x, "y": y, **change}
    with pytest.raises(ValueError, match=match):
        train(model, args["w0"], args["x"], args["y"],
              TrainConfig(eta=0.1, batch_size=8, num_epochs=1, dtype="float32"))
    # the same values are accepted in float64, where they are finite
    res = train(model, args["w0"], args["x"], args["y"],
                TrainConfig(eta=1e-90, batch_size=8, num_epochs=1, divergence_factor=1e300))
    assert np.all(np.isfinite(res.w))

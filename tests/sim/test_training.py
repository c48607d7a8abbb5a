"""SGD training: update rules, schedules, clipping, divergence, checkpoint and resume."""

import math

import numpy as np
import pytest

from sgdnoise.sim.training import DivergenceError, TrainConfig, load_checkpoint, train


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
    w_mid, _, state = load_checkpoint(ckpt)
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
     ({"seed": -1}, "seed")],
)
def test_invalid_config(kwargs, match):
    base = {"eta": 0.1, "batch_size": 4, "num_epochs": 1}
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**base, **kwargs})

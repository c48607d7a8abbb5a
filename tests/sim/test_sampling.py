"""Minibatch schemes."""

import numpy as np
import pytest

from sgdnoise.sim.sampling import SCHEMES, BatchSampler, draw_batches


def test_reshuffle_epoch_visits_every_sample_once():
    s = BatchSampler(12, 4, "reshuffle")
    batches = s.epoch(np.random.default_rng(0))
    assert len(batches) == 3
    assert sorted(np.concatenate(batches).tolist()) == list(range(12))


def test_reshuffle_draws_a_new_permutation_each_epoch():
    s = BatchSampler(12, 4, "reshuffle")
    rng = np.random.default_rng(0)
    a, b = np.concatenate(s.epoch(rng)), np.concatenate(s.epoch(rng))
    assert not np.array_equal(a, b)


def test_shuffle_once_repeats_its_permutation():
    s = BatchSampler(10, 5, "shuffle_once")
    rng = np.random.default_rng(1)
    fixed = s.first_permutation(rng)
    e1, e2 = s.epoch(rng, fixed), s.epoch(rng, fixed)
    assert all(np.array_equal(p, q) for p, q in zip(e1, e2, strict=True))
    with pytest.raises(ValueError, match="fixed_permutation"):
        s.epoch(rng)


def test_iid_batches_have_distinct_indices_and_replacement_may_repeat():
    rng = np.random.default_rng(2)
    iid = BatchSampler(6, 5, "iid").epoch(rng)
    assert all(len(set(b.tolist())) == 5 for b in iid)
    rep = np.array([BatchSampler(6, 5, "replacement").epoch(rng)[0] for _ in range(50)])
    assert rep.min() >= 0 and rep.max() < 6
    assert any(len(set(r.tolist())) < 5 for r in rep)


def test_partial_last_batch_kept_when_asked():
    s = BatchSampler(10, 4, "reshuffle", drop_last=False)
    sizes = [len(b) for b in s.epoch(np.random.default_rng(3))]
    assert sizes == [4, 4, 2] and s.steps_per_epoch == 3
    assert BatchSampler(10, 4, "reshuffle").steps_per_epoch == 2


@pytest.mark.parametrize("scheme", SCHEMES)
def test_draw_batches_is_deterministic_for_a_seed(scheme):
    a = draw_batches(np.random.default_rng(5), N=20, B=4, num_steps=13, scheme=scheme)
    b = draw_batches(np.random.default_rng(5), N=20, B=4, num_steps=13, scheme=scheme)
    assert a.shape == (13, 4)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"N": 0, "B": 1}, "N"), ({"N": 4, "B": 0}, "B"), ({"N": 4, "B": 5}, "B"),
     ({"N": 4, "B": 2, "scheme": "random"}, "scheme")],
)
def test_invalid_sampler_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchSampler(**kwargs)

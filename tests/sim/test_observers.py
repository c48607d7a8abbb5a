"""Observers of ``simulate``: each one's numba hooks against its numpy reference, the moved
keywords, centring (second moment about a point), units of the passage time, and an observer
defined outside the package (the example of the observers' module docstring, run as written).
"""

import importlib.util
import inspect
import textwrap

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.dynamics import (
    MOVED_KEYWORDS,
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    Moments,
    Momentum,
    MovedArgumentError,
    NoiseLags,
    QuadraticProblem,
    Record,
    Toy2DProblem,
    gd,
    langevin,
    sgd,
    simulate,
)
from sgdnoise.sim.dynamics import observers as observers_module
from sgdnoise.sim.models import toy_data

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")

TOY = Toy2DProblem(toy_data(4, N=20))
_rng = np.random.default_rng(2)
_X = _rng.standard_normal((30, 3))
LIN = LinearRegressionProblem(_X, _X @ np.array([1.0, -0.5, 2.0]) + 0.4 * _rng.standard_normal(30))
TILT = QuadraticProblem(np.diag([1.0, 0.4, 0.1]), np.array([0.2, -0.1, 0.3]),
                        _rng.standard_normal((16, 3)))

OBSERVERS = [
    pytest.param(Record(every=3), id="record"),
    pytest.param(Record(every=4, loss=True), id="record-loss"),
    pytest.param(FirstPassage(loss=0.6), id="first-passage"),
    pytest.param(FirstPassage(loss=0.6, stop=True), id="first-passage-stop"),
    pytest.param(Moments(after=5), id="moments"),
    pytest.param(Moments(after=4, every=3, phase=2, about="theta_star"), id="moments-phase-star"),
    pytest.param(Moments(about=np.array([0.1, 0.2, 0.3])), id="moments-point"),
    pytest.param(NoiseLags(num_lags=4, after=6), id="noise-lags"),
]


def _fields(run):
    return {**run.arrays(), **{k: v for k, v in run.results.items()
                               if v is not None and not isinstance(v, np.ndarray)}}


@needs_numba
@pytest.mark.parametrize("observer", OBSERVERS)
@pytest.mark.parametrize("problem", [LIN, TILT], ids=["linear", "tilted"])
def test_each_observer_numba_hooks_match_the_numpy_reference(problem, observer):
    kw = {"eta": 0.1, "num_steps": 40, "num_replicas": 6, "seed": 3, "momentum": 0.3}
    ref = simulate(problem, sgd(4, scheme="reshuffle"), observe=[observer], **kw)
    fast = simulate(problem, sgd(4, scheme="reshuffle"), observe=[observer],
                    execution="numba", **kw)
    a, b = _fields(fast), _fields(ref)
    assert set(a) == set(b) and set(observer.fields) <= set(a) | {"loss"}
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12, err_msg=name)


@needs_numba
def test_observers_on_the_toy_match_in_any_order():
    obs = [Record(every=5, loss=True), FirstPassage(loss=1.5, stop=True), Moments(after=3)]
    kw = {"eta": 0.004, "num_steps": 60, "num_replicas": 5, "seed": 1, "form": "parameter",
          "noise_trace": 0.05}
    ref = simulate(TOY, langevin("full"), observe=obs, **kw)
    for order in (obs, obs[::-1]):
        fast = simulate(TOY, langevin("full"), observe=order, execution="numba", **kw)
        for name, value in _fields(ref).items():
            np.testing.assert_allclose(_fields(fast)[name], value, rtol=1e-12, atol=1e-12,
                                       err_msg=name)


@needs_numba
def test_a_long_run_with_several_observers_keeps_a_bounded_stack():
    """Hooks called per step must not grow the stack (a kernel that did crashed after a few
    thousand steps with several observers)."""
    run = simulate(TILT, sgd(4, scheme="reshuffle"), eta=0.1, num_steps=30_000, num_replicas=2,
                   seed=0, observe=[Moments(), Record(every=1000), FirstPassage(loss=1e9),
                                    NoiseLags(num_lags=2)],
                   execution=Execution("numba", num_threads=1))
    assert run.moments_count == 30_001 and np.isfinite(run.noise_autocov).all()


@pytest.mark.parametrize("old", sorted(MOVED_KEYWORDS))
def test_old_keywords_raise_moved_argument_error_naming_the_replacement(old):
    with pytest.raises(MovedArgumentError, match=f"{old}= is now ") as info:
        simulate(LIN, gd(), eta=0.1, num_steps=2, num_replicas=1, seed=0, **{old: 1})
    message = str(info.value)
    replacement = MOVED_KEYWORDS[old]
    assert replacement in message
    assert any(name in replacement for name in ("Record", "Moments", "FirstPassage",
                                                "NoiseLags", "Momentum", "Execution"))
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_second_moment_about_theta_star_is_variance_plus_squared_offset():
    run = simulate(LIN, sgd(2), eta=0.05, num_steps=300, num_replicas=4, seed=5,
                   observe=[Moments(after=100, about="theta_star")])
    expect = run.theta_var + (run.theta_mean - LIN.theta_star) ** 2
    np.testing.assert_allclose(run.second_moment, expect, rtol=1e-14)
    assert np.all(run.second_moment > run.theta_var)
    centred = simulate(LIN, sgd(2), eta=0.05, num_steps=300, num_replicas=4, seed=5,
                       observe=[Moments(after=100)])
    np.testing.assert_array_equal(centred.second_moment, centred.theta_var)
    np.testing.assert_array_equal(centred.theta_var, run.theta_var)
    point = simulate(LIN, sgd(2), eta=0.05, num_steps=300, num_replicas=4, seed=5,
                     observe=[Moments(after=100, about=LIN.theta_star)])
    np.testing.assert_array_equal(point.second_moment, run.second_moment)


def test_second_moment_about_a_point_from_the_recorded_trajectory():
    run = simulate(LIN, sgd(3, scheme="iid"), eta=0.05, num_steps=80, num_replicas=3, seed=2,
                   observe=[Record(every=1), Moments(after=20, about=np.ones(3))])
    expect = ((run.trajectory[20:] - 1.0) ** 2).mean(axis=0)
    np.testing.assert_allclose(run.second_moment, expect, rtol=1e-10)


def test_first_passage_reports_steps_and_sde_time():
    problem = QuadraticProblem(np.array([[1.0]]))
    eta, K = 0.1, 300
    run = simulate(problem, langevin("const", sigma2=0.5), eta=eta, num_steps=K,
                   num_replicas=50, seed=6, observe=[FirstPassage(loss=0.1)])
    fp = run.first_passage
    assert fp.dtype == np.int64 and run.censored.any() and not run.censored.all()
    steps = np.where(run.censored, K, fp)
    np.testing.assert_array_equal(run.first_passage_time, eta * steps.astype(float))
    assert run.time_unit == "SDE time t = eta * step" and run.time_per_step == eta
    assert run.to_dict(arrays=False)["time_unit"] == run.time_unit


def test_results_of_observers_not_run_read_none_and_unknown_names_raise():
    run = simulate(LIN, gd(), eta=0.1, num_steps=3, num_replicas=2, seed=0,
                   observe=[Record(every=1)], momentum=Momentum(0.2, style="pytorch"))
    assert run.first_passage is None and run.second_moment is None
    assert run.config["observe"] == [{"type": "Record", "every": 1, "loss": False}]
    assert run.config["momentum"] == {"beta": 0.2, "style": "pytorch"}
    with pytest.raises(AttributeError, match="trajectory"):
        run.no_such_result  # noqa: B018


def _docstring_example(tmp_path):
    """The example of the observers' module docstring, as a module in ``tmp_path``."""
    doc = inspect.getdoc(observers_module)
    block = doc.split("each replica::\n", 1)[1].split("\nReferences", 1)[0]
    source = textwrap.dedent(block)
    path = tmp_path / "max_loss_example.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("max_loss_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_numba
def test_docstring_observer_runs_on_numpy_and_numba(tmp_path):
    example = _docstring_example(tmp_path)
    run = example.run
    assert run.max_loss.shape == (8,) and run.config["backend"] == "numba"
    ref = simulate(example.problem, sgd(4), eta=0.005, num_steps=200, num_replicas=8, seed=0,
                   observe=[example.MaxLoss(), Record(every=1, loss=True)])
    np.testing.assert_allclose(run.max_loss, ref.loss.max(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(ref.max_loss, ref.loss.max(axis=0))

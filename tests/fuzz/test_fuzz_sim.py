"""Fuzz suite of ``sgdnoise.sim``: any finite input gives finite numbers or a clear error.

Hypothesis draws finite inputs of extreme magnitude (from subnormal 1e-320 to 1e305, mixed
within one array), tiny sizes (one sample, one parameter) and degenerate data (zeros, repeated
rows) for the main entry points — the replica engine ``simulate`` on every problem type and
noise kind (numpy, and numba for the combinations it compiles), ``simulate_sde``,
``first_passage_times``, ``train`` (numpy and numba), the model classes and the ``MLP``
curvature methods, the problems' constructors, the random ``families``, ``sampling`` and the
synthetic ``data`` generators — and checks the contract of the package:

* the call returns, and every float it returns (arrays, scalars, fields of result objects,
  numbers in config dicts) is finite; or
* it raises ``ValueError`` (a bad argument, named), ``FloatingPointError`` (an overflow that
  cannot be computed around) or ``DivergenceError`` (an iteration that diverged), each with a
  message;
* never another exception type, and never a ``RuntimeWarning`` (turned into an error).

The sizes (functions × examples) are listed in ``docs/property-tests.md``, "Fuzz suite".
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sgdnoise import backends
from sgdnoise.sim import families, sampling
from sgdnoise.sim.data import gaussian_mixture, gaussian_regression
from sgdnoise.sim.dynamics import (
    ENGINE_SCHEMES,
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    ModelProblem,
    Moments,
    NoiseLags,
    QuadraticProblem,
    Record,
    Toy2DProblem,
    double_well_gradient,
    double_well_loss,
    first_passage_times,
    gd,
    langevin,
    minibatch_gradient_covariance,
    sgd,
    simulate,
    simulate_sde,
    structured_covariance,
)
from sgdnoise.sim.models import (
    ACTIVATIONS,
    LOSSES,
    MLP,
    ClippedReluNetwork,
    DeepLinearNetwork,
    LinearRegression,
    LogisticRegression,
    PerSampleQuadratic,
    SoftmaxRegression,
    Toy2D,
    halfplane_data,
    toy_data,
)
from sgdnoise.sim.training import DivergenceError, TrainConfig, train

#: The only exceptions a finite input may raise.
ALLOWED = (ValueError, FloatingPointError, DivergenceError)

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")
#: Examples per test (``FUZZ_SLOW``: per test of the heavier entry points), times the factor
#: ``SGDNOISE_FUZZ_SCALE`` (default 1) for a longer search.
_SCALE = float(os.environ.get("SGDNOISE_FUZZ_SCALE", "1"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]
FUZZ = settings(max_examples=max(1, round(30 * _SCALE)), suppress_health_check=_HEALTH)
FUZZ_SLOW = settings(max_examples=max(1, round(15 * _SCALE)), suppress_health_check=_HEALTH)


# ---------------------------------------------------------------------------------- contract
def _assert_finite(value, where: str) -> None:
    """Every float in ``value`` (recursively through containers and result objects) is finite."""
    if value is None or isinstance(value, (bool, str, bytes, int, np.integer, np.bool_)):
        return
    if isinstance(value, (float, np.floating)):
        assert math.isfinite(value), f"{where} = {value}"
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            assert bad == 0, f"{where}: {bad} non-finite value(s) of {value.size}"
        elif value.dtype == object:
            for i, v in enumerate(value.ravel()):
                _assert_finite(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _assert_finite(v, f"{where}[{k!r}]")
    elif isinstance(value, (tuple, list)):
        names = getattr(value, "_fields", None)
        for i, v in enumerate(value):
            _assert_finite(v, f"{where}.{names[i]}" if names else f"{where}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _assert_finite(getattr(value, f.name), f"{where}.{f.name}")


def _call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the contract; the result, or None after an allowed error."""
    name = getattr(fn, "__qualname__", repr(fn))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            out = fn(*args, **kwargs)
        except ALLOWED as exc:
            assert str(exc).strip(), f"{name} raised {type(exc).__name__} without a message"
            event(f"{name}: {type(exc).__name__}")
            return None
    _assert_finite(out, name)
    event(f"{name}: returned")
    return out


# -------------------------------------------------------------------------------- strategies
#: Powers of ten of the magnitudes drawn: the extremes first, then anything in between.
EXPONENTS = st.one_of(st.sampled_from([0, 0, -320, -300, -150, -20, 20, 150, 300, 305]),
                      st.integers(-320, 305))
POSITIVE = st.one_of(st.sampled_from([1e-300, 1e-30, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e30, 1e300]),
                     st.floats(1e-300, 1e300))
SMALL_COUNT = st.integers(1, 4)


@st.composite
def extreme_arrays(draw, shape):
    """Finite float64 arrays: a pattern of small numbers (zeros and repeats likely) times 10^e,
    or raw floats of any finite magnitude mixed within the array."""
    if draw(st.booleans()):
        base = draw(hnp.arrays(np.float64, shape, elements=st.floats(-4, 4, width=32)))
        return base * 10.0 ** draw(EXPONENTS)
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e305, 1e305)))


@st.composite
def symmetric_matrices(draw, D):
    M = draw(extreme_arrays((D, D)))
    return 0.5 * M + 0.5 * M.T


@st.composite
def psd_matrices(draw, D):
    F = draw(hnp.arrays(np.float64, (D, D), elements=st.floats(-3, 3, width=32)))
    return (F @ F.T) * 10.0 ** draw(st.integers(-300, 300))


def _scalar(x):
    return float(np.asarray(x))


# ------------------------------------------------------------------------------- problems
@st.composite
def linear_problems(draw):
    N, D = draw(SMALL_COUNT), draw(st.integers(1, 3))
    return LinearRegressionProblem(draw(extreme_arrays((N, D))), draw(extreme_arrays((N,))))


@st.composite
def toy_problems(draw):
    return Toy2DProblem(draw(extreme_arrays((draw(SMALL_COUNT), 2))))


@st.composite
def quadratic_problems(draw, *, with_G=None):
    D = draw(st.integers(1, 3))
    H = draw(psd_matrices(D)) if draw(st.booleans()) else draw(symmetric_matrices(D))
    ts = draw(st.none() | extreme_arrays((D,)))
    G = None
    if with_G or (with_G is None and draw(st.booleans())):
        G = draw(extreme_arrays((draw(SMALL_COUNT), D)))
    return QuadraticProblem(H, ts, G)


@st.composite
def model_problems(draw):
    N, D = draw(SMALL_COUNT), draw(st.integers(1, 3))
    return ModelProblem(LinearRegression(draw(extreme_arrays((N, D))),
                                         draw(extreme_arrays((N,)))))


def _build(draw, strategy):
    """A problem, or None when its constructor refused the data (that call is checked too)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            problem = draw(strategy)
    except ALLOWED as exc:
        assert str(exc).strip()
        return None
    _assert_finite({k: v for k, v in vars(problem).items() if k != "model"},
                   type(problem).__name__)
    return problem


NOISES = [gd(), sgd(1), sgd(2, scheme="iid"), sgd(2, scheme="reshuffle"),
          sgd(1, scheme="shuffle_once"), langevin("const", B=1), langevin("const", sigma2=0.5),
          langevin("dynamic", B=2), langevin("diag", B=1), langevin("full", B=1),
          langevin("leading", k=1, B=2, scheme="iid"), langevin("hessian", B=1),
          langevin("eigvec1", B=1), "fixed"]
#: The noises the numba kernel of linear regression compiles (the toy's kernel runs them all).
NUMBA_LINEAR_NOISES = [gd(), sgd(1), sgd(2, scheme="reshuffle"), sgd(2, scheme="iid"),
                       langevin("const", B=1), langevin("dynamic", B=1), langevin("diag", B=1),
                       "fixed"]


@st.composite
def simulate_kwargs(draw, problem, noises):
    noise = draw(st.sampled_from(noises))
    D = problem.num_params if problem.num_params is not None else (
        problem.model.num_params)
    if noise == "fixed":
        noise = langevin("fixed", covariance=draw(psd_matrices(D)))
    kw = {"eta": draw(POSITIVE), "num_steps": draw(st.integers(0, 12)),
          "num_replicas": draw(st.integers(1, 3)), "seed": draw(st.integers(0, 2**64 - 1)),
          "momentum": draw(st.sampled_from([0.0, 0.5, 0.999]))}
    observe = []
    if draw(st.booleans()):
        kw["theta0"] = draw(extreme_arrays((D,)))
    elif isinstance(problem, ModelProblem):
        kw["theta0"] = np.zeros(D)
    if draw(st.booleans()):
        kw["form"] = "parameter"
    if draw(st.booleans()):
        kw["noise_trace"] = draw(st.sampled_from([0.0, 1e-300, 0.1, 1e300]))
    if draw(st.booleans()):
        observe.append(Record(every=draw(st.integers(1, 5)), loss=draw(st.booleans())))
    stop = False
    if draw(st.booleans()):
        stop = draw(st.booleans())
        observe.append(FirstPassage(loss=draw(st.floats(-1e300, 1e300)), stop=stop))
    if draw(st.booleans()) and kw["num_steps"] > 0:
        after = draw(st.integers(0, kw["num_steps"]))
        about = draw(st.sampled_from(["mean", "theta_star", "point"]))
        if about == "point":
            about = draw(extreme_arrays((problem.num_params or problem.model.num_params,)))
        observe.append(Moments(after=after, about=about))
        if draw(st.booleans()) and not stop:
            observe.append(NoiseLags(num_lags=draw(st.integers(
                1, max(1, kw["num_steps"] - after))), after=after))
    kw["observe"] = draw(st.permutations(observe))
    return noise, kw


PROBLEMS = {"linear": linear_problems(), "toy": toy_problems(),
            "quadratic": quadratic_problems(), "model": model_problems()}


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
@FUZZ
@given(data=st.data())
def test_problem_constructors(kind, data):
    problem = _build(data.draw, PROBLEMS[kind])
    if problem is not None:
        theta = data.draw(extreme_arrays((problem.num_params or problem.model.num_params,)))
        _call(problem.loss, theta)
        if kind == "quadratic":
            _call(problem.in_eigenbasis)


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
@FUZZ
@given(data=st.data())
def test_simulate_numpy(kind, data):
    problem = _build(data.draw, PROBLEMS[kind])
    if problem is None:
        return
    noise, kw = data.draw(simulate_kwargs(problem, NOISES))
    _call(simulate, problem, noise, execution="numpy", **kw)


@needs_numba
@pytest.mark.parametrize("kind", ["linear", "toy"])
@FUZZ_SLOW
@given(data=st.data())
def test_simulate_numba(kind, data):
    problem = _build(data.draw, PROBLEMS[kind])
    if problem is None:
        return
    noise, kw = data.draw(simulate_kwargs(problem, NUMBA_LINEAR_NOISES if kind == "linear"
                                          else NOISES))
    _call(simulate, problem, noise, execution=Execution("numba", num_threads=1), **kw)


# --------------------------------------------------------------------- SDE, first passage
@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=[needs_numba,
                                                                          pytest.mark.slow])])
@FUZZ
@given(data=st.data())
def test_simulate_sde(backend, data):
    noise = data.draw(st.sampled_from(["sgd", "frozen", "constant"]))
    n = data.draw(st.integers(1, 3))
    kw = {"L0": data.draw(POSITIVE), "a": data.draw(POSITIVE), "n": n, "noise": noise,
          "eta": data.draw(POSITIVE), "B": data.draw(POSITIVE), "dt": data.draw(POSITIVE),
          "num_steps": data.draw(st.integers(0, 30)),
          "num_replicas": data.draw(st.integers(1, 3)), "seed": data.draw(st.integers(0, 99))}
    if data.draw(st.booleans()):
        kw["k"] = data.draw(POSITIVE)
    if noise == "constant":
        kw["temperature"] = data.draw(POSITIVE)
    if data.draw(st.booleans()):
        kw["theta0"] = data.draw(extreme_arrays((n,)))
    which = data.draw(st.sampled_from([None, "first_passage_loss", "first_passage_position"]))
    if which:
        kw[which] = data.draw(st.floats(-1e300, 1e300))
    if data.draw(st.booleans()):
        kw["record_every"] = data.draw(st.integers(1, 7))
    out = _call(_sde_with_documented_nan, backend=backend, **kw)
    if out is not None and out[0].trajectory is not None:
        run, is_nan = out
        # the one documented NaN: a replica's records from its passage step on
        after = np.zeros(is_nan.shape, dtype=bool)
        if run.first_passage is not None:
            after = (run.first_passage[None, :] >= 0) & (
                run.record_times[:, None] >= run.first_passage_time[None, :])
        assert np.array_equal(is_nan, after)


def _sde_with_documented_nan(**kwargs):
    """``simulate_sde`` with the documented NaN of its trajectory (the records of a replica
    from its passage on) set to 0 for the finiteness check, and where they were."""
    run = simulate_sde(**kwargs)
    if run.trajectory is None:
        return run, None
    is_nan = np.isnan(run.trajectory).any(axis=-1)
    return run._replace(trajectory=np.where(np.isnan(run.trajectory), 0.0, run.trajectory)), is_nan


@FUZZ
@given(data=st.data())
def test_double_well(data):
    theta = data.draw(extreme_arrays((data.draw(st.integers(1, 3)), data.draw(SMALL_COUNT))))
    kw = {"L0": data.draw(POSITIVE), "a": data.draw(POSITIVE),
          "k": data.draw(st.none() | POSITIVE)}
    _call(double_well_loss, theta, **kw)
    _call(double_well_gradient, theta, **kw)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=[needs_numba,
                                                                          pytest.mark.slow])])
@FUZZ
@given(data=st.data())
def test_first_passage_times(backend, data):
    N = data.draw(SMALL_COUNT)
    kw = {"eta": data.draw(POSITIVE), "level": data.draw(st.floats(-1e300, 1e300)),
          "num_steps": data.draw(st.integers(0, 40)),
          "num_replicas": data.draw(st.integers(1, 40)), "seed": data.draw(st.integers(0, 99))}
    if data.draw(st.booleans()):
        kw["theta0"] = _scalar(data.draw(extreme_arrays(())))
    _call(first_passage_times, data.draw(extreme_arrays((N,))), data.draw(extreme_arrays((N,))),
          execution=backend, **kw)


# ----------------------------------------------------------------------------------- train
@st.composite
def mlps(draw, *, max_width=3):
    loss = draw(st.sampled_from(LOSSES))
    out = draw(st.integers(1 if loss == "mse" else 2, max_width))
    widths = (draw(st.integers(1, max_width)),
              *draw(st.lists(st.integers(1, max_width), max_size=2)), out)
    return MLP(widths, activation=draw(st.sampled_from(sorted(ACTIVATIONS))), loss=loss,
               bias=draw(st.booleans()))


@st.composite
def moderate_arrays(draw, shape):
    """Finite arrays whose magnitudes stay within 1e-300 … 1e3: no product of a few of them
    overflows."""
    base = draw(hnp.arrays(np.float64, shape, elements=st.floats(-4, 4, width=32)))
    return base * 10.0 ** draw(st.sampled_from([0, -300, -20, -3, 2]))


@st.composite
def mlp_data(draw, model, *, max_samples=4, arrays=extreme_arrays):
    N = draw(st.integers(1, max_samples))
    x = draw(arrays((N, model.widths[0])))
    if model.loss_name == "mse":
        y = draw(arrays((N, model.widths[-1])))
    else:
        y = draw(hnp.arrays(np.int64, (N,), elements=st.integers(0, model.widths[-1] - 1)))
    return x, y


@st.composite
def weights(draw, model, *, arrays=extreme_arrays):
    if draw(st.booleans()):
        return model.init(draw(st.integers(0, 99)))
    return draw(arrays((model.num_params,)))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
@FUZZ_SLOW
@given(data=st.data())
def test_train(backend, data):
    model = data.draw(mlps())
    x, y = data.draw(mlp_data(model, max_samples=6))
    cfg = {"eta": data.draw(POSITIVE), "batch_size": data.draw(st.integers(1, 3)),
           "num_epochs": data.draw(st.integers(0, 3)),
           "sampler": data.draw(st.sampled_from(ENGINE_SCHEMES)),
           "drop_last": data.draw(st.booleans()),
           "momentum": data.draw(st.sampled_from([0.0, 0.9])),
           "momentum_style": data.draw(st.sampled_from(["heavy_ball", "pytorch"])),
           "schedule": data.draw(st.sampled_from(["constant", "cosine"])),
           "clip_norm": data.draw(st.none() | POSITIVE),
           "weight_decay": data.draw(st.sampled_from([0.0, 1e-3, 1e300])),
           "divergence_factor": data.draw(st.sampled_from([1e3, 1e300])),
           "dtype": data.draw(st.sampled_from(["float64", "float32"]))}
    config = _call(TrainConfig, **cfg)
    if config is not None:
        _call(train, model, data.draw(weights(model)), x, y, config, backend=backend)


# ------------------------------------------------------------------------------------- MLP
MLP_METHODS = ["loss", "per_sample_losses", "per_sample_gradients", "gradient",
               "loss_and_gradient", "hvp", "hessian", "per_sample_hessians", "forward"]


def _mlp_method(data, method, arrays):
    model = data.draw(mlps())
    x, y = data.draw(mlp_data(model, arrays=arrays))
    w = data.draw(weights(model, arrays=arrays))
    if method == "forward":
        _call(model.forward, w, x)
    elif method == "hvp":
        _call(model.hvp, w, x, y, data.draw(arrays((model.num_params,))))
    else:
        _call(getattr(model, method), w, x, y)


@pytest.mark.parametrize("method", MLP_METHODS)
@FUZZ
@given(data=st.data())
def test_mlp_methods(method, data):
    """Weights and data of moderate magnitude (|·| ≤ 4e3, down to subnormal)."""
    _mlp_method(data, method, moderate_arrays)


@pytest.mark.parametrize("method", MLP_METHODS)
@FUZZ
@given(data=st.data())
def test_mlp_methods_extreme_magnitudes(method, data):
    """Weights and data of any float64 magnitude: finite results or a FloatingPointError."""
    _mlp_method(data, method, extreme_arrays)


@FUZZ
@given(data=st.data())
def test_mlp_layer_factors(data):
    model = data.draw(mlps())
    x, y = data.draw(mlp_data(model))
    layer = data.draw(st.integers(0, model.num_layers - 1))
    _call(model.layer_factors, data.draw(weights(model)), x, y, layer)


@FUZZ
@given(data=st.data())
def test_deep_linear_network(data):
    widths = data.draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    model = _call(DeepLinearNetwork, widths, bias=data.draw(st.booleans()))
    if model is not None:
        _call(model.end_to_end, data.draw(weights(model)))
        # the MLP methods it inherits, at the magnitudes test_mlp_methods uses
        w = data.draw(weights(model, arrays=moderate_arrays))
        x, y = data.draw(mlp_data(model, arrays=moderate_arrays))
        _call(model.per_sample_gradients, w, x, y)


# ---------------------------------------------------------------------------- other models
@FUZZ
@given(data=st.data())
def test_linear_regression_model(data):
    N, D = data.draw(SMALL_COUNT), data.draw(st.integers(1, 3))
    model = _call(LinearRegression, data.draw(extreme_arrays((N, D))),
                  data.draw(extreme_arrays((N,))))
    if model is None:
        return
    w = data.draw(extreme_arrays((D,)))
    for method in ("residuals", "per_sample_losses", "loss", "per_sample_gradients", "gradient",
                   "layer_factors"):
        _call(getattr(model, method), w)
    for method in ("per_sample_hessians", "hessian", "solve"):
        _call(getattr(model, method))
    _call(model.hvp, w)


@FUZZ
@given(data=st.data())
def test_softmax_regression(data):
    N, d, K = data.draw(SMALL_COUNT), data.draw(st.integers(1, 3)), data.draw(st.integers(2, 3))
    y = data.draw(hnp.arrays(np.int64, (N,), elements=st.integers(0, K - 1)))
    model = _call(SoftmaxRegression, data.draw(extreme_arrays((N, d))), y, K,
                  bias=data.draw(st.booleans()))
    if model is None:
        return
    w = data.draw(extreme_arrays((model.num_params,)))
    for method in ("probabilities", "per_sample_losses", "loss", "kronecker_factors",
                   "per_sample_gradients", "gradient"):
        _call(getattr(model, method), w)
    _call(model.fit, w, eta=data.draw(POSITIVE), num_steps=data.draw(st.integers(0, 5)),
          weight_decay=data.draw(st.sampled_from([0.0, 1e-3, 1e300])))


@FUZZ
@given(data=st.data())
def test_logistic_regression(data):
    N, d = data.draw(SMALL_COUNT), data.draw(st.integers(1, 3))
    y = data.draw(hnp.arrays(np.float64, (N,), elements=st.sampled_from([0.0, 1.0, 0.5])))
    model = _call(LogisticRegression, data.draw(extreme_arrays((N, d))), y)
    if model is None:
        return
    w = data.draw(extreme_arrays((d,)))
    for method in ("probabilities", "per_sample_gradients", "per_sample_hessians", "gradient"):
        _call(getattr(model, method), w)
    _call(model.fit, w, eta=data.draw(POSITIVE), num_steps=data.draw(st.integers(0, 5)))


@FUZZ
@given(data=st.data())
def test_per_sample_quadratic(data):
    N, D = data.draw(SMALL_COUNT), data.draw(st.integers(1, 3))
    centres = data.draw(extreme_arrays((N, D)))
    if data.draw(st.booleans()):
        U = data.draw(extreme_arrays((N, D, data.draw(st.integers(1, 2)))))
        model = _call(PerSampleQuadratic.from_factors, U, centres)
    else:
        A = np.stack([data.draw(psd_matrices(D)) for _ in range(N)])
        model = _call(PerSampleQuadratic, A, centres)
    if model is None:
        return
    w = data.draw(extreme_arrays((D,)))
    for method in ("per_sample_gradients", "per_sample_losses", "loss", "gradient",
                   "per_sample_hessians", "hessian", "hvp"):
        _call(getattr(model, method), w)
    _call(model.minimiser)


@FUZZ
@given(data=st.data())
def test_toy2d(data):
    model = _call(Toy2D, data.draw(extreme_arrays((data.draw(SMALL_COUNT), 2))))
    if model is None:
        return
    w = data.draw(extreme_arrays((2,)))
    for method in ("per_sample_losses", "per_sample_gradients", "per_sample_hessians", "loss",
                   "gradient", "hessian"):
        _call(getattr(model, method), w)


@FUZZ
@given(data=st.data())
def test_clipped_relu_network(data):
    d, m = data.draw(st.integers(1, 3)), 2 * data.draw(st.integers(1, 2))
    model = _call(ClippedReluNetwork, d, m, data.draw(st.sampled_from([1e-300, 1e-3, 0.49])))
    if model is None:
        return
    N = data.draw(SMALL_COUNT)
    x = data.draw(extreme_arrays((N, d)))
    y = data.draw(extreme_arrays((N,)))
    w = data.draw(extreme_arrays((model.num_params,))) if data.draw(st.booleans()) else \
        model.init(data.draw(st.integers(0, 9)))
    _call(model.predict, w, x)
    _call(model.output_jacobian, w, x)
    for method in ("per_sample_losses", "loss", "per_sample_gradients", "loss_and_gradient",
                   "gradient", "per_sample_hessians", "hessian"):
        _call(getattr(model, method), w, x, y)


# ------------------------------------------------------------------ families, sampling, data
DECADES = st.one_of(st.sampled_from([1e-300, 1e-3, 1.0, 50.0, 100.0]), st.floats(1e-300, 100))


@FUZZ
@given(data=st.data())
def test_families(data):
    D, N = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    rng = data.draw(st.integers(0, 99))
    name = data.draw(st.sampled_from([
        "log_uniform_spectrum", "random_symmetric", "random_psd", "commuting_pair",
        "noncommuting_pair", "identical_hessians", "rank_one_equal_curvature", "random_rank_r",
        "symmetric_hessians", "kronecker_family", "kronecker_family_hessians",
        "window_breaking_family", "wishart_hessians", "population_wishart",
        "population_linear_regression", "population_kronecker"]))
    f = getattr(families, name)
    if name == "log_uniform_spectrum":
        _call(f, D, rng=rng, decades=data.draw(DECADES),
              decay=data.draw(st.none() | POSITIVE), lam_max=data.draw(POSITIVE),
              jitter=data.draw(st.sampled_from([0.0, 1.0, 100.0])))
    elif name in ("random_symmetric", "random_psd"):
        _call(f, data.draw(extreme_arrays((D,))), rng=rng)
    elif name in ("commuting_pair", "noncommuting_pair", "symmetric_hessians"):
        args = (D, N) if name == "symmetric_hessians" else (D,)
        _call(f, *args, rng=rng, decades=data.draw(DECADES))
    elif name == "identical_hessians":
        _call(f, data.draw(symmetric_matrices(D)), N)
    elif name == "rank_one_equal_curvature":
        _call(f, D, N, rng=rng, kappa=data.draw(POSITIVE), decades=data.draw(DECADES))
    elif name == "random_rank_r":
        _call(f, D, N, rng=rng, rank=data.draw(st.integers(1, 3)), decades=data.draw(DECADES),
              spectrum_decades=data.draw(DECADES))
    elif name in ("kronecker_family", "kronecker_family_hessians"):
        _call(f, data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), N, rng=rng,
              decades=data.draw(DECADES), gauss_newton_rank=data.draw(st.none() | st.integers(1, 2)),
              residual=data.draw(st.sampled_from([0.0, 1.0, 1e300])))
    elif name == "window_breaking_family":
        _call(f, D, N, rng=rng, side=data.draw(st.sampled_from(["below", "above"])))
    elif name == "wishart_hessians":
        _call(f, data.draw(psd_matrices(D)), N, rng=rng, rank=data.draw(st.integers(1, 3)))
    elif name == "population_wishart":
        _call(f, data.draw(psd_matrices(D)), rank=data.draw(st.integers(1, 3)))
    elif name == "population_linear_regression":
        _call(f, data.draw(psd_matrices(D)))
    else:
        _call(f, data.draw(symmetric_matrices(data.draw(st.integers(1, 2)))),
              data.draw(psd_matrices(data.draw(st.integers(1, 2)))))


@FUZZ
@given(N=st.integers(1, 9), B=st.integers(1, 9), scheme=st.sampled_from(sampling.SCHEMES),
       drop_last=st.booleans(), num_steps=st.integers(0, 7), seed=st.integers(0, 99))
def test_sampling(N, B, scheme, drop_last, num_steps, seed):
    sampler = _call(sampling.BatchSampler, N, B, scheme, drop_last)
    if sampler is not None:
        rng = np.random.default_rng(seed)
        batches = _call(sampler.epoch, rng, sampler.first_permutation(rng))
        assert batches is not None and len(batches) == sampler.steps_per_epoch >= 1
        assert all(b.size >= 1 and b.min() >= 0 and b.max() < N for b in batches)
    out = _call(sampling.draw_batches, np.random.default_rng(seed), N=N, B=B,
                num_steps=num_steps, scheme=scheme)
    if out is not None:
        assert out.shape == (num_steps, B)


@FUZZ
@given(data=st.data())
def test_data_generators(data):
    d = data.draw(st.integers(1, 3))
    _call(gaussian_regression, data.draw(SMALL_COUNT), data.draw(psd_matrices(d)),
          sigma=data.draw(st.sampled_from([0.0, 1e-300, 1.0, 1e300])),
          rng=data.draw(st.integers(0, 99)),
          w_star=data.draw(st.none() | extreme_arrays((d,))))
    _call(gaussian_mixture, data.draw(st.integers(1, 6)), d, data.draw(st.integers(1, 3)),
          rng=data.draw(st.integers(0, 99)), separation=data.draw(POSITIVE),
          decades=data.draw(DECADES))
    _call(toy_data, data.draw(st.integers(0, 99)), data.draw(st.integers(1, 6)))
    _call(halfplane_data, data.draw(st.integers(0, 99)), data.draw(st.integers(1, 6)))


@FUZZ
@given(data=st.data())
def test_noise_covariances(data):
    N, D = data.draw(SMALL_COUNT), data.draw(st.integers(1, 3))
    scheme = data.draw(st.sampled_from(ENGINE_SCHEMES))
    Sigma = _call(minibatch_gradient_covariance, data.draw(extreme_arrays((N, D))),
                  data.draw(st.integers(1, N)), scheme=scheme)
    if Sigma is None:
        return
    kind = data.draw(st.sampled_from(["const", "dynamic", "diag", "full", "leading", "hessian",
                                      "eigvec1", "fixed"]))
    H = data.draw(symmetric_matrices(D))
    _call(structured_covariance, kind, Sigma, H,
          k=data.draw(st.none() | st.integers(1, D)) if kind in ("leading", "hessian") else None,
          trace=data.draw(st.none() | st.sampled_from([0.0, 1.0, 1e300])))

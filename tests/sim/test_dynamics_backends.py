"""Replica-engine backends: the numba kernels (and CuPy, with a GPU) against the numpy reference.

All backends read the same Philox streams, so their trajectories differ only by the order of
floating-point sums (the kernels accumulate sample sums sequentially or vectorised, numpy
pairwise; 2×2 eigenpairs in closed form vs LAPACK).  After 40 steps of these O(1) problems the
results agree to about 1e-14; ``RTOL`` = 1e-12 (with ``ATOL`` = 1e-12 for entries near zero)
is far below any real difference (one step of a wrong rule moves θ by ≈ η‖g‖ ≈ 1e-3), and
first-passage steps must agree exactly.  Thread count and chunking must not change a single bit.
"""

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.sim.dynamics import (
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    ModelProblem,
    Moments,
    Momentum,
    NoiseLags,
    QuadraticProblem,
    Record,
    Toy2DProblem,
    gd,
    langevin,
    sgd,
    simulate,
)
from sgdnoise.sim.models import LinearRegression, toy_data
from sgdnoise.sim.training import DivergenceError

RTOL = 1e-12
ATOL = 1e-12
FIELDS = ("theta", "velocity", "loss_final", "trajectory", "loss", "theta_mean", "theta_var",
          "velocity_mean", "velocity_var")

needs_numba = pytest.mark.skipif("numba" not in backends.available(),
                                 reason="numba is not available here")
needs_cupy = pytest.mark.skipif("cupy" not in backends.available(),
                                reason="cupy with a CUDA device is not available here")

TOY = Toy2DProblem(toy_data(21, N=20))
_rng = np.random.default_rng(8)
_X = _rng.standard_normal((19, 4))
LIN = LinearRegressionProblem(_X, _X @ np.array([1.0, -1.0, 0.5, 2.0])
                              + 0.5 * _rng.standard_normal(19))
QUAD = QuadraticProblem(np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]]),
                        np.array([1.0, 0.0, -1.0]))
FIXED2 = [[2e-4, 1e-4], [1e-4, 3e-4]]

TOY_NOISES = [gd(), sgd(3), sgd(3, scheme="iid"), sgd(3, scheme="reshuffle"),
              sgd(3, scheme="shuffle_once"), langevin("const"), langevin("dynamic", B=2),
              langevin("diag", scheme="iid", B=2), langevin("full"), langevin("leading", k=1),
              langevin("leading"), langevin("hessian", k=1), langevin("hessian"),
              langevin("eigvec1"), langevin("fixed", covariance=FIXED2)]
LIN_NOISES = [gd(), sgd(4), sgd(4, scheme="iid"), sgd(4, scheme="reshuffle"),
              sgd(5, scheme="shuffle_once"), langevin("const", B=2), langevin("dynamic", B=3),
              langevin("diag", B=2, scheme="reshuffle"),
              langevin("fixed", covariance=np.diag([1.0, 2.0, 3.0, 4.0]) * 1e-3)]
MOMENTA = [(0.0, "heavy_ball"), (0.4, "heavy_ball"), (0.4, "pytorch")]


def _kwargs(problem, noise, form, beta, style, *, stop=False, moments_every=1, moments_phase=0,
            noise_lags=None, **extra):
    if problem is TOY:
        eta, theta0, level, trace = 0.004, np.array([[1.0, 1.0], [0.8, 1.1], [0.1, -0.2],
                                                      [1.2, 0.9], [-1.0, -1.0]]), 0.5, 0.01
    elif problem is LIN:
        eta, theta0, level, trace = 0.05, np.array([[0.0] * 4, [1.0, -1.0, 0.5, 2.0],
                                                     [2.0, 0.0, 0.0, 1.0], [1.0] * 4,
                                                     [-1.0, 0.0, 1.0, 0.0]]), 0.6, 0.05
    else:
        eta, theta0, level, trace = 0.1, None, 0.002, 0.02
    kw = {"eta": eta, "num_steps": 40, "num_replicas": 5, "seed": 2**33 + 7, "theta0": theta0,
          "form": form, "momentum": Momentum(beta, style=style),
          "observe": [Record(every=6, loss=True), FirstPassage(loss=level, stop=stop),
                      Moments(after=10, every=moments_every, phase=moments_phase)]}
    if noise_lags is not None:
        kw["observe"].append(NoiseLags(num_lags=noise_lags, after=10))
    if form == "parameter" and not (noise.name == "gd" or noise.kind == "fixed"
                                    or noise.sigma2 is not None):
        kw["noise_trace"] = trace
    if problem is QUAD and noise.kind == "dynamic":
        kw["noise_trace"] = trace
    kw.update(extra)
    return kw


def _assert_same(fast, ref, *, exact=False):
    for name in FIELDS:
        a, b = getattr(fast, name), getattr(ref, name)
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=name)
    np.testing.assert_array_equal(fast.first_passage, ref.first_passage)


def _cases(problem, noises, forms=("gradient", "parameter")):
    out = []
    for noise in noises:
        for form in forms:
            for beta, style in MOMENTA:
                label = f"{problem.name}-{noise.label}-{form}-{style}{beta}"
                out.append(pytest.param(problem, noise, form, beta, style, id=label))
    return out


CASES = (_cases(TOY, TOY_NOISES) + _cases(LIN, LIN_NOISES)
         + _cases(QUAD, [gd(), langevin("fixed", covariance=np.eye(3) * 1e-3),
                         langevin("const", sigma2=1e-3), langevin("dynamic")]))


@needs_numba
@pytest.mark.parametrize(("problem", "noise", "form", "beta", "style"), CASES)
def test_numba_matches_numpy_reference(problem, noise, form, beta, style):
    kw = _kwargs(problem, noise, form, beta, style)
    ref = simulate(problem, noise, execution="numpy", **kw)
    fast = simulate(problem, noise, execution="numba", **kw)
    assert fast.config["backend"] == "numba" and ref.config["backend"] == "numpy"
    _assert_same(fast, ref)


@needs_numba
@pytest.mark.parametrize(("problem", "noise"), [
    (TOY, sgd(3, scheme="reshuffle")), (TOY, langevin("full")), (TOY, langevin("eigvec1")),
    (LIN, sgd(4, scheme="iid")), (LIN, langevin("diag", B=2)), (QUAD, langevin("const",
                                                                               sigma2=1e-3)),
])
def test_numba_stop_at_first_passage_matches_numpy(problem, noise):
    kw = _kwargs(problem, noise, "parameter", 0.0, "heavy_ball", stop=True)
    ref = simulate(problem, noise, execution="numpy", **kw)
    fast = simulate(problem, noise, execution="numba", **kw)
    assert (ref.first_passage >= 0).any()
    _assert_same(fast, ref)


@needs_numba
@pytest.mark.parametrize(("problem", "noise"), [
    (TOY, langevin("full")), (TOY, sgd(2, scheme="reshuffle")), (LIN, sgd(4, scheme="iid")),
    (LIN, langevin("diag", B=2)),
])
def test_numba_results_do_not_depend_on_threads_or_chunks(problem, noise):
    """Bit for bit: 1 vs 2 threads, one kernel call vs ten (``progress=True``)."""
    kw = _kwargs(problem, noise, "parameter", 0.3, "heavy_ball", num_replicas=5)
    one = simulate(problem, noise, execution=Execution("numba", num_threads=1), **kw)
    two = simulate(problem, noise, execution=Execution("numba", num_threads=2), **kw)
    chunked = simulate(problem, noise, execution=Execution("numba", num_threads=2,
                                                            progress=True), **kw)
    _assert_same(two, one, exact=True)
    _assert_same(chunked, one, exact=True)


@needs_numba
def test_numba_divergence_names_the_same_replica_and_step():
    theta0 = np.array([[0.0], [1.0], [4.0], [4.0]])
    errors = []
    for backend in ("numpy", "numba"):
        with pytest.raises(DivergenceError) as info:
            simulate(QuadraticProblem(np.array([[1.0]])), gd(), eta=3.0, num_steps=3000,
                     num_replicas=4, seed=0, theta0=theta0,
                     execution=Execution(backend, progress=False))
        errors.append(info.value)
    assert [(e.replica, e.step) for e in errors] == [(2, 1022), (2, 1022)]


@needs_numba
@pytest.mark.parametrize(("problem", "noise", "kw"), [
    (ModelProblem(LinearRegression(_X, _X[:, 0])), sgd(2), {"theta0": np.zeros(4)}),
    (LIN, langevin("full", B=2), {}),
    (LIN, langevin("leading", k=1, B=2), {}),
    (LIN, langevin("hessian", B=2), {}),
    (QUAD, langevin("eigvec1"), {"noise_trace": 0.1}),
])
def test_numba_refuses_unsupported_combinations(problem, noise, kw):
    with pytest.raises(ValueError, match="backend='numba'.*numpy"):
        simulate(problem, noise, eta=0.01, num_steps=2, num_replicas=2, seed=0,
                 execution="numba", **kw)
    # "auto" falls back to a backend that can run it
    run = simulate(problem, noise, eta=0.01, num_steps=2, num_replicas=2, seed=0, execution="auto",
                   **kw)
    assert run.config["backend"] in ("numpy", "cupy")


@needs_numba
def test_auto_prefers_numba_where_it_has_a_kernel():
    run = simulate(TOY, langevin("hessian"), eta=0.004, num_steps=2, num_replicas=2, seed=0,
                   execution="auto")
    expect = "cupy" if "cupy" in backends.available() else "numba"
    assert run.config["backend"] == expect


@pytest.mark.gpu
@needs_cupy
@pytest.mark.parametrize(("problem", "noise"), [
    (TOY, langevin("full")), (TOY, sgd(3, scheme="reshuffle")), (TOY, langevin("eigvec1")),
    (LIN, sgd(4, scheme="iid")), (LIN, langevin("leading", k=2, B=2)),
    (QUAD, langevin("fixed", covariance=np.eye(3) * 1e-3)),
])
@pytest.mark.parametrize("form", ["gradient", "parameter"])
def test_cupy_matches_numpy_reference(problem, noise, form):
    kw = _kwargs(problem, noise, form, 0.4, "heavy_ball")
    ref = simulate(problem, noise, execution="numpy", **kw)
    fast = simulate(problem, noise, execution="cupy", **kw)
    assert fast.config["backend"] == "cupy"
    _assert_same(fast, ref)



# ------------------------------------------------------- part D: frozen noise, phases, noise lags
_rng_d = np.random.default_rng(12)
TILT = QuadraticProblem(np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.2]]),
                        np.array([0.5, -1.0, 0.2]), _rng_d.standard_normal((24, 3)))
D_FIELDS = FIELDS + ("noise_autocov",)


def _d_kwargs(beta, style, **extra):
    kw = {"eta": 0.3, "num_steps": 60, "num_replicas": 5, "seed": 2**40 + 3,
          "momentum": Momentum(beta, style=style),
          "observe": [Record(every=7, loss=True), Moments(after=9, every=6, phase=2),
                      NoiseLags(num_lags=8, after=9)]}
    kw.update(extra)
    return kw


def _assert_same_d(fast, ref, *, exact=False):
    for name in D_FIELDS:
        a, b = getattr(fast, name), getattr(ref, name)
        assert (a is None) == (b is None), name
        if a is None:
            continue
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=name)
    assert fast.moments_count == ref.moments_count


@needs_numba
@pytest.mark.parametrize("noise", [sgd(4, scheme="reshuffle"), sgd(4, scheme="iid"),
                                   sgd(3), sgd(4, scheme="shuffle_once"), gd(),
                                   langevin("fixed", covariance=np.eye(3) * 1e-3)])
@pytest.mark.parametrize(("beta", "style"), MOMENTA)
def test_numba_matches_numpy_on_the_tilted_quadratic(noise, beta, style):
    kw = _d_kwargs(beta, style)
    ref = simulate(TILT, noise, execution="numpy", **kw)
    fast = simulate(TILT, noise, execution="numba", **kw)
    assert fast.config["backend"] == "numba"
    _assert_same_d(fast, ref)


@needs_numba
@pytest.mark.parametrize("problem", [TOY, LIN])
def test_numba_noise_lags_and_phases_match_numpy_on_toy_and_linear(problem):
    noise = sgd(3, scheme="reshuffle")
    kw = _kwargs(problem, noise, "gradient", 0.4, "pytorch", moments_every=3, moments_phase=1,
                 noise_lags=5)
    ref = simulate(problem, noise, execution="numpy", **kw)
    fast = simulate(problem, noise, execution="numba", **kw)
    assert np.abs(ref.noise_autocov).max() > 0
    _assert_same_d(fast, ref)


@needs_numba
def test_numba_noise_lags_do_not_depend_on_threads_or_chunks():
    kw = _d_kwargs(0.3, "heavy_ball", num_replicas=7)
    noise = sgd(4, scheme="reshuffle")
    one = simulate(TILT, noise, execution=Execution("numba", num_threads=1), **kw)
    two = simulate(TILT, noise, execution=Execution("numba", num_threads=2), **kw)
    chunked = simulate(TILT, noise, execution=Execution("numba", num_threads=2, progress=True),
                       **kw)
    _assert_same_d(two, one, exact=True)
    _assert_same_d(chunked, one, exact=True)


@needs_numba
def test_numba_refuses_the_tilted_quadratic_where_it_needs_sigma_hat():
    with pytest.raises(ValueError, match="backend='numba'"):
        simulate(TILT, langevin("diag", B=2), eta=0.1, num_steps=3, num_replicas=1, seed=0,
                 execution="numba")
    run = simulate(TILT, langevin("diag", B=2), eta=0.1, num_steps=3, num_replicas=1, seed=0,
                   execution="auto")
    assert run.config["backend"] in ("numpy", "cupy")

"""Fuzz suite for ``sgdnoise.theory``: any finite input gives finite numbers or a clear error.

Every public name of ``sgdnoise.theory.__all__`` has an entry in ``FUZZ`` (a Hypothesis strategy
of calls) or a reasoned entry in ``EXCLUDED``; a new public function without either fails
:func:`test_every_public_name_is_fuzzed_or_excluded`.  For each call the contract is:

* it returns only finite numbers (floats, arrays, dataclass/tuple/dict fields; sympy results
  without nan/zoo/oo), except for result paths an entry documents as possibly infinite;
* or it raises ``ValueError`` or ``FloatingPointError`` with a message — never another exception
  type (TypeError, ZeroDivisionError, LinAlgError, OverflowError, …);
* and it emits no warning (warnings are errors in this suite, as everywhere in the tests).

Inputs span the whole float64 range (:func:`sgdnoise.verify.strategies.finite_floats_wide`:
1e-320 … 1e300, zeros, ties), degenerate spectra, and tiny and empty shapes.  Sizes: see
``docs/property-tests.md`` ("Fuzz suite").
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from sgdnoise import theory
from sgdnoise.verify.strategies import (
    finite_floats_wide,
    float_arrays_wide,
    symmetric_matrices,
    symmetric_stacks,
)

# ---------------------------------------------------------------------------------------------
# the contract
# ---------------------------------------------------------------------------------------------

CLEAR_ERRORS = (ValueError, FloatingPointError)


class Call:
    """One call of a function (or a small scenario), with a readable repr for failures."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self) -> Any:
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        def show(v: Any) -> str:
            if isinstance(v, np.ndarray):
                return f"np.array({np.array2string(v, precision=17, separator=', ')})"
            if callable(v) and hasattr(v, "__name__"):
                return v.__name__
            return repr(v)
        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return f"{getattr(self.fn, '__name__', self.fn)}({', '.join(parts)})"


def _non_finite_paths(value: Any, path: str = "result") -> list[str]:
    """Paths of every non-finite number inside a result."""
    if value is None or isinstance(value, (bool, np.bool_, str, int, np.integer)):
        return []
    if isinstance(value, (float, np.floating)):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return [] if np.all(np.isfinite(value)) else [path]
        if value.dtype.kind == "O":
            return [p for i, v in enumerate(value.ravel()) for p in _non_finite_paths(v, f"{path}[{i}]")]
        return []
    if isinstance(value, sp.MatrixBase):
        return [p for i, v in enumerate(value) for p in _non_finite_paths(v, f"{path}[{i}]")]
    if isinstance(value, sp.Basic):
        bad = value.has(sp.nan, sp.zoo, sp.oo, -sp.oo)
        return [path] if bad else []
    if dataclasses.is_dataclass(value):
        return [p for f in dataclasses.fields(value)
                for p in _non_finite_paths(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return [p for k in value._fields for p in _non_finite_paths(getattr(value, k), f"{path}.{k}")]
    if isinstance(value, (tuple, list)):
        return [p for i, v in enumerate(value) for p in _non_finite_paths(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite_paths(v, f"{path}[{k!r}]")]
    if isinstance(value, slice):
        return []
    raise AssertionError(f"{path}: unexpected result type {type(value).__name__}")


def check_contract(call: Call, allow_inf: tuple[str, ...] = ()) -> None:
    try:
        result = call()
    except CLEAR_ERRORS as exc:
        assert str(exc), f"{call!r} raised {type(exc).__name__} without a message"
        return
    bad = [p for p in _non_finite_paths(result) if not any(p.startswith(a) for a in allow_inf)]
    assert not bad, f"{call!r} returned non-finite values at {bad}"


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------

W = finite_floats_wide()                                   # any finite float
P = finite_floats_wide(allow_negative=False)               # non-negative
POS = finite_floats_wide(allow_negative=False, allow_zero=False)
UNIT = st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.sampled_from([0.0, 0.5, 0.9, 0.999999]))
SMALL_INT = st.integers(-2, 6)
ANY_SCALAR = st.one_of(W, SMALL_INT, st.sampled_from([True, "x", None]))


def arrays(**kw: Any) -> SearchStrategy[np.ndarray]:
    return float_arrays_wide(**kw)


def vectors(n: int, elements: SearchStrategy[float] = W) -> SearchStrategy[np.ndarray]:
    return st.lists(elements, min_size=n, max_size=n).map(lambda v: np.asarray(v, dtype=np.float64))


@st.composite
def sym_pair(draw: st.DrawFn, psd_second: bool = True, psd_first: bool = False,
             max_dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two symmetric matrices, usually of one size (sometimes not), often PSD."""
    D = draw(st.integers(1, max_dim))
    first = draw(symmetric_matrices(min_dim=D, max_dim=D, psd=psd_first or draw(st.booleans())))
    D2 = D if draw(st.integers(0, 9)) else draw(st.integers(1, max_dim))
    second = draw(symmetric_matrices(min_dim=D2, max_dim=D2, psd=psd_second or draw(st.booleans())))
    return first, second


@st.composite
def kronecker_factors_wide(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, a, delta): G (N, out, out) symmetric, a (N, in), delta (N, out), wide entries;
    occasionally inconsistent or empty shapes."""
    N, out, inn = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 3))
    G = np.stack(draw(st.lists(symmetric_matrices(min_dim=out, max_dim=out,
                                                  psd=draw(st.booleans())),
                               min_size=N, max_size=N)))
    Na = N if draw(st.integers(0, 9)) else draw(st.integers(0, 3))
    a = draw(arrays(min_dims=2, max_dims=2, min_side=Na, max_side=Na)) if inn else np.zeros((Na, 0))
    a = a[:, :inn] if a.shape[1] >= inn else np.resize(a, (Na, inn))
    delta = np.resize(draw(arrays(min_dims=1, max_dims=1, min_side=1, max_side=4)), (N, out))
    return G, a, delta


@st.composite
def spectrum_and_diagonal(draw: st.DrawFn, positive: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(lam, y) of one length 0…7: wide magnitudes, ties, zeros, round-off-sized entries."""
    n = draw(st.integers(0, 7))
    values = POS if positive else W
    pool = draw(st.lists(values, min_size=1, max_size=max(1, n)))
    idx = draw(st.lists(st.integers(0, len(pool) - 1), min_size=n, max_size=n))
    lam = np.asarray(pool, dtype=np.float64)[idx]
    kind = draw(st.sampled_from(["power", "free", "tiny"]))
    if kind == "power":
        gamma = draw(st.floats(-3.0, 4.0))
        with np.errstate(all="ignore"):
            y = np.abs(lam) ** gamma * draw(POS)
        y = np.where(np.isfinite(y), y, 1.0)
    elif kind == "tiny":
        with np.errstate(all="ignore"):
            y = np.abs(lam) ** 2
        y = np.where(np.isfinite(y), y, 1.0)
        y[: n // 2] = 1e-20
    else:
        y = draw(vectors(n, values))
    return lam, y


@st.composite
def stable_params(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    """(lam, eta, beta): half inside the stable range 0 < ηλ < 2(1+β), half anywhere."""
    if draw(st.booleans()):
        return draw(W), draw(W), draw(st.one_of(UNIT, W))
    eta = draw(POS)
    beta = draw(UNIT)
    frac = draw(st.one_of(st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
                          finite_floats_wide(allow_negative=False, allow_zero=False,
                                             max_exponent=-1)))
    with np.errstate(all="ignore"):
        lam = frac * 2.0 * (1.0 + beta) / eta
    lam = lam if np.isfinite(lam) else 1.0
    if draw(st.booleans()):  # broadcasting over several curvatures
        lam = np.array([lam, lam * 0.5, draw(POS)])
    return lam, eta, beta


EPOCHS = st.one_of(st.integers(-1, 12), st.sampled_from([1000, 10**9, 2**53, 2**53 + 1]),
                   st.sampled_from([2.0, True, "4"]))
POSITIONS = st.one_of(st.none(), st.integers(-1, 12), st.sampled_from([10**9 - 1, 1.5]))


def _call(fn: Callable[..., Any]) -> Callable[..., SearchStrategy[Call]]:
    """st.builds for a Call of ``fn``: positional and keyword strategies."""
    def build(*args: SearchStrategy[Any], **kwargs: SearchStrategy[Any]) -> SearchStrategy[Call]:
        return st.builds(lambda a, k: Call(fn, *a, **k), st.tuples(*args),
                         st.fixed_dictionaries(kwargs))
    return build


@st.composite
def _pair_call(draw: st.DrawFn, fn: Callable[..., Any], extra: dict[str, SearchStrategy[Any]],
               psd_second: bool = True) -> Call:
    first, second = draw(sym_pair(psd_second=psd_second))
    return Call(fn, first, second, **{k: draw(v) for k, v in extra.items()})


def pair(fn: Callable[..., Any], psd_second: bool = True, **extra: SearchStrategy[Any]
         ) -> SearchStrategy[Call]:
    return _pair_call(fn, extra, psd_second)


def one_matrix(fn: Callable[..., Any], psd: bool | None = None, **extra: SearchStrategy[Any]
               ) -> SearchStrategy[Call]:
    mats = (st.one_of(symmetric_matrices(psd=True), symmetric_matrices(), arrays())
            if psd is None else symmetric_matrices(psd=psd))
    return _call(fn)(mats, **extra)


# ---------------------------------------------------------------------------------------------
# scenarios exercising the methods of public classes
# ---------------------------------------------------------------------------------------------


def _eigenbasis_methods(H: np.ndarray, A: Any) -> tuple[Any, ...]:
    eb = theory.eigenbasis(H)
    return eb.diagonal(A), eb.rotate(A, name="C")


def _wedge_methods(lam: Any, M_ii: Any, kappa_star: Any, K_ii: Any, rtol: Any) -> Any:
    w = theory.diagonal_wedge(lam, M_ii, kappa_star, K_ii)
    return w.violations(rtol), w.holds(rtol)


def _sandwich_methods(H: Any, M: Any, kappa_star: Any, rtol: Any) -> Any:
    return theory.loewner_sandwich(H, M, kappa_star).holds(rtol)


def _double_well(L0: Any, a: Any, n: Any, k: Any, theta: Any, T: Any) -> Any:
    well = theory.DoubleWell(L0, a, n, k)
    return (well.loss(theta), well.gradient(theta), well.hessian(theta),
            well.escape_parameters(), well.reduced_temperature(T))


def _layer_moments_kappa_star(G: Any, a: Any) -> float:
    return theory.kronecker_layer_moments(G, a).kappa_star


def _with_basis(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(C: Any, H: Any, basis_of: Any, **kw: Any) -> Any:
        basis = None if basis_of is None else theory.eigenbasis(basis_of)
        return fn(C, H, basis=basis, **kw)
    run.__name__ = fn.__name__
    return run


@st.composite
def _basis_call(draw: st.DrawFn, fn: Callable[..., Any], **extra: SearchStrategy[Any]) -> Call:
    C, H = draw(sym_pair(psd_second=False))
    basis_of = draw(st.sampled_from([None, "H", "other"]))
    other = {None: None, "H": H, "other": draw(symmetric_matrices())}[basis_of]
    return Call(_with_basis(fn), C, H, other, **{k: draw(v) for k, v in extra.items()})


@st.composite
def _window_call(draw: st.DrawFn) -> Call:
    D = draw(st.integers(1, 4))
    C_eig = draw(symmetric_matrices(min_dim=D, max_dim=D))
    lam = draw(vectors(draw(st.sampled_from([D, D, D, D + 1])), W))
    window = draw(st.one_of(
        st.builds(slice, st.integers(-1, D + 1), st.integers(-1, D + 1)),
        st.lists(st.integers(-D - 1, D + 1), max_size=3).map(np.asarray),
        st.sampled_from([1.5, "top", None])))
    return Call(theory.window_commutation, C_eig, lam, window)


@st.composite
def _saddle_call(draw: st.DrawFn, fn: Callable[..., Any], rate: str | None) -> Call:
    D = draw(st.integers(1, 3))
    hmin = draw(symmetric_matrices(min_dim=D, max_dim=D, psd=True))
    if draw(st.booleans()):
        hmin = hmin + np.diag(draw(vectors(D, POS)))
    hs = draw(symmetric_matrices(min_dim=D, max_dim=D))
    if draw(st.booleans()):
        hs = np.diag(np.concatenate([[-draw(POS)], draw(vectors(D - 1, POS))]))
    if draw(st.integers(0, 4)) == 0:
        hmin, hs = float(hmin[0, 0]), float(hs[0, 0])
    n = draw(st.one_of(st.none(), st.integers(0, 4)))
    if rate is None:
        return Call(fn, hmin, hs, n=n)
    c = draw(st.one_of(W, st.builds(lambda x: 1.0 + x, POS), vectors(2, W)))
    if rate == "kramers":
        return Call(fn, hmin, hs, draw(st.one_of(W, vectors(2, W))), T=draw(W))
    return Call(fn, hmin, hs, c, B=draw(W), eta=draw(W), h_star=draw(W), n=n)


def _quiet(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[Any], np.ndarray]:
    """A user callable that may overflow without warning (inf is the package's to refuse)."""
    def g(x: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return f(np.asarray(x, dtype=np.float64))
    return g


def _quadratic(c0: float, c2: float) -> Callable[[Any], np.ndarray]:
    g = _quiet(lambda x: c0 + c2 * x * x)
    g.__name__ = f"quadratic({c0!r}, {c2!r})"
    return g


def _linear(c1: float, c0: float) -> Callable[[Any], np.ndarray]:
    g = _quiet(lambda x: c1 * x + c0)
    g.__name__ = f"linear({c1!r}, {c0!r})"
    return g


@st.composite
def _density_call(draw: st.DrawFn) -> Call:
    n = draw(st.integers(0, 6))
    theta = np.sort(draw(vectors(n, W)))
    if draw(st.booleans()):
        theta = np.unique(theta)
    L = draw(st.one_of(vectors(theta.size, W), st.builds(_quadratic, POS, POS)))
    return Call(theory.stationary_density_1d, L, theta, B=draw(W), eta=draw(W), h_star=draw(W))


@st.composite
def _sde_density_call(draw: st.DrawFn) -> Call:
    n = draw(st.integers(0, 6))
    theta = np.unique(draw(vectors(n, W)))
    drift = _linear(-draw(W), draw(W))
    diffusion = _quadratic(draw(POS), draw(P))

    as_array = draw(st.booleans())
    if as_array:
        with np.errstate(all="ignore"):
            mu, D = drift(theta), diffusion(theta)
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(D))):
            return Call(theory.stationary_density_sde_1d, theta, drift, diffusion)
        return Call(theory.stationary_density_sde_1d, theta, mu, D)
    return Call(theory.stationary_density_sde_1d, theta, drift, diffusion)


@st.composite
def _passage_call(draw: st.DrawFn) -> Call:
    k = draw(finite_floats_wide(min_exponent=-3, max_exponent=3))
    d0 = draw(finite_floats_wide(min_exponent=-3, max_exponent=3, allow_negative=False))
    a = draw(finite_floats_wide(min_exponent=-3, max_exponent=3))
    b = a + draw(finite_floats_wide(min_exponent=-3, max_exponent=1))
    x0 = draw(st.sampled_from([a, b, 0.5 * (a + b), a - 1.0]))

    def drift(x: float) -> float:
        return -k * x

    def diffusion(x: float) -> float:
        return d0 + 0.1 * x * x

    return Call(theory.mean_first_passage_time_1d, drift, diffusion, x0, a, b,
                rtol=draw(st.sampled_from([1e-10, 1e-6, 1e-14, 0.0])))


@st.composite
def _lr_call(draw: st.DrawFn, fn: Callable[..., Any]) -> Call:
    D = draw(st.integers(1, 3))
    S = draw(symmetric_matrices(min_dim=D, max_dim=D, psd=draw(st.booleans())))
    e = draw(vectors(draw(st.sampled_from([D, D, D + 1])), W))
    return Call(fn, S, e, draw(W))


@st.composite
def _noise_trace_call(draw: st.DrawFn) -> Call:
    D = draw(st.integers(1, 3))
    H = draw(symmetric_matrices(min_dim=D, max_dim=D, psd=draw(st.booleans())))
    shape = draw(st.sampled_from([(D,), (2, D), (D + 1,)]))
    delta = np.resize(draw(vectors(4, W)), shape)
    return Call(theory.noise_trace_linear_regression, H, delta, draw(W))


@st.composite
def _kron_call(draw: st.DrawFn, fn: Callable[..., Any], with_delta: bool = False,
               **extra: SearchStrategy[Any]) -> Call:
    G, a, delta = draw(kronecker_factors_wide())
    args = (G, a, delta) if with_delta else (G, a)
    return Call(fn, *args, **{k: draw(v) for k, v in extra.items()})


@st.composite
def _dense_call(draw: st.DrawFn) -> Call:
    h = draw(symmetric_stacks(psd=draw(st.booleans())))
    grads = draw(st.one_of(st.none(), arrays(min_dims=2, max_dims=2, min_side=h.shape[0],
                                            max_side=h.shape[0]).map(
        lambda g: np.resize(g, (h.shape[0], h.shape[1])))))
    return Call(theory.dense_layer_moments, h, grads, per_sample_bound=draw(st.booleans()))


@st.composite
def _wedge_call(draw: st.DrawFn, methods: bool) -> Call:
    n = draw(st.integers(0, 4))
    lam, M_ii = draw(vectors(n, W)), draw(vectors(draw(st.sampled_from([n, n, n + 1])), W))
    K_ii = draw(st.one_of(st.none(), vectors(n, W)))
    kappa = draw(W)
    if methods:
        return Call(_wedge_methods, lam, M_ii, kappa, K_ii, draw(W))
    return Call(theory.diagonal_wedge, lam, M_ii, kappa, K_ii)


@st.composite
def _sandwich_call(draw: st.DrawFn, methods: bool) -> Call:
    H, M = draw(sym_pair())
    kappa = draw(st.one_of(st.none(), P, W))
    if methods:
        return Call(_sandwich_methods, H, M, kappa, draw(W))
    return Call(theory.loewner_sandwich, H, M, kappa)


@st.composite
def _fit_call(draw: st.DrawFn, fn: Callable[..., Any], exponent: bool) -> Call:
    lam, y = draw(spectrum_and_diagonal())
    kw: dict[str, Any] = {
        "top": draw(st.one_of(st.none(), st.integers(0, 8))),
        "protocol": draw(st.sampled_from(["top", "layerwise", "all"])),
        "trim_percentile": draw(st.one_of(st.sampled_from([5.0, 0.0, 99.0]), W)),
        "keep_fraction": draw(st.one_of(st.sampled_from([0.8, 1.0]), W)),
        "rel_floor": draw(st.one_of(st.sampled_from([1e-10, 0.0, 0.5]), W)),
    }
    if exponent:
        kw["kappa_star"] = draw(st.one_of(st.none(), POS, st.just(float(lam.max(initial=1.0)))))
        kw["kappa_upper"] = draw(st.one_of(st.none(), vectors(lam.size, POS)))
    return Call(fn, lam, y, **kw)


@st.composite
def _interval_call(draw: st.DrawFn) -> Call:
    lam, y = draw(spectrum_and_diagonal())
    hi = y * draw(st.sampled_from([1.0, 2.0, 0.5]))
    return Call(theory.exponent_interval, lam, y, hi)


@st.composite
def _two_vectors(draw: st.DrawFn, fn: Callable[..., Any], positive: bool = False,
                 **extra: SearchStrategy[Any]) -> Call:
    lam, y = draw(spectrum_and_diagonal(positive=positive))
    if draw(st.integers(0, 9)) == 0:
        y = y[:-1]
    return Call(fn, lam, y, **{k: draw(v) for k, v in extra.items()})


@st.composite
def _epoch_call(draw: st.DrawFn, fn: Callable[..., Any], signature: str) -> Call:
    lam, eta, beta = draw(stable_params())
    C = draw(st.one_of(P, W))
    if signature == "iid":
        return Call(fn, lam, C, eta, beta)
    if signature == "epoch":
        return Call(fn, lam, C, eta, beta, draw(EPOCHS), position=draw(POSITIONS))
    if signature == "profile":
        M = draw(st.one_of(st.integers(-1, 40), st.sampled_from([10**9])))
        return Call(fn, lam, C, eta, beta, M)
    if signature == "tau":
        M = draw(st.one_of(st.none(), EPOCHS))
        return Call(fn, lam, eta, beta, M, position=draw(POSITIONS))
    if signature == "correlated":
        R = draw(arrays(min_dims=1, max_dims=1, max_side=6))
        return Call(fn, lam, eta, beta, R, output=draw(st.sampled_from(["weight", "velocity",
                                                                       "loss"])))
    if signature == "impulse":
        return Call(fn, lam, eta, beta, num_steps=draw(st.one_of(st.integers(-1, 40),
                                                                  st.just(3000))))
    raise AssertionError(signature)


@st.composite
def _flat_call(draw: st.DrawFn, fn: Callable[..., Any], with_C: bool) -> Call:
    eta, beta, M = draw(W), draw(st.one_of(UNIT, W)), draw(EPOCHS)
    return Call(fn, draw(st.one_of(P, W)), eta, beta, M) if with_C else Call(fn, eta, beta, M)


@st.composite
def _loss_call(draw: st.DrawFn, fn: Callable[..., Any]) -> Call:
    lam = draw(arrays(min_dims=0, max_dims=2, elements=st.one_of(P, W)))
    var = draw(arrays(min_dims=0, max_dims=2, elements=st.one_of(P, W)))
    return Call(fn, lam, var)


@st.composite
def _anisotropic_time_call(draw: st.DrawFn, fn: Callable[..., Any], discrete: bool) -> Call:
    H, S = draw(sym_pair())
    if discrete:
        steps = draw(st.one_of(st.integers(-1, 50), st.sampled_from([10**6, 2**62]),
                               st.lists(st.integers(0, 20), max_size=3).map(np.asarray),
                               st.sampled_from([1.5, True])))
        return Call(fn, H, S, draw(W), steps)
    t = draw(st.one_of(W, arrays(min_dims=0, max_dims=1)))
    return Call(fn, H, S, t)


@st.composite
def _double_well_call(draw: st.DrawFn) -> Call:
    n = draw(st.integers(0, 3))
    theta = draw(st.one_of(W, arrays(min_dims=1, max_dims=2, min_side=1, max_side=3)))
    return Call(_double_well, draw(W), draw(W), n, draw(st.one_of(st.none(), W)), theta, draw(W))


@st.composite
def _eigenbasis_call(draw: st.DrawFn) -> Call:
    H, A = draw(sym_pair(psd_second=False))
    if draw(st.integers(0, 4)) == 0:
        A = draw(arrays())
    return Call(_eigenbasis_methods, H, A)


def _sympy_int_call(fn: Callable[..., Any], *names: str) -> SearchStrategy[Call]:
    values = st.one_of(st.integers(-1, 2), st.sampled_from([1.5, True, "2"]))
    return st.builds(lambda vals: Call(fn, **dict(zip(names, vals, strict=True))),
                     st.tuples(*[values] * len(names)))


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fuzz:
    """How one public name is fuzzed: calls, examples, slow, documented infinite paths."""

    calls: SearchStrategy[Call]
    examples: int = 25
    slow: bool = False
    allow_inf: tuple[str, ...] = ()


t = theory
FUZZ: dict[str, Fuzz] = {
    # ---- moments, diagonals, eigenbasis
    "hessian_moments": Fuzz(_call(t.hessian_moments)(st.one_of(symmetric_stacks(),
                                                               arrays(max_dims=3)))),
    "max_curvatures": Fuzz(_call(t.max_curvatures)(st.one_of(symmetric_stacks(),
                                                             arrays(max_dims=3)))),
    "require_psd": Fuzz(_call(t.require_psd)(st.one_of(symmetric_stacks(psd=True),
                                                       symmetric_stacks(), arrays(max_dims=3)))),
    "gradient_covariance": Fuzz(_call(t.gradient_covariance)(arrays())),
    "noise_covariance": Fuzz(_call(t.noise_covariance)(
        st.one_of(symmetric_matrices(psd=True), symmetric_matrices(), arrays()),
        st.one_of(st.integers(-1, 5), W),
        N=st.one_of(st.none(), st.integers(-1, 6)),
        replacement=st.sampled_from([True, False, np.True_, "no", 1, None]))),
    "kronecker_hessians": Fuzz(_kron_call(t.kronecker_hessians)),
    "kronecker_max_curvatures": Fuzz(_kron_call(t.kronecker_max_curvatures)),
    "kronecker_layer_moments": Fuzz(_kron_call(
        t.kronecker_layer_moments, with_delta=True, per_sample_bound=st.booleans(),
        chunk=st.integers(0, 3))),
    "LayerMoments": Fuzz(_kron_call(_layer_moments_kappa_star)),
    "dense_layer_moments": Fuzz(_dense_call()),
    "kronecker_hessian_diagonal": Fuzz(st.one_of(
        _kron_call(t.kronecker_hessian_diagonal),
        st.builds(lambda f: Call(t.kronecker_hessian_diagonal,
                                 np.diagonal(f[0], axis1=1, axis2=2).copy(), f[1]),
                  kronecker_factors_wide()))),
    "kronecker_second_moment_diagonal": Fuzz(_kron_call(t.kronecker_second_moment_diagonal)),
    "kronecker_gradient_variance": Fuzz(st.builds(
        lambda f: Call(t.kronecker_gradient_variance, f[2], f[1]), kronecker_factors_wide())),
    "eigenbasis": Fuzz(one_matrix(t.eigenbasis)),
    "EigenBasis": Fuzz(_eigenbasis_call()),
    "effective_curvature": Fuzz(_two_vectors(t.effective_curvature)),
    # ---- bounds
    "loewner_sandwich": Fuzz(_sandwich_call(False)),
    "SandwichMargins": Fuzz(_sandwich_call(True)),
    "diagonal_wedge": Fuzz(_wedge_call(False)),
    "Wedge": Fuzz(_wedge_call(True)),
    # ---- power laws
    "ols_slope": Fuzz(_two_vectors(t.ols_slope, positive=False)),
    "fit_power_law": Fuzz(_fit_call(t.fit_power_law, False), examples=40),
    # without any upper bound the interval is unbounded above (documented), hence allow_inf
    "fit_exponent": Fuzz(_fit_call(t.fit_exponent, True), examples=40,
                         allow_inf=("result.interval",)),
    "exponent_interval": Fuzz(_interval_call()),
    "monotone_condition": Fuzz(_two_vectors(t.monotone_condition, tol=st.one_of(P, W))),
    # ---- commutation
    "commutation_error": Fuzz(pair(t.commutation_error, psd_second=False)),
    "haar_orthogonal": Fuzz(_call(t.haar_orthogonal)(st.one_of(st.integers(-1, 5), W),
                                                    st.one_of(st.integers(-1, 3), W))),
    "expected_random_commutator": Fuzz(_two_vectors(t.expected_random_commutator,
                                                    positive=False)),
    "random_commutation_baseline": Fuzz(_basis_call(
        t.random_commutation_baseline, num_samples=st.integers(-1, 3),
        rng=st.one_of(st.integers(0, 3), st.sampled_from([-1, 1.5])))),
    "commutation_metrics": Fuzz(_basis_call(
        t.commutation_metrics, top_k=st.one_of(st.none(), st.integers(-1, 4)),
        num_baseline=st.integers(-1, 3), rng=st.integers(0, 3))),
    "window_commutation": Fuzz(_window_call()),
    "diagonal_energy": Fuzz(one_matrix(t.diagonal_energy)),
    # ---- anisotropic noise (part B)
    "indicator": Fuzz(pair(t.indicator)),
    "isotropic_counterpart": Fuzz(one_matrix(t.isotropic_counterpart)),
    "gain_ratio": Fuzz(pair(t.gain_ratio)),
    "gain_bounds": Fuzz(one_matrix(t.gain_bounds)),
    "alignment": Fuzz(pair(t.alignment, rtol=st.one_of(st.just(1e-10), W))),
    "aligned_gain_lower_bound": Fuzz(pair(t.aligned_gain_lower_bound,
                                          rtol=st.one_of(st.just(1e-10), W))),
    "hessian_noise_gain": Fuzz(one_matrix(t.hessian_noise_gain)),
    "ou_covariance": Fuzz(_anisotropic_time_call(t.ou_covariance, False)),
    "ou_expected_loss_increase": Fuzz(_anisotropic_time_call(t.ou_expected_loss_increase, False)),
    "ou_loss_increase_small_t": Fuzz(_anisotropic_time_call(t.ou_loss_increase_small_t, False)),
    "discrete_covariance": Fuzz(_anisotropic_time_call(t.discrete_covariance, True)),
    "discrete_expected_loss_increase": Fuzz(_anisotropic_time_call(
        t.discrete_expected_loss_increase, True)),
    "stationary_covariance_discrete": Fuzz(pair(t.stationary_covariance_discrete, eta=W)),
    # ---- epoch noise (part D)
    "epoch_autocorrelation": Fuzz(_call(t.epoch_autocorrelation)(
        st.one_of(st.integers(-20, 20), arrays(max_dims=1, elements=st.integers(-5, 5).map(float)),
                  W),
        st.one_of(P, W, arrays(max_dims=1)), EPOCHS)),
    "epoch_noise_spectrum": Fuzz(_call(t.epoch_noise_spectrum)(
        st.one_of(W, arrays(max_dims=1)), st.one_of(P, W, arrays(max_dims=1)), EPOCHS)),
    "ar2_impulse_response": Fuzz(_epoch_call(t.ar2_impulse_response, "impulse")),
    "weight_variance_iid": Fuzz(_epoch_call(t.weight_variance_iid, "iid")),
    "velocity_variance_iid": Fuzz(_epoch_call(t.velocity_variance_iid, "iid")),
    "stationary_variance_correlated": Fuzz(_epoch_call(t.stationary_variance_correlated,
                                                       "correlated")),
    "weight_variance_epoch": Fuzz(_epoch_call(t.weight_variance_epoch, "epoch"), examples=40),
    "velocity_variance_epoch": Fuzz(_epoch_call(t.velocity_variance_epoch, "epoch"), examples=40),
    "weight_variance_epoch_profile": Fuzz(_epoch_call(t.weight_variance_epoch_profile,
                                                      "profile")),
    "correlation_time": Fuzz(_epoch_call(t.correlation_time, "tau")),
    "weight_variance_epoch_flat_limit": Fuzz(_flat_call(t.weight_variance_epoch_flat_limit, True)),
    "crossover_curvature": Fuzz(_flat_call(t.crossover_curvature, False)),
    "excess_loss": Fuzz(_loss_call(t.excess_loss)),
    "excess_loss_constant_variance": Fuzz(_loss_call(t.excess_loss_constant_variance)),
    "loss_variance": Fuzz(_loss_call(t.loss_variance)),
    # ---- power-law escape (part C)
    "temperature": Fuzz(_call(t.temperature)(B=ANY_SCALAR, eta=W, h_star=W)),
    "phi": Fuzz(_call(t.phi)(B=W, eta=W, h_star=W)),
    "escape_exponent": Fuzz(_call(t.escape_exponent)(B=W, eta=W, h_star=W,
                                                     n=st.one_of(SMALL_INT, W))),
    "critical_dimension": Fuzz(_call(t.critical_dimension)(B=W, eta=W, h_star=W)),
    "escape_rate_1d": Fuzz(_call(t.escape_rate_1d)(
        st.one_of(W, arrays(max_dims=1)), W, st.one_of(W, st.builds(lambda x: 1.0 + x, POS)),
        B=W, eta=W)),
    "saddle_geometry": Fuzz(_saddle_call(t.saddle_geometry, None)),
    "escape_rate": Fuzz(_saddle_call(t.escape_rate, "rate")),
    "arrhenius_rate_frozen_noise": Fuzz(_saddle_call(t.arrhenius_rate_frozen_noise, "rate")),
    "kramers_rate": Fuzz(_saddle_call(t.kramers_rate, "kramers")),
    "stationary_density_1d": Fuzz(_density_call()),
    "stationary_density_sde_1d": Fuzz(_sde_density_call()),
    "noise_trace_linear_regression": Fuzz(_noise_trace_call()),
    "DoubleWell": Fuzz(_double_well_call()),
    "mean_first_passage_time_1d": Fuzz(_passage_call(), examples=12, slow=True),
    "linear_regression_passage_time_1d": Fuzz(_call(t.linear_regression_passage_time_1d)(
        st.one_of(st.builds(lambda x: 1.0 + x, finite_floats_wide(
            min_exponent=-3, max_exponent=2, allow_negative=False, allow_zero=False)), W),
        h=finite_floats_wide(min_exponent=-2, max_exponent=2),
        sigma2=finite_floats_wide(min_exponent=-2, max_exponent=2),
        B=finite_floats_wide(min_exponent=0, max_exponent=2),
        eta=finite_floats_wide(min_exponent=-2, max_exponent=0),
        noise=st.sampled_from(["decoupled", "exact", "other"])), examples=10, slow=True),
    # ---- numeric functions of the symbolic modules
    "linear_regression_noise_covariance": Fuzz(_lr_call(t.linear_regression_noise_covariance)),
    "linear_regression_gradient_second_moment": Fuzz(_lr_call(
        t.linear_regression_gradient_second_moment)),
    "logistic_noise_factor": Fuzz(_call(t.logistic_noise_factor)(
        st.one_of(W, arrays(max_dims=1)), st.one_of(W, arrays(max_dims=1),
                                                   st.sampled_from([0.0, 1.0])))),
    "yule_walker_ar2": Fuzz(_call(t.yule_walker_ar2)(W, W, W), examples=8, slow=True),
    "stationary_covariance_ar2": Fuzz(_call(t.stationary_covariance_ar2)(W, W, W), examples=8,
                                      slow=True),
    # ---- sympy derivations with integer arguments: fuzzed minimally (validation, tiny sizes)
    "commutator_identity": Fuzz(_sympy_int_call(t.commutator_identity, "dim", "num_samples"),
                                examples=6, slow=True),
    "variance_identity": Fuzz(_sympy_int_call(t.variance_identity, "dim", "num_samples"),
                              examples=6, slow=True),
    "ols_exponent_identity": Fuzz(_sympy_int_call(t.ols_exponent_identity, "num_points"),
                                  examples=5, slow=True),
    "linear_regression_gradient_moments": Fuzz(_sympy_int_call(
        t.linear_regression_gradient_moments, "dim"), examples=4, slow=True),
    "logistic_gradient_identity": Fuzz(_sympy_int_call(t.logistic_gradient_identity, "dim"),
                                       examples=4, slow=True),
    "discrete_covariance_symbolic": Fuzz(_sympy_int_call(t.discrete_covariance_symbolic, "dim"),
                                         examples=4, slow=True),
    "discrete_loss_increase_symbolic": Fuzz(_sympy_int_call(t.discrete_loss_increase_symbolic,
                                                            "dim"), examples=4, slow=True),
    "hessian_noise_gain_identity": Fuzz(_sympy_int_call(t.hessian_noise_gain_identity, "dim"),
                                        examples=4, slow=True),
    "ou_covariance_symbolic": Fuzz(_sympy_int_call(t.ou_covariance_symbolic, "dim"),
                                   examples=4, slow=True),
    "ou_loss_increase_symbolic": Fuzz(_sympy_int_call(t.ou_loss_increase_symbolic, "dim"),
                                      examples=4, slow=True),
    "ou_loss_increase_series": Fuzz(_sympy_int_call(t.ou_loss_increase_series, "dim", "order"),
                                    examples=5, slow=True),
    "momentum_forms_identity": Fuzz(_sympy_int_call(t.momentum_forms_identity, "num_steps"),
                                    examples=4, slow=True),
    "noise_trace_identity": Fuzz(_sympy_int_call(t.noise_trace_identity, "dim"), examples=4,
                                 slow=True),
    "escape_rate_time_change": Fuzz(_sympy_int_call(t.escape_rate_time_change, "n"), examples=4,
                                    slow=True),
}

#: Public names not fuzzed, each with its reason.
EXCLUDED: dict[str, str] = {
    # operator classes and their spectral tools are fuzzed with the operators' own suite
    "BlockOperator": "matrix-free operator class, outside this suite",
    "CurvatureOperators": "matrix-free operator class, outside this suite",
    # a constant
    "PROTOCOLS": "a tuple of names, not a function",
    # result containers: plain records built by the functions that return them, whose outputs
    # are checked field by field above (their methods are fuzzed where they have any)
    "CommutationReport": "result record of commutation_metrics",
    "EscapeParameters": "result record of DoubleWell.escape_parameters",
    "ExponentFit": "result record of fit_exponent",
    "NoiseTrace": "result record of noise_trace_linear_regression",
    "PowerLawFit": "result record of fit_power_law",
    "RandomBaseline": "result record of random_commutation_baseline",
    "SaddleGeometry": "result record of saddle_geometry",
    # sympy derivations without arguments: deterministic, each fully exercised by
    # tests/theory/test_symbolic*.py; nothing to fuzz
    "ar2_variance_derivation": "no arguments (sympy derivation)",
    "discrete_lyapunov_identity": "no arguments (sympy derivation)",
    "epoch_autocorrelation_derivation": "no arguments (sympy derivation)",
    "epoch_flat_limit_derivation": "no arguments (sympy derivation)",
    "epoch_spectrum_derivation": "no arguments (sympy derivation)",
    "epoch_variance_sgd_derivation": "no arguments (sympy derivation)",
    "escape_rate_time_change_1d": "no arguments (sympy derivation)",
    "ito_time_change": "no arguments (sympy derivation)",
    "ou_lyapunov_identity": "no arguments (sympy derivation)",
}
#: Matrix-free operators and the spectral tools built on them (eigensolvers, stochastic traces,
#: spectral densities, the allocation guard) are fuzzed with the operators' own suites
#: (tests/theory/test_operators.py, test_spectral.py, test_stochastic_trace.py, test_memory.py,
#: each with its table of invalid arguments): names from these modules, or whose signature takes
#: an operator, are excluded with the classes above (so functions added there need no entry here).
EXCLUDED_MODULE_WORDS = ("_operators", "spectral", "lanczos", "_stochastic_trace", "_memory")


def _excluded(name: str) -> bool:
    obj = getattr(theory, name)
    module = getattr(obj, "__module__", "") or ""
    if name in EXCLUDED or any(word in module for word in EXCLUDED_MODULE_WORDS):
        return True
    annotations = getattr(obj, "__annotations__", {}) if callable(obj) else {}
    return any("Operator" in str(a) for a in annotations.values())


def test_every_public_name_is_fuzzed_or_excluded():
    missing = [n for n in theory.__all__ if n not in FUZZ and not _excluded(n)]
    assert not missing, f"public names of sgdnoise.theory without a fuzz entry: {missing}"
    stale = [n for n in list(FUZZ) + list(EXCLUDED)
             if n not in theory.__all__ and n not in ("BlockOperator", "CurvatureOperators")]
    assert not stale, f"fuzz entries for names that are not public: {stale}"
    assert not set(FUZZ) & set(EXCLUDED)


#: Multiplies every entry's number of examples (``SGDNOISE_FUZZ_SCALE=20 pytest tests/fuzz``
#: for a longer search; with ``HYPOTHESIS_PROFILE=dev`` the examples are also random).
FUZZ_SCALE = int(os.environ.get("SGDNOISE_FUZZ_SCALE", "1"))


def _run(name: str) -> None:
    entry = FUZZ[name]

    @settings(max_examples=entry.examples * FUZZ_SCALE, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(call=entry.calls)
    def fuzz(call: Call) -> None:
        check_contract(call, entry.allow_inf)

    fuzz()


@pytest.mark.parametrize("name", sorted(n for n, f in FUZZ.items() if not f.slow))
def test_fuzz(name):
    _run(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, f in FUZZ.items() if f.slow))
def test_fuzz_slow(name):
    _run(name)

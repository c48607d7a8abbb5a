r"""``simulate``: many independent replicas of GD, SGD or Langevin dynamics, and their results."""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from sgdnoise import _io, backends
from sgdnoise._progress import progress_bar
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_choice, check_positive
from sgdnoise.sim import philox
from sgdnoise.sim.dynamics._noise import NoiseModel, _fixed_root
from sgdnoise.sim.dynamics._problems import (
    PROBLEM_TYPES,
    LinearRegressionProblem,
    ModelProblem,
    QuadraticProblem,
    Toy2DProblem,
)
from sgdnoise.sim.dynamics._settings import Execution, Momentum
from sgdnoise.sim.dynamics._structures import minibatch_scale
from sgdnoise.sim.dynamics.observers._base import KNOWN_FIELDS, Observer, RunInfo, check_int
from sgdnoise.sim.dynamics.observers._final_loss import FinalLoss
from sgdnoise.sim.training import DivergenceError

#: ``form=`` values: noise added to the gradient or to the parameters.
FORMS: tuple[str, ...] = ("gradient", "parameter")
#: Langevin kinds the numba kernel of linear regression and quadratics implements.
NUMBA_LINEAR_KINDS: tuple[str, ...] = ("const", "dynamic", "diag", "fixed")
_KIND_CODES = {"const": 0, "dynamic": 1, "diag": 2, "full": 3, "leading": 4, "hessian": 5,
               "eigvec1": 6, "fixed": 7}
_SCHEME_CODES = {"replacement": 0, "iid": 1, "reshuffle": 2, "shuffle_once": 3}
_NOISE_CODES = {"gd": 0, "sgd": 1, "langevin": 2}
#: Keywords of earlier versions of :func:`simulate` and what replaces them.
MOVED_KEYWORDS: dict[str, str] = {
    "beta": "momentum=Momentum(beta, style=...) (or momentum=beta for heavy ball)",
    "momentum_style": "momentum=Momentum(beta, style=...)",
    "record_every": "observe=[Record(every=...)]",
    "track_loss": "observe=[Record(every=..., loss=True)]",
    "first_passage_loss": "observe=[FirstPassage(loss=...)]",
    "stop_at_first_passage": "observe=[FirstPassage(loss=..., stop=True)]",
    "moments_after": "observe=[Moments(after=...)]",
    "moments_every": "observe=[Moments(after=..., every=...)]",
    "moments_phase": "observe=[Moments(after=..., every=..., phase=...)]",
    "noise_lags": "observe=[NoiseLags(num_lags=..., after=...)]",
    "backend": "execution=Execution(backend=...) (or execution='numba')",
    "num_threads": "execution=Execution(num_threads=...)",
    "replica_start": "execution=Execution(replica_start=...)",
    "progress": "execution=Execution(progress=True)",
}


class MovedArgumentError(ValueError, TypeError):
    """A keyword of an earlier version of :func:`simulate`; the message names its replacement.

    Both a ``ValueError`` (a bad argument, named) and a ``TypeError`` (what Python raises for an
    unexpected keyword).
    """


@dataclass
class _Plan:
    """The dynamics and the run, validated and resolved (private)."""

    R: int
    D: int
    N: int
    num_steps: int
    seed: int
    key0: int
    key1: int
    replica_start: int
    noise_name: str
    kind: str | None
    scheme: str | None
    B: int
    topk: int | None
    steps_per_epoch: int
    form_param: bool
    eta: float
    beta: float
    pytorch: bool
    noise_trace: float
    trace_given: bool
    scale_hat: float
    sigma: FloatArray
    root: FloatArray
    stats_mode: int          # 0 none, 1 diagonal of Σ₁, 2 full Σ₁
    observers: tuple[Observer, ...] = ()
    info: RunInfo | None = None
    need_noise: bool = False  # some observer reads ξ_k = g_k − ∇L(θ_k)
    sigma_xp: Any = None
    root_xp: Any = None

    def int_params(self) -> IntArray:
        """The integer parameters of the numba kernels (layout shared with ``_numba``)."""
        return np.array([
            0, 0, self.num_steps, _NOISE_CODES[self.noise_name],
            _KIND_CODES.get(self.kind or "", -1), _SCHEME_CODES.get(self.scheme or "", -1),
            self.B, self.topk or 0, int(self.form_param), int(self.pytorch),
            self.replica_start, self.key0, self.key1, self.steps_per_epoch,
            int(self.trace_given), self.stats_mode, int(self.need_noise),
        ], dtype=np.int64)

    def float_params(self) -> FloatArray:
        """The float parameters of the numba kernels."""
        return np.array([self.eta, self.beta, self.noise_trace, self.scale_hat])


@dataclass(frozen=True, eq=False)
class ReplicaRun:
    r"""Results of :func:`simulate` for R replicas in D dimensions.

    The fields below are always there; every observer of the run adds its results, read as
    attributes (``run.trajectory``, ``run.theta_var``, …) or from :attr:`results`.  The result
    attribute of an observer that did not run is None (``run.first_passage is None``).

    * :class:`~sgdnoise.sim.dynamics.Record`: ``trajectory``, ``loss``, ``record_steps``;
    * :class:`~sgdnoise.sim.dynamics.Moments`: ``theta_mean``, ``theta_var`` (about each
      replica's time mean), ``second_moment`` (about the point ``Moments.about``),
      ``velocity_mean``, ``velocity_var``, ``moments_count``;
    * :class:`~sgdnoise.sim.dynamics.FirstPassage`: ``first_passage`` (steps),
      ``first_passage_time`` (SDE time, see :attr:`time_unit`), ``censored``;
    * :class:`~sgdnoise.sim.dynamics.NoiseLags`: ``noise_autocov``, ``noise_count``.

    Attributes
    ----------
    theta : (R, D) array
        Final parameters θ_K (K = num_steps); a replica frozen at its first passage keeps θ
        there.
    loss_final : (R,) array
        L(θ_K).
    velocity : (R, D) array
        Final momentum buffer (v for heavy ball, b for PyTorch style).
    theta0 : (R, D) array
        Initial parameters.
    config : dict
        Everything that determined the run (problem, noise, eta, num_steps, num_replicas, seed,
        form, noise_trace, momentum, observe (each observer's settings), backend,
        replica_start, …).
    provenance : dict
        Versions, platform, command line and time (:func:`sgdnoise._io.provenance`).
    results : dict
        The observers' results by field name (arrays, or ints such as ``moments_count``).
    time_unit : str
        The unit of every ``*_time`` field: SDE time t = η·k, k the step (``steps`` fields and
        ``first_passage`` count steps).

    References
    ----------
    Spec parts B, C and D (replica statistics, first passage, stationary moments).
    """

    theta: FloatArray
    loss_final: FloatArray
    velocity: FloatArray
    theta0: FloatArray
    config: dict[str, Any]
    provenance: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)

    time_unit: ClassVar[str] = "SDE time t = eta * step"
    _CORE: ClassVar[tuple[str, ...]] = ("theta", "loss_final", "velocity", "theta0")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        results = self.__dict__.get("results")
        if results is not None and name in results:
            return results[name]
        if name in KNOWN_FIELDS:
            return None
        raise AttributeError(f"ReplicaRun has no attribute {name!r}; this run's results: "
                             f"{', '.join(sorted(results or {})) or 'none'}")

    @property
    def num_replicas(self) -> int:
        """R."""
        return int(self.theta.shape[0])

    @property
    def time_per_step(self) -> float:
        """η: one step is this much SDE time (``first_passage_time = η · first_passage``)."""
        return float(self.config["eta"])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the run by name: the four above, then the observers' arrays."""
        out = {n: getattr(self, n) for n in self._CORE}
        out.update({n: v for n, v in self.results.items() if isinstance(v, np.ndarray)})
        return out

    def _scalars(self) -> dict[str, Any]:
        return {n: v for n, v in self.results.items() if not isinstance(v, np.ndarray)}

    def to_dict(self, *, arrays: bool = True) -> dict[str, Any]:
        """JSON-ready dict: config, provenance, the non-array results (e.g. moments_count)
        and (``arrays=True``) every array as nested lists (fine for small runs; :meth:`save`
        writes arrays to an .npz instead)."""
        out: dict[str, Any] = {"config": self.config, "provenance": self.provenance,
                               "results": self._scalars(), "time_unit": self.time_unit}
        if arrays:
            for name, value in self.arrays().items():
                out[name] = value.tolist()
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (JSON: config, provenance, non-array results, array shapes) and the
        arrays beside it in ``path`` with suffix ``.npz``, both atomically; returns the JSON
        path."""
        path = Path(path)
        npz = path.with_suffix(".npz")
        arrays = self.arrays()
        npz.parent.mkdir(parents=True, exist_ok=True)
        tmp = npz.with_name(f".{npz.name}.tmp.npz")
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, npz)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        payload = self.to_dict(arrays=False)
        payload["arrays_file"] = npz.name
        payload["arrays"] = {n: {"shape": list(a.shape), "dtype": str(a.dtype)}
                             for n, a in arrays.items()}
        return _io.write_json_atomic(path, payload)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReplicaRun:
        """Read a run written by :meth:`save` (also by earlier versions, whose JSON holds
        ``moments_count`` at the top level)."""
        path = Path(path)
        payload = json.loads(path.read_text(encoding="utf-8"))
        with np.load(path.with_name(payload["arrays_file"]), allow_pickle=False) as f:
            arrays = {n: f[n].copy() for n in f.files}
        results = dict(payload.get("results") or {})
        if payload.get("moments_count") is not None:
            results.setdefault("moments_count", payload["moments_count"])
        core = {n: arrays.pop(n) for n in cls._CORE}
        results.update(arrays)
        return cls(config=payload["config"], provenance=payload["provenance"], results=results,
                   **core)


# ----------------------------------------------------------------------------------- checks
def _numba_unsupported(problem: Any, noise: NoiseModel, needs_stats: bool = False) -> str | None:
    """Why the numba backend cannot run this combination (None if it can)."""
    if isinstance(problem, Toy2DProblem):
        return None
    if isinstance(problem, QuadraticProblem) and problem.G is not None and needs_stats:
        return (f"the numba backend runs a QuadraticProblem with per-sample gradients G with "
                f"gd, sgd in gradient form and Langevin kinds that need no Σ̂, not "
                f"{noise.label}; use backend='numpy'")
    if isinstance(problem, (LinearRegressionProblem, QuadraticProblem)):
        if noise.name == "langevin" and noise.kind not in NUMBA_LINEAR_KINDS:
            return (f"the numba backend runs {problem.name} with gd, sgd and langevin kinds "
                    f"{', '.join(NUMBA_LINEAR_KINDS)} only, not {noise.kind!r}; backend='numpy' "
                    f"(or 'cupy') runs every kind, and numba runs every kind on Toy2DProblem")
        return None
    return (f"the numba backend runs Toy2DProblem, LinearRegressionProblem and QuadraticProblem, "
            f"not {type(problem).__name__}; use backend='numpy'")


def _resolve_backend(backend: Any, problem: Any, noise: NoiseModel,
                     needs_stats: bool = False) -> str:
    check_choice(backend, "Execution.backend", (*backends.BACKENDS, "auto"))
    supported = ["numpy"]
    if not isinstance(problem, ModelProblem):
        supported.append("cupy")
    reason = _numba_unsupported(problem, noise, needs_stats)
    if reason is None:
        supported.append("numba")
    if backend == "numba" and reason is not None:
        raise ValueError(f"backend='numba' cannot run this simulation: {reason}")
    if backend == "cupy" and "cupy" not in supported:
        raise ValueError("backend='cupy' cannot run a ModelProblem (models compute in numpy); "
                         "use backend='numpy'")
    return backends.resolve(backend, supported=tuple(supported))


def _sigma_hat_use(noise: NoiseModel, form_param: bool, trace_given: bool) -> int:
    """0: Σ̂ not needed; 1: its diagonal (trace); 2: the full matrix."""
    if noise.name == "sgd":
        return 1 if form_param else 0
    if noise.name != "langevin":
        return 0
    kind = noise.kind
    if kind in ("full", "leading"):
        return 2
    if kind == "diag":
        return 1
    if kind in ("dynamic", "hessian", "eigvec1"):
        return 0 if trace_given else 1
    return 0


def _const_sigma(problem: Any, noise: NoiseModel, theta0: FloatArray, form_param: bool,
                 noise_trace: float | None, scale_hat: float) -> FloatArray:
    """σ of ``const`` per replica: √sigma2, √(noise_trace/D), or √(Tr Σ̂(θ₀)/D)."""
    R, D = theta0.shape
    if noise.sigma2 is not None:
        return np.full(R, math.sqrt(noise.sigma2))
    if noise_trace is not None:
        return np.full(R, math.sqrt(noise_trace / D))
    with np.errstate(over="ignore", invalid="ignore"):
        _, d = problem._device(np).statistics(theta0, False)
        sigma = np.sqrt((scale_hat * d).sum(axis=-1) / D)
    if not np.isfinite(sigma).all():
        raise ValueError("theta0: the trace of Σ̂ at theta0, which sets the variance of const "
                         "noise, is not finite; give sigma2 or noise_trace, or a smaller theta0")
    return sigma


def moved_keywords(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: refuse the keywords of earlier versions (:data:`MOVED_KEYWORDS`) that the
    function ``name`` no longer takes with :class:`MovedArgumentError` naming the replacement
    (instead of Python's bare "unexpected keyword" ``TypeError``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = set(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            moved = [k for k in kwargs if k in MOVED_KEYWORDS and k not in own]
            if moved:
                lines = "; ".join(f"{k}= is now {MOVED_KEYWORDS[k]}" for k in moved)
                raise MovedArgumentError(
                    f"{name}() no longer takes {', '.join(m + '=' for m in moved)}: {lines} "
                    f"(Record, Moments, FirstPassage, NoiseLags, Momentum and Execution are "
                    f"in sgdnoise.sim.dynamics)")
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _observers(observe: Any, info: RunInfo) -> tuple[Observer, ...]:
    """The engine's FinalLoss followed by the user's observers, validated."""
    if isinstance(observe, Observer):
        observe = [observe]
    if observe is None:
        observe = []
    if isinstance(observe, (str, bytes)) or not isinstance(observe, Sequence):
        raise ValueError(f"observe must be a list of observers (Record, Moments, FirstPassage, "
                         f"NoiseLags, …); got {observe!r}")
    seen: dict[str, str] = {}
    for obs in observe:
        if not isinstance(obs, Observer):
            raise ValueError(f"observe: each entry must be an Observer (Record, Moments, "  # noqa: TRY004
                             f"FirstPassage, NoiseLags, …); got {obs!r}")
        name = type(obs).__name__
        for f in obs.fields:
            if f in seen or f in ReplicaRun._CORE:
                other = seen.get(f, "ReplicaRun")
                raise ValueError(f"observe: {name} and {other} both give the result {f!r}; "
                                 f"give each measurement once")
            seen[f] = name
    for obs in observe:
        obs.check(info)
    return (FinalLoss(), *observe)


def _progress_chunks(num_steps: int, progress: bool) -> list[tuple[int, int]]:
    if not progress or num_steps < 10:
        return [(0, num_steps)]
    edges = sorted({round(num_steps * i / 10) for i in range(11)})
    return list(itertools.pairwise(edges))


# --------------------------------------------------------------------------------- simulate
@moved_keywords("simulate")
def simulate(problem: LinearRegressionProblem | Toy2DProblem | QuadraticProblem | ModelProblem,
             noise: NoiseModel, *, eta: float, num_steps: int, num_replicas: int, seed: int,
             theta0: ArrayLike | None = None, form: str = "gradient",
             noise_trace: float | None = None, momentum: Momentum | float | None = None,
             observe: Sequence[Observer] | Observer | None = (),
             execution: Execution | str | None = None) -> ReplicaRun:
    r"""Run ``num_replicas`` independent replicas of a noisy gradient dynamics for ``num_steps``.

    **Gradient form** (default), step k from θ_k:

    .. math:: \theta_{k+1} = \theta_k - \eta\,(\nabla L(\theta_k) + \xi_k)

    * ``gd()``: ξ = 0.
    * ``sgd(B, scheme)``: ∇L + ξ is the minibatch mean gradient ĝ_B(θ_k) (no full gradient is
      computed).
    * ``langevin(kind, B=, scheme=)``: ξ_k ~ N(0, Σ_k) with
      Σ_k = ``structured_covariance(kind, Σ̂_k, H_k, k=k, trace=t_k)``, where Σ̂_k is the
      covariance of the minibatch gradient of ``sgd(B, scheme)`` *at the current point*,
      estimated every step from the per-sample gradients,
      Σ₁ = (1/N) Σ_p (g_p − ḡ)(g_p − ḡ)ᵀ, Σ̂ = Σ₁/B (``"replacement"``) or
      Σ₁(N−B)/(B(N−1)) (``"iid"``, ``"reshuffle"``, ``"shuffle_once"``: the per-step
      marginal); H_k = E_p h_p(θ_k); t_k = Tr Σ̂_k, or ``noise_trace`` when given (a fixed
      magnitude, which also lets ``dynamic``/``hessian``/``eigvec1`` run on a
      :class:`QuadraticProblem`).  ``const`` uses σ² = ``sigma2``, else ``noise_trace``/D, else
      Tr Σ̂(θ₀)/D, fixed for the run; ``fixed`` uses the given covariance.

    **Parameter form** (``form="parameter"``, spec B3's toy):

    .. math:: \theta_{k+1} = \theta_k - \eta\,\nabla L(\theta_k) + \varepsilon_k,\qquad
              \varepsilon_k \sim N(0, S_k),\ \operatorname{Tr} S_k = \text{noise\_trace}

    with S_k the Langevin structure evaluated at θ_k (``noise_trace`` required, except for
    ``gd`` and ``fixed``, which ignore it); for ``sgd`` ε = s (ĝ_B − ∇L) with
    s² = noise_trace / Tr Σ̂_k (nothing is added where Tr Σ̂_k = 0).  Internally the gradient
    is g = ∇L − ε/η, so momentum acts on it as below.

    **Momentum** on the noisy gradient g: ``"heavy_ball"`` v ← βv − ηg, θ ← θ + v;
    ``"pytorch"`` b ← βb + g, θ ← θ − ηb (the names of :mod:`sgdnoise.sim.training`).

    **Randomness.** Replica r uses the Philox streams (:mod:`sgdnoise.sim.philox`) of key(seed)
    and replica index ``replica_start + r``: Gaussian noise from tag NOISE (step k: normals
    2k⌈D/2⌉ … 2k⌈D/2⌉ + D − 1), batch indices from tag BATCH (step k: draws kB … kB + B − 1,
    bounded by N, or the partial Fisher–Yates of ``sample_without_replacement`` for ``"iid"``),
    epoch permutations from tag PERMUTATION (epoch e: ``permutation`` from draw e(N−1); step k
    is batch k mod ⌊N/B⌋ of epoch ⌊k/⌊N/B⌋⌋, the last partial batch of a permutation is dropped).
    Every backend reads the same numbers, so results do not depend on the backend (beyond
    round-off), on ``num_threads`` or on ``progress``; Langevin noise is ξ = V diag(√μ) Vᵀ z
    from the eigenpairs of the structure, so the sample does not depend on eigenvector signs.

    **What to measure** is a list of observers (``observe=``), each adding its results to the
    run: :class:`Record` (θ and L every P steps), :class:`Moments` (time moments of θ and of
    its increments, about the time mean and about a given point), :class:`FirstPassage` (the
    first step with L ≥ c, optionally freezing the replica), :class:`NoiseLags` (lagged second
    moments of the gradient noise) — or one of your own (:class:`Observer`).  Memory does not
    grow with num_steps unless a Record asks for it.

    Parameters
    ----------
    problem : LinearRegressionProblem, Toy2DProblem, QuadraticProblem or ModelProblem
    noise : NoiseModel
        From :func:`gd`, :func:`sgd` or :func:`langevin`.
    eta : float
        Learning rate η > 0 (one step is SDE time η).
    num_steps : int
        K ≥ 0 updates; θ_0 … θ_K are observed.
    num_replicas : int
        R ≥ 1.
    seed : int
        In [0, 2⁶⁴): the Philox key.
    theta0 : (D,) or (R, D) array, optional
        Start (default: the problem's, e.g. (1, 1) for the toy, 0 for linear regression, θ*
        for a quadratic; required for a ModelProblem).
    form : {"gradient", "parameter"}
    noise_trace : float, optional
        Tr of the Langevin/parameter noise (see above), ≥ 0.
    momentum : Momentum, float or None
        :class:`Momentum` (β and the style), a float β (heavy ball) or None (plain steps).
    observe : list of Observer
        What to measure (see above; default: nothing beyond θ_K, L(θ_K) and the velocity).
    execution : Execution, str or None
        :class:`Execution` (backend, num_threads, replica_start, progress), a backend name
        (``"numpy"``, ``"numba"``, ``"cupy"``, ``"auto"``) or None (the numpy reference).

    Returns
    -------
    ReplicaRun

    Raises
    ------
    DivergenceError
        A replica diverged, at the first step k at which (1) its parameters θ_k are not finite,
        or (2) the noise statistics that the update of step k − 1 needs (Σ̂, its trace, H) are
        not finite (checked before any linear algebra sees them), or (3) a returned loss or
        time moment is not finite although θ is (θ beyond about 1e154, where L(θ) overflows).
        Every backend applies the same criterion.  The error names the replica (earliest step,
        then lowest index) and its stream, the step (and the epoch under epoch sampling), the
        loss at the last finite point, the learning rate and the options that help; a
        diverging run returns nothing.
    ValueError
        Invalid arguments, naming the argument (and, for an unsupported backend combination, what
        supports it); a ``theta0`` at which the loss (or, for ``const`` noise set from Σ̂, the
        trace of Σ̂) is not finite.  A keyword of earlier versions (``record_every``,
        ``moments_after``, ``backend``, …) raises :class:`MovedArgumentError` naming what
        replaces it.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), the dynamics and GLD variants (spec B);
    Mori et al., ICML 2022 (first passage, spec C); Kühn & Rosenow, arXiv:2306.05300 (epoch
    sampling, momentum, spec D); Salmon et al., SC'11 (Philox).
    """
    # ---- validation, once, in Python
    if not isinstance(problem, PROBLEM_TYPES):
        kinds = "LinearRegressionProblem, Toy2DProblem, QuadraticProblem or ModelProblem"
        raise ValueError(f"problem must be a {kinds}; got {type(problem).__name__}")  # noqa: TRY004
    if not isinstance(noise, NoiseModel):
        got = type(noise).__name__
        msg = f"noise must be a NoiseModel (gd, sgd, langevin); got {got}"
        raise ValueError(msg)  # noqa: TRY004
    eta = check_positive(eta, "eta")
    num_steps = check_int(num_steps, "num_steps", 0)
    R = check_int(num_replicas, "num_replicas", 1)
    seed = check_int(seed, "seed", 0, 2**64 - 1)
    mom = Momentum.coerce(momentum)
    run = Execution.coerce(execution)
    replica_start = check_int(run.replica_start, "Execution.replica_start", 0, 2**32 - R)
    check_choice(form, "form", FORMS)
    form_param = form == "parameter"
    beta = mom.beta
    if noise_trace is not None:
        noise_trace = check_positive(noise_trace, "noise_trace", allow_zero=True)

    if theta0 is None:
        theta0 = problem.default_theta0()
    th0 = as_float_array(theta0, "theta0", ndim=(1, 2))
    D = problem.num_params if problem.num_params is not None else th0.shape[-1]
    if th0.shape[-1] != D or (th0.ndim == 2 and th0.shape[0] != R) or D < 1:
        raise ValueError(f"theta0 must have shape ({D},) or ({R}, {D}); got {th0.shape}")
    th0 = np.ascontiguousarray(np.broadcast_to(th0, (R, D)), dtype=np.float64).copy()

    has_samples = not (isinstance(problem, QuadraticProblem) and problem.G is None)
    trace_given = noise_trace is not None
    name = noise.name
    if name == "sgd" and not has_samples:
        raise ValueError("noise: sgd needs per-sample gradients, which a QuadraticProblem "
                         "without G does not have; use LinearRegressionProblem, give G, or "
                         "langevin('fixed', …)")
    if name == "sgd" and trace_given and not form_param:
        raise ValueError("noise_trace rescales sgd noise only in form='parameter'; drop it or "
                         "use form='parameter'")
    if form_param and noise_trace is None and not (
            name == "gd" or (name == "langevin" and noise.kind in ("fixed",))
            or (name == "langevin" and noise.kind == "const" and noise.sigma2 is not None)):
        raise ValueError("noise_trace is required with form='parameter' (the trace of the "
                         "parameter noise S), except for gd, fixed and const with sigma2")
    stats_mode = _sigma_hat_use(noise, form_param, trace_given)
    const_needs_stats = (name == "langevin" and noise.kind == "const" and noise.sigma2 is None
                         and not trace_given)
    if (stats_mode or const_needs_stats) and not has_samples:
        raise ValueError(f"noise: {noise.label} needs SGD's covariance Σ̂ from per-sample "
                         f"gradients, which a QuadraticProblem without G does not have; give "
                         f"noise_trace (dynamic, hessian, eigvec1), sigma2 (const), or use "
                         f"'fixed'")
    if noise.needs_hessian and isinstance(problem, ModelProblem) and not problem.has_hessian:
        raise ValueError(f"noise: {noise.label} needs the Hessian, but "
                         f"{type(problem.model).__name__} has no hessian(w, …) method")
    if noise.k is not None and noise.k > D:
        raise ValueError(f"k must be <= D = {D}; got k={noise.k}")
    if noise.covariance is not None and noise.covariance.shape != (D, D):
        raise ValueError(f"covariance must have shape ({D}, {D}) to match the problem; got "
                         f"{noise.covariance.shape}")

    N = 0
    uses_samples = name == "sgd" or stats_mode > 0 or const_needs_stats
    if has_samples:
        N = problem.num_samples
        if N is None:
            dev = problem._device(np)
            N = int(dev.per_sample_gradients(th0[0]).shape[0])
    scale_hat = 0.0
    steps_per_epoch = 0
    B = 0
    if name != "gd":
        B = int(noise.B)
        if uses_samples and B > N:
            raise ValueError(f"B must be <= N = {N}; got B={B}")
        if uses_samples:
            scale_hat = minibatch_scale(N, B, noise.scheme) if B <= N else 1.0 / B
        if name == "sgd":
            steps_per_epoch = N // B

    user = [observe] if isinstance(observe, Observer) else observe
    absorbing = isinstance(user, Sequence) and any(
        isinstance(o, Observer) and o.absorbs for o in user)
    theta_star = getattr(problem, "theta_star", None)
    info = RunInfo(num_steps=num_steps, num_replicas=R, D=D, eta=eta, absorbing=absorbing,
                   theta_star=None if theta_star is None else np.asarray(theta_star))
    observers = _observers(observe, info)

    needs_stats = bool(stats_mode or const_needs_stats)
    resolved = _resolve_backend(run.backend, problem, noise, needs_stats)
    if resolved == "numba":
        for obs in observers:
            if obs.numba_hooks is None:
                raise ValueError(f"observe: {type(obs).__name__} has no numba hooks "
                                 f"(numba_hooks); run it with Execution(backend='numpy')")
    with np.errstate(over="ignore", invalid="ignore"):
        loss0 = np.asarray(problem._device(np).loss(th0), dtype=np.float64)
    if not np.isfinite(loss0).all():
        r = int(np.flatnonzero(~np.isfinite(loss0))[0])
        raise ValueError(f"theta0: the loss at theta0 is not finite ({loss0[r]}, replica {r}); "
                         f"start closer to the data's scale")

    sigma = np.zeros(R)
    if name == "langevin" and noise.kind == "const":
        trace_c = noise_trace if (trace_given or form_param) else None
        sigma = _const_sigma(problem, noise, th0, form_param, trace_c, scale_hat)
    root = np.zeros((D, D))
    if noise.covariance is not None:
        root = _fixed_root(noise.covariance)
    key0, key1 = philox.seed_key(seed)
    plan = _Plan(
        R=R, D=D, N=N, num_steps=num_steps, seed=seed, key0=key0, key1=key1,
        replica_start=replica_start, noise_name=name, kind=noise.kind, scheme=noise.scheme,
        B=B, topk=noise.k, steps_per_epoch=steps_per_epoch, form_param=form_param, eta=eta,
        beta=beta, pytorch=mom.style == "pytorch",
        noise_trace=float(noise_trace) if trace_given else 0.0, trace_given=trace_given,
        scale_hat=scale_hat, sigma=sigma, root=root, stats_mode=stats_mode,
        observers=observers, info=info,
        need_noise=any("noise" in o.needs for o in observers),
    )
    config = {
        "problem": problem.name, "N": N or None, "D": D, "noise": noise.to_dict(),
        "model": type(problem.model).__name__ if isinstance(problem, ModelProblem) else None,
        "noise_label": noise.label, "eta": eta, "num_steps": num_steps, "num_replicas": R,
        "seed": seed, "replica_start": replica_start, "form": form,
        "noise_trace": noise_trace, "momentum": {"beta": beta, "style": mom.style},
        "observe": [o.to_dict() for o in observers[1:]],
        "backend": resolved, "num_threads": run.num_threads,
        "scale_hat": scale_hat, "steps_per_epoch": steps_per_epoch or None,
    }

    # ---- run, chunk by chunk
    state = _new_state(plan, th0)
    runner = _runner(resolved)
    ctx = runner.prepare(problem, plan, state, run.num_threads)
    label = f"simulate {problem.name}, {noise.label}, {resolved}"
    with progress_bar(num_steps, desc=label, unit="step",
                      enabled=None if run.progress else False) as bar:
        for k_start, k_stop in _progress_chunks(num_steps, run.progress):
            runner.run_chunk(ctx, k_start, k_stop)
            status, div_step, theta = runner.divergence(ctx)
            if ((status == 1) | (status == 3)).any():
                raise _diverged(problem, plan, status, div_step, theta)
            bar.update(k_stop - k_start)
    st, states = runner.finish(ctx)
    _check_outputs(plan, st, states, states[0].loss_final)   # before any result arithmetic
    results: dict[str, Any] = {}
    for obs, s in zip(observers, states, strict=True):
        results.update(obs.result(s, info))
    return ReplicaRun(theta=st["theta"], loss_final=results.pop("loss_final"),
                      velocity=st["velocity"], theta0=th0, config=config,
                      provenance=_io.provenance(seed=seed, backend=resolved), results=results)


def _new_state(plan: _Plan, theta0: FloatArray) -> dict[str, Any]:
    """The engine's own state: θ, velocity, status (0 running, 1/3 diverged, 2 absorbed), the
    step of a divergence or an absorption, and the frozen loss of an absorbed replica."""
    R, D = plan.R, plan.D
    return {
        "theta": theta0.copy(), "velocity": np.zeros((R, D)),
        "status": np.zeros(R, dtype=np.int64), "div_step": np.full(R, -1, dtype=np.int64),
        "stop_step": np.full(R, -1, dtype=np.int64), "loss_now": np.zeros(R),
    }


def _advice(plan: _Plan) -> str:
    """What the caller of :func:`simulate` can change (its own options only)."""
    knobs = ["eta"]
    if plan.beta:
        knobs.append("beta")
    if plan.trace_given:
        knobs.append("noise_trace")
    lower = " or ".join(knobs) if len(knobs) < 3 else f"{knobs[0]}, {knobs[1]} or {knobs[2]}"
    return (f"Lower {lower}, or freeze each replica at a loss level with "
            f"observe=[FirstPassage(loss=..., stop=True)]")


def _epoch_of(plan: _Plan, update: int) -> int | None:
    """The epoch of update ``update`` (0-based) under epoch sampling, else None."""
    if plan.noise_name == "sgd" and plan.scheme in ("reshuffle", "shuffle_once"):
        return update // plan.steps_per_epoch
    return None


def _replica_error(plan: _Plan, r: int, step: int, loss: float, loss_step: int | None,
                   reason: str) -> DivergenceError:
    return DivergenceError(
        step, _epoch_of(plan, max(step - 1, 0)), loss, plan.eta, reason, replica=r,
        subject=f"replica {r} (stream {plan.replica_start + r})", loss_step=loss_step,
        advice=_advice(plan))


def _diverged(problem: Any, plan: _Plan, status: IntArray, div_step: IntArray,
              theta: FloatArray) -> DivergenceError:
    """The error for the replica that diverged first (earliest step, then lowest index)."""
    bad = np.flatnonzero((status == 1) | (status == 3))
    r = int(bad[np.argmin(div_step[bad])])
    step = int(div_step[r])
    with np.errstate(over="ignore", invalid="ignore"):
        loss = float(np.asarray(problem._device(np).loss(theta[r][None]))[0])
    if status[r] == 1:
        reason = f"non-finite parameters θ after the update of step {step - 1}"
    else:
        reason = (f"the noise statistics of step {step - 1} (Σ̂, its trace or H) are not "
                  f"finite, so its noise cannot be drawn")
    return _replica_error(plan, r, step, loss, step - 1, reason)


def _check_outputs(plan: _Plan, st: dict[str, Any], states: Sequence[Any],
                   loss_final: FloatArray) -> None:
    """Raise :class:`DivergenceError` if a returned loss or accumulated sum is not finite
    although every θ is (parameters so large that L(θ), or a sum of squares, overflows
    float64)."""
    R = plan.R
    info = plan.info
    never = plan.num_steps + 1
    first_bad = np.full(R, never, dtype=np.int64)
    last_good = np.full(R, np.nan)
    last_step = np.full(R, -1, dtype=np.int64)
    for obs, s in zip(plan.observers, states, strict=True):
        history = obs.loss_history(s, info)
        if history is None:
            continue
        steps, losses = history
        ok = np.isfinite(losses)
        for r in np.flatnonzero(~ok.all(axis=0)):
            i = int(np.argmin(ok[:, r]))
            if steps[i] >= first_bad[r]:
                continue
            first_bad[r] = steps[i]
            last_good[r] = losses[i - 1, r] if i > 0 else np.nan
            last_step[r] = steps[i - 1] if i > 0 else -1
    final_bad = ~np.isfinite(loss_final)
    if final_bad.any():
        at = np.where(st["status"] == 2, st["stop_step"], plan.num_steps)
        first_bad = np.where(final_bad, np.minimum(first_bad, at), first_bad)
    if (first_bad < never).any():
        r = int(np.argmin(first_bad))
        step = int(first_bad[r])
        good = last_step[r] >= 0  # a recorded finite loss before the overflow
        loss = float(last_good[r]) if good else math.inf
        raise _replica_error(plan, r, step, loss, int(last_step[r]) if good else step,
                             "the loss is not finite although θ is (θ too large for "
                             "float64 arithmetic)")
    for obs, s in zip(plan.observers, states, strict=True):
        for a, reason in obs.sums(s, info):
            if a.size and not np.isfinite(a).all():
                r = int(np.flatnonzero(~np.isfinite(a.reshape(R, -1)).all(axis=-1))[0])
                raise _replica_error(plan, r, plan.num_steps, float(loss_final[r]),
                                     plan.num_steps, reason)


def _runner(name: str) -> Any:
    if name == "numba":
        from sgdnoise.sim.dynamics import _numba

        return _numba
    if name == "cupy":
        from sgdnoise.sim.dynamics import _cupy

        return _cupy
    from sgdnoise.sim.dynamics import _numpy

    return _numpy


__all__ = ["FORMS", "MOVED_KEYWORDS", "NUMBA_LINEAR_KINDS", "MovedArgumentError", "ReplicaRun",
           "moved_keywords",
           "simulate"]

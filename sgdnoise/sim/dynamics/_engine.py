r"""``simulate``: many independent replicas of GD, SGD or Langevin dynamics, and their results."""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sgdnoise import _io, backends
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int
from sgdnoise.sim import philox
from sgdnoise.sim.dynamics._noise import NoiseModel, _fixed_root
from sgdnoise.sim.dynamics._problems import (
    PROBLEM_TYPES,
    LinearRegressionProblem,
    ModelProblem,
    QuadraticProblem,
    Toy2DProblem,
)
from sgdnoise.sim.dynamics._structures import minibatch_scale
from sgdnoise.sim.training import MOMENTUM_STYLES, DivergenceError

#: ``form=`` values: noise added to the gradient or to the parameters.
FORMS: tuple[str, ...] = ("gradient", "parameter")
#: Langevin kinds the numba kernel of linear regression and quadratics implements.
NUMBA_LINEAR_KINDS: tuple[str, ...] = ("const", "dynamic", "diag", "fixed")
#: Largest recorded trajectory (bytes) before ``record_every`` is refused.
MAX_RECORD_BYTES = 2 * 2**30
_KIND_CODES = {"const": 0, "dynamic": 1, "diag": 2, "full": 3, "leading": 4, "hessian": 5,
               "eigvec1": 6, "fixed": 7}
_SCHEME_CODES = {"replacement": 0, "iid": 1, "reshuffle": 2, "shuffle_once": 3}
_NOISE_CODES = {"gd": 0, "sgd": 1, "langevin": 2}


@dataclass
class _Plan:
    """Everything the backends need, validated and resolved (private)."""

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
    record_every: int
    num_records: int
    track_loss: bool
    fp_on: bool
    fp_level: float
    stop_at_fp: bool
    k0: int
    stats_mode: int          # 0 none, 1 diagonal of Σ₁, 2 full Σ₁
    moments_every: int = 1   # moments at steps k ≥ moments_first with (k − first) % every == 0
    moments_first: int = -1
    num_lags: int = 0        # noise autocovariance lags 0 … num_lags − 1 (0: off)
    sigma_xp: Any = None
    root_xp: Any = None

    def int_params(self) -> IntArray:
        """The integer parameters of the numba kernels (layout shared with ``_numba``)."""
        return np.array([
            0, 0, self.num_steps, _NOISE_CODES[self.noise_name],
            _KIND_CODES.get(self.kind or "", -1), _SCHEME_CODES.get(self.scheme or "", -1),
            self.B, self.topk or 0, int(self.form_param), int(self.pytorch), self.record_every,
            int(self.track_loss), int(self.fp_on), int(self.stop_at_fp), self.k0,
            self.replica_start, self.key0, self.key1, self.steps_per_epoch,
            int(self.trace_given), self.stats_mode, self.moments_every, self.moments_first,
            self.num_lags,
        ], dtype=np.int64)

    def float_params(self) -> FloatArray:
        """The float parameters of the numba kernels."""
        return np.array([self.eta, self.beta, self.noise_trace, self.scale_hat, self.fp_level])


@dataclass(frozen=True, eq=False)
class ReplicaRun:
    r"""Results of :func:`simulate` for R replicas in D dimensions.

    Attributes
    ----------
    theta : (R, D) array
        Final parameters θ_K (K = num_steps); a replica stopped at its first passage keeps θ there.
    loss_final : (R,) array
        L(θ_K).
    velocity : (R, D) array
        Final momentum buffer (v for heavy ball, b for PyTorch style).
    theta0 : (R, D) array
        Initial parameters.
    config : dict
        Everything that determined the run (problem, noise, eta, num_steps, num_replicas, seed,
        form, backend, beta, momentum_style, noise_trace, recording options, …).
    provenance : dict
        Versions, platform, command line and time (:func:`sgdnoise._io.provenance`).
    trajectory : (num_records, R, D) array or None
        θ at ``record_steps`` (``record_every``).
    loss : (num_records, R) array or None
        L(θ) at ``record_steps`` (``track_loss``).
    record_steps : (num_records,) int array or None
        0, k, 2k, … ≤ num_steps.
    first_passage : (R,) int64 array or None
        First step k (0 ≤ k ≤ num_steps) with L(θ_k) ≥ ``first_passage_loss``; −1 if none.
    censored : (R,) bool array or None
        ``first_passage < 0``: the replica did not reach the level within num_steps (a
        right-censored passage time, known only to exceed num_steps).
    theta_mean, theta_var : (R, D) arrays or None
        Time mean and (population) variance of each coordinate over steps
        ``moments_after`` … num_steps (``moments_count`` values), per replica.
    velocity_mean, velocity_var : (R, D) arrays or None
        The same for the increments v_k = θ_k − θ_{k−1} over the same steps (v_0 = 0).
    moments_count : int or None
        Number of steps averaged: num_steps − moments_after + 1, or with ``moments_every=P``
        the number of steps k ≥ moments_after with k ≡ ``moments_phase`` (mod P).
    noise_autocov : (R, D, L) array or None
        With ``noise_lags=L``: per replica and coordinate, the lag-h second moment of the
        gradient noise ξ_k = g_k − ∇L(θ_k) of the update steps k = moments_after … num_steps − 1,
        (1/(n − h)) Σ_k ξ_k ξ_{k+h}, h = 0 … L − 1 (n = num_steps − moments_after; not centred:
        the noise has mean zero by construction).
    noise_count : (L,) int array or None
        n − h, the number of products averaged at each lag.

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
    trajectory: FloatArray | None = None
    loss: FloatArray | None = None
    record_steps: IntArray | None = None
    first_passage: IntArray | None = None
    censored: NDArray[np.bool_] | None = None
    theta_mean: FloatArray | None = None
    theta_var: FloatArray | None = None
    velocity_mean: FloatArray | None = None
    velocity_var: FloatArray | None = None
    moments_count: int | None = None
    noise_autocov: FloatArray | None = None
    noise_count: IntArray | None = None

    _ARRAYS = ("theta", "loss_final", "velocity", "theta0", "trajectory", "loss", "record_steps",
               "first_passage", "censored", "theta_mean", "theta_var", "velocity_mean",
               "velocity_var", "noise_autocov", "noise_count")

    @property
    def num_replicas(self) -> int:
        """R."""
        return int(self.theta.shape[0])

    def to_dict(self, *, arrays: bool = True) -> dict[str, Any]:
        """JSON-ready dict: config, provenance, moments_count and (``arrays=True``) every array
        as nested lists (fine for small runs; :meth:`save` writes arrays to an .npz instead)."""
        out: dict[str, Any] = {"config": self.config, "provenance": self.provenance,
                               "moments_count": self.moments_count}
        if arrays:
            for name in self._ARRAYS:
                value = getattr(self, name)
                out[name] = None if value is None else value.tolist()
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (JSON: config, provenance, array shapes) and the arrays beside it in
        ``path`` with suffix ``.npz``, both atomically; returns the JSON path."""
        path = Path(path)
        npz = path.with_suffix(".npz")
        arrays = {n: getattr(self, n) for n in self._ARRAYS if getattr(self, n) is not None}
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
        """Read a run written by :meth:`save`."""
        path = Path(path)
        payload = json.loads(path.read_text(encoding="utf-8"))
        with np.load(path.with_name(payload["arrays_file"]), allow_pickle=False) as f:
            arrays = {n: f[n].copy() for n in f.files}
        return cls(config=payload["config"], provenance=payload["provenance"],
                   moments_count=payload.get("moments_count"), **arrays)


# ----------------------------------------------------------------------------------- checks
def _check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}")  # noqa: TRY004
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        upper = "" if hi is None else f" and <= {hi}"
        raise ValueError(f"{name} must be >= {lo}{upper}; got {v}")
    return v


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")  # noqa: TRY004
    return bool(value)


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
    check_choice(backend, "backend", (*backends.BACKENDS, "auto"))
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


def _new_state(plan: _Plan, theta0: FloatArray) -> dict[str, Any]:
    R, D = plan.R, plan.D
    st: dict[str, Any] = {
        "theta": theta0.copy(), "velocity": np.zeros((R, D)),
        "status": np.zeros(R, dtype=np.int64), "div_step": np.full(R, -1, dtype=np.int64),
        "first_passage": np.full(R, -1, dtype=np.int64), "loss_now": np.zeros(R),
        "loss_final": np.zeros(R),
        "trajectory": np.zeros((plan.num_records, R, D)),
        "loss": np.zeros((plan.num_records if plan.track_loss else 0, R)),
    }
    m = (R, D) if plan.k0 >= 0 else (0, D)
    for name in ("m_shift", "m_s1", "m_s2", "v_s1", "v_s2"):
        st[name] = np.zeros(m)
    L = plan.num_lags
    st["xi_ring"] = np.zeros((R, L, D) if L else (0, 1, D))
    st["xi_s"] = np.zeros((R, D, L) if L else (0, D, 1))
    return st


class _Progress:
    """A line on stderr at each chunk boundary (about every 10 % of the steps)."""

    def __init__(self, total: int, label: str) -> None:
        self.total = max(total, 1)
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, done: int) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"simulate [{self.label}]: step {done}/{self.total} "
              f"({100 * done / self.total:.0f} %), {elapsed:.1f} s", file=sys.stderr, flush=True)


def _chunks(num_steps: int, progress: bool) -> list[tuple[int, int]]:
    if not progress or num_steps < 10:
        return [(0, num_steps)]
    edges = sorted({round(num_steps * i / 10) for i in range(11)})
    return list(itertools.pairwise(edges))


# --------------------------------------------------------------------------------- simulate
def simulate(problem: LinearRegressionProblem | Toy2DProblem | QuadraticProblem | ModelProblem,
             noise: NoiseModel, *, eta: float, num_steps: int, num_replicas: int,
             seed: int, theta0: ArrayLike | None = None, form: str = "gradient",
             noise_trace: float | None = None, beta: float = 0.0,
             momentum_style: str = "heavy_ball", record_every: int | None = None,
             track_loss: bool = False, first_passage_loss: float | None = None,
             moments_after: int | None = None, moments_every: int = 1,
             moments_phase: int = 0, noise_lags: int | None = None,
             stop_at_first_passage: bool = False,
             replica_start: int = 0, backend: str = "numpy", num_threads: int | None = None,
             progress: bool = False) -> ReplicaRun:
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

    **Observations** of θ_k for k = 0 … num_steps (memory independent of num_steps unless asked).

    Parameters
    ----------
    problem : LinearRegressionProblem, Toy2DProblem, QuadraticProblem or ModelProblem
    noise : NoiseModel
        From :func:`gd`, :func:`sgd` or :func:`langevin`.
    eta : float
        Learning rate η > 0.
    num_steps : int
        K ≥ 0 updates.
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
    beta : float
        Momentum β ∈ [0, 1).
    momentum_style : {"heavy_ball", "pytorch"}
    record_every : int, optional
        Store θ (and L with ``track_loss``) at steps 0, k, 2k, … ≤ num_steps; refused above
        2 GiB.
    track_loss : bool
        Record L at the recorded steps (needs ``record_every``).
    first_passage_loss : float, optional
        Level c: ``first_passage`` is the first k with L(θ_k) ≥ c, −1 if never (censored).
    moments_after : int, optional
        k₀ ∈ [0, num_steps]: accumulate per replica the time mean and variance of θ_k and of
        v_k = θ_k − θ_{k−1} over k₀ ≤ k ≤ num_steps (sums shifted by the first observed θ for
        accuracy).
    moments_every, moments_phase : int
        P ≥ 1 and 0 ≤ φ < P: take the moments only at the steps k ≥ k₀ with k ≡ φ (mod P)
        (θ_k and the increment v_k that produced it).  With epoch sampling and P = ⌊N/B⌋ (the
        batches per epoch), φ = m observes θ after m of an epoch's updates: φ = 0 at the epoch
        boundaries.  The default P = 1 takes every step (the phase average).
    noise_lags : int, optional
        L ≥ 1 (needs ``moments_after``): accumulate per replica and coordinate the lag-h second
        moments of the gradient noise ξ_k = g_k − ∇L(θ_k) of the update steps k ≥ k₀, h = 0 …
        L − 1 (``noise_autocov``; memory R·D·2L, independent of num_steps).
    stop_at_first_passage : bool
        Freeze a replica at its first passage (θ_k = θ at passage for all later k: an absorbing
        level; saves time when only passage times are wanted).
    replica_start : int
        Stream index of replica 0 (to split one experiment across calls or machines).
    backend : {"numpy", "numba", "cupy", "auto"}
        ``"numpy"`` is the reference (all problems and noises); ``"cupy"`` runs it on a GPU (not
        ModelProblem); ``"numba"`` has compiled kernels for Toy2DProblem (every noise and form)
        and for LinearRegressionProblem and QuadraticProblem (gd, sgd, Langevin const, dynamic,
        diag, fixed); ``"auto"`` picks cupy, then numba, then numpy among those that can run
        the combination.
    num_threads : int, optional
        Numba threads (default: numba's current setting); results do not depend on it.
    progress : bool
        Print a line to stderr about every 10 % of the steps.

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
        trace of Σ̂) is not finite.

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
    num_steps = _check_int(num_steps, "num_steps", 0)
    R = _check_int(num_replicas, "num_replicas", 1)
    seed = _check_int(seed, "seed", 0, 2**64 - 1)
    replica_start = _check_int(replica_start, "replica_start", 0, 2**32 - R)
    check_choice(form, "form", FORMS)
    form_param = form == "parameter"
    check_choice(momentum_style, "momentum_style", MOMENTUM_STYLES)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
        raise ValueError(f"beta must be a real number in [0, 1); got {beta!r}")
    beta = float(beta)
    if noise_trace is not None:
        noise_trace = check_positive(noise_trace, "noise_trace", allow_zero=True)
    track_loss = _check_bool(track_loss, "track_loss")
    stop_at_first_passage = _check_bool(stop_at_first_passage, "stop_at_first_passage")
    progress = _check_bool(progress, "progress")
    if num_threads is not None:
        num_threads = check_positive_int(num_threads, "num_threads")

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

    record_every_i = 0
    num_records = 0
    if record_every is not None:
        record_every_i = _check_int(record_every, "record_every", 1)
        num_records = num_steps // record_every_i + 1
        need = num_records * R * D * 8
        if need > MAX_RECORD_BYTES:
            raise ValueError(f"record_every={record_every_i} would store {num_records} × {R} × "
                             f"{D} values ({need / 2**30:.1f} GiB > 2 GiB); record less often "
                             f"or use moments_after / first_passage_loss")
    if track_loss and record_every is None:
        raise ValueError("track_loss=True needs record_every (the steps at which L is stored)")
    fp_level = 0.0
    if first_passage_loss is not None:
        if isinstance(first_passage_loss, bool) or not isinstance(first_passage_loss,
                                                                  numbers.Real):
            raise ValueError(f"first_passage_loss must be a real number; got "
                             f"{first_passage_loss!r}")
        fp_level = float(first_passage_loss)
        if not math.isfinite(fp_level):
            raise ValueError(f"first_passage_loss must be finite; got {first_passage_loss}")
    if stop_at_first_passage and first_passage_loss is None:
        raise ValueError("stop_at_first_passage=True needs first_passage_loss")
    k0 = -1
    if moments_after is not None:
        k0 = _check_int(moments_after, "moments_after", 0, num_steps)
    m_every = _check_int(moments_every, "moments_every", 1)
    m_phase = _check_int(moments_phase, "moments_phase", 0, m_every - 1)
    m_first = -1
    if k0 >= 0:
        m_first = k0 + (m_phase - k0) % m_every
        if m_first > num_steps:
            raise ValueError(f"moments_phase={m_phase} with moments_every={m_every} selects no "
                             f"step in [moments_after, num_steps] = [{k0}, {num_steps}]")
    elif m_every != 1 or m_phase != 0:
        raise ValueError("moments_every and moments_phase need moments_after")
    num_lags = 0
    if noise_lags is not None:
        num_lags = _check_int(noise_lags, "noise_lags", 1)
        if k0 < 0:
            raise ValueError("noise_lags needs moments_after (the first step recorded)")
        if num_lags > num_steps - k0:
            raise ValueError(f"noise_lags must be <= num_steps - moments_after = "
                             f"{num_steps - k0}; got {num_lags}")
        if stop_at_first_passage:
            raise ValueError("noise_lags cannot be combined with stop_at_first_passage=True")

    needs_stats = bool(stats_mode or const_needs_stats)
    resolved = _resolve_backend(backend, problem, noise, needs_stats)
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
        beta=beta, pytorch=momentum_style == "pytorch",
        noise_trace=float(noise_trace) if trace_given else 0.0, trace_given=trace_given,
        scale_hat=scale_hat, sigma=sigma, root=root, record_every=record_every_i,
        num_records=num_records, track_loss=track_loss, fp_on=first_passage_loss is not None,
        fp_level=fp_level, stop_at_fp=stop_at_first_passage, k0=k0, stats_mode=stats_mode,
        moments_every=m_every, moments_first=m_first, num_lags=num_lags,
    )
    config = {
        "problem": problem.name, "N": N or None, "D": D, "noise": noise.to_dict(),
        "model": type(problem.model).__name__ if isinstance(problem, ModelProblem) else None,
        "noise_label": noise.label, "eta": eta, "num_steps": num_steps, "num_replicas": R,
        "seed": seed, "replica_start": replica_start, "form": form,
        "noise_trace": noise_trace, "beta": beta, "momentum_style": momentum_style,
        "record_every": record_every_i or None, "track_loss": track_loss,
        "first_passage_loss": fp_level if first_passage_loss is not None else None,
        "stop_at_first_passage": stop_at_first_passage,
        "moments_after": k0 if k0 >= 0 else None, "moments_every": m_every,
        "moments_phase": m_phase, "noise_lags": num_lags or None,
        "backend": resolved, "num_threads": num_threads,
        "scale_hat": scale_hat, "steps_per_epoch": steps_per_epoch or None,
    }

    # ---- run, chunk by chunk
    state = _new_state(plan, th0)
    runner = _runner(resolved)
    ctx = runner.prepare(problem, plan, state, num_threads)
    report = _Progress(num_steps, f"{problem.name}, {noise.label}, {resolved}") if progress \
        else None
    for k_start, k_stop in _chunks(num_steps, progress):
        runner.run_chunk(ctx, k_start, k_stop)
        status, div_step, theta = runner.divergence(ctx)
        if ((status == 1) | (status == 3)).any():
            raise _diverged(problem, plan, status, div_step, theta)
        if report is not None:
            report(k_stop)
    st = runner.finish(ctx)
    _check_outputs(plan, st)
    return _result(plan, st, th0, config, resolved)


def _advice(plan: _Plan) -> str:
    """What the caller of :func:`simulate` can change (its own options only)."""
    knobs = ["eta"]
    if plan.beta:
        knobs.append("beta")
    if plan.trace_given:
        knobs.append("noise_trace")
    lower = " or ".join(knobs) if len(knobs) < 3 else f"{knobs[0]}, {knobs[1]} or {knobs[2]}"
    return (f"Lower {lower}, or freeze each replica at a loss level with first_passage_loss "
            f"and stop_at_first_passage=True")


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


def _check_outputs(plan: _Plan, st: dict[str, Any]) -> None:
    """Raise :class:`DivergenceError` if a returned loss or moment is not finite although every
    θ is (parameters so large that L(θ), or a sum of squares, overflows float64)."""
    R = plan.R
    never = plan.num_steps + 1
    first_bad = np.full(R, never, dtype=np.int64)
    last_good = np.full(R, np.nan)
    last_step = np.full(R, -1, dtype=np.int64)
    if plan.record_every and plan.track_loss:
        ok = np.isfinite(st["loss"])
        for r in np.flatnonzero(~ok.all(axis=0)):
            i = int(np.argmin(ok[:, r]))
            first_bad[r] = i * plan.record_every
            if i > 0:
                last_good[r] = st["loss"][i - 1, r]
                last_step[r] = (i - 1) * plan.record_every
    final_bad = ~np.isfinite(st["loss_final"])
    if final_bad.any():
        at = np.where(st["status"] == 2, st["first_passage"], plan.num_steps)
        first_bad = np.where(final_bad, np.minimum(first_bad, at), first_bad)
    if (first_bad < never).any():
        r = int(np.argmin(first_bad))
        step = int(first_bad[r])
        good = last_step[r] >= 0  # a recorded finite loss before the overflow
        loss = float(last_good[r]) if good else math.inf
        raise _replica_error(plan, r, step, loss, int(last_step[r]) if good else step,
                             "the loss is not finite although θ is (θ too large for "
                             "float64 arithmetic)")
    names = ("m_s1", "m_s2", "v_s1", "v_s2", "xi_s") if plan.k0 >= 0 else ()
    for name in names:
        a = st[name]
        if a.size and not np.isfinite(a).all():
            r = int(np.flatnonzero(~np.isfinite(a.reshape(R, -1)).all(axis=-1))[0])
            raise _replica_error(plan, r, plan.num_steps, float(st["loss_final"][r]),
                                 plan.num_steps, "the time moments of θ or of the noise "
                                 "overflow float64")


def _runner(name: str) -> Any:
    if name == "numba":
        from sgdnoise.sim.dynamics import _numba

        return _numba
    if name == "cupy":
        from sgdnoise.sim.dynamics import _cupy

        return _cupy
    from sgdnoise.sim.dynamics import _numpy

    return _numpy


def _result(plan: _Plan, st: dict[str, Any], th0: FloatArray, config: dict[str, Any],
            backend: str) -> ReplicaRun:
    fp = st["first_passage"] if plan.fp_on else None
    out: dict[str, Any] = {}
    if plan.k0 >= 0:
        n = (plan.num_steps - plan.moments_first) // plan.moments_every + 1
        m1 = st["m_s1"] / n
        v1 = st["v_s1"] / n
        out = {"theta_mean": st["m_shift"] + m1, "theta_var": st["m_s2"] / n - m1 * m1,
               "velocity_mean": v1, "velocity_var": st["v_s2"] / n - v1 * v1,
               "moments_count": n}
    if plan.num_lags:
        count = plan.num_steps - plan.k0 - np.arange(plan.num_lags, dtype=np.int64)
        out["noise_autocov"] = st["xi_s"] / count
        out["noise_count"] = count
    records = plan.record_every > 0
    return ReplicaRun(
        theta=st["theta"], loss_final=st["loss_final"], velocity=st["velocity"], theta0=th0,
        config=config, provenance=_io.provenance(seed=plan.seed, backend=backend),
        trajectory=st["trajectory"] if records else None,
        loss=st["loss"] if (records and plan.track_loss) else None,
        record_steps=(np.arange(plan.num_records, dtype=np.int64) * plan.record_every
                      if records else None),
        first_passage=fp, censored=None if fp is None else fp < 0, **out,
    )


__all__ = ["FORMS", "MAX_RECORD_BYTES", "NUMBA_LINEAR_KINDS", "ReplicaRun", "simulate"]

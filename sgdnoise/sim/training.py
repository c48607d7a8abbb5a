r"""SGD training with schedules, momentum, clipping, samplers, divergence checks and checkpoints.

Update rules (ĝ the minibatch gradient after clipping and weight decay, η_t the scheduled rate):

* ``momentum_style="heavy_ball"``:  v ← βv − η_t ĝ,  θ ← θ + v   (spec part D's form);
* ``momentum_style="pytorch"``:     b ← βb + ĝ,      θ ← θ − η_t b (``torch.optim.SGD``).

They coincide for constant η; with a schedule they differ by where η_t enters.  Clipping rescales
ĝ to norm ``clip_norm`` when it is larger (exactly, without PyTorch's +1e-6).  The cosine schedule
is PyTorch's ``CosineAnnealingLR`` stepped once per epoch:
η_e = η_min + ½(η − η_min)(1 + cos(π e / T_max)).

A run is a deterministic function of (model, data, w0, config): batches come from
``numpy.random.default_rng(config.seed)``, and a checkpoint stores the generator state so that a
resumed run continues the same trajectory.

Backends (``train(..., backend=)``): ``"numpy"`` is the reference, one Python step per batch
through ``model.loss_and_gradient``.  ``"numba"`` runs each epoch of an
:class:`~sgdnoise.sim.models.MLP` in one compiled call (fused forward and backward pass per batch,
then clipping, weight decay and the momentum update); the batches are drawn by the same numpy
generator, so both backends follow the same trajectory up to round-off.

Precision (``TrainConfig.dtype``): ``"float64"`` (the default) or ``"float32"``.  A float32 run
keeps the weights, the momentum buffer, the inputs (and float targets) in float32 and computes
every step in float32, with both backends; the returned weights and momentum buffer are float64
arrays (the float32 values, converted exactly) and the losses Python floats.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sgdnoise import backends
from sgdnoise._typing import Array, FloatArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int
from sgdnoise.sim.sampling import SCHEMES, BatchSampler

SCHEDULES: tuple[str, ...] = ("constant", "cosine")
MOMENTUM_STYLES: tuple[str, ...] = ("heavy_ball", "pytorch")
DTYPES: tuple[str, ...] = ("float64", "float32")


class SupportsGradient(Protocol):
    """A model that returns the mean loss and its gradient on a batch."""

    def loss_and_gradient(self, w: FloatArray, x: Array, y: Array) -> tuple[float, FloatArray]:
        """Mean loss and gradient over the rows of (x, y)."""
        ...


#: What :func:`train` suggests when a run diverges (its own options).
_TRAIN_ADVICE = "Lower eta, add clip_norm, or use a schedule"


def _format_loss(loss: float, loss_step: int | None, label: str) -> str:
    """``loss 3.1 at step 4`` (or why there is no finite value to show)."""
    at = "" if loss_step is None else f" at step {loss_step}"
    if math.isfinite(loss):
        return f"{label} {loss:.4g}{at}"
    if math.isnan(loss):
        return f"{label}{at} is not finite (nan)"
    return f"{label}{at} overflows float64 ({loss})"


class DivergenceError(RuntimeError):
    r"""A run diverged: its parameters (or a quantity computed from them) stopped being finite,
    or its loss blew up; nothing non-finite is returned.

    Raised by :func:`train`, :func:`~sgdnoise.sim.dynamics.simulate`,
    :func:`~sgdnoise.sim.dynamics.simulate_sde` and
    :func:`~sgdnoise.sim.dynamics.first_passage_times`, each with its own criterion (see their
    ``Raises`` sections).  The message names what diverged (the training run, or replica r and
    its random stream), the step, the epoch where epochs exist, the loss at the last finite
    point, the learning rate and advice in terms of the raising function's own options:

    ``replica 2 (stream 2) diverged at step 1022: non-finite parameters; loss 1.3e+307 at step
    1021, learning rate 3. Lower eta, …``

    Attributes
    ----------
    step : int
        The step at which divergence was detected: for :func:`train` the global step (0-based
        batch count) whose batch failed; for the replica functions the first step k whose
        state θ_k (or its loss) is not finite.
    epoch : int or None
        The epoch of that step where the run has epochs (:func:`train`; ``simulate`` with
        epoch sampling), else None.
    loss : float
        The loss at the last finite point (for :func:`train` the batch loss of ``step`` when
        finite, else the previous batch loss); inf when the parameters there are finite but so
        large that the loss overflows float64.
    lr : float
        The learning rate in force at that step.
    replica : int or None
        The replica (index within the call; its stream is ``replica_start + replica``), None for
        :func:`train`.
    reason : str
        What was not finite, or which threshold was crossed.

    References
    ----------
    IEEE 754 (overflow to inf, NaN propagation); spec part A, "Experiments" (divergence
    checks of training).
    """

    def __init__(self, step: int, epoch: int | None, loss: float, lr: float, reason: str, *,
                 replica: int | None = None, subject: str = "training",
                 loss_step: int | None = None, loss_label: str = "loss",
                 details: str = "", advice: str = _TRAIN_ADVICE) -> None:
        self.step, self.epoch, self.loss, self.lr = int(step), epoch, float(loss), float(lr)
        self.replica = replica
        self.reason = reason
        where = f"step {step}" if epoch is None else f"step {step} (epoch {epoch})"
        super().__init__(
            f"{subject} diverged at {where}: {reason}; "
            f"{_format_loss(self.loss, loss_step, loss_label)}, learning rate {lr:.4g}{details}. "
            f"{advice}."
        )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run besides model, data and w0.

    Attributes
    ----------
    eta : float
        Base learning rate η > 0.
    batch_size : int
    num_epochs : int
    sampler : str
        One of ``"replacement"``, ``"iid"``, ``"reshuffle"``, ``"shuffle_once"``.
    drop_last : bool
        Drop the last partial batch of an epoch.
    momentum : float
        β in [0, 1).
    momentum_style : str
        ``"heavy_ball"`` or ``"pytorch"`` (see module docstring).
    schedule : str
        ``"constant"`` or ``"cosine"``.
    t_max : int or None
        Cosine period in epochs (default: ``num_epochs``).
    eta_min : float
        Floor of the cosine schedule.
    clip_norm : float or None
        Clip the minibatch gradient to this Euclidean norm.
    weight_decay : float
        L2 coefficient added to the gradient (ĝ + wd·θ).
    divergence_factor : float
        Blow-up threshold F of the divergence criterion: a batch loss above F · L(w0), L(w0)
        the full-data loss at the initial weights (at least 1e-300), stops the run (see
        :func:`train`).  The default 10³ flags a cross-entropy network whose logits grow with
        η instead of the weights overflowing (tanh or sigmoid hidden units at η = 10⁴); a run
        started close to a minimum, where L(w0) is tiny, may need a larger F.
    seed : int
        Seed of the batch generator.
    dtype : str
        Precision of the run: ``"float64"`` (default) or ``"float32"``.  With ``"float32"`` the
        weights, momentum buffer, inputs and float targets are rounded to float32 once and every
        step (forward and backward pass, sums, clipping, weight decay, momentum update) is
        computed in float32, with a relative round-off of 2⁻²⁴ ≈ 6e-8 per operation instead of
        1.1e-16 (faster with the numba backend).  ``eta``, ``momentum``, ``clip_norm`` and
        ``weight_decay`` are rounded to float32 (values beyond its range, 3.4e38, are
        refused).  The divergence test, the reported losses and the returned arrays stay
        float64.
    """

    eta: float
    batch_size: int
    num_epochs: int
    sampler: str = "reshuffle"
    drop_last: bool = True
    momentum: float = 0.0
    momentum_style: str = "heavy_ball"
    schedule: str = "constant"
    t_max: int | None = None
    eta_min: float = 0.0
    clip_norm: float | None = None
    weight_decay: float = 0.0
    divergence_factor: float = 1e3
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self) -> None:
        check_positive(self.eta, "eta")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.num_epochs, "num_epochs", minimum=0)
        check_choice(self.sampler, "sampler", SCHEMES)
        check_choice(self.momentum_style, "momentum_style", MOMENTUM_STYLES)
        check_choice(self.schedule, "schedule", SCHEDULES)
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum}")
        if self.t_max is not None:
            check_positive_int(self.t_max, "t_max")
        check_positive(self.eta_min, "eta_min", allow_zero=True)
        if self.clip_norm is not None:
            check_positive(self.clip_norm, "clip_norm")
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive(self.divergence_factor, "divergence_factor")
        check_positive_int(self.seed, "seed", minimum=0)
        object.__setattr__(self, "dtype", check_choice(self.dtype, "dtype", DTYPES))
        if self.dtype == "float32":
            top = float(np.finfo(np.float32).max)
            for name in ("eta", "eta_min", "clip_norm", "weight_decay"):
                value = getattr(self, name)
                if value is not None and value > top:
                    raise ValueError(f"{name} must be at most {top:.4g} (the float32 range) for "
                                     f"dtype='float32'; got {value:g}")

    def learning_rate(self, epoch: int) -> float:
        """η for a given epoch (0-based)."""
        if self.schedule == "constant":
            return float(self.eta)
        t_max = self.t_max or max(self.num_epochs, 1)
        return self.eta_min + 0.5 * (self.eta - self.eta_min) * (1 + math.cos(math.pi * epoch / t_max))


@dataclass
class TrainResult:
    """Final weights, per-epoch history and provenance.

    Attributes
    ----------
    w : (D,) float64 array
        Final weights; a float32 run's weights converted exactly to float64.
    velocity : (D,) float64 array
        Momentum buffer (v or b, by ``momentum_style``), float64 as ``w``.
    history : dict[str, list]
        ``epoch``, ``lr``, ``batch_loss`` (mean over the epoch's batches), ``loss``
        (full-data loss, recorded every ``record_every`` epochs and after the last one).
    config : TrainConfig
    steps : int
        Total optimisation steps taken.
    backend : str
        The backend that ran: ``"numpy"`` or ``"numba"``.
    """

    w: FloatArray
    velocity: FloatArray
    history: dict[str, list[float]]
    config: TrainConfig
    steps: int
    backend: str = "numpy"
    extra: dict[str, Any] = field(default_factory=dict)


def _clip(g: FloatArray, clip_norm: float | None) -> FloatArray:
    """g rescaled to norm ``clip_norm`` when longer, in g's dtype (as the numba kernel).

    Where ‖g‖² overflows although g is finite, the factor is (c/‖g/m‖)/m with m = max|g|
    (instead of c/inf = 0, which would silently skip the step)."""
    if clip_norm is None:
        return g
    c = _scalar(clip_norm, g.dtype)
    with np.errstate(over="ignore"):
        n = np.linalg.norm(g)
    if np.isinf(n):
        m = np.abs(g).max()
        return g * ((c / np.linalg.norm(g / m)) / m)
    return g * (c / n) if n > clip_norm else g


def _scalar(value: float, dtype: np.dtype[Any]) -> np.floating[Any]:
    """``value`` rounded to ``dtype`` (a value beyond float32's range becomes inf, silently)."""
    with np.errstate(over="ignore"):
        return dtype.type(value)


# Why an epoch stopped (the status codes of the numba kernel ``_mlp_numba.sgd_epoch``).
_DONE, _LOSS, _EXPLODING, _GRADIENT, _PARAMETERS = range(5)


def _reason(status: int, cfg: TrainConfig, loss0: float) -> str:
    """The divergence criterion that a step met, in words."""
    if status == _LOSS:
        return "non-finite batch loss"
    if status == _GRADIENT:
        return "non-finite gradient"
    if status == _PARAMETERS:
        return "non-finite weights after the update"
    return (f"batch loss above {cfg.divergence_factor:g}× the initial loss {loss0:.4g} "
            f"(divergence_factor)")


def _epoch_numpy(model: SupportsGradient, w: FloatArray, v: FloatArray, x: Array, y: Array,
                 batches: list[np.ndarray], lr: float, cfg: TrainConfig, loss0: float
                 ) -> tuple[FloatArray, FloatArray, list[float], int, int, float]:
    """The reference epoch: one Python step per batch, in the dtype of ``w``.

    Returns (w, v, batch losses, status, batch index, that batch's loss), status as
    :func:`_reason` (``_DONE`` when every batch was done).  Each step checks, in this order:
    the batch loss is finite, the gradient is finite, the batch loss is at most
    ``divergence_factor`` · ``loss0``; after the update, the weights are finite.

    The scalars are rounded to the dtype of ``w`` first, so that each update is the numba
    kernel's (float64: the same numbers as Python floats).  Overflow and invalid-operation
    warnings are silenced: a step that produces a non-finite value is reported instead (in
    float32, whose range ends at 3.4e38, a diverging run overflows early).
    """
    losses: list[float] = []
    dtype = w.dtype
    beta = _scalar(cfg.momentum, dtype)
    eta = _scalar(lr, dtype)
    weight_decay = _scalar(cfg.weight_decay, dtype)
    loss_and_gradient = _unchecked_loss_and_gradient(model)
    with np.errstate(over="ignore", invalid="ignore"):
        for k, idx in enumerate(batches):
            try:
                loss, g = loss_and_gradient(w, x[idx], y[idx])
            except FloatingPointError:  # a model that reports its overflow
                return w, v, losses, _LOSS, k, math.nan
            loss, g = float(loss), np.asarray(g, dtype=dtype)
            if not math.isfinite(loss):
                return w, v, losses, _LOSS, k, loss
            if not np.all(np.isfinite(g)):
                return w, v, losses, _GRADIENT, k, loss
            if loss > cfg.divergence_factor * loss0:
                return w, v, losses, _EXPLODING, k, loss
            g = _clip(g, cfg.clip_norm)
            if cfg.weight_decay:
                g = g + weight_decay * w
            if cfg.momentum_style == "heavy_ball":
                v = beta * v - eta * g
                w = w + v
            else:
                v = beta * v + g
                w = w - eta * v
            if not np.all(np.isfinite(w)):
                return w, v, losses, _PARAMETERS, k, loss
            losses.append(loss)
    return w, v, losses, _DONE, len(batches), 0.0


def _unchecked_loss_and_gradient(model: SupportsGradient) -> Callable[..., Any]:
    """``model.loss_and_gradient`` without its overflow check, where it has one.

    The models' public methods raise ``FloatingPointError`` on a non-finite result; the training
    loop instead reports which quantity stopped being finite (the loss or the gradient), the
    same reason as the compiled backend gives."""
    bound = model.loss_and_gradient
    raw = getattr(getattr(bound, "__func__", None), "__wrapped__", None)
    return functools.partial(raw, model) if raw is not None else bound


@dataclass(frozen=True)
class _CompiledProblem:
    """An MLP and its data as the compiled kernels take them (validated once per run)."""

    spec: tuple[Any, ...]
    x: FloatArray
    T: FloatArray


def _has_numba_path(model: object) -> bool:
    """An :class:`MLP` (or a subclass that keeps its loss and gradient)."""
    from sgdnoise.sim.models.mlp import MLP

    return isinstance(model, MLP) and type(model).loss_and_gradient is MLP.loss_and_gradient


def _training_backend(backend: str, model: object) -> str:
    """Resolve ``backend`` for ``model``: ``"auto"`` picks numba only where it has a kernel."""
    check_choice(backend, "backend", ("numpy", "numba", "auto"))
    if backend == "numpy":
        return backend
    if backend == "auto":
        usable = _has_numba_path(model) and "numba" in backends.available()
        return "numba" if usable else "numpy"
    if not _has_numba_path(model):
        raise ValueError(
            f"backend='numba' trains sgdnoise.sim.models.MLP models only; "
            f"{type(model).__name__} has no compiled path (use backend='numpy')"
        )
    return backends.resolve(backend, supported=("numpy", "numba"))


def _compile_problem(model: Any, w: FloatArray, x: Array, y: Array,
                     dtype: np.dtype[Any]) -> _CompiledProblem:
    """Validate once; x and the targets T as C-contiguous arrays of ``dtype``."""
    from sgdnoise.sim.models._losses import loss_targets
    model._check_w(w, "w0", dtype)
    x = np.ascontiguousarray(model._check_x(x, dtype))
    T = loss_targets(model.loss_name, y, x.shape[0], model.widths[-1])
    if dtype != np.float64:
        T = as_float_array(T, "y", dtype=dtype)
    T = np.ascontiguousarray(T)
    return _CompiledProblem(model._kernel_spec(), x, T)


def _inputs_in(x: Array, y: Array, dtype: np.dtype[Any]) -> tuple[Array, Array]:
    """The numpy backend's x (and float y) in ``dtype``; unchanged for float64."""
    if dtype == np.float64:
        return x, y
    x = as_float_array(x, "x", dtype=dtype)
    if np.issubdtype(y.dtype, np.floating):
        y = as_float_array(y, "y", dtype=dtype)
    return x, y


def _epoch_numba(problem: _CompiledProblem, w: FloatArray, v: FloatArray,
                 batches: list[np.ndarray], lr: float, cfg: TrainConfig, loss0: float,
                 num_threads: int) -> tuple[FloatArray, FloatArray, list[float], int, int, float]:
    """The compiled epoch: updates ``w`` and ``v`` in place, returns as :func:`_epoch_numpy`."""
    from sgdnoise.sim.models import _mlp_numba

    starts = np.zeros(len(batches) + 1, dtype=np.int64)
    np.cumsum([len(idx) for idx in batches], out=starts[1:])
    rows = np.concatenate(batches).astype(np.int64, copy=False)
    losses, status, index, loss, _ = _mlp_numba.sgd_epoch(
        problem.spec, w, v, problem.x, problem.T, rows, starts, lr=lr,
        beta=float(cfg.momentum), heavy_ball=cfg.momentum_style == "heavy_ball",
        clip_norm=cfg.clip_norm, weight_decay=float(cfg.weight_decay),
        divergence_factor=float(cfg.divergence_factor), loss0=loss0, num_threads=num_threads,
    )
    return w, v, losses[:index].tolist(), status, index, loss


def _save_checkpoint(path: Path, w: FloatArray, v: FloatArray, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, w=w, v=v, state=np.array(json.dumps(state)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[FloatArray, FloatArray, dict[str, Any]]:
    """Read a checkpoint written by :func:`train`: (w, velocity, state dict).

    ``w`` and ``velocity`` come in the run's precision (float32 for ``dtype="float32"``), so
    that a resumed run continues bit for bit.

    References
    ----------
    Spec issue on training (checkpoint and resume to the same trajectory).
    """
    with np.load(path, allow_pickle=False) as f:
        return f["w"].copy(), f["v"].copy(), json.loads(str(f["state"]))


def train(model: SupportsGradient, w0: FloatArray, x: Array, y: Array, config: TrainConfig, *,
          checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
          resume: bool = False, record_every: int = 1,
          progress: Callable[[int, int, float], None] | None = None,
          backend: str = "numpy", num_threads: int = 1) -> TrainResult:
    r"""Train ``model`` from ``w0`` on (x, y) by minibatch SGD as set by ``config``.

    Parameters
    ----------
    model : SupportsGradient
        Any object with ``loss_and_gradient(w, x, y)`` returning the mean loss and gradient on a
        batch (an ``MLP`` for the numba backend).
    w0 : (D,) array
    x : array
        Training inputs (rows are samples).  Rounded to float32 once for ``config.dtype =
        "float32"`` (pass a float32 array to skip the conversion).
    y : array
        Training targets (rows are samples); float targets are rounded as x.
    config : TrainConfig
        Includes the precision, ``config.dtype``: with ``"float32"`` both backends train in
        float32 (the numpy backend hands float32 arrays to ``model.loss_and_gradient`` and
        rounds the gradient it returns to float32).
    checkpoint : path, optional
        File (``.npz``) written atomically every ``checkpoint_every`` epochs and at the end;
        holds w, the momentum buffer, the generator state, the history and the config.
    resume : bool
        Continue from ``checkpoint`` if it exists (its config must equal ``config``).
    record_every : int
        Evaluate the full-data loss every this many epochs.
    progress : callable, optional
        Called as ``progress(epoch, num_epochs, batch_loss)`` after each epoch.
    backend : {"numpy", "numba", "auto"}
        ``"numpy"`` (the reference) steps through ``model.loss_and_gradient`` in Python;
        ``"numba"`` runs each epoch of an :class:`~sgdnoise.sim.models.MLP` in one compiled call
        and evaluates the recorded full-data loss with a compiled forward pass (same batches,
        same trajectory up to round-off); ``"auto"`` uses numba when it is installed and the
        model is an MLP.  Checkpoints, history and progress are the same for both.
    num_threads : int
        Threads of the numba backend (at most numba's own maximum).  Each step is split into
        this many parts (samples, then rows of the gradient) computed in parallel; the result
        does not depend on it.  Two threads pay off for wide layers on an otherwise idle
        machine; on a busy one threads wait for each other at every step, so 1 (the default) is
        the safe choice.  Ignored by the numpy backend.

    Returns
    -------
    TrainResult
        Final weights and momentum buffer as float64 arrays whatever ``config.dtype`` (a
        float32 run's values converted exactly), the history (losses as Python floats; the
        recorded full-data loss is evaluated in the run's precision), steps and backend.

    Raises
    ------
    DivergenceError
        The divergence criterion, the same on both backends, checked at every step k in this
        order: (1) the batch loss is not finite, (2) the gradient is not finite, (3) the batch
        loss exceeds ``divergence_factor`` · L(w0), L(w0) the full-data loss at the initial
        weights (computed once, in the run's precision; a resumed run keeps the value in its
        checkpoint), (4) the weights are not finite after the update; and (5) a recorded
        full-data loss is not finite.  The error names the step, its epoch, the loss at the
        last finite point, the learning rate and the criterion met; no non-finite weights are
        returned and the last checkpoint is left intact.
    ValueError
        Invalid arguments (``w0``, ``x`` or float ``y`` beyond float32's range in a float32
        run; ``w0`` whose full-data loss is not finite), or ``backend="numba"`` for a model
        that is not an MLP or without numba.

    References
    ----------
    Spec part A, "Experiments" (SGD, cosine schedule, clipping); Kühn & Rosenow, arXiv:2306.05300
    (heavy-ball form); PyTorch ``torch.optim.SGD`` (PyTorch-style momentum).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")  # noqa: TRY004
    dtype = np.dtype(config.dtype)
    w = as_float_array(w0, "w0", ndim=1).copy()
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows; got {x.shape[0]}, {y.shape[0]}")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    record_every = check_positive_int(record_every, "record_every")
    backend = _training_backend(backend, model)
    num_threads = check_positive_int(num_threads, "num_threads")
    if dtype != np.float64:
            w = as_float_array(w, "w0", dtype=dtype)
    if backend == "numba":
        problem = _compile_problem(model, w, x, y, dtype)
    else:
        problem = None
        x, y = _inputs_in(x, y, dtype)
    N = x.shape[0]
    sampler = BatchSampler(N, config.batch_size, config.sampler, config.drop_last)
    rng = np.random.default_rng(config.seed)
    fixed = sampler.first_permutation(rng)
    v = np.zeros_like(w)
    history: dict[str, list[float]] = {"epoch": [], "lr": [], "batch_loss": [], "loss": []}
    start_epoch, steps, loss0 = 0, 0, None
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume:
        if ckpt is None:
            raise ValueError("resume=True needs a checkpoint path")
        if ckpt.exists():
            w, v, state = load_checkpoint(ckpt)
            saved = _with_defaults(state["config"])
            if saved != _config_dict(config):
                raise ValueError(f"checkpoint {ckpt} was written with another config: {saved}")
            w, v = w.astype(dtype, copy=False), v.astype(dtype, copy=False)
            rng.bit_generator.state = state["rng"]
            fixed = None if state["fixed"] is None else np.asarray(state["fixed"], dtype=np.int64)
            history, start_epoch, steps = state["history"], state["epoch"], state["steps"]
            loss0 = state["loss0"]
            if problem is not None:  # the kernel trusts the sizes
                model._check_w(w, f"the weights in {ckpt}", dtype)
                model._check_w(v, f"the momentum buffer in {ckpt}", dtype)
    if loss0 is None and start_epoch < config.num_epochs:
        loss0 = _initial_loss(model, problem, w, x, y, num_threads)
    last = (loss0, None, "initial loss")  # the last finite loss: value, step, label
    for epoch in range(start_epoch, config.num_epochs):
        lr = config.learning_rate(epoch)
        batches = sampler.epoch(rng, fixed)
        if problem is None:
            w, v, losses, status, index, value = _epoch_numpy(model, w, v, x, y, batches, lr,
                                                               config, loss0)
        else:
            w, v, losses, status, index, value = _epoch_numba(problem, w, v, batches, lr, config,
                                                               loss0, num_threads)
        if losses:
            last = (losses[-1], steps + len(losses) - 1, "batch loss")
        if status != _DONE:
            step = steps + index
            if math.isfinite(value):
                last = (value, step, "batch loss")
            advice = ("Lower eta, add clip_norm, use a schedule, or raise divergence_factor"
                      if status == _EXPLODING else _TRAIN_ADVICE)
            raise DivergenceError(step, epoch, last[0], lr, _reason(status, config, loss0),
                                  loss_step=last[1], loss_label=last[2], advice=advice)
        steps += len(batches)
        history["epoch"].append(epoch)
        history["lr"].append(lr)
        history["batch_loss"].append(float(np.mean(losses)))
        if (epoch + 1) % record_every == 0 or epoch + 1 == config.num_epochs:
            full = _full_loss(model, problem, w, x, y, num_threads)
            if not math.isfinite(full):
                raise DivergenceError(steps - 1, epoch, last[0], lr,
                                      "non-finite full-data loss at the end of the epoch",
                                      loss_step=last[1], loss_label=last[2])
            history["loss"].append(full)
        if ckpt is not None and ((epoch + 1) % checkpoint_every == 0
                                 or epoch + 1 == config.num_epochs):
            _save_checkpoint(ckpt, w, v, {
                "config": _config_dict(config), "rng": rng.bit_generator.state,
                "fixed": None if fixed is None else fixed.tolist(), "history": history,
                "epoch": epoch + 1, "steps": steps, "loss0": loss0, "backend": backend,
            })
        if progress is not None:
            progress(epoch + 1, config.num_epochs, history["batch_loss"][-1])
    return TrainResult(w=w.astype(np.float64, copy=False), velocity=v.astype(np.float64, copy=False),
                       history=history, config=config, steps=steps, backend=backend)


def _initial_loss(model: SupportsGradient, problem: _CompiledProblem | None, w: FloatArray,
                  x: Array, y: Array, num_threads: int) -> float:
    """L(w0) on the full data, the reference of the blow-up threshold (at least 1e-300)."""
    loss0 = _full_loss(model, problem, w, x, y, num_threads)
    if not math.isfinite(loss0):
        raise ValueError(f"w0: the full-data loss at the initial weights is not finite "
                         f"({loss0}); scale w0 or the data down")
    return max(loss0, 1e-300)


def _full_loss(model: SupportsGradient, problem: _CompiledProblem | None, w: FloatArray,
               x: Array, y: Array, num_threads: int) -> float:
    """The recorded full-data loss: the model's own in numpy, a compiled forward pass in numba.

    Overflow is not warned about: a non-finite value is reported by the caller."""
    if problem is None:
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                return float(_unchecked_loss_and_gradient(model)(w, x, y)[0])
            except FloatingPointError:  # a model that reports its overflow
                return math.nan
    from sgdnoise.sim.models import _mlp_numba

    return _mlp_numba.mean_loss(problem.spec, w, problem.x, problem.T, num_threads=num_threads)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config)))


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the default of every field it predates (e.g. ``dtype``)."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    return {**json.loads(json.dumps({k: v for k, v in defaults.items() if k not in saved})),
            **saved}


__all__ = [
    "DTYPES",
    "MOMENTUM_STYLES",
    "SCHEDULES",
    "DivergenceError",
    "SupportsGradient",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "train",
]

r"""The observer protocol of :func:`~sgdnoise.sim.dynamics.simulate`.

An observer is a small frozen object that says *what to measure* along the replicas' paths.
It owns four things, all in its own file:

* its **settings and their validation** (``__post_init__`` for the values alone,
  :meth:`Observer.check` for what depends on the run: num_steps, R, D, the other observers);
* its **state**: one ``typing.NamedTuple`` class (``State``) of arrays and scalars, created by
  :meth:`Observer.init` with the run's array module (numpy, or cupy on a GPU); the same class
  is what the numba kernels receive;
* its **updates**: the numpy reference as methods (:meth:`Observer.wants_loss`,
  :meth:`Observer.observe`, :meth:`Observer.observe_update`, vectorised over the replicas,
  written against ``xp``), and the numba versions as plain functions of one replica
  (:class:`NumbaHooks`, compiled into the kernels through ``numba.extending.overload`` of the
  stubs :func:`wants_loss`, :func:`observe` and :func:`observe_update` of this module);
* its **results**: :meth:`Observer.result` turns the final state into named fields of the
  :class:`~sgdnoise.sim.dynamics.ReplicaRun` (listed in ``fields``).

The step loop, written once per backend, calls for k = 0 … K (K = num_steps):

1. ``wants_loss`` of every observer: L(θ_k) is computed only when one of them asks (and for the
   final step);
2. ``observe(θ_k, L(θ_k))`` of every observer; an observer may return which replicas to
   *absorb* (freeze from now on: FirstPassage with ``stop=True``);
3. for k < K: the update θ_k → θ_{k+1} of the dynamics, then ``observe_update``, which sees
   θ_k, θ_{k+1} and, for an observer that declares ``needs = {"noise"}``, the gradient noise
   ξ_k = g_k − ∇L(θ_k) (the full gradient is then computed at every step).

A replica that has been absorbed is still observed (θ and the loss frozen at the absorption);
the numba kernels skip its updates, the numpy reference passes an unchanged θ_{k+1} = θ_k, so
an increment-based observer adds zeros there.  Replicas are independent: an update of replica r
may only read and write row r of the state arrays (the numba kernels run ranges of replicas on
several threads).

Numba's on-disk cache does not watch the files of the hooks (they are compiled into the kernels
of :mod:`sgdnoise.sim.dynamics._numba`): after editing an observer's numba hooks, clear the
``__pycache__`` folder of ``sgdnoise/sim/dynamics``.  Kernels for observers defined outside
this package are compiled in memory only (never written to the cache, which another process
could not read without importing their module).

References
----------
optax's ``GradientTransformation`` (an ``(init, update)`` pair), the pattern followed here;
Numba documentation, "High-level extension API" (``numba.extending.overload``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from dataclasses import is_dataclass
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

import numpy as np

#: Result field names of every observer class defined so far (an attribute of a run whose
#: observer did not run reads None instead of raising AttributeError).
KNOWN_FIELDS: set[str] = set()
#: What an observer may declare in ``needs``.
NEEDS: frozenset[str] = frozenset({"loss", "noise"})


class RunInfo(NamedTuple):
    """What an observer may know about the run when it validates and allocates its state.

    Attributes
    ----------
    num_steps : int
        K: θ_0 … θ_K are observed, updates k = 0 … K − 1.
    num_replicas : int
        R.
    D : int
        Number of parameters.
    eta : float
        Learning rate η (SDE time t = ηk).
    absorbing : bool
        Whether some observer freezes replicas (FirstPassage with ``stop=True``).
    theta_star : (D,) array or None
        The problem's minimiser, where it has one (linear regression, quadratic).
    """

    num_steps: int
    num_replicas: int
    D: int
    eta: float
    absorbing: bool
    theta_star: np.ndarray | None


class NumbaHooks(NamedTuple):
    """The numba versions of an observer's updates: plain Python functions of one replica r,
    compiled into the kernels (``None``: nothing to do at that point).

    Their signatures are those of the stubs :func:`wants_loss`, :func:`observe` and
    :func:`observe_update`, with ``state`` the observer's ``State`` NamedTuple (numpy arrays).
    """

    wants_loss: Callable[..., bool] | None = None
    observe: Callable[..., bool] | None = None
    observe_update: Callable[..., None] | None = None


# ------------------------------------------------------------------ numba stubs (overloaded)
def wants_loss(state: Any, r: int, k: int, absorbed: bool) -> bool:
    """Numba stub: whether replica r needs L(θ_k) at step k (one overload per state class)."""
    raise NotImplementedError("compiled through numba.extending.overload only")


def observe(state: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    """Numba stub: observe θ_k (``th``, shape (D,)) and L(θ_k) of replica r; True absorbs r.

    ``loss`` is L(θ_k) where some observer asked for it at this step (else unspecified), and the
    frozen loss of an absorbed replica (``absorbed``: frozen before this step)."""
    raise NotImplementedError("compiled through numba.extending.overload only")


def observe_update(state: Any, r: int, k: int, th: Any, th_new: Any, g: Any, grad: Any) -> None:
    """Numba stub: the update θ_k → θ_{k+1} (``th``, ``th_new``) of replica r on the noisy
    gradient ``g``; ``grad`` is ∇L(θ_k) where some observer declares ``needs = {"noise"}``
    (then ξ_k = g − grad), else unspecified."""
    raise NotImplementedError("compiled through numba.extending.overload only")


# ------------------------------------------------------------------------- numpy step views
class Observation:
    """What the numpy reference shows the observers of θ_k (all replicas at once).

    Attributes
    ----------
    theta : (R, D) array
        θ_k.
    loss : (R,) array or None
        L(θ_k) (frozen value for absorbed replicas) where some observer wanted it, else None.
    running : (R,) bool array
        Replicas not absorbed before this step.
    xp : module
        numpy or cupy.
    """

    __slots__ = ("loss", "running", "theta", "xp")

    def __init__(self, theta: Any, loss: Any, running: Any, xp: ModuleType) -> None:
        self.theta, self.loss, self.running, self.xp = theta, loss, running, xp


class Update:
    """What the numpy reference shows the observers of the update θ_k → θ_{k+1}.

    Attributes
    ----------
    theta, theta_next : (R, D) arrays
        θ_k and θ_{k+1} (θ_{k+1} = θ_k for an absorbed replica).
    running : (R,) bool array
        Replicas that were updated.
    noise : (R, D) array
        ξ_k = g_k − ∇L(θ_k), computed on first access (only observers that declare
        ``needs = {"noise"}`` may read it).
    xp : module
        numpy or cupy.
    """

    __slots__ = ("_noise", "_noise_fn", "running", "theta", "theta_next", "xp")

    def __init__(self, theta: Any, theta_next: Any, running: Any,
                 noise_fn: Callable[[], Any], xp: ModuleType) -> None:
        self.theta, self.theta_next, self.running, self.xp = theta, theta_next, running, xp
        self._noise_fn = noise_fn
        self._noise = None

    @property
    def noise(self) -> Any:
        """ξ_k = g_k − ∇L(θ_k), shape (R, D)."""
        if self._noise is None:
            self._noise = self._noise_fn()
        return self._noise


# ------------------------------------------------------------------------------- protocol
class Observer:
    """Base class of the measurements of :func:`~sgdnoise.sim.dynamics.simulate`.

    A subclass is a frozen dataclass of settings with the class attributes below and overrides
    the methods it needs (the defaults do nothing).  See :mod:`sgdnoise.sim.dynamics.observers`
    for the protocol and an example.

    Attributes
    ----------
    fields : tuple of str
        Names of the results it adds to the run (attributes of
        :class:`~sgdnoise.sim.dynamics.ReplicaRun`).
    needs : frozenset of str
        Per-step inputs beyond θ: ``"loss"`` (L(θ_k), at the steps :meth:`wants_loss` selects)
        and ``"noise"`` (ξ_k in :meth:`observe_update`).
    State : type
        Its state: a ``typing.NamedTuple`` class of arrays and scalars.
    numba_hooks : NumbaHooks or None
        Its numba updates (None: the numba backend refuses it, naming it).
    """

    fields: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[frozenset[str]] = frozenset()
    State: ClassVar[type]
    numba_hooks: ClassVar[NumbaHooks | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        KNOWN_FIELDS.update(cls.fields)
        unknown = set(cls.needs) - NEEDS
        if unknown:
            raise ValueError(f"{cls.__name__}.needs: unknown input(s) {sorted(unknown)}; "
                             f"choose from {sorted(NEEDS)}")

    # ---- settings
    @property
    def absorbs(self) -> bool:
        """Whether :meth:`observe` may freeze replicas (default False)."""
        return False

    def check(self, info: RunInfo) -> None:
        """Validate the settings against the run; raise ``ValueError`` naming the setting."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values, with the class name under ``"type"``."""
        out: dict[str, Any] = {"type": type(self).__name__}
        if is_dataclass(self):
            for f in dataclass_fields(self):
                value = getattr(self, f.name)
                out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    # ---- state and numpy reference
    def init(self, info: RunInfo, xp: ModuleType) -> Any:
        """The initial state: an instance of ``State`` with arrays of ``xp``."""
        raise NotImplementedError(f"{type(self).__name__}.init")

    def wants_loss(self, state: Any, k: int, running: Any) -> bool:
        """Whether L(θ_k) is needed at step k (by any replica)."""
        return False

    def observe(self, state: Any, k: int, obs: Observation) -> Any:
        """Observe θ_k of every replica; return an (R,) bool array of replicas to absorb, or
        None."""
        return None

    def observe_update(self, state: Any, k: int, upd: Update) -> None:
        """Observe the update θ_k → θ_{k+1} of every replica."""

    # ---- results
    def result(self, state: Any, info: RunInfo) -> dict[str, Any]:
        """The fields of the run (names in ``fields``) from the final state (numpy arrays)."""
        return {}

    def loss_history(self, state: Any, info: RunInfo) -> tuple[np.ndarray, np.ndarray] | None:
        """Recorded losses as (steps (n,), losses (n, R)), if any: the engine reports the first
        one that is not finite (θ finite but L overflowing) as a divergence."""
        return None

    def sums(self, state: Any, info: RunInfo) -> list[tuple[np.ndarray, str]]:
        """Accumulated (R, …) arrays that must be finite at the end, each with the reason the
        divergence error gives when one is not."""
        return []


# ---------------------------------------------------------------------------- validation
def check_int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi], or ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}")  # noqa: TRY004
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        upper = "" if hi is None else f" and <= {hi}"
        raise ValueError(f"{name} must be >= {lo}{upper}; got {v}")
    return v


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool, or ``ValueError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")  # noqa: TRY004
    return bool(value)


def set_field(obj: Any, name: str, value: Any) -> None:
    """Store a validated value on a frozen dataclass (in ``__post_init__``)."""
    object.__setattr__(obj, name, value)


__all__ = ["KNOWN_FIELDS", "NEEDS", "NumbaHooks", "Observation", "Observer", "RunInfo", "Update",
           "check_bool", "check_int", "observe", "observe_update", "set_field", "wants_loss"]

r"""The two small setting groups of :func:`~sgdnoise.sim.dynamics.simulate`: momentum (part of
the dynamics) and execution (how to run: backend, threads, stream offset, progress)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from sgdnoise import backends
from sgdnoise._validate import check_choice, check_positive_int
from sgdnoise.sim.dynamics.observers._base import check_bool, check_int, set_field
from sgdnoise.sim.training import MOMENTUM_STYLES


@dataclass(frozen=True)
class Momentum:
    r"""Momentum on the noisy gradient g of :func:`~sgdnoise.sim.dynamics.simulate`.

    ``"heavy_ball"``: v ← βv − ηg, θ ← θ + v; ``"pytorch"``: b ← βb + g, θ ← θ − ηb (the names
    of :mod:`sgdnoise.sim.training`; for constant η both give the same θ path).

    Parameters
    ----------
    beta : float
        β ∈ [0, 1).
    style : {"heavy_ball", "pytorch"}

    References
    ----------
    Polyak, "Some methods of speeding up the convergence of iteration methods" (1964);
    Kühn & Rosenow, arXiv:2306.05300 (spec part D, momentum).
    """

    beta: float
    style: str = "heavy_ball"

    def __post_init__(self) -> None:
        beta = self.beta
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
            raise ValueError(f"Momentum.beta must be a real number in [0, 1); got {beta!r}")
        set_field(self, "beta", float(beta))
        check_choice(self.style, "Momentum.style", MOMENTUM_STYLES)

    @classmethod
    def coerce(cls, value: Any) -> Momentum:
        """``value`` as a Momentum: None (no momentum), a float β (heavy ball) or a Momentum."""
        if value is None:
            return cls(0.0)
        if isinstance(value, Momentum):
            return value
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return cls(value)
        raise ValueError(f"momentum must be None, a float β (heavy ball) or Momentum(beta, "
                         f"style); got {value!r}")


@dataclass(frozen=True)
class Execution:
    r"""How :func:`~sgdnoise.sim.dynamics.simulate` runs; none of these changes a result
    (``replica_start`` selects which replicas: the same streams give the same numbers).

    Parameters
    ----------
    backend : {"numpy", "numba", "cupy", "auto"}
        ``"numpy"`` is the reference (all problems and noises); ``"cupy"`` runs it on a GPU (not
        ModelProblem); ``"numba"`` has compiled kernels for Toy2DProblem (every noise and form)
        and for LinearRegressionProblem and QuadraticProblem (gd, sgd, Langevin const, dynamic,
        diag, fixed); ``"auto"`` picks cupy, then numba, then numpy among those that can run
        the combination.
    num_threads : int, optional
        Numba threads (default: numba's current setting): replicas are split into ranges run
        by that many threads; results do not depend on it.
    replica_start : int
        Stream index of replica 0, in [0, 2³² − R] (to split one experiment across calls or
        machines).
    progress : bool
        Show a progress bar on standard error (tqdm, drawn only when it is a terminal); the
        steps then run in about ten chunks, which changes no number.

    References
    ----------
    Salmon et al., SC'11 (Philox streams, one per replica).
    """

    backend: str = "numpy"
    num_threads: int | None = None
    replica_start: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_choice(self.backend, "Execution.backend", (*backends.BACKENDS, "auto"))
        if self.num_threads is not None:
            set_field(self, "num_threads",
                      check_positive_int(self.num_threads, "Execution.num_threads"))
        set_field(self, "replica_start",
                  check_int(self.replica_start, "Execution.replica_start", 0, 2**32 - 1))
        set_field(self, "progress", check_bool(self.progress, "Execution.progress"))

    @classmethod
    def coerce(cls, value: Any) -> Execution:
        """``value`` as an Execution: None (defaults), a backend name or an Execution."""
        if value is None:
            return cls()
        if isinstance(value, Execution):
            return value
        if isinstance(value, str):
            return cls(backend=value)
        raise ValueError(f"execution must be None, a backend name or Execution(backend=, "
                         f"num_threads=, replica_start=, progress=); got {value!r}")


__all__ = ["Execution", "Momentum"]

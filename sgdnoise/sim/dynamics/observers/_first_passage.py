"""``FirstPassage``: the first step at which the loss reaches a level."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from sgdnoise.sim.dynamics.observers._base import (
    NumbaHooks,
    Observation,
    Observer,
    RunInfo,
    check_bool,
    set_field,
)


class FirstPassageState(NamedTuple):
    """State of :class:`FirstPassage`."""

    level: float
    stop: bool
    first_passage: Any      # (R,) int64, −1 until the passage


def _numba_wants_loss(state: Any, r: int, k: int, absorbed: bool) -> bool:
    return state.first_passage[r] < 0 and not absorbed


def _numba_observe(state: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    if state.first_passage[r] < 0 and not absorbed and loss >= state.level:
        state.first_passage[r] = k
        return state.stop
    return False


@dataclass(frozen=True)
class FirstPassage(Observer):
    r"""The first step τ = min{k ≥ 0 : L(θ_k) ≥ c} of each replica (c = ``loss``).

    Results (attributes of :class:`~sgdnoise.sim.dynamics.ReplicaRun`):

    * ``first_passage`` (R,) int64: τ **in steps**, −1 if the level was not reached by step K
      (right-censored);
    * ``censored`` (R,) bool: ``first_passage < 0``;
    * ``first_passage_time`` (R,) float: the same **in SDE time** t = ητ (the unit of the
      passage-time formulas of :mod:`sgdnoise.theory`); a censored replica has its censoring
      time ηK (flagged by ``censored``), the survival-data convention.

    ``ReplicaRun.time_unit`` names the unit of ``first_passage_time``.

    Parameters
    ----------
    loss : float
        The level c (finite); c ≤ L(θ₀) gives τ = 0.
    stop : bool
        Freeze a replica at its passage (θ_k = θ_τ and L frozen for all k ≥ τ: an absorbing
        level; saves time when only passage times are wanted).  Other observers keep seeing
        the frozen replica.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, ICML 2022, arXiv:2105.09557 (spec part C: escape and first
    passage).
    """

    loss: float
    stop: bool = False

    fields = ("first_passage", "censored", "first_passage_time")
    needs = frozenset({"loss"})
    State = FirstPassageState
    numba_hooks = NumbaHooks(wants_loss=_numba_wants_loss, observe=_numba_observe)

    def __post_init__(self) -> None:
        level = self.loss
        if isinstance(level, bool) or not isinstance(level, numbers.Real):
            raise ValueError(f"FirstPassage.loss must be a real number; got {level!r}")
        if not math.isfinite(level):
            raise ValueError(f"FirstPassage.loss must be finite; got {level}")
        set_field(self, "loss", float(level))
        set_field(self, "stop", check_bool(self.stop, "FirstPassage.stop"))

    @property
    def absorbs(self) -> bool:
        """True with ``stop=True``."""
        return self.stop

    def init(self, info: RunInfo, xp: ModuleType) -> FirstPassageState:
        return FirstPassageState(self.loss, self.stop,
                                 xp.full(info.num_replicas, -1, dtype=xp.int64))

    def wants_loss(self, state: FirstPassageState, k: int, running: Any) -> bool:
        return bool((running & (state.first_passage < 0)).any())

    def observe(self, state: FirstPassageState, k: int, obs: Observation) -> Any:
        if obs.loss is None:
            return None
        xp = obs.xp
        hit = obs.running & (state.first_passage < 0) & (obs.loss >= self.loss)
        state.first_passage[...] = xp.where(hit, k, state.first_passage)
        return hit if self.stop else None

    def result(self, state: FirstPassageState, info: RunInfo) -> dict[str, Any]:
        fp = state.first_passage
        censored = fp < 0
        steps = np.where(censored, info.num_steps, fp).astype(np.float64)
        return {"first_passage": fp, "censored": censored,
                "first_passage_time": info.eta * steps}


__all__ = ["FirstPassage", "FirstPassageState"]

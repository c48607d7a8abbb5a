"""The engine's own observer: L(θ_K) of every replica (``ReplicaRun.loss_final``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from sgdnoise.sim.dynamics.observers._base import (
    NumbaHooks,
    Observation,
    Observer,
    RunInfo,
)


class FinalLossState(NamedTuple):
    """State of :class:`FinalLoss`."""

    num_steps: int
    loss_final: Any     # (R,)


def _numba_wants_loss(state: Any, r: int, k: int, absorbed: bool) -> bool:
    return k == state.num_steps


def _numba_observe(state: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    if k == state.num_steps:
        state.loss_final[r] = loss
    return False


@dataclass(frozen=True)
class FinalLoss(Observer):
    """L(θ_K) at the last step K (for an absorbed replica: the loss where it was frozen).

    Always the first observer of a run; its result is ``ReplicaRun.loss_final``.
    """

    fields = ("loss_final",)
    needs = frozenset({"loss"})
    State = FinalLossState
    numba_hooks = NumbaHooks(wants_loss=_numba_wants_loss, observe=_numba_observe)

    def init(self, info: RunInfo, xp: ModuleType) -> FinalLossState:
        return FinalLossState(info.num_steps, xp.zeros(info.num_replicas))

    def wants_loss(self, state: FinalLossState, k: int, running: Any) -> bool:
        return k == state.num_steps

    def observe(self, state: FinalLossState, k: int, obs: Observation) -> None:
        if k == state.num_steps:
            state.loss_final[...] = obs.loss

    def result(self, state: FinalLossState, info: RunInfo) -> dict[str, np.ndarray]:
        return {"loss_final": state.loss_final}


__all__ = ["FinalLoss", "FinalLossState"]

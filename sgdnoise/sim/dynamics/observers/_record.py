"""``Record``: θ (and L) at every ``every``-th step."""

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
    check_bool,
    check_int,
    set_field,
)

#: Largest recorded trajectory (bytes) before a :class:`Record` is refused.
MAX_RECORD_BYTES = 2 * 2**30


class RecordState(NamedTuple):
    """State of :class:`Record`: the records so far."""

    every: int
    with_loss: bool
    trajectory: Any     # (num_records, R, D)
    loss: Any           # (num_records, R), or (0, R) without loss=True
    next_step: Any      # (R,) int64: the next step to record (numba: no division per step)


def _numba_wants_loss(state: Any, r: int, k: int, absorbed: bool) -> bool:
    return state.with_loss and k == state.next_step[r]


def _numba_observe(state: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    if k == state.next_step[r]:
        j = k // state.every
        for i in range(th.shape[0]):
            state.trajectory[j, r, i] = th[i]
        if state.with_loss:
            state.loss[j, r] = loss
        state.next_step[r] = k + state.every
    return False


@dataclass(frozen=True)
class Record(Observer):
    r"""Record θ_k (and L(θ_k) with ``loss=True``) at steps k = 0, P, 2P, … ≤ K (P = ``every``).

    Results (attributes of :class:`~sgdnoise.sim.dynamics.ReplicaRun`):

    * ``trajectory`` (num_records, R, D): θ at ``record_steps``;
    * ``loss`` (num_records, R) or None: L(θ) at ``record_steps`` (None without ``loss=True``);
    * ``record_steps`` (num_records,) int: the steps 0, P, 2P, … ≤ K, in steps (SDE time
      t = η · step).

    Parameters
    ----------
    every : int
        P ≥ 1.  Memory num_records · R · D floats, num_records = ⌊K/P⌋ + 1; refused above
        2 GiB (:data:`MAX_RECORD_BYTES`).
    loss : bool
        Also record the full-data loss L(θ_k).

    References
    ----------
    Spec parts B, C, D (trajectories of the replica engine).
    """

    every: int = 1
    loss: bool = False

    fields = ("trajectory", "loss", "record_steps")
    needs = frozenset({"loss"})
    State = RecordState
    numba_hooks = NumbaHooks(wants_loss=_numba_wants_loss, observe=_numba_observe)

    def __post_init__(self) -> None:
        set_field(self, "every", check_int(self.every, "Record.every", 1))
        set_field(self, "loss", check_bool(self.loss, "Record.loss"))

    def check(self, info: RunInfo) -> None:
        n = info.num_steps // self.every + 1
        need = n * info.num_replicas * info.D * 8
        if need > MAX_RECORD_BYTES:
            raise ValueError(f"Record.every={self.every} would store {n} × {info.num_replicas} "
                             f"× {info.D} values ({need / 2**30:.1f} GiB > 2 GiB); record less "
                             f"often or use Moments / FirstPassage")

    def init(self, info: RunInfo, xp: ModuleType) -> RecordState:
        n = info.num_steps // self.every + 1
        R = info.num_replicas
        return RecordState(self.every, self.loss, xp.zeros((n, R, info.D)),
                           xp.zeros((n if self.loss else 0, R)), xp.zeros(R, dtype=xp.int64))

    def wants_loss(self, state: RecordState, k: int, running: Any) -> bool:
        return self.loss and k % self.every == 0

    def observe(self, state: RecordState, k: int, obs: Observation) -> None:
        if k % self.every == 0:
            state.trajectory[k // self.every] = obs.theta
            if self.loss:
                state.loss[k // self.every] = obs.loss

    def result(self, state: RecordState, info: RunInfo) -> dict[str, Any]:
        steps = np.arange(state.trajectory.shape[0], dtype=np.int64) * self.every
        return {"trajectory": state.trajectory, "loss": state.loss if self.loss else None,
                "record_steps": steps}

    def loss_history(self, state: RecordState, info: RunInfo
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.loss:
            return None
        return np.arange(state.loss.shape[0], dtype=np.int64) * self.every, state.loss

__all__ = ["MAX_RECORD_BYTES", "Record", "RecordState"]

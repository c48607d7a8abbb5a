"""``Moments``: per-replica time moments of θ_k and of the increments θ_k − θ_{k−1}."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from sgdnoise._validate import as_float_array
from sgdnoise.sim.dynamics.observers._base import (
    NumbaHooks,
    Observation,
    Observer,
    RunInfo,
    Update,
    check_int,
    set_field,
)


class MomentsState(NamedTuple):
    """State of :class:`Moments`: sums shifted by the first observed θ (for accuracy)."""

    first: int          # first step observed
    every: int          # period P
    shift: Any          # (R, D) θ at the first observed step
    s1: Any             # (R, D) Σ (θ_k − shift)
    s2: Any             # (R, D) Σ (θ_k − shift)²
    v1: Any             # (R, D) Σ (θ_k − θ_{k−1})
    v2: Any             # (R, D) Σ (θ_k − θ_{k−1})²
    next_step: Any      # (R,) int64: the next step observed (numba: no division per step)


def _due(first: int, every: int, k: int) -> bool:
    return k >= first and (k - first) % every == 0


def _numba_observe(state: Any, r: int, k: int, th: Any, loss: float, absorbed: bool) -> bool:
    if k == state.next_step[r]:
        for i in range(th.shape[0]):
            if k == state.first:
                state.shift[r, i] = th[i]
            d = th[i] - state.shift[r, i]
            state.s1[r, i] += d
            state.s2[r, i] += d * d
        state.next_step[r] = k + state.every
    return False


def _numba_observe_update(state: Any, r: int, k: int, th: Any, th_new: Any, g: Any,
                          grad: Any) -> None:
    if k + 1 == state.next_step[r]:
        for i in range(th.shape[0]):
            inc = th_new[i] - th[i]
            state.v1[r, i] += inc
            state.v2[r, i] += inc * inc


@dataclass(frozen=True, eq=False)
class Moments(Observer):
    r"""Per-replica time moments of θ_k and of the increments v_k = θ_k − θ_{k−1}.

    Taken over the steps k ∈ [k₀, K] with k ≡ φ (mod P) (k₀ = ``after``, P = ``every``,
    φ = ``phase``; n = ``moments_count`` steps), per replica and coordinate:

    .. math:: \bar\theta = \frac1n\sum_k \theta_k,\qquad
              s^2 = \frac1n\sum_k (\theta_k - \bar\theta)^2,\qquad
              m_2(a) = \frac1n\sum_k (\theta_k - a)^2 = s^2 + (\bar\theta - a)^2

    (sums shifted by the first observed θ for accuracy; the increment v_k enters with θ_k,
    v_0 = 0).  Memory 6 · R · D floats, independent of K.

    Results (attributes of :class:`~sgdnoise.sim.dynamics.ReplicaRun`):

    * ``theta_mean`` (R, D): θ̄, the time mean;
    * ``theta_var`` (R, D): s², the (population) variance *about each replica's own time mean*;
    * ``second_moment`` (R, D): m₂(a), the second moment *about the point a = ``about``*
      (equal to ``theta_var`` for ``about="mean"``), computed as s² + (θ̄ − a)²: for a flat
      direction, where the replicas wander and θ̄ is not θ*, this — not s² — is the stationary
      variance about the minimum;
    * ``velocity_mean``, ``velocity_var`` (R, D): the same time mean and variance (about the
      replica's mean) of the increments v_k;
    * ``moments_count`` (int): n.

    Parameters
    ----------
    after : int
        k₀ ∈ [0, K] (a burn-in).
    every, phase : int
        P ≥ 1 and 0 ≤ φ < P: only the steps k ≡ φ (mod P).  With epoch sampling and P = ⌊N/B⌋
        (batches per epoch), φ = m observes θ after m of an epoch's updates (φ = 0: the epoch
        boundaries).  The default P = 1 takes every step.
    about : "mean", "theta_star" or array
        The centre a of ``second_moment``: each replica's time mean (default), the problem's
        minimiser θ* (``"theta_star"``: LinearRegressionProblem and QuadraticProblem), or a
        point, shape (D,) or (R, D).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D: stationary weight variances about the
    minimum, at every step or at one phase of the epoch).
    """

    after: int = 0
    every: int = 1
    phase: int = 0
    about: Any = "mean"

    fields = ("theta_mean", "theta_var", "second_moment", "velocity_mean", "velocity_var",
              "moments_count")
    State = MomentsState
    numba_hooks = NumbaHooks(observe=_numba_observe, observe_update=_numba_observe_update)

    def __post_init__(self) -> None:
        set_field(self, "after", check_int(self.after, "Moments.after", 0))
        set_field(self, "every", check_int(self.every, "Moments.every", 1))
        set_field(self, "phase", check_int(self.phase, "Moments.phase", 0, self.every - 1))
        about = self.about
        if isinstance(about, str):
            if about not in ("mean", "theta_star"):
                raise ValueError(f"Moments.about must be 'mean', 'theta_star' or a point; got "
                                 f"{about!r}")
        else:
            about = as_float_array(about, "Moments.about", ndim=(1, 2)).copy()
            about.setflags(write=False)
        set_field(self, "about", about)

    @property
    def first(self) -> int:
        """The first step observed, k₀ + ((φ − k₀) mod P)."""
        return self.after + (self.phase - self.after) % self.every

    def _point(self, info: RunInfo) -> np.ndarray | None:
        if isinstance(self.about, str):
            return None if self.about == "mean" else info.theta_star
        return self.about

    def check(self, info: RunInfo) -> None:
        K = info.num_steps
        if self.after > K:
            raise ValueError(f"Moments.after must be <= num_steps = {K}; got {self.after}")
        if self.first > K:
            raise ValueError(f"Moments.phase={self.phase} with Moments.every={self.every} "
                             f"selects no step in [Moments.after, num_steps] = [{self.after}, "
                             f"{K}]")
        if isinstance(self.about, str):
            if self.about == "theta_star" and info.theta_star is None:
                raise ValueError("Moments.about='theta_star' needs a problem with a minimiser "
                                 "θ* (LinearRegressionProblem, QuadraticProblem); give the "
                                 "point instead")
        elif self.about.shape not in ((info.D,), (info.num_replicas, info.D)):
            raise ValueError(f"Moments.about must have shape ({info.D},) or "
                             f"({info.num_replicas}, {info.D}); got {self.about.shape}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not isinstance(self.about, str):
            out["about"] = self.about.tolist()
        return out

    def init(self, info: RunInfo, xp: ModuleType) -> MomentsState:
        shape = (info.num_replicas, info.D)
        return MomentsState(self.first, self.every, *(xp.zeros(shape) for _ in range(5)),
                            xp.full(info.num_replicas, self.first, dtype=xp.int64))

    def observe(self, state: MomentsState, k: int, obs: Observation) -> None:
        if _due(state.first, state.every, k):
            if k == state.first:
                state.shift[...] = obs.theta
            d = obs.theta - state.shift
            state.s1[...] += d
            state.s2[...] += d * d

    def observe_update(self, state: MomentsState, k: int, upd: Update) -> None:
        if _due(state.first, state.every, k + 1):
            inc = upd.theta_next - upd.theta
            state.v1[...] += inc
            state.v2[...] += inc * inc

    def result(self, state: MomentsState, info: RunInfo) -> dict[str, Any]:
        n = (info.num_steps - state.first) // state.every + 1
        m1 = state.s1 / n
        v1 = state.v1 / n
        mean = state.shift + m1
        var = state.s2 / n - m1 * m1
        point = self._point(info)
        if point is None:
            second = var.copy()
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                second = var + (mean - point) ** 2
            if not np.isfinite(second).all():
                raise ValueError("Moments.about: the squared distance between the time mean "
                                 "and this point overflows float64; give a point closer to "
                                 "the replicas")
        return {"theta_mean": mean, "theta_var": var, "second_moment": second,
                "velocity_mean": v1, "velocity_var": state.v2 / n - v1 * v1,
                "moments_count": n}

    def sums(self, state: MomentsState, info: RunInfo) -> list[tuple[np.ndarray, str]]:
        reason = "the time moments of θ or of the noise overflow float64"
        return [(state.s1, reason), (state.s2, reason), (state.v1, reason), (state.v2, reason)]


__all__ = ["Moments", "MomentsState"]

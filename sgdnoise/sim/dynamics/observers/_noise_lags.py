"""``NoiseLags``: lagged second moments of the gradient noise ξ_k = g_k − ∇L(θ_k)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from sgdnoise.sim.dynamics.observers._base import (
    NumbaHooks,
    Observer,
    RunInfo,
    Update,
    check_int,
    set_field,
)


class NoiseLagsState(NamedTuple):
    """State of :class:`NoiseLags`: a ring of the last L noises and the lag sums."""

    after: int
    num_lags: int
    ring: Any       # (R, L, D): slot (k − k₀) mod L holds ξ_k
    sums: Any       # (R, D, L): Σ_k ξ_k ξ_{k−h}


def _numba_observe_update(state: Any, r: int, k: int, th: Any, th_new: Any, g: Any,
                          grad: Any) -> None:
    if k >= state.after:
        L = state.num_lags
        j = k - state.after
        slot = j % L
        for i in range(g.shape[0]):
            state.ring[r, slot, i] = g[i] - grad[i]
        for h in range(min(L, j + 1)):
            other = (j - h) % L
            for i in range(g.shape[0]):
                state.sums[r, i, h] += state.ring[r, slot, i] * state.ring[r, other, i]


@dataclass(frozen=True)
class NoiseLags(Observer):
    r"""Per replica and coordinate, the lag-h second moments of the gradient noise.

    .. math:: R_i(h) = \frac{1}{n-h}\sum_{k=k_0+h}^{K-1} \xi_{k,i}\,\xi_{k-h,i},\qquad
              \xi_k = g_k - \nabla L(\theta_k),\quad h = 0 \dots L-1

    over the update steps k = k₀ … K − 1 (n = K − k₀; not centred: the noise has mean zero by
    construction).  Memory 2 · R · D · L floats, independent of K.  The full gradient ∇L(θ_k)
    is computed at every step while it runs (for SGD in gradient form it otherwise is not).

    Results (attributes of :class:`~sgdnoise.sim.dynamics.ReplicaRun`):

    * ``noise_autocov`` (R, D, L): R_i(h);
    * ``noise_count`` (L,) int: n − h, the number of products averaged at each lag.

    Parameters
    ----------
    num_lags : int
        L ≥ 1 lags 0 … L − 1, at most K − k₀.
    after : int
        k₀ ∈ [0, K]: the first update step observed.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D: the noise autocorrelation of epoch
    sampling).
    """

    num_lags: int
    after: int = 0

    fields = ("noise_autocov", "noise_count")
    needs = frozenset({"noise"})
    State = NoiseLagsState
    numba_hooks = NumbaHooks(observe_update=_numba_observe_update)

    def __post_init__(self) -> None:
        set_field(self, "num_lags", check_int(self.num_lags, "NoiseLags.num_lags", 1))
        set_field(self, "after", check_int(self.after, "NoiseLags.after", 0))

    def check(self, info: RunInfo) -> None:
        K = info.num_steps
        if self.after > K:
            raise ValueError(f"NoiseLags.after must be <= num_steps = {K}; got {self.after}")
        if self.num_lags > K - self.after:
            raise ValueError(f"NoiseLags.num_lags must be <= num_steps - NoiseLags.after = "
                             f"{K - self.after}; got {self.num_lags}")
        if info.absorbing:
            raise ValueError("NoiseLags cannot be combined with FirstPassage(stop=True): a "
                             "frozen replica has no noise")

    def init(self, info: RunInfo, xp: ModuleType) -> NoiseLagsState:
        R, D, L = info.num_replicas, info.D, self.num_lags
        return NoiseLagsState(self.after, L, xp.zeros((R, L, D)), xp.zeros((R, D, L)))

    def observe_update(self, state: NoiseLagsState, k: int, upd: Update) -> None:
        if k < self.after:
            return
        xi = upd.noise
        L = self.num_lags
        j = k - self.after
        state.ring[:, j % L, :] = xi
        for h in range(min(L, j + 1)):
            state.sums[:, :, h] += xi * state.ring[:, (j - h) % L, :]

    def result(self, state: NoiseLagsState, info: RunInfo) -> dict[str, Any]:
        count = info.num_steps - self.after - np.arange(self.num_lags, dtype=np.int64)
        return {"noise_autocov": state.sums / count, "noise_count": count}

    def sums(self, state: NoiseLagsState, info: RunInfo) -> list[tuple[np.ndarray, str]]:
        return [(state.sums, "the time moments of θ or of the noise overflow float64")]


__all__ = ["NoiseLags", "NoiseLagsState"]

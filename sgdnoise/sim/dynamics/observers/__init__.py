r"""Measurements of :func:`~sgdnoise.sim.dynamics.simulate`: one small object per quantity.

``simulate(..., observe=[...])`` takes a list of observers; each owns its settings, its state,
its update (numpy reference and numba) and its result fields on the
:class:`~sgdnoise.sim.dynamics.ReplicaRun`:

* :class:`Record` — θ (and L) every P steps: ``trajectory``, ``loss``, ``record_steps``;
* :class:`Moments` — per-replica time moments of θ and of its increments from a burn-in on,
  optionally at one phase of a period: ``theta_mean``, ``theta_var`` (about the time mean),
  ``second_moment`` (about a given point, e.g. θ*), ``velocity_mean``, ``velocity_var``,
  ``moments_count``;
* :class:`FirstPassage` — the first step at which L reaches a level, optionally freezing the
  replica there: ``first_passage`` (steps), ``first_passage_time`` (SDE time ηk),
  ``censored``;
* :class:`NoiseLags` — lagged second moments of the gradient noise: ``noise_autocov``,
  ``noise_count``.

A new measurement is one new class, in one file, following :class:`Observer`; the step loops
of the backends do not change.  For example the running maximum of the loss of each replica::

    from dataclasses import dataclass
    from typing import Any, NamedTuple

    from sgdnoise.sim.dynamics import Toy2DProblem, sgd, simulate
    from sgdnoise.sim.dynamics.observers import NumbaHooks, Observer
    from sgdnoise.sim.models import toy_data


    class MaxLossState(NamedTuple):
        top: Any                                   # (R,)


    def _wants(state, r, k, absorbed):             # numba: one replica r
        return True


    def _observe(state, r, k, th, loss, absorbed):
        if loss > state.top[r]:
            state.top[r] = loss
        return False                               # True would freeze replica r


    @dataclass(frozen=True)
    class MaxLoss(Observer):
        fields = ("max_loss",)
        needs = frozenset({"loss"})
        State = MaxLossState
        numba_hooks = NumbaHooks(wants_loss=_wants, observe=_observe)

        def init(self, info, xp):
            return MaxLossState(xp.full(info.num_replicas, -xp.inf))

        def wants_loss(self, state, k, running):   # numpy reference: all replicas
            return True

        def observe(self, state, k, obs):
            state.top[...] = obs.xp.maximum(state.top, obs.loss)

        def result(self, state, info):
            return {"max_loss": state.top}


    problem = Toy2DProblem(toy_data(0, N=50))
    run = simulate(problem, sgd(4), eta=0.005, num_steps=200, num_replicas=8, seed=0,
                   observe=[MaxLoss()], execution="numba")
    run.max_loss                                   # (8,): max of L(θ_k), k = 0 … 200

References
----------
optax's ``GradientTransformation`` (init/update pairs); Numba documentation,
``numba.extending.overload`` (the kernels call the hooks of a tuple of states one by one, in
order, through overloads that walk the tuple at compile time).
"""

from sgdnoise.sim.dynamics.observers._base import (
    NumbaHooks,
    Observation,
    Observer,
    RunInfo,
    Update,
)
from sgdnoise.sim.dynamics.observers._first_passage import FirstPassage
from sgdnoise.sim.dynamics.observers._moments import Moments
from sgdnoise.sim.dynamics.observers._noise_lags import NoiseLags
from sgdnoise.sim.dynamics.observers._record import MAX_RECORD_BYTES, Record

__all__ = [
    "MAX_RECORD_BYTES",
    "FirstPassage",
    "Moments",
    "NoiseLags",
    "NumbaHooks",
    "Observation",
    "Observer",
    "Record",
    "RunInfo",
    "Update",
]

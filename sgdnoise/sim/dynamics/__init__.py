r"""Replica-parallel dynamics: GD, SGD and structured Langevin noise on many replicas at once.

:func:`simulate` runs R independent replicas of

.. math:: \theta_{k+1} = \theta_k - \eta\,(\nabla L(\theta_k) + \xi_k)
          \quad\text{or}\quad \theta_{k+1} = \theta_k - \eta\,\nabla L(\theta_k) + \varepsilon_k

(gradient or parameter form, optional momentum) with the noise of a :class:`NoiseModel` —
:func:`gd`, :func:`sgd` (with replacement, i.i.d. batches, random reshuffling, shuffle-once) or
:func:`langevin` (``const``, ``dynamic``, ``diag``, ``full``, ``leading``, ``hessian``,
``eigvec1``, ``fixed``; see :func:`structured_covariance`) — on a problem:
:class:`LinearRegressionProblem`, :class:`Toy2DProblem` (spec B3), :class:`QuadraticProblem` or
:class:`ModelProblem` (any model with per-sample gradients).  :func:`paper_variant` builds a
noise model by the name a paper gives it ("GLD leading"…), :func:`indicators` gives the escape
indicator Tr(HΣ) of each variant at a point, and :func:`toy_sharp_minimum` the toy's sharp
minimum.  Replica r draws its random numbers
from its own Philox streams (:mod:`sgdnoise.sim.philox`), so the numpy reference, the Numba
kernels and CuPy compute the same trajectories.  Results come back as a :class:`ReplicaRun`.

References
----------
Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), spec part B; Mori et al., ICML 2022
(spec part C); Kühn & Rosenow, arXiv:2306.05300 (spec part D).
"""

from sgdnoise.sim.dynamics._engine import (
    FORMS,
    MOVED_KEYWORDS,
    NUMBA_LINEAR_KINDS,
    MovedArgumentError,
    ReplicaRun,
    simulate,
)
from sgdnoise.sim.dynamics._indicators import NoiseIndicators, indicators
from sgdnoise.sim.dynamics._noise import (
    NOISE_NAMES,
    PAPER_VARIANTS,
    NoiseModel,
    gd,
    langevin,
    paper_variant,
    sgd,
)
from sgdnoise.sim.dynamics._passage import PassageTimes, first_passage_times
from sgdnoise.sim.dynamics._problems import (
    LinearRegressionProblem,
    ModelProblem,
    QuadraticProblem,
    Toy2DProblem,
    toy_sharp_minimum,
)
from sgdnoise.sim.dynamics._sde import (
    SDE_NOISES,
    SDERun,
    double_well_gradient,
    double_well_loss,
    simulate_sde,
)
from sgdnoise.sim.dynamics._settings import Execution, Momentum
from sgdnoise.sim.dynamics._structures import (
    ENGINE_SCHEMES,
    KINDS,
    eigen_factors,
    minibatch_gradient_covariance,
    minibatch_scale,
    structured_covariance,
    top_weights,
)
from sgdnoise.sim.dynamics.observers import (
    MAX_RECORD_BYTES,
    FirstPassage,
    Moments,
    NoiseLags,
    Observer,
    Record,
)

__all__ = [
    "ENGINE_SCHEMES",
    "FORMS",
    "KINDS",
    "MAX_RECORD_BYTES",
    "MOVED_KEYWORDS",
    "NOISE_NAMES",
    "NUMBA_LINEAR_KINDS",
    "PAPER_VARIANTS",
    "SDE_NOISES",
    "Execution",
    "FirstPassage",
    "LinearRegressionProblem",
    "ModelProblem",
    "Moments",
    "Momentum",
    "MovedArgumentError",
    "NoiseIndicators",
    "NoiseLags",
    "NoiseModel",
    "Observer",
    "PassageTimes",
    "QuadraticProblem",
    "Record",
    "ReplicaRun",
    "SDERun",
    "Toy2DProblem",
    "double_well_gradient",
    "double_well_loss",
    "eigen_factors",
    "first_passage_times",
    "gd",
    "indicators",
    "langevin",
    "minibatch_gradient_covariance",
    "minibatch_scale",
    "paper_variant",
    "sgd",
    "simulate",
    "simulate_sde",
    "structured_covariance",
    "top_weights",
    "toy_sharp_minimum",
]

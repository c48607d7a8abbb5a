"""Models built from scratch, data, training, and the random families of SPEC's property tests.

Submodules: :mod:`sgdnoise.sim.models` (MLPs, linear and deep-linear networks, per-sample
quadratics, softmax and logistic regression, all with exact per-sample curvature),
:mod:`sgdnoise.sim.data` (seeded synthetic data), :mod:`sgdnoise.sim.datasets` (digits,
MNIST-1D, local MNIST/Fashion-MNIST/CIFAR-10 files), :mod:`sgdnoise.sim.sampling` (minibatch
schemes), :mod:`sgdnoise.sim.training` (SGD with schedules, momentum, clipping, checkpoints),
:mod:`sgdnoise.sim.awd` (activity–weight duality measurements) and :mod:`sgdnoise.sim.families`
(numpy constructors behind :mod:`sgdnoise.verify.strategies`).
"""

from sgdnoise.sim import awd, data, datasets, dynamics, families, models, philox, sampling, training
from sgdnoise.sim.data import (
    ClassificationData,
    RegressionData,
    gaussian_mixture,
    gaussian_regression,
)
from sgdnoise.sim.models import (
    MLP,
    DeepLinearNetwork,
    LinearRegression,
    LogisticRegression,
    PerSampleQuadratic,
    SoftmaxRegression,
)
from sgdnoise.sim.sampling import BatchSampler, draw_batches
from sgdnoise.sim.training import DivergenceError, TrainConfig, TrainResult, train

__all__ = [
    "MLP",
    "BatchSampler",
    "ClassificationData",
    "DeepLinearNetwork",
    "DivergenceError",
    "LinearRegression",
    "LogisticRegression",
    "PerSampleQuadratic",
    "RegressionData",
    "SoftmaxRegression",
    "TrainConfig",
    "TrainResult",
    "awd",
    "data",
    "datasets",
    "draw_batches",
    "dynamics",
    "families",
    "gaussian_mixture",
    "gaussian_regression",
    "models",
    "philox",
    "sampling",
    "train",
    "training",
]

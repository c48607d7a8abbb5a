"""Models built from scratch, synthetic data, and the random families of SPEC's property tests.

Submodules: :mod:`sgdnoise.sim.models` (softmax and logistic regression with exact per-sample
curvature), :mod:`sgdnoise.sim.data` (seeded synthetic data), :mod:`sgdnoise.sim.families`
(numpy constructors behind :mod:`sgdnoise.verify.strategies`).
"""

from sgdnoise.sim import data, families, models
from sgdnoise.sim.data import (
    ClassificationData,
    RegressionData,
    gaussian_mixture,
    gaussian_regression,
)
from sgdnoise.sim.models import LogisticRegression, SoftmaxRegression

__all__ = [
    "ClassificationData",
    "LogisticRegression",
    "RegressionData",
    "SoftmaxRegression",
    "data",
    "families",
    "gaussian_mixture",
    "gaussian_regression",
    "models",
]

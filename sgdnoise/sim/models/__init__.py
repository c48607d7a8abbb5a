"""Models built from scratch in numpy, each with exact per-sample gradients and curvature."""

from sgdnoise.sim.models.glm import LogisticRegression, SoftmaxRegression

__all__ = ["LogisticRegression", "SoftmaxRegression"]

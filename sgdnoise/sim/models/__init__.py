"""Models built from scratch in numpy, each with exact per-sample gradients and curvature."""

from sgdnoise.sim.models._activations import ACTIVATIONS, Activation, get_activation
from sgdnoise.sim.models._losses import LOSSES, Loss, get_loss, softmax_mse_hessian
from sgdnoise.sim.models.clipped import ClippedReluNetwork, HalfplaneData, halfplane_data
from sgdnoise.sim.models.glm import LogisticRegression, SoftmaxRegression
from sgdnoise.sim.models.linear import DeepLinearNetwork, LinearRegression
from sgdnoise.sim.models.mlp import MLP, ForwardPass
from sgdnoise.sim.models.quadratic import PerSampleQuadratic
from sgdnoise.sim.models.toy import Toy2D, toy_data

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "Activation",
    "ClippedReluNetwork",
    "DeepLinearNetwork",
    "ForwardPass",
    "HalfplaneData",
    "LinearRegression",
    "LogisticRegression",
    "Loss",
    "PerSampleQuadratic",
    "SoftmaxRegression",
    "Toy2D",
    "get_activation",
    "get_loss",
    "halfplane_data",
    "softmax_mse_hessian",
    "toy_data",
]

r"""Pointwise activations φ with their first and second derivatives, in float64 numpy.

Every activation is an :class:`Activation` holding φ, φ′ and φ″ as vectorised functions of the
pre-activation s.  The second derivative enters the exact Hessian backpropagation of a dense
network (spec part A, "Dense-layer structure"): going back through h = φ(s) adds the residual
term diag(φ″(s) ∘ ∂ℓ/∂h) to the Gauss–Newton part.

Conventions
-----------
* ``relu``: φ(s) = max(s, 0), φ′(s) = 1[s > 0] (so φ′(0) = 0, the subgradient PyTorch and
  JAX use) and φ″ ≡ 0.  At s = 0 exactly the loss is not twice differentiable; the curvature
  reported there is that of the piece s < 0.  Random data hits the kink with probability zero.
* ``gelu``: the exact form φ(s) = s Φ(s) with the standard normal CDF Φ(s) = ½(1 + erf(s/√2))
  (``scipy.special.erf``), not the tanh approximation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from sgdnoise._typing import FloatArray
from sgdnoise._validate import check_choice

_INV_SQRT_2 = 1.0 / np.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

ArrayFunction = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class Activation:
    r"""A pointwise activation φ with φ′ and φ″.

    Attributes
    ----------
    name : str
        One of ``"identity"``, ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"``.
    value, derivative, second_derivative : callable
        s ↦ φ(s), φ′(s), φ″(s), elementwise on float64 arrays of any shape.
    code : int
        A small integer naming the activation inside compiled kernels.

    References
    ----------
    Spec part A, "Dense-layer structure" (residual term diag(φ″(s) ∘ backpropagated gradient)).
    """

    name: str
    value: ArrayFunction
    derivative: ArrayFunction
    second_derivative: ArrayFunction
    code: int

    def __call__(self, s: FloatArray) -> FloatArray:
        """φ(s)."""
        return self.value(s)


def _identity(s: FloatArray) -> FloatArray:
    return np.array(s, dtype=np.float64, copy=True)


def _ones(s: FloatArray) -> FloatArray:
    return np.ones_like(s, dtype=np.float64)


def _zeros(s: FloatArray) -> FloatArray:
    return np.zeros_like(s, dtype=np.float64)


def _relu(s: FloatArray) -> FloatArray:
    return np.maximum(s, 0.0)


def _relu_derivative(s: FloatArray) -> FloatArray:
    return (np.asarray(s) > 0).astype(np.float64)


def _tanh_derivative(s: FloatArray) -> FloatArray:
    t = np.tanh(s)
    return 1.0 - t * t


def _tanh_second_derivative(s: FloatArray) -> FloatArray:
    t = np.tanh(s)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid(s: FloatArray) -> FloatArray:
    # σ(s) = ½(1 + tanh(s/2)): no overflow for large |s|
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(s, dtype=np.float64)))


def _sigmoid_derivative(s: FloatArray) -> FloatArray:
    q = _sigmoid(s)
    return q * (1.0 - q)


def _sigmoid_second_derivative(s: FloatArray) -> FloatArray:
    q = _sigmoid(s)
    return q * (1.0 - q) * (1.0 - 2.0 * q)


def _normal_pdf(s: FloatArray) -> FloatArray:
    s = np.asarray(s, dtype=np.float64)
    return _INV_SQRT_2PI * np.exp(-0.5 * s * s)


def _normal_cdf(s: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + erf(np.asarray(s, dtype=np.float64) * _INV_SQRT_2))


def _gelu(s: FloatArray) -> FloatArray:
    s = np.asarray(s, dtype=np.float64)
    return s * _normal_cdf(s)


def _gelu_derivative(s: FloatArray) -> FloatArray:
    s = np.asarray(s, dtype=np.float64)
    return _normal_cdf(s) + s * _normal_pdf(s)


def _gelu_second_derivative(s: FloatArray) -> FloatArray:
    s = np.asarray(s, dtype=np.float64)
    return (2.0 - s * s) * _normal_pdf(s)


identity = Activation("identity", _identity, _ones, _zeros, code=0)
"""φ(s) = s, φ′ = 1, φ″ = 0 (a deep linear network)."""

relu = Activation("relu", _relu, _relu_derivative, _zeros, code=1)
"""φ(s) = max(s, 0), φ′(s) = 1[s > 0] (φ′(0) = 0), φ″ = 0: the Gauss–Newton form is exact."""

tanh = Activation("tanh", np.tanh, _tanh_derivative, _tanh_second_derivative, code=2)
"""φ = tanh s, φ′ = 1 − tanh² s, φ″ = −2 tanh s (1 − tanh² s)."""

sigmoid = Activation("sigmoid", _sigmoid, _sigmoid_derivative, _sigmoid_second_derivative, code=3)
"""φ = σ(s) = 1/(1 + e^{−s}), φ′ = σ(1 − σ), φ″ = σ(1 − σ)(1 − 2σ)."""

gelu = Activation("gelu", _gelu, _gelu_derivative, _gelu_second_derivative, code=4)
"""Exact GELU φ = s Φ(s), φ′ = Φ(s) + s ϕ(s), φ″ = (2 − s²) ϕ(s) (ϕ, Φ: standard normal pdf, cdf)."""

ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in (identity, relu, tanh, sigmoid, gelu)
}


def get_activation(name: str | Activation, argument: str = "activation") -> Activation:
    r"""Look up an activation by name (an :class:`Activation` is returned unchanged).

    GELU is the exact erf form of Hendrycks & Gimpel,

    .. math:: \mathrm{gelu}(s) = s\,\Phi(s),\quad \Phi(s) = \tfrac12\bigl(1 + \mathrm{erf}(s/\sqrt2)\bigr),
              \quad \mathrm{gelu}''(s) = (2 - s^2)\,\phi(s).

    Parameters
    ----------
    name : str or Activation
        ``"identity"``, ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"gelu"``.
    argument : str
        The argument name used in the error message.

    Raises
    ------
    ValueError
        Unknown name.

    References
    ----------
    D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415 (GELU).
    Spec part A, "Dense-layer structure" (φ″ in the Hessian backpropagation).
    """
    if isinstance(name, Activation):
        return name
    return ACTIVATIONS[check_choice(name, argument, tuple(ACTIVATIONS))]


__all__ = [
    "ACTIVATIONS",
    "Activation",
    "gelu",
    "get_activation",
    "identity",
    "relu",
    "sigmoid",
    "tanh",
]

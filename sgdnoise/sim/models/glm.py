r"""Generalised linear models with exact per-sample curvature: softmax and logistic regression.

A softmax regression z = W a (a = x with a constant 1 appended when ``bias=True``) is a single
dense layer, so its per-sample Hessian is exactly h_p = G_p ⊗ a_p a_pᵀ with
G_p = diag(q_p) − q_p q_pᵀ and its gradient g_p = δ_p ⊗ a_p with δ_p = q_p − e_{y_p}
(row-major vec(W)); see spec part A, "Dense-layer structure".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_positive, check_positive_int


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class SoftmaxRegression:
    r"""Multinomial logistic regression with cross-entropy loss, ℓ_p = −log softmax(W a_p)_{y_p}.

    Parameters
    ----------
    x : (N, d) array
        Inputs.
    y : (N,) int array
        Labels in ``range(num_classes)``.
    num_classes : int
    bias : bool
        Append a constant 1 to the inputs.

    References
    ----------
    Spec part A ("Dense-layer structure"); Zhang, Yang & Tu, arXiv:2602.05600.
    """

    x: FloatArray
    y: IntArray
    num_classes: int
    bias: bool = True

    def __post_init__(self) -> None:
        x = as_float_array(self.x, "x", ndim=2)
        y = np.asarray(self.y)
        k = check_positive_int(self.num_classes, "num_classes", minimum=2)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be an integer array of shape ({x.shape[0]},); got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"y must hold labels in range({k}); got [{y.min()}, {y.max()}]")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y.astype(np.int64))

    @property
    def inputs(self) -> FloatArray:
        """a_p, the layer input (with the bias column when ``bias``)."""
        return np.hstack([self.x, np.ones((self.x.shape[0], 1))]) if self.bias else self.x

    @property
    def shape(self) -> tuple[int, int]:
        """(out, in) of W."""
        return self.num_classes, self.x.shape[1] + int(self.bias)

    @property
    def num_params(self) -> int:
        """D = out · in."""
        out, inn = self.shape
        return out * inn

    def _unpack(self, w: FloatArray) -> FloatArray:
        w = as_float_array(w, "w", ndim=1)
        if w.size != self.num_params:
            raise ValueError(f"w must have {self.num_params} entries; got {w.size}")
        return w.reshape(self.shape)

    def probabilities(self, w: FloatArray) -> FloatArray:
        """q_p = softmax(W a_p), shape (N, out)."""
        return _softmax(self.inputs @ self._unpack(w).T)

    def per_sample_losses(self, w: FloatArray) -> FloatArray:
        """ℓ_p, shape (N,)."""
        z = self.inputs @ self._unpack(w).T
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
        return lse - z[np.arange(z.shape[0]), self.y]

    def loss(self, w: FloatArray) -> float:
        """L = E_p ℓ_p."""
        return float(self.per_sample_losses(w).mean())

    def kronecker_factors(self, w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        r"""(G, a, δ): G_p = diag(q_p) − q_p q_pᵀ, a_p, δ_p = q_p − e_{y_p}.

        References
        ----------
        Spec part A, "Dense-layer structure".
        """
        q = self.probabilities(w)
        G = np.einsum("pi,ij->pij", q, np.eye(q.shape[1])) - q[:, :, None] * q[:, None, :]
        delta = q.copy()
        delta[np.arange(q.shape[0]), self.y] -= 1.0
        return G, self.inputs, delta

    def per_sample_gradients(self, w: FloatArray) -> FloatArray:
        """g_p = vec(δ_p a_pᵀ), shape (N, D)."""
        _, a, delta = self.kronecker_factors(w)
        return (delta[:, :, None] * a[:, None, :]).reshape(a.shape[0], -1)

    def gradient(self, w: FloatArray) -> FloatArray:
        """∇L, shape (D,)."""
        _, a, delta = self.kronecker_factors(w)
        return (delta.T @ a).reshape(-1) / a.shape[0]

    def fit(self, w0: FloatArray | None = None, *, eta: float = 0.5, num_steps: int = 2000,
            weight_decay: float = 0.0) -> FloatArray:
        """Full-batch gradient descent (deterministic); returns the final weights."""
        eta = check_positive(eta, "eta")
        num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
        weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
        w = np.zeros(self.num_params) if w0 is None else self._unpack(w0).reshape(-1).copy()
        for _ in range(num_steps):
            w -= eta * (self.gradient(w) + weight_decay * w)
        if not np.all(np.isfinite(w)):
            raise ValueError(f"gradient descent diverged (eta={eta}); lower eta")
        return w


@dataclass(frozen=True)
class LogisticRegression:
    r"""Binary logistic regression, ℓ_p = −y_p log q_p − (1 − y_p) log(1 − q_p), q_p = σ(wᵀx_p).

    Per-sample gradient g_p = (q_p − y_p) x_p and Hessian h_p = q_p(1 − q_p) x_p x_pᵀ, so
    g_p g_pᵀ = ((q_p − y_p)²/(q_p(1 − q_p))) h_p (spec claim A7).

    References
    ----------
    Spec claim A7; Zhang, Yang & Tu, arXiv:2602.05600.
    """

    x: FloatArray
    y: FloatArray

    def __post_init__(self) -> None:
        x = as_float_array(self.x, "x", ndim=2)
        y = as_float_array(self.y, "y", ndim=1)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},); got {y.shape}")
        if np.any((y < 0) | (y > 1)):
            raise ValueError("y must hold labels in [0, 1]")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def probabilities(self, w: FloatArray) -> FloatArray:
        """q_p = σ(wᵀx_p)."""
        w = as_float_array(w, "w", ndim=1)
        if w.shape != (self.x.shape[1],):
            raise ValueError(f"w must have shape ({self.x.shape[1]},); got {w.shape}")
        z = self.x @ w
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def per_sample_gradients(self, w: FloatArray) -> FloatArray:
        """g_p = (q_p − y_p) x_p, shape (N, d)."""
        return (self.probabilities(w) - self.y)[:, None] * self.x

    def per_sample_hessians(self, w: FloatArray) -> FloatArray:
        """h_p = q_p(1 − q_p) x_p x_pᵀ, shape (N, d, d)."""
        N, d = self.x.shape
        check_allocation(2 * N * d * d * 8, f"per_sample_hessians: h ({N}x{d}x{d})")
        q = self.probabilities(w)
        return (q * (1 - q))[:, None, None] * self.x[:, :, None] * self.x[:, None, :]

    def gradient(self, w: FloatArray) -> FloatArray:
        """∇L."""
        return self.per_sample_gradients(w).mean(axis=0)

    def fit(self, w0: FloatArray | None = None, *, eta: float = 0.5,
            num_steps: int = 2000) -> FloatArray:
        """Full-batch gradient descent (deterministic)."""
        eta = check_positive(eta, "eta")
        num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
        w = np.zeros(self.x.shape[1]) if w0 is None else as_float_array(w0, "w0", ndim=1).copy()
        for _ in range(num_steps):
            w -= eta * self.gradient(w)
        return w


__all__ = ["LogisticRegression", "SoftmaxRegression"]

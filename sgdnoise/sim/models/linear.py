r"""Linear models with exact per-sample curvature: least squares and deep linear networks.

* :class:`LinearRegression`: ℓ_p = ½(wᵀx_p − y_p)², g_p = r_p x_p with r_p = wᵀx_p − y_p, and the
  weight-independent h_p = x_p x_pᵀ, H = E_p x_p x_pᵀ.  It is a dense layer with one output, so
  (G_p, a_p, δ_p) = (1, x_p, r_p) are its Kronecker factors (spec part A).
* :class:`DeepLinearNetwork`: z = W_{L−1} ⋯ W_1 W_0 x (optionally with biases), MSE loss
  ℓ = ½‖z − y‖²; an :class:`~sgdnoise.sim.models.MLP` with the identity activation, so every
  method of :class:`MLP` (per-sample gradients, Hessians, ``layer_factors``) applies.  Its
  Hessian is not constant: the product structure makes the loss non-convex in w.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array
from sgdnoise.sim.models.mlp import MLP


@dataclass(frozen=True)
class LinearRegression:
    r"""Least squares with per-sample loss ℓ_p(w) = ½(wᵀx_p − y_p)² and L = E_p ℓ_p.

    .. math::
        g_p = (w^\top x_p - y_p)\,x_p, \qquad h_p = x_p x_p^\top, \qquad
        H = \frac1N \sum_p x_p x_p^\top .

    Parameters
    ----------
    x : (N, D) array
        Inputs (append a column of ones for an intercept).
    y : (N,) array
        Targets.

    References
    ----------
    Spec claims A7 and C1 (linear regression: Σ₁ = σ²H at the optimum; noise ∝ loss);
    Mori et al., ICML 2022 (arXiv:2105.09557).
    """

    x: FloatArray
    y: FloatArray

    def __post_init__(self) -> None:
        x = as_float_array(self.x, "x", ndim=2)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x must be a non-empty (N, D) array; got shape {x.shape}")
        y = as_float_array(self.y, "y", ndim=1)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},); got {y.shape}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def num_params(self) -> int:
        """D, the input dimension."""
        return self.x.shape[1]

    @property
    def num_samples(self) -> int:
        """N."""
        return self.x.shape[0]

    def _check_w(self, w: Any, name: str = "w") -> FloatArray:
        w = as_float_array(w, name, ndim=1)
        if w.shape != (self.num_params,):
            raise ValueError(f"{name} must have shape ({self.num_params},); got {w.shape}")
        return w

    def residuals(self, w: FloatArray) -> FloatArray:
        """r_p = wᵀx_p − y_p, shape (N,)."""
        return self.x @ self._check_w(w) - self.y

    def per_sample_losses(self, w: FloatArray) -> FloatArray:
        """ℓ_p = ½ r_p², shape (N,)."""
        r = self.residuals(w)
        return 0.5 * r * r

    def loss(self, w: FloatArray) -> float:
        """L = E_p ℓ_p."""
        return float(self.per_sample_losses(w).mean())

    def per_sample_gradients(self, w: FloatArray) -> FloatArray:
        """g_p = r_p x_p, shape (N, D)."""
        return self.residuals(w)[:, None] * self.x

    def gradient(self, w: FloatArray) -> FloatArray:
        """∇L = xᵀr/N."""
        return self.x.T @ self.residuals(w) / self.num_samples

    def per_sample_hessians(self, w: FloatArray | None = None) -> FloatArray:
        """h_p = x_p x_pᵀ, shape (N, D, D) (independent of w; ``w`` is only validated)."""
        if w is not None:
            self._check_w(w)
        N, D = self.x.shape
        check_allocation(N * D * D * 8, f"per_sample_hessians: h ({N}x{D}x{D})")
        return self.x[:, :, None] * self.x[:, None, :]

    def hessian(self, w: FloatArray | None = None) -> FloatArray:
        """H = xᵀx/N (independent of w)."""
        if w is not None:
            self._check_w(w)
        D = self.x.shape[1]
        check_allocation(2 * D * D * 8, f"hessian: H ({D}x{D})")
        return self.x.T @ self.x / self.num_samples

    def hvp(self, v: FloatArray) -> FloatArray:
        """H v = xᵀ(x v)/N, without forming H."""
        v = self._check_w(v, "v")
        return self.x.T @ (self.x @ v) / self.num_samples

    def layer_factors(self, w: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        r"""Kronecker factors (G, a, δ) = (1, x_p, r_p) of the single one-output dense layer.

        ``sgdnoise.theory.kronecker_hessians(G, a)`` is then x_p x_pᵀ and δ_p ⊗ a_p = g_p.

        References
        ----------
        Spec part A, "Dense-layer structure".
        """
        r = self.residuals(w)
        return np.ones((self.num_samples, 1, 1)), self.x.copy(), r[:, None]

    def solve(self) -> FloatArray:
        """The least-squares minimiser w* (minimum-norm when H is singular)."""
        return np.linalg.lstsq(self.x, self.y, rcond=None)[0]


@dataclass(frozen=True, init=False)
class DeepLinearNetwork(MLP):
    r"""Deep linear network z = W̃_{L−1}[… W̃_1[W̃_0[x, 1], 1] …] with MSE loss ℓ = ½‖z − y‖².

    An :class:`~sgdnoise.sim.models.MLP` with ``activation="identity"`` and ``loss="mse"``:
    without biases the end-to-end map is the product P = W_{L−1} ⋯ W_0.  Its Kronecker factors
    (:meth:`MLP.layer_factors`) are G_l = P_{>l}ᵀ P_{>l} with P_{>l} = W_{L−1} ⋯ W_{l+1}
    (φ″ = 0, φ′ = 1), independent of the sample, and a_l = P_{<l} x (plus biases).

    Parameters
    ----------
    widths : sequence of int
        (d_0, …, d_L).
    bias : bool
        Give every layer a bias.

    References
    ----------
    A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks", ICLR 2014; spec part A ("Dense-layer structure").
    """

    activation: str = field(default="identity", init=False)
    loss_name: str = field(default="mse", init=False)

    def __init__(self, widths: Any, bias: bool = False) -> None:
        super().__init__(widths, activation="identity", loss="mse", bias=bias)

    def end_to_end(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        r"""The affine end-to-end map z = P x + c, shape ((d_L, d_0), (d_L,)).

        P = W_{L−1} ⋯ W_0 and c = Σ_l W_{L−1} ⋯ W_{l+1} b_l (zero without biases).

        References
        ----------
        Saxe, McClelland & Ganguli, ICLR 2014.
        """
        P = np.eye(self.widths[0])
        c = np.zeros(self.widths[0])
        for W in self.unpack(w):
            if self.bias:
                P, c = W[:, :-1] @ P, W[:, :-1] @ c + W[:, -1]
            else:
                P, c = W @ P, W @ c
        return P, c


__all__ = ["DeepLinearNetwork", "LinearRegression"]

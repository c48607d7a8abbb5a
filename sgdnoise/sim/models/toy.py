r"""The two-basin 2-D toy of spec B3: a sharp minimum near (1, 1) and a flat one near (−1, −1).

Per-sample loss, with data point x = (x₁, x₂) and c = cos π/4, s = sin π/4:

.. math::
    \ell(w; x) = \min\bigl(f_1, f_2\bigr), \quad
    f_1 = 10\,(c\,p - s\,q)^2 + 100\,(c\,p + s\,q)^2, \quad
    f_2 = (w_1 - x_1 + 1)^2 + (w_2 - x_2 + 1)^2,

p = w₁ − x₁ − 1, q = w₂ − x₂ − 1.  Each branch is a quadratic with a constant Hessian:
h₁ = 20 u uᵀ + 200 v vᵀ with u = (c, −s), v = (c, s) (eigenvalues 200 along (1, 1)/√2 and 20
along (1, −1)/√2), h₂ = 2I.  The per-sample gradient and Hessian are those of the *active*
branch, the smaller of f₁, f₂; at an exact tie f₁ = f₂ the first branch f₁ is taken (the loss is
not differentiable there, a set of measure zero).  L = E_p ℓ_p over the N data points.

References
----------
Z. Zhu, J. Wu, B. Yu, L. Wu, J. Ma, ICML 2019 (arXiv:1803.00195), Fig. 2 and the authors' code
(repository uuujf/SGDNoise); spec claim B3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_positive_int, check_rng
from sgdnoise.sim._overflow import finite_result

_C = math.cos(math.pi / 4)
_S = math.sin(math.pi / 4)

#: Hessian of the sharp branch f₁ (constant): 20 u uᵀ + 200 v vᵀ, u = (c, −s), v = (c, s).
SHARP_HESSIAN: FloatArray = (20.0 * np.outer([_C, -_S], [_C, -_S])
                             + 200.0 * np.outer([_C, _S], [_C, _S]))
#: Hessian of the flat branch f₂: 2I.
FLAT_HESSIAN: FloatArray = 2.0 * np.eye(2)


def toy_data(rng: np.random.Generator | int, N: int = 100) -> FloatArray:
    r"""The toy's data: N points x = (z K)·10⁻², z = (√10 n₁, n₂), n ~ N(0, I).

    .. math:: x = 10^{-2}\, z K, \qquad K = \begin{pmatrix} c & -s \\ s & c \end{pmatrix}

    (row vector times K: x₁ = (c z₁ + s z₂)/100, x₂ = (−s z₁ + c z₂)/100), so the data have
    variance 10⁻³ along (c, −s) and 10⁻⁴ along (s, c).

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Generator (or seed) of the standard normals n, drawn as ``rng.standard_normal((N, 2))``.
    N : int
        Number of points (the paper uses 100).

    Returns
    -------
    (N, 2) float64 array.

    References
    ----------
    Zhu et al., ICML 2019, Fig. 2 (authors' code ``uuujf/SGDNoise``); spec claim B3.
    """
    gen = check_rng(rng)
    N = check_positive_int(N, "N")
    n = gen.standard_normal((N, 2))
    z = n * np.array([math.sqrt(10.0), 1.0])
    K = np.array([[_C, -_S], [_S, _C]])
    return (z @ K) * 1e-2


@dataclass(frozen=True)
class Toy2D:
    r"""The B3 toy loss on data x: per-sample losses, gradients and Hessians of the active branch.

    .. math::
        \ell_p(w) = \min(f_1(w - x_p), f_2(w - x_p)),\quad
        g_p = \nabla f_{a(p)},\quad h_p = \nabla^2 f_{a(p)} \in \{h_1, 2I\},\quad
        L = \frac1N\sum_p \ell_p

    with a(p) the active branch (f₁ at a tie).  Every method takes ``w`` of shape (2,) or a stack
    of replicas (R, 2); a stack adds a leading replica axis to every result.

    Parameters
    ----------
    x : (N, 2) array
        Data points (see :func:`toy_data`).

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), Fig. 2; spec claim B3.
    """

    x: FloatArray

    def __post_init__(self) -> None:
        x = as_float_array(self.x, "x", ndim=2)
        if x.shape[0] < 1 or x.shape[1] != 2:
            raise ValueError(f"x must have shape (N, 2) with N >= 1; got {x.shape}")
        object.__setattr__(self, "x", x)

    @property
    def num_samples(self) -> int:
        """N."""
        return int(self.x.shape[0])

    @property
    def num_params(self) -> int:
        """D = 2."""
        return 2

    def _check_w(self, w: Any) -> FloatArray:
        w = as_float_array(w, "w", ndim=(1, 2))
        if w.shape[-1] != 2:
            raise ValueError(f"w must have shape (2,) or (R, 2); got {w.shape}")
        return w

    def _branches(self, w: FloatArray) -> tuple[FloatArray, ...]:
        """p, q, a = cp − sq, b = cp + sq, f₁, f₂ and the mask of the first branch (…, N)."""
        d = w[..., None, :] - self.x                      # (…, N, 2): w − x_p
        p = d[..., 0] - 1.0
        q = d[..., 1] - 1.0
        a = _C * p - _S * q
        b = _C * p + _S * q
        f1 = 10.0 * a * a + 100.0 * b * b
        e1 = d[..., 0] + 1.0
        e2 = d[..., 1] + 1.0
        f2 = e1 * e1 + e2 * e2
        first = f1 <= f2
        big = ~(np.isfinite(f1) & np.isfinite(f2))
        if big.any():  # f overflows: compare the branches in units of the largest term
            m = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.maximum(np.abs(e1), np.abs(e2)))
            m = np.where(big & (m > 0), m, 1.0)
            a_, b_, e1_, e2_ = a / m, b / m, e1 / m, e2 / m
            first = np.where(big, 10.0 * a_ * a_ + 100.0 * b_ * b_ <= e1_ * e1_ + e2_ * e2_,
                             first)
        return a, b, e1, e2, f1, f2, first

    @finite_result
    def per_sample_losses(self, w: FloatArray) -> FloatArray:
        """ℓ_p = min(f₁, f₂), shape (N,) or (R, N).

        References
        ----------
        Spec claim B3.
        """
        *_, f1, f2, first = self._branches(self._check_w(w))
        return np.where(first, f1, f2)

    @finite_result
    def per_sample_gradients(self, w: FloatArray) -> FloatArray:
        r"""g_p of the active branch, shape (N, 2) or (R, N, 2).

        .. math::
            \nabla f_1 = \bigl(20ac + 200bc,\ -20as + 200bs\bigr), \quad
            \nabla f_2 = 2\,(w - x_p + 1)

        References
        ----------
        Spec claim B3.
        """
        a, b, e1, e2, _, _, first = self._branches(self._check_w(w))
        g1 = np.stack([20.0 * a * _C + 200.0 * b * _C, -20.0 * a * _S + 200.0 * b * _S], axis=-1)
        g2 = np.stack([2.0 * e1, 2.0 * e2], axis=-1)
        return np.where(first[..., None], g1, g2)

    @finite_result
    def per_sample_hessians(self, w: FloatArray) -> FloatArray:
        """h_p of the active branch (:data:`SHARP_HESSIAN` or 2I), shape (N, 2, 2) or (R, N, 2, 2).

        References
        ----------
        Spec claim B3.
        """
        *_, first = self._branches(self._check_w(w))
        return np.where(first[..., None, None], SHARP_HESSIAN, FLAT_HESSIAN)

    @finite_result
    def loss(self, w: FloatArray) -> float | FloatArray:
        """L = E_p ℓ_p: a float for w of shape (2,), shape (R,) for a stack.

        References
        ----------
        Spec claim B3.
        """
        out = self.per_sample_losses(w).mean(axis=-1)
        return float(out) if np.ndim(out) == 0 else out

    @finite_result
    def gradient(self, w: FloatArray) -> FloatArray:
        """∇L = E_p g_p, shape (2,) or (R, 2).

        References
        ----------
        Spec claim B3.
        """
        return self.per_sample_gradients(w).mean(axis=-2)

    @finite_result
    def hessian(self, w: FloatArray) -> FloatArray:
        """H = E_p h_p, shape (2, 2) or (R, 2, 2).

        References
        ----------
        Spec claim B3 (sharp minimum: eigenvalues 200 and 20; flat minimum: 2I).
        """
        *_, first = self._branches(self._check_w(w))
        frac = first.mean(axis=-1)[..., None, None]
        return frac * SHARP_HESSIAN + (1.0 - frac) * FLAT_HESSIAN


__all__ = ["FLAT_HESSIAN", "SHARP_HESSIAN", "Toy2D", "toy_data"]

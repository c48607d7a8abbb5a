r"""Per-sample losses on logits with exact gradient and Hessian.

For logits z_p ∈ ℝ^out of sample p each loss gives the value ℓ_p, the gradient δ_p = ∂ℓ_p/∂z and
the Hessian G^z_p = ∂²ℓ_p/∂z∂zᵀ, the starting point of the Hessian backpropagation of spec part A
("Dense-layer structure").  Conventions, as in the paper's code:

* ``"mse"``: ℓ = ½‖z − y‖², summed (not averaged) over the ``out`` outputs, with the ½ factor;
  y is a float target of shape (N, out).  δ = z − y, G^z = I.
* ``"softmax_mse"``: ℓ = ½‖s − t‖² with s = softmax(z), t = onehot(y) (int labels).  The exact
  Hessian includes the residual term Σ_k r_k ∇²s_k (see :func:`softmax_mse_hessian`).
* ``"cross_entropy"``: ℓ = −log s_y = logsumexp(z) − z_y (int labels).  δ = s − t,
  G^z = diag(s) − ssᵀ.

The training loss is the mean over samples, L = E_p ℓ_p = (1/N) Σ_p ℓ_p.

Internally every loss works on a float target matrix T of shape (N, out): y itself for
``"mse"`` and the one-hot encoding of the labels for the two softmax losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_choice

LOSSES: tuple[str, ...] = ("mse", "softmax_mse", "cross_entropy")
_CODES = {"mse": 0, "softmax_mse": 1, "cross_entropy": 2}


def softmax(z: FloatArray) -> FloatArray:
    r"""Row-wise softmax s_k = e^{z_k}/Σ_j e^{z_j}, computed after subtracting the row maximum.

    References
    ----------
    Standard; spec part A (softmax-then-MSE and cross-entropy losses).
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _logsumexp(z: FloatArray) -> FloatArray:
    zmax = z.max(axis=-1)
    return zmax + np.log(np.exp(z - zmax[..., None]).sum(axis=-1))


def _softmax_jacobian(s: FloatArray) -> FloatArray:
    """J = diag(s) − ssᵀ per row, shape (N, out, out); symmetric."""
    J = -s[:, :, None] * s[:, None, :]
    idx = np.arange(s.shape[1])
    J[:, idx, idx] += s
    return J


def softmax_mse_hessian(z: FloatArray, targets: FloatArray) -> FloatArray:
    r"""Exact Hessian of ℓ = ½‖softmax(z) − t‖² with respect to z, shape (N, out, out).

    With s = softmax(z), J = ∂s/∂z = diag(s) − ssᵀ (symmetric) and residual r = s − t,

    .. math::
        \nabla_z \ell = J r = u - c\,s,\qquad u = r\circ s,\ c = r^\top s,

    and, from ∇²s_k = s_k[(e_k − s)(e_k − s)ᵀ − diag(s) + ssᵀ],

    .. math::
        \nabla_z^2 \ell = J^2 + \sum_k r_k \nabla^2 s_k
        = J^2 + \mathrm{diag}(u - c\,s) - u s^\top - s u^\top + 2c\, s s^\top .

    The first term is the Gauss–Newton part (PSD); the residual part vanishes when s = t.

    Parameters
    ----------
    z : (N, out) array
        Logits.
    targets : (N, out) array
        Target vectors t (one-hot labels).

    References
    ----------
    Spec part A, claim A6 (softmax-then-MSE loss); derivation above by the chain rule.
    """
    s = softmax(z)
    r = s - targets
    J = _softmax_jacobian(s)
    u = r * s
    c = u.sum(axis=1)
    hess = J @ J
    delta = u - c[:, None] * s
    idx = np.arange(s.shape[1])
    hess[:, idx, idx] += delta
    hess -= u[:, :, None] * s[:, None, :] + s[:, :, None] * u[:, None, :]
    hess += 2.0 * c[:, None, None] * s[:, :, None] * s[:, None, :]
    return 0.5 * (hess + np.swapaxes(hess, 1, 2))


def _values(name: str, z: FloatArray, T: FloatArray) -> FloatArray:
    if name == "mse":
        r = z - T
        return 0.5 * np.einsum("pk,pk->p", r, r)
    if name == "softmax_mse":
        r = softmax(z) - T
        return 0.5 * np.einsum("pk,pk->p", r, r)
    return _logsumexp(z) - np.einsum("pk,pk->p", z, T)


def _gradients(name: str, z: FloatArray, T: FloatArray) -> FloatArray:
    if name == "mse":
        return z - T
    s = softmax(z)
    if name == "softmax_mse":
        u = (s - T) * s
        return u - u.sum(axis=1, keepdims=True) * s
    return s - T


def _hessians(name: str, z: FloatArray, T: FloatArray) -> FloatArray:
    if name == "mse":
        return np.broadcast_to(np.eye(z.shape[1]), (z.shape[0], z.shape[1], z.shape[1])).copy()
    if name == "softmax_mse":
        return softmax_mse_hessian(z, T)
    return _softmax_jacobian(softmax(z))


def loss_targets(name: str, y: Any, num_samples: int, num_outputs: int) -> FloatArray:
    """Validate labels ``y`` and return the float target matrix T, shape (N, out).

    ``"mse"``: y is a finite float array (N, out) (an (N,) array is accepted when out = 1).
    ``"softmax_mse"``, ``"cross_entropy"``: y is an integer array (N,) in ``range(out)``, and T is
    its one-hot encoding.

    Raises
    ------
    ValueError
        Naming ``y``: wrong shape, wrong dtype, NaN, or labels out of range.
    """
    check_choice(name, "loss", LOSSES)
    if name == "mse":
        T = as_float_array(y, "y", ndim=(1, 2))
        if T.ndim == 1 and num_outputs == 1:
            T = T[:, None]
        if T.shape != (num_samples, num_outputs):
            raise ValueError(
                f"y must have shape (N, out) = {(num_samples, num_outputs)} for loss='mse'; "
                f"got {T.shape}"
            )
        return T
    labels = np.asarray(y)
    if labels.shape != (num_samples,) or not (
        np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_
    ):
        raise ValueError(
            f"y must be an integer label array of shape ({num_samples},) for loss={name!r}; "
            f"got dtype {labels.dtype} and shape {labels.shape}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_outputs):
        raise ValueError(
            f"y must hold labels in range({num_outputs}); got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    T = np.zeros((num_samples, num_outputs))
    T[np.arange(num_samples), labels] = 1.0
    return T


@dataclass(frozen=True)
class Loss:
    r"""A per-sample loss on logits: value ℓ_p, gradient δ_p = ∂ℓ_p/∂z, Hessian ∂²ℓ_p/∂z∂zᵀ.

    Conventions (module docstring): ½ factor and sum over outputs for the squared losses, labels
    as int (N,) for ``"softmax_mse"`` and ``"cross_entropy"``, float (N, out) for ``"mse"``; the
    training loss is the mean over samples.

    Attributes
    ----------
    name : str
        ``"mse"``, ``"softmax_mse"`` or ``"cross_entropy"``.

    References
    ----------
    Spec part A (claim A6: cross-entropy vs softmax-then-MSE); Zhang, Yang & Tu, arXiv:2602.05600.
    """

    name: str

    def __post_init__(self) -> None:
        check_choice(self.name, "loss", LOSSES)

    @property
    def code(self) -> int:
        """Small integer naming the loss inside compiled kernels."""
        return _CODES[self.name]

    @property
    def classification(self) -> bool:
        """Whether labels are integer classes (softmax losses)."""
        return self.name != "mse"

    def _prepare(self, z: Any, y: Any) -> tuple[FloatArray, FloatArray]:
        z = as_float_array(z, "z", ndim=2)
        return z, loss_targets(self.name, y, z.shape[0], z.shape[1])

    def value(self, z: FloatArray, y: Any) -> FloatArray:
        """ℓ_p for each row of the logits ``z`` (N, out); returns (N,)."""
        z, T = self._prepare(z, y)
        return _values(self.name, z, T)

    def gradient(self, z: FloatArray, y: Any) -> FloatArray:
        """δ_p = ∂ℓ_p/∂z, shape (N, out)."""
        z, T = self._prepare(z, y)
        return _gradients(self.name, z, T)

    def hessian(self, z: FloatArray, y: Any) -> FloatArray:
        """G^z_p = ∂²ℓ_p/∂z∂zᵀ, shape (N, out, out), symmetric."""
        z, T = self._prepare(z, y)
        return _hessians(self.name, z, T)


def get_loss(name: str | Loss) -> Loss:
    """Look up a loss by name (a :class:`Loss` is returned unchanged).

    Raises
    ------
    ValueError
        Naming ``loss``: not one of ``"mse"``, ``"softmax_mse"``, ``"cross_entropy"``.
    """
    if isinstance(name, Loss):
        return name
    return Loss(check_choice(name, "loss", LOSSES))


__all__ = [
    "LOSSES",
    "Loss",
    "get_loss",
    "loss_targets",
    "softmax",
    "softmax_mse_hessian",
]

r"""Noise models of the replica engine: full-batch GD, minibatch SGD and Langevin variants (GLD).

A :class:`NoiseModel` only *describes* the noise; :func:`~sgdnoise.sim.dynamics.simulate`
evaluates it at the current point of every replica at every step.  Build one with :func:`gd`,
:func:`sgd` or :func:`langevin`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sgdnoise._typing import FloatArray
from sgdnoise._validate import (
    as_float_array,
    check_choice,
    check_positive,
    check_positive_int,
    check_psd_stack,
    check_square,
)
from sgdnoise.sim.dynamics._structures import ENGINE_SCHEMES, KINDS

#: Noise model names.
NOISE_NAMES: tuple[str, ...] = ("gd", "sgd", "langevin")


@dataclass(frozen=True)
class NoiseModel:
    r"""What perturbs the gradient (or the parameters) at each step of a replica.

    Attributes
    ----------
    name : str
        ``"gd"`` (none), ``"sgd"`` (minibatch mean gradient) or ``"langevin"`` (Gaussian).
    kind : str or None
        Langevin structure, one of :data:`~sgdnoise.sim.dynamics.KINDS`.
    B : int or None
        Batch size: of the minibatches (``sgd``) or of the SGD whose covariance Σ̂ a Langevin
        kind matches (``langevin``).
    scheme : str or None
        ``"replacement"``, ``"iid"``, ``"reshuffle"`` or ``"shuffle_once"``.
    k : int or None
        Eigenpairs kept by ``leading`` and ``hessian``.
    sigma2 : float or None
        Variance per coordinate of ``const``.
    covariance : (D, D) array or None
        The covariance of ``fixed``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195); spec part B.
    """

    name: str
    kind: str | None = None
    B: int | None = None
    scheme: str | None = None
    k: int | None = None
    sigma2: float | None = None
    covariance: FloatArray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.name, "name", NOISE_NAMES)
        if self.name == "langevin":
            check_choice(self.kind, "kind", KINDS)
        elif self.kind is not None:
            raise ValueError(f"kind is only for langevin noise; got kind={self.kind!r}")
        if self.name != "gd":
            object.__setattr__(self, "B", check_positive_int(self.B, "B"))
            check_choice(self.scheme, "scheme", ENGINE_SCHEMES)

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``"sgd(B=8, iid)"`` or ``"langevin(hessian, k=1)"``."""
        if self.name == "gd":
            return "gd"
        if self.name == "sgd":
            return f"sgd(B={self.B}, {self.scheme})"
        extra = f", k={self.k}" if self.k is not None else ""
        return f"langevin({self.kind}{extra})"

    @property
    def needs_hessian(self) -> bool:
        """Whether the structure uses the Hessian H at the current point."""
        return self.name == "langevin" and self.kind in ("hessian", "eigvec1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the covariance of ``fixed`` as nested lists)."""
        return {
            "name": self.name, "kind": self.kind, "B": self.B, "scheme": self.scheme,
            "k": self.k, "sigma2": self.sigma2,
            "covariance": None if self.covariance is None else self.covariance.tolist(),
        }


def gd() -> NoiseModel:
    r"""Full-batch gradient descent: θ ← θ − η∇L(θ), no noise.

    References
    ----------
    Spec claim B3 (GD never escapes the sharp minimum).
    """
    return NoiseModel("gd")


def sgd(B: int, *, scheme: str = "replacement") -> NoiseModel:
    r"""Minibatch SGD: the gradient is the mean over a batch of B per-sample gradients.

    .. math:: \hat g_B = \frac1B \sum_{b=1}^{B} g_{i_b}(\theta)

    Schemes: ``"replacement"`` (B indices uniform with replacement), ``"iid"`` (B distinct
    indices, drawn afresh each step), ``"reshuffle"`` (each epoch a fresh permutation cut into
    ⌊N/B⌋ batches; the last partial batch is dropped), ``"shuffle_once"`` (the permutation of the
    first epoch reused every epoch).

    Parameters
    ----------
    B : int
        Batch size, 1 ≤ B (≤ N, checked by ``simulate``).
    scheme : str
        One of the four above.

    References
    ----------
    Zhu et al., ICML 2019; Kühn & Rosenow, arXiv:2306.05300 (epoch sampling, spec part D).
    """
    B = check_positive_int(B, "B")
    check_choice(scheme, "scheme", ENGINE_SCHEMES)
    return NoiseModel("sgd", B=B, scheme=scheme)


def langevin(kind: str, *, k: int | None = None, sigma2: float | None = None,
             covariance: ArrayLike | None = None, B: int = 1,
             scheme: str = "replacement") -> NoiseModel:
    r"""Gaussian noise of a given structure (GLD), matched to SGD's covariance Σ̂ of (B, scheme).

    In gradient form ξ ~ N(0, Σ_t) with Σ_t = ``structured_covariance(kind, Σ̂_t, H_t, k=k,
    trace=Tr Σ̂_t)``, Σ̂_t the covariance of ``sgd(B, scheme)``'s minibatch gradient at the
    current point (see :func:`~sgdnoise.sim.dynamics.simulate`).

    Parameters
    ----------
    kind : str
        ``"const"``, ``"dynamic"``, ``"diag"``, ``"full"``, ``"leading"``, ``"hessian"``,
        ``"eigvec1"`` or ``"fixed"`` (see :func:`~sgdnoise.sim.dynamics.structured_covariance`).
    k : int, optional
        Eigenpairs kept by ``leading`` and ``hessian`` (None: all).
    sigma2 : float, optional
        σ² of ``const`` (default: Tr Σ̂ at θ₀ / D in gradient form, noise_trace / D in parameter
        form).
    covariance : (D, D) array
        Required by (and only allowed with) ``fixed``: symmetric positive semi-definite.
    B : int
        Batch size of the SGD being matched.
    scheme : str
        Its sampling scheme (sets the scale of Σ̂).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 4; spec part B.
    """
    check_choice(kind, "kind", KINDS)
    B = check_positive_int(B, "B")
    check_choice(scheme, "scheme", ENGINE_SCHEMES)
    if k is not None:
        if kind not in ("leading", "hessian"):
            raise ValueError(f"k is only used by kind 'leading' or 'hessian'; got kind={kind!r}")
        k = check_positive_int(k, "k")
    if sigma2 is not None:
        if kind != "const":
            raise ValueError(f"sigma2 is only used by kind 'const'; got kind={kind!r}")
        sigma2 = check_positive(sigma2, "sigma2", allow_zero=True)
    cov = None
    if kind == "fixed":
        if covariance is None:
            raise ValueError("covariance is required for kind 'fixed'")
        cov = check_square(as_float_array(covariance, "covariance", ndim=2), "covariance",
                           symmetric=True)
        cov = 0.5 * (cov + cov.T)
        check_psd_stack(cov[None], "covariance")
        cov.setflags(write=False)
    elif covariance is not None:
        raise ValueError(f"covariance is only used by kind 'fixed'; got kind={kind!r}")
    return NoiseModel("langevin", kind=kind, B=B, scheme=scheme, k=k, sigma2=sigma2,
                      covariance=cov)


def _fixed_root(cov: FloatArray) -> FloatArray:
    """Symmetric square root V diag(√λ⁺) Vᵀ of a PSD matrix."""
    lam, V = np.linalg.eigh(cov)
    return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T


__all__ = ["NOISE_NAMES", "NoiseModel", "gd", "langevin", "sgd"]

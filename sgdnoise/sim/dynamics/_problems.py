r"""Problems the replica engine runs on: a loss L(θ) = E_p ℓ_p(θ) with per-sample gradients.

Each public problem validates its data once and hands the backends a *device view* (private):
the same few operations written against an array module ``xp`` (numpy or cupy) for a stack of
replicas θ of shape (R, D):

* ``loss(θ)`` (R,), ``gradient(θ)`` (R, D): full-data L and ∇L;
* ``batch_gradient(θ, idx)`` (R, D): the mean per-sample gradient over the rows idx (R, B);
* ``statistics(θ, full)``: (ḡ, Σ₁) with Σ₁ = (1/N) Σ_p (g_p − ḡ)(g_p − ḡ)ᵀ, as (R, D, D), or
  only its diagonal (R, D) when ``full`` is False (centred two-pass sums over the samples);
* ``hessian(θ)`` (R, D, D): H = E_p h_p.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import Array, FloatArray
from sgdnoise._validate import as_float_array, check_square
from sgdnoise.sim.models.toy import FLAT_HESSIAN, SHARP_HESSIAN, Toy2D

_C = float(np.cos(np.pi / 4))
_S = float(np.sin(np.pi / 4))
#: Elements per temporary (R_block, N, D) array in the blocked per-sample statistics.
_BLOCK_ELEMENTS = 1 << 22


def _as_stack(theta: Any, D: int) -> tuple[FloatArray, bool]:
    th = as_float_array(theta, "theta", ndim=(1, 2))
    if th.shape[-1] != D:
        raise ValueError(f"theta must have shape ({D},) or (R, {D}); got {th.shape}")
    return (th[None], True) if th.ndim == 1 else (th, False)


def _unstack(value: FloatArray, single: bool) -> Any:
    return float(value[0]) if single else value


def _blocks(R: int, per_replica: int) -> list[slice]:
    size = max(1, _BLOCK_ELEMENTS // max(1, per_replica))
    return [slice(s, min(s + size, R)) for s in range(0, R, size)]


def _centred_statistics(G: Any, full: bool, xp: ModuleType) -> tuple[Any, Any]:
    """(ḡ, Σ₁ or its diagonal) of per-sample gradients G (R, N, D), 1/N normalisation."""
    N = G.shape[-2]
    g_mean = G.sum(axis=-2) / N
    Gc = G - g_mean[:, None, :]
    if full:
        R, D = G.shape[0], G.shape[-1]
        check_allocation(R * D * D * 8, f"the per-replica gradient covariances ({R}x{D}x{D})")
        return g_mean, xp.matmul(xp.swapaxes(Gc, -1, -2), Gc) / N
    return g_mean, (Gc * Gc).sum(axis=-2) / N


# ------------------------------------------------------------------------------------- linear
@dataclass(frozen=True, eq=False)
class LinearRegressionProblem:
    r"""Least squares ℓ_p = ½(x_pᵀθ − y_p)², L = E_p ℓ_p, h_p = x_p x_pᵀ.

    The full-data loss and gradient are evaluated through the exact quadratic form about the
    least-squares solution θ* (minimum norm), computed once:

    .. math::
        L(\theta) = L^* + \tfrac12 e^\top A e,\quad \nabla L = A e,\quad e = \theta - \theta^*,
        \quad A = \frac1N X^\top X,\quad L^* = \frac1{2N}\lVert X\theta^* - y\rVert^2,

    which costs O(D²) instead of O(ND) per evaluation and has no cancellation near θ*.
    Per-sample gradients g_p = (x_pᵀθ − y_p) x_p are used for minibatches and for Σ̂.

    Parameters
    ----------
    X : (N, D) array
    y : (N,) array

    References
    ----------
    Spec claims C1–C3 (linear regression) and part D (quadratic loss, epoch sampling);
    Mori et al., ICML 2022 (arXiv:2105.09557); Kühn & Rosenow, arXiv:2306.05300.
    """

    X: FloatArray
    y: FloatArray
    A: FloatArray = field(init=False, repr=False, compare=False)
    theta_star: FloatArray = field(init=False, repr=False, compare=False)
    loss_star: float = field(init=False, repr=False, compare=False)

    name = "linear_regression"

    def __post_init__(self) -> None:
        X = as_float_array(self.X, "X", ndim=2)
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must be a non-empty (N, D) array; got shape {X.shape}")
        y = as_float_array(self.y, "y", ndim=1)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},); got {y.shape}")
        X = np.ascontiguousarray(X)
        A = X.T @ X / X.shape[0]
        A = 0.5 * (A + A.T)
        theta_star = np.linalg.lstsq(X, y, rcond=None)[0]
        r = X @ theta_star - y
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", np.ascontiguousarray(y))
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "theta_star", theta_star)
        object.__setattr__(self, "loss_star", float(0.5 * np.mean(r * r)))

    @property
    def num_params(self) -> int:
        """D."""
        return int(self.X.shape[1])

    @property
    def num_samples(self) -> int:
        """N."""
        return int(self.X.shape[0])

    def default_theta0(self) -> FloatArray:
        """θ₀ = 0."""
        return np.zeros(self.num_params)

    def loss(self, theta: FloatArray) -> float | FloatArray:
        """L(θ) as the engine evaluates it; θ of shape (D,) or (R, D)."""
        th, single = _as_stack(theta, self.num_params)
        return _unstack(_LinearDevice(self, np).loss(th), single)

    def _device(self, xp: ModuleType) -> _LinearDevice:
        return _LinearDevice(self, xp)


class _LinearDevice:
    has_samples = True

    def __init__(self, p: LinearRegressionProblem, xp: ModuleType) -> None:
        self.xp = xp
        self.X = xp.asarray(p.X)
        self.y = xp.asarray(p.y)
        self.A = xp.asarray(p.A)
        self.theta_star = xp.asarray(p.theta_star)
        self.loss_star = p.loss_star
        self.N, self.D = p.X.shape

    def loss(self, theta: Any) -> Any:
        e = theta - self.theta_star
        return self.loss_star + 0.5 * (e * (e @ self.A)).sum(axis=-1)

    def gradient(self, theta: Any) -> Any:
        return (theta - self.theta_star) @ self.A

    def batch_gradient(self, theta: Any, idx: Any) -> Any:
        Xb = self.X[idx]                                          # (R, B, D)
        r = self.xp.matmul(Xb, theta[:, :, None])[..., 0] - self.y[idx]
        return self.xp.matmul(r[:, None, :], Xb)[:, 0, :] / idx.shape[1]

    def statistics(self, theta: Any, full: bool) -> tuple[Any, Any]:
        xp = self.xp
        R = theta.shape[0]
        g_mean = xp.empty((R, self.D))
        S = xp.empty((R, self.D, self.D) if full else (R, self.D))
        for sl in _blocks(R, self.N * self.D):
            r = theta[sl] @ self.X.T - self.y                     # (r, N)
            G = r[:, :, None] * self.X
            g_mean[sl], S[sl] = _centred_statistics(G, full, xp)
        return g_mean, S

    def hessian(self, theta: Any) -> Any:
        return self.xp.broadcast_to(self.A, (theta.shape[0], self.D, self.D))


# ---------------------------------------------------------------------------------------- toy
@dataclass(frozen=True, eq=False)
class Toy2DProblem:
    r"""The two-basin toy of spec B3 (:class:`~sgdnoise.sim.models.Toy2D`) on data x.

    Per-sample losses, gradients and Hessians are those of the active branch (the first at a
    tie); H = E_p h_p = f h₁ + (1 − f) 2I with f the fraction of samples on the sharp branch.

    Parameters
    ----------
    x : (N, 2) array
        Data, e.g. :func:`~sgdnoise.sim.models.toy_data`.

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), Fig. 2; spec claim B3.
    """

    x: FloatArray
    model: Toy2D = field(init=False, repr=False, compare=False)

    name = "toy2d"

    def __post_init__(self) -> None:
        model = self.x if isinstance(self.x, Toy2D) else Toy2D(self.x)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "x", np.ascontiguousarray(model.x))

    @property
    def num_params(self) -> int:
        """D = 2."""
        return 2

    @property
    def num_samples(self) -> int:
        """N."""
        return int(self.x.shape[0])

    def default_theta0(self) -> FloatArray:
        """θ₀ = (1, 1), the start of spec B3 (next to the sharp minimum)."""
        return np.ones(2)

    def loss(self, theta: FloatArray) -> float | FloatArray:
        """L(θ) as the engine evaluates it; θ of shape (2,) or (R, 2)."""
        th, single = _as_stack(theta, 2)
        return _unstack(_ToyDevice(self, np).loss(th), single)

    def _device(self, xp: ModuleType) -> _ToyDevice:
        return _ToyDevice(self, xp)


class _ToyDevice:
    has_samples = True

    def __init__(self, p: Toy2DProblem, xp: ModuleType) -> None:
        self.xp = xp
        self.x = xp.asarray(p.x)
        self.N, self.D = p.x.shape
        self.H1 = xp.asarray(SHARP_HESSIAN)
        self.H2 = xp.asarray(FLAT_HESSIAN)

    def _per_sample(self, theta: Any, x: Any) -> tuple[Any, Any, Any]:
        """Losses (R, n), gradients (R, n, 2) and first-branch mask of θ (R, 2) on x (R|1, n, 2)."""
        xp = self.xp
        d0 = theta[:, None, 0] - x[..., 0]
        d1 = theta[:, None, 1] - x[..., 1]
        p = d0 - 1.0
        q = d1 - 1.0
        a = _C * p - _S * q
        b = _C * p + _S * q
        f1 = 10.0 * a * a + 100.0 * b * b
        e1 = d0 + 1.0
        e2 = d1 + 1.0
        f2 = e1 * e1 + e2 * e2
        first = f1 <= f2
        loss = xp.where(first, f1, f2)
        g0 = xp.where(first, 20.0 * a * _C + 200.0 * b * _C, 2.0 * e1)
        g1 = xp.where(first, -20.0 * a * _S + 200.0 * b * _S, 2.0 * e2)
        return loss, xp.stack([g0, g1], axis=-1), first

    def loss(self, theta: Any) -> Any:
        return self._per_sample(theta, self.x[None])[0].sum(axis=-1) / self.N

    def gradient(self, theta: Any) -> Any:
        return self._per_sample(theta, self.x[None])[1].sum(axis=-2) / self.N

    def batch_gradient(self, theta: Any, idx: Any) -> Any:
        return self._per_sample(theta, self.x[idx])[1].sum(axis=-2) / idx.shape[1]

    def statistics(self, theta: Any, full: bool) -> tuple[Any, Any]:
        return _centred_statistics(self._per_sample(theta, self.x[None])[1], full, self.xp)

    def hessian(self, theta: Any) -> Any:
        first = self._per_sample(theta, self.x[None])[2]
        frac = (first.sum(axis=-1) / self.N)[:, None, None]
        return frac * self.H1 + (1.0 - frac) * self.H2


# -------------------------------------------------------------------------------- quadratic
@dataclass(frozen=True, eq=False)
class QuadraticProblem:
    r"""A quadratic loss L = ½(θ − θ*)ᵀH(θ − θ*), optionally with per-sample linear tilts.

    Without ``G`` there is no data: ∇L = H(θ − θ*), and SGD and the Langevin kinds built from Σ̂
    (``diag``, ``full``, ``leading``) do not apply; ``fixed``, ``const`` (with ``sigma2``), and
    ``dynamic``/``hessian``/``eigvec1`` with an explicit ``noise_trace`` do, as does GD.

    With ``G`` (N rows) the loss is the mean of N per-sample quadratics sharing the Hessian H,

    .. math::
        \ell_p(\theta) = \tfrac12 e^\top H e + (g_p - \bar g)^\top e,\qquad
        e = \theta - \theta^*,\qquad
        \hat g_B(\theta) = H e + \frac1B \sum_{p \in B} (g_p - \bar g),

    so L and θ* are unchanged (the tilts are centred) and the minibatch noise
    ξ_B = mean_{p∈B}(g_p − ḡ) does not depend on θ: it is the SGD noise *frozen at the minimum*
    (spec part D), with per-sample covariance Σ₁ = (1/N) Σ_p (g_p − ḡ)(g_p − ḡ)ᵀ (1/N
    normalisation).  Choosing Σ₁ to commute with H makes every eigendirection of H an
    independent AR(2) process under (momentum) SGD.

    Parameters
    ----------
    H : (D, D) symmetric array
    theta_star : (D,) array, optional
        The minimiser (default 0).
    G : (N, D) array, optional
        Per-sample gradients at the minimum g_p (N ≥ 1); stored centred (ḡ removed).

    References
    ----------
    Zhu et al., ICML 2019, claim B1 (exact on quadratics); Kühn & Rosenow, arXiv:2306.05300
    (spec part D: quadratic loss, noise frozen at the minimum).
    """

    H: FloatArray
    theta_star: FloatArray | None = None
    G: FloatArray | None = None

    name = "quadratic"

    def __post_init__(self) -> None:
        H = check_square(self.H, "H", symmetric=True)
        H = 0.5 * (H + H.T)
        D = H.shape[0]
        ts = np.zeros(D) if self.theta_star is None else as_float_array(
            self.theta_star, "theta_star", ndim=1)
        if ts.shape != (D,):
            raise ValueError(f"theta_star must have shape ({D},); got {ts.shape}")
        object.__setattr__(self, "H", np.ascontiguousarray(H))
        object.__setattr__(self, "theta_star", np.ascontiguousarray(ts))
        if self.G is not None:
            G = as_float_array(self.G, "G", ndim=2)
            if G.shape[0] < 1 or G.shape[1] != D:
                raise ValueError(f"G must have shape (N, {D}) with N >= 1; got {G.shape}")
            object.__setattr__(self, "G", np.ascontiguousarray(G - G.mean(axis=0)))

    @property
    def num_params(self) -> int:
        """D."""
        return int(self.H.shape[0])

    @property
    def num_samples(self) -> int | None:
        """N (rows of ``G``), or None without data."""
        return None if self.G is None else int(self.G.shape[0])

    def default_theta0(self) -> FloatArray:
        """θ₀ = θ* (start at the minimum)."""
        return np.array(self.theta_star, dtype=np.float64)

    def loss(self, theta: FloatArray) -> float | FloatArray:
        """L(θ); θ of shape (D,) or (R, D)."""
        th, single = _as_stack(theta, self.num_params)
        return _unstack(_QuadraticDevice(self, np).loss(th), single)

    def in_eigenbasis(self) -> tuple[QuadraticProblem, FloatArray, FloatArray]:
        r"""The same problem in the eigenbasis of H: (problem, λ, V) with H = V diag(λ) Vᵀ.

        .. math:: x = V^\top\theta,\quad H \to \mathrm{diag}(\lambda),\quad
                  \theta^* \to V^\top\theta^*,\quad g_p \to V^\top g_p

        (S)GD with either momentum form is equivariant under this rotation, so a run of the
        returned problem is the original run seen in the eigenbasis: its coordinates are the
        projections of θ on the eigenvectors, and its moments are per eigendirection.  λ is in
        ascending order (``numpy.linalg.eigh``).

        Returns
        -------
        problem : QuadraticProblem
        lam : (D,) array
        V : (D, D) array (columns: eigenvectors)

        References
        ----------
        Kühn & Rosenow, arXiv:2306.05300 (spec part D: one AR(2) per eigendirection).
        """
        lam, V = np.linalg.eigh(self.H)
        G = None if self.G is None else self.G @ V
        return QuadraticProblem(np.diag(lam), V.T @ self.theta_star, G), lam, V

    def _device(self, xp: ModuleType) -> _QuadraticDevice:
        return _QuadraticDevice(self, xp)


class _QuadraticDevice:

    def __init__(self, p: QuadraticProblem, xp: ModuleType) -> None:
        self.xp = xp
        self.A = xp.asarray(p.H)
        self.theta_star = xp.asarray(p.theta_star)
        self.loss_star = 0.0
        self.has_samples = p.G is not None
        self.G = None if p.G is None else xp.asarray(p.G)
        self.N = p.num_samples
        self.D = p.H.shape[0]

    def loss(self, theta: Any) -> Any:
        e = theta - self.theta_star
        return 0.5 * (e * (e @ self.A)).sum(axis=-1)

    def gradient(self, theta: Any) -> Any:
        return (theta - self.theta_star) @ self.A

    def batch_gradient(self, theta: Any, idx: Any) -> Any:
        return self.gradient(theta) + self.G[idx].sum(axis=1) / idx.shape[1]

    def statistics(self, theta: Any, full: bool) -> tuple[Any, Any]:
        xp = self.xp
        R = theta.shape[0]
        g_mean = self.gradient(theta)
        if full:
            S = xp.matmul(self.G.T, self.G) / self.N
            return g_mean, xp.broadcast_to(S, (R, self.D, self.D)).copy()
        d = (self.G * self.G).sum(axis=0) / self.N
        return g_mean, xp.broadcast_to(d, (R, self.D)).copy()

    def hessian(self, theta: Any) -> Any:
        return self.xp.broadcast_to(self.A, (theta.shape[0], self.D, self.D))


# ------------------------------------------------------------------------------------ model
@dataclass(frozen=True, eq=False)
class ModelProblem:
    r"""Any model with per-sample gradients, run replica by replica (numpy backend only).

    The model must provide ``per_sample_gradients(w, x, y)`` (N, D) and ``loss(w, x, y)`` (or
    ``per_sample_losses``); ``hessian(w, x, y)`` is needed by the Hessian-based Langevin kinds.
    With ``x = y = None`` the methods are called as ``f(w)`` (models that hold their data, such
    as :class:`~sgdnoise.sim.models.PerSampleQuadratic`).  A minibatch gradient is the mean of
    ``per_sample_gradients`` on the batch rows.

    Parameters
    ----------
    model : object
    x, y : arrays, optional
        Training inputs and targets (rows are samples).

    References
    ----------
    Spec part B (claim B4, a network's SGD noise) and part A (per-sample gradients).
    """

    model: Any
    x: Array | None = None
    y: Array | None = None

    name = "model"

    def __post_init__(self) -> None:
        if not callable(getattr(self.model, "per_sample_gradients", None)):
            raise ValueError(f"model must have a per_sample_gradients method; got "  # noqa: TRY004
                             f"{type(self.model).__name__}")
        if not any(callable(getattr(self.model, m, None)) for m in ("loss", "per_sample_losses")):
            raise ValueError(f"model must have a loss or per_sample_losses method; got "
                             f"{type(self.model).__name__}")
        if (self.x is None) != (self.y is None):
            raise ValueError("x and y must both be given or both be None")
        if self.x is not None:
            x = np.asarray(self.x)
            y = np.asarray(self.y)
            if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] < 1:
                raise ValueError(f"x and y must have the same number of rows (>= 1); got "
                                 f"{x.shape} and {y.shape}")
            object.__setattr__(self, "x", x)
            object.__setattr__(self, "y", y)

    @property
    def has_hessian(self) -> bool:
        """Whether the model has a ``hessian`` method."""
        return callable(getattr(self.model, "hessian", None))

    @property
    def num_params(self) -> int | None:
        """D from ``model.num_params`` if it has one (else taken from θ₀)."""
        n = getattr(self.model, "num_params", None)
        return int(n) if isinstance(n, (int, np.integer)) else None

    @property
    def num_samples(self) -> int | None:
        """N: rows of x, or ``model.num_samples`` for models that hold their data."""
        if self.x is not None:
            return int(self.x.shape[0])
        n = getattr(self.model, "num_samples", None)
        return int(n) if isinstance(n, (int, np.integer)) else None

    def default_theta0(self) -> FloatArray:
        """No default: ``simulate`` needs an explicit ``theta0`` for a model."""
        raise ValueError("theta0 is required for a ModelProblem")

    def loss(self, theta: FloatArray) -> float | FloatArray:
        """L(θ); θ of shape (D,) or (R, D)."""
        th = as_float_array(theta, "theta", ndim=(1, 2))
        single = th.ndim == 1
        out = _ModelDevice(self).loss(th[None] if single else th)
        return _unstack(out, single)

    def _device(self, xp: ModuleType) -> _ModelDevice:
        return _ModelDevice(self)


class _ModelDevice:
    has_samples = True

    def __init__(self, p: ModelProblem) -> None:
        self.xp = np
        self.p = p
        self.model = p.model
        self.N = p.num_samples
        self.D = p.num_params

    def _call(self, name: str, w: FloatArray, rows: Any = None) -> Any:
        f = getattr(self.model, name)
        if self.p.x is None:
            return f(w)
        if rows is None:
            return f(w, self.p.x, self.p.y)
        return f(w, self.p.x[rows], self.p.y[rows])

    def per_sample_gradients(self, w: FloatArray, rows: Any = None) -> FloatArray:
        G = np.asarray(self._call("per_sample_gradients", w, rows), dtype=np.float64)
        if self.p.x is None and rows is not None:
            G = G[rows]
        if G.ndim != 2 or G.shape[1] != w.shape[0]:
            raise ValueError(f"model.per_sample_gradients must return shape (N, {w.shape[0]}); "
                             f"got {G.shape}")
        return G

    def loss(self, theta: FloatArray) -> FloatArray:
        out = np.empty(theta.shape[0])
        for r, w in enumerate(theta):
            if callable(getattr(self.model, "loss", None)):
                out[r] = float(self._call("loss", w))
            else:
                out[r] = float(np.mean(self._call("per_sample_losses", w)))
        return out

    def gradient(self, theta: FloatArray) -> FloatArray:
        return np.stack([self.per_sample_gradients(w).mean(axis=0) for w in theta])

    def batch_gradient(self, theta: FloatArray, idx: Any) -> FloatArray:
        return np.stack([self.per_sample_gradients(w, idx[r]).mean(axis=0)
                         for r, w in enumerate(theta)])

    def statistics(self, theta: FloatArray, full: bool) -> tuple[FloatArray, FloatArray]:
        G = np.stack([self.per_sample_gradients(w) for w in theta])
        return _centred_statistics(G, full, np)

    def hessian(self, theta: FloatArray) -> FloatArray:
        return np.stack([np.asarray(self._call("hessian", w), dtype=np.float64) for w in theta])


PROBLEM_TYPES = (LinearRegressionProblem, Toy2DProblem, QuadraticProblem, ModelProblem)

__all__ = ["LinearRegressionProblem", "ModelProblem", "QuadraticProblem", "Toy2DProblem"]

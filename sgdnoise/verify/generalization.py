r"""Generalization of GD, SGD and structured Langevin noise from one GD-trained start (spec part B).

The paper's Sec. 5 experiment, run offline on scikit-learn's digits: a ReLU MLP is first trained
by full-batch gradient descent on a small training set until its training loss is small (the
*warm start*); from that same point every variant then runs ``num_steps`` steps of

.. math:: \theta_{t+1} = \theta_t - \eta\,\bigl(\nabla L(\theta_t) + \xi_t\bigr),
          \qquad \xi_t \sim \mathcal N(0, \Sigma_t),

with ``gd`` (ξ = 0), ``sgd`` (the minibatch gradient, B samples drawn with replacement, in place
of ∇L + ξ) and the Langevin (GLD) kinds of :func:`~sgdnoise.sim.dynamics.structured_covariance`
at matched magnitude Tr Σ_t = Tr Σ̂(θ_t), Σ̂ = Σ₁/B the covariance of SGD's minibatch gradient
(with replacement) re-estimated at every step from the N per-sample gradients:

* ``const``: σ² I with σ² = Tr Σ̂(θ₀)/D fixed at the warm start θ₀ (the paper's constant-variance
  GLD; matched to SGD at the start only);
* ``dynamic``: (Tr Σ̂(θ_t)/D) I;
* ``diag``: diag Σ̂(θ_t), the per-coordinate variances of the per-sample gradients over B;
* ``leading``: the top-k eigenpairs of Σ̂(θ_t) rescaled to Tr Σ̂(θ_t), from a truncated SVD of
  the centred per-sample gradient matrix (computed through its N×N Gram matrix);
* ``eigvec1``: Tr Σ̂(θ_t) · v₁v₁ᵀ, v₁ the top Hessian eigenvector, tracked by a few Lanczos
  iterations with the exact Hessian-vector product, warm-started from the previous step's v₁.

No D×D matrix is formed.  At the end of each run the module reports the training loss and
accuracy, the test accuracy (the test set is every digit not in the training set) and three
flatness measures on the training loss: the top Hessian eigenvalue (Lanczos), Tr H (Hutchinson,
with its standard error) and the mean loss increase under random weight perturbations of a fixed
Euclidean radius.  Run it as ``python -m sgdnoise.verify.generalization --out DIR``.

References
----------
Zhu, Wu, Yu, Wu & Ma, "The Anisotropic Noise in Stochastic Gradient Descent", ICML 2019
(arXiv:1803.00195), Sec. 5; authors' code uuujf/SGDNoise (``FashionMNIST``); spec part B, last
bullet.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

from sgdnoise import _io
from sgdnoise._io import provenance, write_json_atomic
from sgdnoise._progress import progress_bar
from sgdnoise._typing import FloatArray, IntArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int
from sgdnoise.sim.datasets import digits
from sgdnoise.sim.models import MLP
from sgdnoise.sim.training import TrainConfig, train

#: Every variant, in the order of the tables and figures (the index also seeds the variant).
VARIANTS: tuple[str, ...] = ("gd", "sgd", "const", "dynamic", "diag", "leading", "eigvec1")
#: The Langevin (GLD) noise kinds sampled by :func:`noise_factor`.
NOISE_KINDS: tuple[str, ...] = ("const", "dynamic", "diag", "leading", "eigvec1")
_PER_SAMPLE = ("dynamic", "diag", "leading", "eigvec1")
_METRICS = ("train_loss", "train_accuracy", "test_accuracy", "top_eigenvalue", "trace_H",
            "perturbed_loss_increase")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GeneralizationConfig:
    """Settings of :func:`compare_noise` (defaults: a run of well under a minute on two cores).

    Attributes
    ----------
    hidden : tuple of int
        Hidden widths of the ReLU MLP 64-…-10 (cross-entropy loss).
    bias : bool
        Biases in every layer (default: D = 2410 parameters for ``hidden=(32,)``).
    train_size : int
        Training samples drawn from the 1797 digits; the other ones form the test set.
    corrupt_labels : float
        Fraction of the training labels replaced by a uniformly drawn *different* class (seeded;
        the test labels stay clean). The paper's small-data runs used partly corrupted labels to
        widen the generalization gap; 0 (default) keeps every label.
    eta : float
        Learning rate η of every variant after the warm start.
    B : int
        Batch size of SGD (with replacement); also sets the noise scale Σ̂ = Σ₁/B.
    num_steps : int
        Steps of each variant from the warm start.
    variants : tuple of str
        Subset of :data:`VARIANTS`.
    k : int
        Eigenpairs of Σ̂ kept by ``leading``.
    eigvec_iters : int
        Lanczos iterations per step tracking v₁ for ``eigvec1`` (warm-started).
    warm_eta : float
        Learning rate of the full-batch GD warm start.
    warm_loss : float
        The warm start stops once the training loss is below this value …
    warm_max_steps : int
        … or after this many GD steps.
    lanczos_iters : int
        Lanczos iterations for the top Hessian eigenvalue (flatness) and the initial v₁.
    num_probes : int
        Rademacher probes of the Hutchinson estimate of Tr H (at least 2, for its s.e.).
    radius : float
        Euclidean norm ρ of the random weight perturbations (directions uniform on the sphere).
    num_perturbations : int
        Perturbations averaged for the loss increase (at least 2).
    eval_every : int
        Record training loss and test accuracy every this many steps (0: only at the end).
    num_seeds : int
        Independent replicas (initialisation, warm start, noise); the data split stays fixed.
    seed : int
        Root seed of the split, the replicas and every noise stream.
    """

    hidden: tuple[int, ...] = (32,)
    bias: bool = True
    train_size: int = 500
    corrupt_labels: float = 0.0
    eta: float = 0.1
    B: int = 20
    num_steps: int = 150
    variants: tuple[str, ...] = VARIANTS
    k: int = 10
    eigvec_iters: int = 4
    warm_eta: float = 0.2
    warm_loss: float = 0.02
    warm_max_steps: int = 3000
    lanczos_iters: int = 40
    num_probes: int = 30
    radius: float = 1.0
    num_perturbations: int = 30
    eval_every: int = 50
    num_seeds: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            hidden = tuple(self.hidden)
        except TypeError as exc:
            raise ValueError(f"hidden must be a tuple of widths; got {self.hidden!r}") from exc
        for width in hidden:
            check_positive_int(width, "hidden")
        object.__setattr__(self, "hidden", hidden)
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False; got {self.bias!r}")  # noqa: TRY004
        check_positive_int(self.train_size, "train_size", minimum=2)
        if self.train_size > 1797 - 10:
            raise ValueError(f"train_size must leave a test set (<= 1787); got {self.train_size}")
        if not 0.0 <= float(self.corrupt_labels) < 1.0:
            raise ValueError(f"corrupt_labels must be in [0, 1); got {self.corrupt_labels!r}")
        check_positive(self.eta, "eta")
        check_positive_int(self.B, "B")
        if self.B > self.train_size:
            raise ValueError(f"B must be <= train_size = {self.train_size}; got {self.B}")
        check_positive_int(self.num_steps, "num_steps", minimum=0)
        if isinstance(self.variants, str):
            raise ValueError(f"variants must be a tuple of names; got {self.variants!r}")  # noqa: TRY004
        variants = tuple(self.variants)
        if not variants:
            raise ValueError("variants must name at least one of " + ", ".join(VARIANTS))
        for v in variants:
            check_choice(v, "variants", VARIANTS)
        if len(set(variants)) != len(variants):
            raise ValueError(f"variants must not repeat a name; got {variants}")
        object.__setattr__(self, "variants", variants)
        check_positive_int(self.k, "k")
        check_positive_int(self.eigvec_iters, "eigvec_iters")
        check_positive(self.warm_eta, "warm_eta")
        check_positive(self.warm_loss, "warm_loss")
        check_positive_int(self.warm_max_steps, "warm_max_steps", minimum=0)
        check_positive_int(self.lanczos_iters, "lanczos_iters", minimum=2)
        check_positive_int(self.num_probes, "num_probes", minimum=2)
        check_positive(self.radius, "radius")
        check_positive_int(self.num_perturbations, "num_perturbations", minimum=2)
        check_positive_int(self.eval_every, "eval_every", minimum=0)
        check_positive_int(self.num_seeds, "num_seeds")
        check_positive_int(self.seed, "seed", minimum=0)

    @classmethod
    def full(cls, **changes: Any) -> GeneralizationConfig:
        """The larger setting of the docs: 1000 training samples, 3000 steps, 4 seeds."""
        base = {"train_size": 1000, "num_steps": 3000, "num_seeds": 4, "eval_every": 250,
                "hidden": (32,)}
        return cls(**{**base, **changes})


# --------------------------------------------------------------------------------------------
# noise factors
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NoiseFactor:
    r"""A Gaussian noise ξ ~ N(0, Σ) given by a factor of Σ, never by Σ itself.

    Either ``std`` is set (diagonal Σ = diag(std²), ξ = std ⊙ z, z ~ N(0, I_D)) or ``U`` is
    (low rank Σ = U Uᵀ, ξ = U z, z ~ N(0, I_r)).

    Attributes
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    trace : float
        Tr Σ.
    std : (D,) array or None
    U : (D, r) array or None
    """

    kind: str
    trace: float
    std: FloatArray | None = None
    U: FloatArray | None = None

    @property
    def D(self) -> int:
        """Dimension of ξ."""
        return int(self.std.size if self.std is not None else self.U.shape[0])  # type: ignore[union-attr]

    def sample(self, rng: np.random.Generator) -> FloatArray:
        """One draw ξ = std ⊙ z (z ∈ R^D) or ξ = U z (z ∈ R^r), z standard normal from ``rng``."""
        if self.std is not None:
            return self.std * rng.standard_normal(self.std.size)
        assert self.U is not None
        return self.U @ rng.standard_normal(self.U.shape[1])

    def covariance(self) -> FloatArray:
        """The dense D×D covariance Σ (for checks on small networks)."""
        if self.std is not None:
            return np.diag(self.std**2)
        assert self.U is not None
        return self.U @ self.U.T


def sgd_noise_trace(G: FloatArray, B: int) -> float:
    r"""Tr Σ̂ of SGD's minibatch gradient (with replacement) from per-sample gradients.

    .. math:: \operatorname{Tr}\hat\Sigma = \frac{1}{B}\,\frac1N\sum_{p=1}^N \|g_p - \bar g\|^2

    (1/N normalisation, as :func:`~sgdnoise.sim.dynamics.minibatch_gradient_covariance`).

    Parameters
    ----------
    G : (N, D) array
        Per-sample gradients g_p.
    B : int
        Batch size.

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), matched magnitude Tr Σ = Tr Σ̂; spec part B.
    """
    G = _check_G(G)
    B = check_positive_int(B, "B")
    Gc = G - G.mean(axis=0)
    return float(np.einsum("pd,pd->", Gc, Gc) / (G.shape[0] * B))


def _check_G(G: Any) -> FloatArray:
    G = as_float_array(G, "G", ndim=2)
    if G.shape[0] < 1 or G.shape[1] < 1:
        raise ValueError(f"G must have shape (N, D) with N, D >= 1; got {G.shape}")
    return G


def noise_factor(kind: str, G: FloatArray, *, B: int, k: int | None = None,
                 sigma2: float | None = None, v1: FloatArray | None = None) -> NoiseFactor:
    r"""Factor of the GLD noise covariance of one kind at matched magnitude, from G alone.

    With g_p the per-sample gradients, G_c = G − ḡ (centred rows), Σ̂ = G_cᵀG_c/(NB) (SGD with
    replacement) and t = Tr Σ̂ (:func:`sgd_noise_trace`), the covariances are those of
    :func:`~sgdnoise.sim.dynamics.structured_covariance` with ``trace=t``:

    .. math::
        \text{const: } \sigma^2 I,\quad
        \text{dynamic: } \tfrac tD I,\quad
        \text{diag: } \operatorname{diag}\hat\Sigma,\quad
        \text{leading: } \frac{t}{\sum_{i\le k}\lambda_i}\sum_{i\le k}\lambda_i v_iv_i^\top,\quad
        \text{eigvec1: } t\,v_1v_1^\top .

    For ``leading`` the eigenpairs of Σ̂ come from a truncated SVD of G_c, G_c = Σ_i s_i u_i v_iᵀ,
    λ_i = s_i²/(NB), computed through the N×N Gram matrix G_cG_cᵀ (its top-k eigenvectors u_i,
    then v_i = G_cᵀu_i/s_i); eigenvalues below 10⁻¹² λ₁ count as zero (Σ̂ has rank ≤ N − 1, so
    k > rank keeps only the nonzero ones).  Exact ties at the k-th eigenvalue (a measure-zero
    event for real data) are broken by LAPACK's order rather than shared as in
    :func:`~sgdnoise.sim.dynamics.top_weights`.  No D×D matrix is formed.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS`.
    G : (N, D) array
        Per-sample gradients at the current point (only t is used by ``dynamic``; nothing but D
        by ``const``).
    B : int
        Batch size of the SGD whose magnitude is matched.
    k : int, optional
        Eigenpairs kept by ``leading`` (required there).
    sigma2 : float, optional
        Per-coordinate variance of ``const`` (required there).
    v1 : (D,) array, optional
        Top Hessian eigenvector for ``eigvec1`` (required there; normalised here).

    Returns
    -------
    NoiseFactor

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 4–5 (GLD const, dynamic, diag,
    leading, 1st eigvec); spec part B.
    """
    check_choice(kind, "kind", NOISE_KINDS)
    G = _check_G(G)
    B = check_positive_int(B, "B")
    N, D = G.shape
    if kind == "const":
        if sigma2 is None:
            raise ValueError("sigma2 is required for kind='const'")
        s2 = check_positive(sigma2, "sigma2", allow_zero=True)
        return NoiseFactor(kind, D * s2, std=np.full(D, math.sqrt(s2)))
    Gc = G - G.mean(axis=0)
    if kind == "diag":
        d = np.einsum("pd,pd->d", Gc, Gc) / (N * B)
        return NoiseFactor(kind, float(d.sum()), std=np.sqrt(d))
    t = float(np.einsum("pd,pd->", Gc, Gc) / (N * B))
    if kind == "dynamic":
        return NoiseFactor(kind, t, std=np.full(D, math.sqrt(t / D)))
    if kind == "eigvec1":
        if v1 is None:
            raise ValueError("v1 (the top Hessian eigenvector) is required for kind='eigvec1'")
        v = as_float_array(v1, "v1", ndim=1)
        norm = float(np.linalg.norm(v))
        if v.size != D or norm == 0.0:
            raise ValueError(f"v1 must be a nonzero vector of length D = {D}; got {v.shape}")
        return NoiseFactor(kind, t, U=(math.sqrt(t) / norm) * v[:, None])
    if k is None:
        raise ValueError("k is required for kind='leading'")
    k = check_positive_int(k, "k")
    if k > D:
        raise ValueError(f"k must be <= D = {D}; got {k}")
    lam, V = _leading_eigenpairs(Gc, k, N * B)
    if lam.size == 0:
        return NoiseFactor(kind, 0.0, U=np.zeros((D, 1)))
    mu = lam * (t / lam.sum())
    return NoiseFactor(kind, float(mu.sum()), U=V * np.sqrt(mu))


def _leading_eigenpairs(Gc: FloatArray, k: int, scale: float) -> tuple[FloatArray, FloatArray]:
    """Top-k eigenpairs (descending, positive only) of Gcᵀ Gc / scale via the Gram matrix."""
    N = Gc.shape[0]
    r = min(k, N)
    K = Gc @ Gc.T
    s2, Uk = scipy.linalg.eigh(K, subset_by_index=[N - r, N - 1], driver="evx")
    s2, Uk = s2[::-1].copy(), np.ascontiguousarray(Uk[:, ::-1])
    keep = s2 > 1e-12 * max(float(s2[0]), 0.0) if s2.size and s2[0] > 0 else np.zeros(0, bool)
    s2, Uk = s2[keep], Uk[:, keep]
    V = (Gc.T @ Uk) / np.sqrt(s2)
    return s2 / scale, V


# --------------------------------------------------------------------------------------------
# Lanczos and flatness
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopEigenpair:
    """Largest (algebraic) Ritz pair of a symmetric operator.

    Attributes
    ----------
    lam : float
    v : (D,) array
        Unit vector.
    residual : float
        ‖Hv − λv‖ from the Lanczos recurrence (|β_m s_m|; 0 for an invariant subspace).
    num_iters : int
        Operator applications used.
    """

    lam: float
    v: FloatArray
    residual: float
    num_iters: int


def lanczos_top(hvp: Callable[[FloatArray], FloatArray], v0: FloatArray, *,
                num_iters: int) -> TopEigenpair:
    r"""Top eigenpair of a symmetric H from ``num_iters`` Lanczos steps started at ``v0``.

    Builds the Krylov basis q_1 = v0/‖v0‖, …, q_m with full reorthogonalisation, the tridiagonal
    T_m = Q_mᵀ H Q_m and returns its largest Ritz value θ with Ritz vector Q_m s:

    .. math:: H Q_m = Q_m T_m + \beta_m q_{m+1} e_m^\top,
              \qquad \|H Q_m s - \theta Q_m s\| = |\beta_m s_m| .

    Deterministic for a given ``v0``; with ``num_iters`` ≥ D (or an invariant subspace) exact.
    A warm start near the answer needs few iterations.

    Parameters
    ----------
    hvp : callable
        v ↦ Hv.
    v0 : (D,) array
        Nonzero start vector.
    num_iters : int
        Krylov dimension m ≥ 1 (capped at D).

    References
    ----------
    C. Lanczos, J. Res. Nat. Bur. Standards 45 (1950); Golub & Van Loan, Matrix Computations,
    Sec. 10.1; used for v₁ and λ_max as in Zhu et al., ICML 2019 (spec part B).
    """
    v0 = as_float_array(v0, "v0", ndim=1)
    num_iters = check_positive_int(num_iters, "num_iters")
    norm = float(np.linalg.norm(v0))
    if norm == 0.0:
        raise ValueError("v0 must be nonzero")
    D = v0.size
    m = min(num_iters, D)
    Q = np.zeros((m, D))
    alpha = np.zeros(m)
    beta = np.zeros(m)
    q = v0 / norm
    used = 0
    for j in range(m):
        Q[j] = q
        w = np.asarray(hvp(q), dtype=np.float64)
        used += 1
        alpha[j] = float(q @ w)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)
        beta[j] = float(np.linalg.norm(w))
        scale = max(abs(alpha[:j + 1]).max(), 1e-300)
        if j == m - 1 or beta[j] <= 1e-13 * scale:
            break
        q = w / beta[j]
    n = used
    theta, S = scipy.linalg.eigh_tridiagonal(alpha[:n], beta[:n - 1]) if n > 1 else (
        alpha[:1], np.ones((1, 1)))
    s = S[:, -1]
    v = Q[:n].T @ s
    v /= np.linalg.norm(v)
    return TopEigenpair(lam=float(theta[-1]), v=v, residual=float(abs(beta[n - 1] * s[-1])),
                        num_iters=used)


def hutchinson_trace(hvp: Callable[[FloatArray], FloatArray], D: int, *, num_probes: int,
                     rng: np.random.Generator) -> tuple[float, float]:
    r"""Hutchinson's estimate of Tr H with Rademacher probes, and its standard error.

    .. math:: \widehat{\operatorname{Tr} H} = \frac1n\sum_{j=1}^n z_j^\top H z_j,\quad
              z_j \in \{\pm1\}^D,\qquad
              \text{s.e.} = \frac{\operatorname{sd}(z_j^\top H z_j)}{\sqrt n}
              \ (\text{sample s.d., } n-1).

    Returns
    -------
    (estimate, standard error)

    References
    ----------
    M. F. Hutchinson, Comm. Statist. Simulation Comput. 19 (1990); flatness measure for spec
    part B's generalization comparison.
    """
    D = check_positive_int(D, "D")
    num_probes = check_positive_int(num_probes, "num_probes", minimum=2)
    values = np.empty(num_probes)
    for j in range(num_probes):
        z = rng.choice(np.array([-1.0, 1.0]), size=D)
        values[j] = float(z @ hvp(z))
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(num_probes))


def perturbed_loss_increase(loss: Callable[[FloatArray], float], w: FloatArray, *, radius: float,
                            num_perturbations: int, rng: np.random.Generator
                            ) -> tuple[float, float]:
    r"""Mean loss increase under random weight perturbations of fixed Euclidean norm ρ.

    .. math:: \overline{\Delta L} = \frac1n\sum_{j=1}^n L(\theta + \rho\,u_j) - L(\theta),
              \qquad u_j = z_j/\|z_j\|,\ z_j \sim \mathcal N(0, I_D),

    i.e. directions uniform on the unit sphere (isotropic Gaussian directions normalised to the
    radius); standard error sd/√n.  For a quadratic L it is ρ² Tr H/(2D) on average.

    Returns
    -------
    (mean increase, standard error)

    References
    ----------
    Keskar et al., ICLR 2017 (sharpness under perturbations); flatness measure for spec part B's
    generalization comparison (Zhu et al., ICML 2019).
    """
    w = as_float_array(w, "w", ndim=1)
    radius = check_positive(radius, "radius")
    num_perturbations = check_positive_int(num_perturbations, "num_perturbations", minimum=2)
    base = float(loss(w))
    values = np.empty(num_perturbations)
    for j in range(num_perturbations):
        z = rng.standard_normal(w.size)
        values[j] = float(loss(w + radius * z / np.linalg.norm(z))) - base
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(num_perturbations))


# --------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------

def split_digits(train_size: int, *, seed: int, corrupt_labels: float = 0.0
                 ) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """Digits split into a random training set of ``train_size`` and the rest as test set.

    Pixels are scaled to [0, 1] and standardised with the training set's per-feature mean and
    standard deviation (features constant on the training set are only centred). With
    ``corrupt_labels`` = f > 0, round(f·train_size) training samples chosen at random get a
    uniformly drawn different label (stream independent of the split's).

    References
    ----------
    scikit-learn digits (Alpaydin & Kaynak 1998), see :func:`sgdnoise.sim.datasets.digits`.
    """
    train_size = check_positive_int(train_size, "train_size", minimum=2)
    data = digits(standardize=False)
    N = data.x.shape[0]
    if train_size >= N:
        raise ValueError(f"train_size must be < {N}; got {train_size}")
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0])).permutation(N)
    tr, te = perm[:train_size], perm[train_size:]
    mean = data.x[tr].mean(axis=0)
    std = data.x[tr].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    y_train = data.y[tr].copy()
    if not 0.0 <= float(corrupt_labels) < 1.0:
        raise ValueError(f"corrupt_labels must be in [0, 1); got {corrupt_labels!r}")
    num_bad = round(float(corrupt_labels) * train_size)
    if num_bad:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        bad = rng.choice(train_size, size=num_bad, replace=False)
        # a shift by 1..9 (mod 10) gives a different class, uniformly over the other nine
        y_train[bad] = (y_train[bad] + rng.integers(1, 10, size=num_bad)) % 10
    return (data.x[tr] - mean) / std, y_train, (data.x[te] - mean) / std, data.y[te]


def _accuracy(model: MLP, w: FloatArray, x: FloatArray, y: IntArray) -> float:
    return float(np.mean(model.forward(w, x).logits.argmax(axis=1) == y))


def _warm_start(model: MLP, w0: FloatArray, x: FloatArray, y: IntArray,
                config: GeneralizationConfig) -> tuple[FloatArray, int, float]:
    """Full-batch GD (one batch of all N samples per epoch) until L < warm_loss."""
    w, steps = w0, 0
    loss = model.loss(w, x, y)
    chunk = 100
    while loss >= config.warm_loss and steps < config.warm_max_steps:
        n = min(chunk, config.warm_max_steps - steps)
        cfg = TrainConfig(eta=config.warm_eta, batch_size=x.shape[0], num_epochs=n,
                          sampler="shuffle_once", seed=0)
        w = train(model, w, x, y, cfg, record_every=n).w
        steps += n
        loss = model.loss(w, x, y)
    return w, steps, loss


def _run_variant(name: str, model: MLP, w0: FloatArray, data: tuple[Any, ...],
                 config: GeneralizationConfig, rng: np.random.Generator, sigma2: float,
                 v1: FloatArray) -> tuple[FloatArray, dict[str, Any]]:
    x, y, x_test, y_test = data
    N, D = x.shape[0], w0.size
    w = w0.copy()
    traces: list[float] = []
    history: list[dict[str, float]] = []
    for step in range(config.num_steps):
        if name == "sgd":
            idx = rng.integers(0, N, size=config.B)
            g = model.loss_and_gradient(w, x[idx], y[idx])[1]
        elif name in _PER_SAMPLE:
            G = model.per_sample_gradients(w, x, y)
            g = G.mean(axis=0)
            if name == "eigvec1":
                v1 = lanczos_top(lambda v, w=w: model.hvp(w, x, y, v), v1,
                                 num_iters=config.eigvec_iters).v
            factor = noise_factor(name, G, B=config.B, k=config.k, v1=v1)
            traces.append(factor.trace)
            g = g + factor.sample(rng)
        else:
            g = model.loss_and_gradient(w, x, y)[1]
            if name == "const":
                g = g + math.sqrt(sigma2) * rng.standard_normal(D)
        w = w - config.eta * g
        if not np.all(np.isfinite(w)):
            raise FloatingPointError(f"variant {name!r} diverged at step {step}; lower eta")
        if config.eval_every and (step + 1) % config.eval_every == 0:
            history.append({"step": step + 1, "train_loss": model.loss(w, x, y),
                            "test_accuracy": _accuracy(model, w, x_test, y_test)})
    extra: dict[str, Any] = {"history": history}
    if name == "const":
        extra["noise_trace_mean"] = D * sigma2
    elif traces:
        extra["noise_trace_mean"] = float(np.mean(traces))
    return w, extra


def _measure(model: MLP, w: FloatArray, data: tuple[Any, ...], config: GeneralizationConfig,
             probe_seed: Sequence[int], v_start: FloatArray) -> dict[str, Any]:
    x, y, x_test, y_test = data
    hvp = lambda v: model.hvp(w, x, y, v)
    top = lanczos_top(hvp, v_start, num_iters=config.lanczos_iters)
    tr, tr_se = hutchinson_trace(hvp, w.size, num_probes=config.num_probes,
                                 rng=np.random.default_rng(np.random.SeedSequence([*probe_seed, 0])))
    dl, dl_se = perturbed_loss_increase(lambda u: model.loss(u, x, y), w, radius=config.radius,
                                        num_perturbations=config.num_perturbations,
                                        rng=np.random.default_rng(
                                            np.random.SeedSequence([*probe_seed, 1])))
    return {"train_loss": model.loss(w, x, y), "train_accuracy": _accuracy(model, w, x, y),
            "test_accuracy": _accuracy(model, w, x_test, y_test),
            "test_loss": model.loss(w, x_test, y_test),
            "top_eigenvalue": top.lam, "top_eigenvalue_residual": top.residual,
            "trace_H": tr, "trace_H_se": tr_se,
            "perturbed_loss_increase": dl, "perturbed_loss_increase_se": dl_se}


def compare_noise(config: GeneralizationConfig = GeneralizationConfig(), *,
                  out_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None,
                  bar: bool | None = None) -> dict[str, Any]:
    r"""GD, SGD and GLD variants from one GD warm start on digits: accuracy and flatness.

    Protocol per replica r (seed sequence (seed, 1, r)): initialise the MLP, train it by
    full-batch GD to L < ``warm_loss`` (the warm start θ₀), then run every variant of
    ``config.variants`` for ``num_steps`` steps θ ← θ − η(∇L + ξ) (SGD: θ ← θ − η ĝ_B, B samples
    with replacement) from θ₀, with ξ from :func:`noise_factor` at matched trace Tr Σ̂(θ_t)
    (``const``: σ² = Tr Σ̂(θ₀)/D); variant j draws its batches and noise from its own generator
    seeded by (seed, 1, r, 2, j), j its index in :data:`VARIANTS`.  Flatness is measured with
    probes seeded by (seed, 1, r, 3), the same for every variant (common random numbers): top
    Hessian eigenvalue (Lanczos from the warm start's v₁), Hutchinson Tr H ± s.e., and the mean
    training-loss increase under perturbations of norm ``radius``.  Over replicas every metric is
    summarised as mean ± s.e. (s.d./√R, R ≥ 2).

    Parameters
    ----------
    config : GeneralizationConfig
    out_dir : path, optional
        Folder receiving ``generalization.json`` (config, seed, provenance, results; written
        atomically) and ``generalization.png``.
    progress : callable, optional
        Called with one line of text per finished stage.
    bar : bool or None
        A progress bar over the variant runs (replicas × variants) on standard error: None
        (default) draws it only when standard error is a terminal, True always, False never.

    Returns
    -------
    dict
        The JSON payload: ``config``, ``seed``, ``provenance``, ``data``, ``replicas`` (warm
        start and per-variant metrics), ``summary`` (per variant and metric: mean, se) and
        ``elapsed_s``.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 5; spec part B.
    """
    if not isinstance(config, GeneralizationConfig):
        raise ValueError(  # noqa: TRY004
            f"config must be a GeneralizationConfig; got {type(config).__name__}")
    say = progress or (lambda line: None)
    start = time.perf_counter()
    x, y, x_test, y_test = split_digits(config.train_size, seed=config.seed,
                                        corrupt_labels=config.corrupt_labels)
    data = (x, y, x_test, y_test)
    model = MLP((x.shape[1], *config.hidden, 10), activation="relu", loss="cross_entropy",
                bias=config.bias)
    D = model.num_params
    replicas: list[dict[str, Any]] = []
    meter = progress_bar(config.num_seeds * len(config.variants), desc="generalization",
                         unit="run", enabled=bar)

    def log(line: str) -> None:
        with meter.external_write_mode():
            say(line)

    with meter:
        for r in range(config.num_seeds):
            root = [config.seed, 1, r]
            w_init = model.init(np.random.default_rng(np.random.SeedSequence([*root, 0])))
            w0, warm_steps, warm_loss = _warm_start(model, w_init, x, y, config)
            hvp0 = lambda v, w0=w0: model.hvp(w0, x, y, v)
            v_start = np.random.default_rng(np.random.SeedSequence([*root, 1])).standard_normal(D)
            top0 = lanczos_top(hvp0, v_start, num_iters=config.lanczos_iters)
            G0 = model.per_sample_gradients(w0, x, y)
            trace0 = sgd_noise_trace(G0, config.B)
            sigma2 = trace0 / D
            warm = {"steps": warm_steps, "train_loss": warm_loss,
                    "train_accuracy": _accuracy(model, w0, x, y),
                    "test_accuracy": _accuracy(model, w0, x_test, y_test),
                    "top_eigenvalue": top0.lam, "sgd_noise_trace": trace0}
            log(f"replica {r}: warm start {warm_steps} GD steps, train loss {warm_loss:.4f}, "
                f"test accuracy {warm['test_accuracy']:.4f}, Tr Σ̂ = {trace0:.4g}")
            results: dict[str, Any] = {}
            for name in config.variants:
                t0 = time.perf_counter()
                rng = np.random.default_rng(
                    np.random.SeedSequence([*root, 2, VARIANTS.index(name)]))
                w, extra = _run_variant(name, model, w0, data, config, rng, sigma2, top0.v)
                metrics = _measure(model, w, data, config, [*root, 3], top0.v)
                metrics["weight_distance"] = float(np.linalg.norm(w - w0))
                metrics.update(extra)
                metrics["seconds"] = time.perf_counter() - t0
                results[name] = metrics
                meter.update()
                log(f"replica {r}: {name:<8} test acc {metrics['test_accuracy']:.4f}  "
                    f"λ_max {metrics['top_eigenvalue']:.4g}  Tr H {metrics['trace_H']:.4g}  "
                    f"({metrics['seconds']:.1f} s)")
            replicas.append({"seed": root, "warm_start": warm, "variants": results})
    payload = {
        "config": asdict(config),
        "seed": config.seed,
        "provenance": provenance(seed=config.seed),
        "data": {"dataset": "digits", "train_size": int(x.shape[0]),
                 "test_size": int(x_test.shape[0]), "D": D,
                 "radius_relative_to_weight_norm": None},
        "replicas": replicas,
        "summary": summarize(replicas, config.variants),
        "elapsed_s": time.perf_counter() - start,
    }
    norms = [float(np.linalg.norm(model.init(np.random.default_rng(
        np.random.SeedSequence([config.seed, 1, r, 0]))))) for r in range(config.num_seeds)]
    payload["data"]["radius_relative_to_weight_norm"] = config.radius / float(np.mean(norms))
    if out_dir is not None:
        out = Path(out_dir)
        write_json_atomic(out / "generalization.json", payload)
        generalization_figure(payload, out / "generalization.png")
        say(f"written {out / 'generalization.json'} and {out / 'generalization.png'}")
    return payload


def summarize(replicas: Sequence[dict[str, Any]], variants: Sequence[str]
              ) -> dict[str, dict[str, dict[str, float | None]]]:
    r"""Mean and standard error over replicas of every metric of every variant.

    .. math:: \bar m = \frac1R\sum_r m_r,\qquad \text{s.e.} = \frac{\operatorname{sd}(m_r)}{\sqrt R}
              \ (R \ge 2;\ \text{None for } R = 1)

    References
    ----------
    Spec part B, generalization comparison (mean ± s.e. over seeds).
    """
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    R = len(replicas)
    for name in variants:
        out[name] = {}
        for metric in _METRICS:
            vals = np.array([rep["variants"][name][metric] for rep in replicas], dtype=float)
            se = float(vals.std(ddof=1) / math.sqrt(R)) if R >= 2 else None
            out[name][metric] = {"mean": float(vals.mean()), "se": se}
    return out


def _error(summary: dict[str, Any], replicas: Sequence[dict[str, Any]], name: str,
           metric: str) -> float:
    se = summary[name][metric]["se"]
    if se is not None:
        return float(se)
    within = replicas[0]["variants"][name].get(f"{metric}_se")
    return float(within) if within is not None else 0.0


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the summary (mean ± s.e. over seeds where there are several)."""
    summary, replicas = result["summary"], result["replicas"]
    header = (f"{'variant':<9} {'train loss':>11} {'train acc':>9} {'test acc':>15} "
              f"{'λ_max':>15} {'Tr H':>17} {'ΔL(ρ)':>19}")
    lines = [header, "-" * len(header)]
    for name, row in summary.items():
        def cell(metric: str, fmt: str, name: str = name, row: dict[str, Any] = row) -> str:
            err = _error(summary, replicas, name, metric)
            return f"{row[metric]['mean']:{fmt}} ± {err:{fmt}}" if err else \
                f"{row[metric]['mean']:{fmt}}"
        lines.append(f"{name:<9} {row['train_loss']['mean']:>11.4f} "
                     f"{row['train_accuracy']['mean']:>9.4f} {cell('test_accuracy', '.4f'):>15} "
                     f"{cell('top_eigenvalue', '.3f'):>15} {cell('trace_H', '.2f'):>17} "
                     f"{cell('perturbed_loss_increase', '.5f'):>19}")
    warm = [rep["warm_start"] for rep in replicas]
    lines.append(f"warm start: {np.mean([w['steps'] for w in warm]):.0f} GD steps, test accuracy "
                 f"{np.mean([w['test_accuracy'] for w in warm]):.4f}; "
                 f"{len(replicas)} seed(s); ρ = {result['config']['radius']}")
    return "\n".join(lines)


def generalization_figure(result: dict[str, Any], path: str | Path) -> Path:
    """Bar chart per variant: test accuracy, λ_max, Tr H and ΔL(ρ), with error bars.

    Error bars are the s.e. over seeds when there are several, otherwise the within-run s.e. of
    the Hutchinson and perturbation estimates (none for accuracy and λ_max).

    References
    ----------
    Zhu et al., ICML 2019 (arXiv:1803.00195), Sec. 5 (test accuracy of GD, SGD and GLD).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary, replicas = result["summary"], result["replicas"]
    names = list(summary)
    panels = [("test_accuracy", "test accuracy"), ("top_eigenvalue", r"$\lambda_{\max}(H)$"),
              ("trace_H", r"Tr $H$ (Hutchinson)"),
              ("perturbed_loss_increase", rf"$\Delta L$, $\rho$ = {result['config']['radius']}")]
    fig = Figure(figsize=(3.6 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels))
    pos = np.arange(len(names))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        means = np.array([summary[n][metric]["mean"] for n in names])
        errs = np.array([_error(summary, replicas, n, metric) for n in names])
        ax.bar(pos, means, yerr=errs, capsize=3, color="tab:blue", alpha=0.75)
        if metric == "test_accuracy":
            lo = float(np.min(means - errs))
            hi = float(np.max(means + errs))
            pad = max(0.005, 0.2 * (hi - lo))
            ax.set_ylim(lo - pad, min(1.0, hi + pad))
        ax.set_xticks(pos, names, rotation=45, ha="right")
        ax.set_title(label)
    cfg = result["config"]
    fig.suptitle(f"digits, N = {cfg['train_size']}, η = {cfg['eta']}, B = {cfg['B']}, "
                 f"{cfg['num_steps']} steps, {len(replicas)} seed(s)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _is_generalization_result(payload: Any) -> bool:
    return isinstance(payload, dict) and all(
        k in payload for k in ("config", "provenance", "replicas", "summary"))


#: The output folder of ``sgdnoise generalization``: recognised by a ``generalization.json``
#: (with ``config``, ``provenance``, ``replicas`` and ``summary``), holding nothing but it and
#: ``generalization.png``.
GENERALIZATION_OUTPUT = _io.OutputLayout(
    command="sgdnoise generalization", marker="generalization.json",
    recognise=_is_generalization_result,
    files=("generalization.json", "generalization.png"))

def build_parser(prog: str = "python -m sgdnoise.verify.generalization") -> argparse.ArgumentParser:
    """Argument parser of :func:`main` (also usable as a ``sgdnoise`` subcommand)."""
    p = argparse.ArgumentParser(prog=prog, description=(
        "GD, SGD and Langevin noise variants from one GD warm start on digits: test accuracy "
        "and flatness (Zhu et al., ICML 2019, Sec. 5)."))
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of the generalization run to ``p``."""
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for generalization.json and generalization.png")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--steps", type=int, default=None, help="steps per variant")
    p.add_argument("--train-size", type=int, default=None, help="training samples")
    p.add_argument("--corrupt-labels", type=float, default=None, metavar="FRACTION",
                   help="fraction of training labels replaced by a random other class")
    p.add_argument("--variants", nargs="+", default=None, choices=VARIANTS, metavar="NAME",
                   help=f"subset of {', '.join(VARIANTS)}")
    p.add_argument("--num-seeds", type=int, default=None, help="replicas (mean ± s.e.)")
    p.add_argument("--eta", type=float, default=None, help="learning rate after the warm start")
    p.add_argument("--batch-size", type=int, default=None, help="SGD batch size B")
    p.add_argument("--full", action="store_true",
                   help="larger setting: 1000 samples, 3000 steps, 4 seeds")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines or bar on stderr (the bar is only drawn on a "
                        "terminal)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run :func:`compare_noise` from parsed arguments, print the table; exit status.

    The exit status is that of every ``sgdnoise`` command: 0 on success, 2 for an invalid
    option or an output folder that may not be used (see
    :data:`GENERALIZATION_OUTPUT`; the folder is checked before anything runs), 3 when the
    training diverged (one line ``diverged: …`` on standard error), 130 on Ctrl-C.
    """
    from sgdnoise.sim.training import DivergenceError

    changes: dict[str, Any] = {"seed": args.seed}
    for attr, field in (("steps", "num_steps"), ("train_size", "train_size"),
                        ("corrupt_labels", "corrupt_labels"),
                        ("variants", "variants"), ("num_seeds", "num_seeds"), ("eta", "eta"),
                        ("batch_size", "B")):
        value = getattr(args, attr)
        if value is not None:
            changes[field] = tuple(value) if field == "variants" else value
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    bar = False if args.quiet else None     # a bar only on a terminal, never with --quiet
    try:
        config = (GeneralizationConfig.full(**changes) if args.full
                  else GeneralizationConfig(**changes))
        _io.check_output_folder(args.out, GENERALIZATION_OUTPUT)
        result = compare_noise(config, out_dir=args.out, progress=progress, bar=bar)
    except DivergenceError as exc:
        print(f"generalization: diverged: {' '.join(str(exc).split())}", file=sys.stderr)
        return 3
    except (ValueError, FloatingPointError) as exc:
        print(f"generalization: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"generalization: cannot write to the output folder {str(args.out)!r}: "
              f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("generalization: interrupted (the results are written once every variant has "
              "run)", file=sys.stderr)
        return 130
    print(format_table(result))
    print(f"written to {Path(args.out).resolve()} ({result['elapsed_s']:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m sgdnoise.verify.generalization --out DIR``."""
    return run_from_args(build_parser().parse_args(argv))


__all__ = [
    "GENERALIZATION_OUTPUT",
    "NOISE_KINDS",
    "VARIANTS",
    "GeneralizationConfig",
    "NoiseFactor",
    "TopEigenpair",
    "add_arguments",
    "build_parser",
    "compare_noise",
    "format_table",
    "generalization_figure",
    "hutchinson_trace",
    "lanczos_top",
    "main",
    "noise_factor",
    "perturbed_loss_increase",
    "run_from_args",
    "sgd_noise_trace",
    "split_digits",
    "summarize",
]

if __name__ == "__main__":
    raise SystemExit(main())

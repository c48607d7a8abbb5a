r"""The one-hidden-layer ReLU network of spec claim B4: fixed ±1 output weights, clipped output.

Architecture, for input dimension d and m hidden units (m even):

.. math::
    s_j = w_j^\top x + b_j, \qquad
    u = \sum_{j=1}^m a_j\,\mathrm{relu}(s_j), \qquad
    f(x) = \mathrm{clip}(u, \delta, 1 - \delta),

with fixed output weights a_j = +1 for j ≤ m/2 and a_j = −1 for the rest; only θ = (W, b) is
trained.  Per-sample loss ℓ_p = (f(x_p) − y_p)² (squared error without a ½, the mean squared error
of the paper's experiment), L = E_p ℓ_p (mean over the N samples).

Parameter layout: θ = [vec W, b] with W of shape (m, d) stored row-major (unit j's weights
w_j are θ[j·d:(j+1)·d]) followed by the m biases, so D = m(d + 1).  (The authors' code stores
W as d × m; the two layouts differ by a permutation of coordinates, which leaves traces,
spectra and the gain Tr(HΣ)/Tr(HΣ̄) unchanged.)

Derivatives.  f is piecewise linear in θ, so almost everywhere

.. math::
    \nabla_\theta f_p = \mathbb 1[\delta \le u_p \le 1 - \delta]\;
        \bigl(a_j \mathbb 1[s_{pj} > 0]\, x_p,\ \ a_j \mathbb 1[s_{pj} > 0]\bigr)_{j},\qquad
    g_p = 2(f_p - y_p)\,\nabla f_p, \qquad
    h_p = 2\,\nabla f_p \nabla f_p^\top ,

because ∇²f_p = 0 off the kinks: the residual term 2(f_p − y_p)∇²f_p of the Hessian vanishes
and h_p is exactly its Gauss–Newton part (zero for a sample whose output is clipped).  The
kinks — some s_pj = 0, or u_p = δ or 1 − δ — form a set of measure zero in θ; there the loss is
not differentiable and the one-sided conventions of TensorFlow are used: relu′(0) = 0 and the
clip passes the derivative (1) when u_p equals a clip bound.

References
----------
Z. Zhu, J. Wu, B. Yu, L. Wu, J. Ma, "The Anisotropic Noise in Stochastic Gradient Descent",
ICML 2019, arXiv:1803.00195 (spec claim B4; the one-hidden-layer experiment of its Fig. 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from sgdnoise._memory import check_allocation
from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_positive, check_positive_int, check_rng


class HalfplaneData(NamedTuple):
    """Inputs ``x`` (N, 2) uniform in [−2, 2]² and targets ``y`` (N,) = 1[x₁ ≥ x₂] as float64."""

    x: FloatArray
    y: FloatArray


def halfplane_data(rng: np.random.Generator | int, N: int = 1000) -> HalfplaneData:
    r"""The data set of claim B4: N points uniform in [−2, 2]², labelled by the half-plane x₁ ≥ x₂.

    .. math:: x_p \sim \mathcal U([-2, 2]^2), \qquad y_p = \mathbb 1[x_{p,1} \ge x_{p,2}]

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Source of randomness (an int is a seed); x is drawn as ``rng.uniform(-2, 2, (N, 2))``.
    N : int
        Number of samples (the paper uses 1000).

    Returns
    -------
    HalfplaneData
        ``(x, y)``; unpacks as a pair.

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B4, "1000 points uniform in
    [−2, 2]², label 1 if x₁ ≥ x₂").
    """
    rng = check_rng(rng)
    N = check_positive_int(N, "N")
    x = rng.uniform(-2.0, 2.0, size=(N, 2))
    y = (x[:, 0] >= x[:, 1]).astype(np.float64)
    return HalfplaneData(x, y)


class _Forward(NamedTuple):
    """Forward pass of a chunk: pre-activations s (n, m), pre-clip output u (n,), output f (n,),
    and the derivative factor coef_pj = a_j 1[s_pj > 0] 1[δ ≤ u_p ≤ 1 − δ] (n, m)."""

    s: FloatArray
    u: FloatArray
    f: FloatArray
    coef: FloatArray


@dataclass(frozen=True)
class ClippedReluNetwork:
    r"""One hidden ReLU layer, fixed ±1 output weights, output clipped to [δ, 1 − δ], squared error.

    f(x) = clip(Σ_j a_j relu(w_jᵀx + b_j), δ, 1 − δ), a_j = +1 for the first m/2 units and −1 for
    the rest; ℓ_p = (f(x_p) − y_p)², L = E_p ℓ_p.  Parameters θ = [vec W (m × d, row-major), b],
    D = m(d + 1); see the module docstring for the derivatives and their conventions at the
    (measure-zero) kinks.

    Methods take ``(w, x, y)``: w of shape (D,), x of shape (N, d), y of shape (N,) (real targets;
    0/1 labels for :meth:`accuracy`).  Per-sample quantities are computed in chunks of ``chunk``
    samples.

    Parameters
    ----------
    input_dim : int
        d ≥ 1 (2 in the paper).
    hidden : int
        m, even and ≥ 2 (100 in the paper).
    delta : float
        Clip margin δ ∈ (0, ½) (10⁻³ in the paper).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019, arXiv:1803.00195 (spec claim B4).
    """

    input_dim: int = 2
    hidden: int = 100
    delta: float = 1e-3

    def __post_init__(self) -> None:
        input_dim = check_positive_int(self.input_dim, "input_dim")
        hidden = check_positive_int(self.hidden, "hidden", minimum=2)
        if hidden % 2:
            raise ValueError(f"hidden must be even (half the units have output weight +1, half "
                             f"-1); got {hidden}")
        delta = check_positive(self.delta, "delta")
        if not delta < 0.5:
            raise ValueError(f"delta must lie in (0, 0.5) so that [delta, 1 - delta] is an "
                             f"interval; got {delta}")
        object.__setattr__(self, "input_dim", input_dim)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "delta", delta)

    # ------------------------------------------------------------------ layout
    @property
    def num_params(self) -> int:
        """D = m(d + 1)."""
        return self.hidden * (self.input_dim + 1)

    @property
    def output_weights(self) -> FloatArray:
        """a = (+1, …, +1, −1, …, −1), shape (m,), fixed."""
        half = self.hidden // 2
        return np.concatenate([np.ones(half), -np.ones(half)])

    def _check_w(self, w: Any) -> FloatArray:
        w = as_float_array(w, "w", ndim=1)
        if w.shape != (self.num_params,):
            raise ValueError(f"w must have shape (D,) = ({self.num_params},); got {w.shape}")
        return w

    def unpack(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Views (W, b) into ``w``: W of shape (m, d) (row j = w_j), b of shape (m,)."""
        w = self._check_w(w)
        md = self.hidden * self.input_dim
        return w[:md].reshape(self.hidden, self.input_dim), w[md:]

    def init(self, rng: np.random.Generator | int, *, limit: float | None = None) -> FloatArray:
        r"""Initial parameters: every entry of θ (weights and biases) i.i.d. uniform in [−c, c].

        .. math:: \theta_i \sim \mathcal U(-c, c), \qquad c = \sqrt{3/D}

        The default c is the Glorot-uniform limit √(6/(fan_in + fan_out)) of a flat parameter
        vector of length D (fan_in = fan_out = D), which is how the paper's TensorFlow code
        creates θ (c = 0.1 for D = 300).  Small weights keep most outputs inside the clip
        interval at the start, where the gradient does not vanish.

        Parameters
        ----------
        rng : numpy.random.Generator or int
            Source of randomness (an int is a seed).
        limit : float, optional
            c > 0 instead of √(3/D).

        Returns
        -------
        (D,) array

        References
        ----------
        X. Glorot, Y. Bengio, AISTATS 2010 (uniform initialisation); Zhu, Wu, Yu, Wu & Ma,
        ICML 2019, arXiv:1803.00195 (spec claim B4).
        """
        rng = check_rng(rng)
        c = np.sqrt(3.0 / self.num_params) if limit is None else check_positive(limit, "limit")
        return rng.uniform(-c, c, size=self.num_params)

    # ------------------------------------------------------------------ validation
    def _check_x(self, x: Any) -> FloatArray:
        x = as_float_array(x, "x", ndim=2)
        if x.shape[0] < 1 or x.shape[1] != self.input_dim:
            raise ValueError(f"x must have shape (N, {self.input_dim}) with N >= 1; got {x.shape}")
        return x

    def _check_data(self, w: Any, x: Any, y: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        w = self._check_w(w)
        x = self._check_x(x)
        y = as_float_array(y, "y", ndim=1)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape (N,) = ({x.shape[0]},) to match x; got {y.shape}")
        return w, x, y

    @staticmethod
    def _chunks(N: int, chunk: Any) -> list[slice]:
        chunk = check_positive_int(chunk, "chunk")
        return [slice(start, min(start + chunk, N)) for start in range(0, N, chunk)]

    # ------------------------------------------------------------------ forward
    def _forward(self, w: FloatArray, x: FloatArray) -> _Forward:
        W, b = self.unpack(w)
        a = self.output_weights
        s = x @ W.T + b
        active = s > 0
        u = np.where(active, s, 0.0) @ a
        inside = (u >= self.delta) & (u <= 1.0 - self.delta)
        f = np.clip(u, self.delta, 1.0 - self.delta)
        coef = np.where(active & inside[:, None], a, 0.0)
        return _Forward(s, u, f, coef)

    def _jacobian_into(self, out: FloatArray, coef: FloatArray, x: FloatArray,
                       scale: FloatArray | None = None) -> None:
        """Write rows (scale_p ·) ∇f_p into ``out`` (n, D): W block coef_pj x_pk, then coef_pj."""
        if scale is not None:
            coef = coef * scale[:, None]
        n, md = x.shape[0], self.hidden * self.input_dim
        block = out[:, :md].reshape(n, self.hidden, self.input_dim)
        np.multiply(coef[:, :, None], x[:, None, :], out=block)
        out[:, md:] = coef

    def predict(self, w: FloatArray, x: FloatArray, *, chunk: int = 4096) -> FloatArray:
        r"""Network outputs f(x_p) = clip(Σ_j a_j relu(w_jᵀx_p + b_j), δ, 1 − δ), shape (N,).

        References
        ----------
        Spec claim B4 (the network's output).
        """
        w = self._check_w(w)
        x = self._check_x(x)
        out = np.empty(x.shape[0])
        for sl in self._chunks(x.shape[0], chunk):
            out[sl] = self._forward(w, x[sl]).f
        return out

    def accuracy(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096) -> float:
        """Fraction of samples with 1[f(x_p) > ½] equal to y_p (labels 0/1)."""
        w, x, y = self._check_data(w, x, y)
        return float(np.mean((self.predict(w, x, chunk=chunk) > 0.5) == (y == 1.0)))

    def output_jacobian(self, w: FloatArray, x: FloatArray, *, chunk: int = 4096) -> FloatArray:
        r"""∇_θ f(x_p) for every sample, shape (N, D); zero rows where the output is clipped.

        .. math:: \partial f_p/\partial W_{jk} = c_{pj} x_{pk},\quad
                  \partial f_p/\partial b_j = c_{pj},\quad
                  c_{pj} = a_j\,\mathbb 1[s_{pj} > 0]\,\mathbb 1[\delta \le u_p \le 1 - \delta]

        References
        ----------
        Spec claim B4; conventions at the kinks in the module docstring.
        """
        w = self._check_w(w)
        x = self._check_x(x)
        out = np.empty((x.shape[0], self.num_params))
        for sl in self._chunks(x.shape[0], chunk):
            self._jacobian_into(out[sl], self._forward(w, x[sl]).coef, x[sl])
        return out

    # ------------------------------------------------------------------ losses and gradients
    def per_sample_losses(self, w: FloatArray, x: FloatArray, y: Any, *,
                          chunk: int = 4096) -> FloatArray:
        """ℓ_p = (f(x_p) − y_p)², shape (N,)."""
        w, x, y = self._check_data(w, x, y)
        return (self.predict(w, x, chunk=chunk) - y) ** 2

    def loss(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096) -> float:
        """L = E_p (f(x_p) − y_p)² (mean over the N samples)."""
        return float(self.per_sample_losses(w, x, y, chunk=chunk).mean())

    def per_sample_gradients(self, w: FloatArray, x: FloatArray, y: Any, *,
                             chunk: int = 4096) -> FloatArray:
        r"""Per-sample gradients g_p = 2(f_p − y_p) ∇_θ f_p, shape (N, D).

        Memory beyond the output is O(chunk · m · d).

        References
        ----------
        Spec claim B4 (per-sample gradients give the minibatch noise covariance Σ̂).
        """
        w, x, y = self._check_data(w, x, y)
        out = np.empty((x.shape[0], self.num_params))
        for sl in self._chunks(x.shape[0], chunk):
            fp = self._forward(w, x[sl])
            self._jacobian_into(out[sl], fp.coef, x[sl], scale=2.0 * (fp.f - y[sl]))
        return out

    def loss_and_gradient(self, w: FloatArray, x: FloatArray, y: Any, *,
                          chunk: int = 4096) -> tuple[float, FloatArray]:
        r"""L and ∇L = (2/N) Σ_p (f_p − y_p) ∇f_p, accumulated with GEMMs (no (N, D) array).

        References
        ----------
        Spec claim B4.
        """
        w, x, y = self._check_data(w, x, y)
        N = x.shape[0]
        total = 0.0
        grad_W = np.zeros((self.hidden, self.input_dim))
        grad_b = np.zeros(self.hidden)
        for sl in self._chunks(N, chunk):
            fp = self._forward(w, x[sl])
            residual = fp.f - y[sl]
            total += float(residual @ residual)
            c = fp.coef * (2.0 * residual)[:, None]
            grad_W += c.T @ x[sl]
            grad_b += c.sum(axis=0)
        return total / N, np.concatenate([grad_W.ravel(), grad_b]) / N

    def gradient(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096) -> FloatArray:
        """∇L = E_p g_p, shape (D,)."""
        return self.loss_and_gradient(w, x, y, chunk=chunk)[1]

    # ------------------------------------------------------------------ curvature
    def per_sample_hessians(self, w: FloatArray, x: FloatArray, y: Any, *,
                            max_entries: int = 1 << 26) -> FloatArray:
        r"""Exact per-sample Hessians h_p = 2∇f_p∇f_pᵀ, shape (N, D, D), for small N·D².

        .. math:: h_p = \nabla^2_\theta (f_p - y_p)^2 = 2\nabla f_p\nabla f_p^\top
                  + 2(f_p - y_p)\nabla^2 f_p = 2\nabla f_p\nabla f_p^\top \quad\text{(a.e.)}

        since f is piecewise linear in θ; h_p = 0 where the output is clipped.  Off the kinks
        (module docstring) this is the exact Hessian, not an approximation.

        Parameters
        ----------
        max_entries : int
            Largest N·D² allowed (default 2²⁶ floats, 512 MiB); a ``ValueError`` naming ``x``
            is raised above it.  Use :meth:`hessian` for H itself.

        References
        ----------
        Spec claim B4; spec part A (objects h_p).
        """
        w, x, y = self._check_data(w, x, y)
        max_entries = check_positive_int(max_entries, "max_entries")
        N, D = x.shape[0], self.num_params
        if N * D * D > max_entries:
            raise ValueError(f"x has too many samples for dense per-sample Hessians: "
                             f"N·D² = {N * D * D} > max_entries = {max_entries}")
        check_allocation(N * D * D * 8, f"per_sample_hessians: h ({N}x{D}x{D})")
        J = self.output_jacobian(w, x)
        return 2.0 * J[:, :, None] * J[:, None, :]

    def hessian(self, w: FloatArray, x: FloatArray, y: Any, *, chunk: int = 4096) -> FloatArray:
        r"""Exact Hessian H = ∇²L = (2/N) Σ_p ∇f_p∇f_pᵀ = (2/N) JᵀJ, shape (D, D).

        J stacks the rows ∇f_p (:meth:`output_jacobian`); one GEMM per chunk of samples (one in
        all for N ≤ ``chunk``).  Exact off the measure-zero kinks (module docstring); y only
        enters through validation, because h_p does not depend on the residual.

        References
        ----------
        Spec claim B4 ("Tr(HΣ̂)/Tr(HΣ̄)" needs the exact H).
        """
        w, x, y = self._check_data(w, x, y)
        N, D = x.shape[0], self.num_params
        check_allocation(3 * D * D * 8, f"hessian: H ({D}x{D})")
        H = np.zeros((D, D))
        for sl in self._chunks(N, chunk):
            J = np.empty((sl.stop - sl.start, D))
            self._jacobian_into(J, self._forward(w, x[sl]).coef, x[sl])
            H += J.T @ J
        H *= 2.0 / N
        return 0.5 * (H + H.T)


__all__ = ["ClippedReluNetwork", "HalfplaneData", "halfplane_data"]

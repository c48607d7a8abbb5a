r"""Sums over the heavy-ball AR(2) recursion in O(log M) (or vectorised O(M)) operations.

The epoch variances of :mod:`sgdnoise.theory._epoch_noise` are finite sums over up to M lags of
quantities obeying the heavy-ball recursion.  Along one eigendirection, in the state
(x_k, v_k) with v_k = x_k − x_{k−1}, one step is

.. math::
    \begin{pmatrix} x_{k+1} \\ v_{k+1} \end{pmatrix}
    = B \begin{pmatrix} x_k \\ v_k \end{pmatrix} + u_k \begin{pmatrix} 1 \\ 1 \end{pmatrix},
    \qquad B = \begin{pmatrix} 1 - \eta\lambda & \beta \\ -\eta\lambda & \beta \end{pmatrix},

similar (by P = [[1, 0], [1, −1]], P² = I) to the companion matrix A = [[a, −β], [1, 0]],
a = 1 + β − ηλ, of the recursion x_{k+1} = a x_k − β x_{k−1} + u_k.  Its roots r_{1,2} give
geometric closed forms of every sum; evaluated as written, those divide by ηλ (or by r₁ − r₂)
and cancel catastrophically in the flat limit ηλ·M ≪ 1 and near critical damping.  They are
evaluated here instead by *doubling*: a sum over n lags is an affine map of a small state, and
the map for 2n lags is the map for n lags composed with itself, so any M costs ⌈log₂ M⌉
compositions of 2×2 (or 5×5) matrices, vectorised over the curvatures.  Every quantity is kept
in a form without cancellation:

* powers Bⁿ both as Pₙ = Bⁿ and as Eₙ = Bⁿ − I (E₂ₙ = 2Eₙ + Eₙ²), starting from E₁ = B − I =
  [[−ηλ, β], [−ηλ, β − 1]], whose entries carry ηλ to full relative precision (the companion
  form would round a = 1 + β − ηλ and lose ηλ ≪ β), so a slow mode 1 − ηλ/(1 − β) + … keeps its
  distance from 1.  The two eigenvalues of Bⁿ lie on the same side of the imaginary axis
  (real roots share the sign of a since r₁r₂ = β ≥ 0; complex ones are conjugate), so after
  each product the form that is accurate there is kept and the other re-derived from it: E on
  the right half-plane (modes near +1), P on the left (modes near −1, where E ≈ −2 would round
  four times larger);
* sums of the rows r_i = cBⁱ through their deviations Σ_i E_i, and their scatter around the mean
  through Chan's pairwise update of a centred sum of squares (no Σr² − (Σr)²/n);
* the weighted sum Σ_h (M − h) δ(h) of the non-negative δ(h) = γ(0) − γ(h) as a double cumulative
  sum carried in the state (no γ(0) ∝ 1/λ term).

The geometric closed forms themselves are derived (and checked against this module) in the tests
with sympy; the doubling is exact arithmetic on the same recursion, rounded once per composition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgdnoise._typing import FloatArray

#: Largest number of doublings of the geometric tail over previous epochs; enough for a slow mode
#: whose distance from 1 is the smallest subnormal (2⁻¹⁰⁷⁴).
MAX_DOUBLINGS = 1100
#: The input column b of the (x, v) state: a noise kick u moves x and v alike.
INPUT = np.array([1.0, 1.0])
#: Output rows c: the weight reads x, the velocity reads v.
OUTPUTS = {"weight": np.array([1.0, 0.0]), "velocity": np.array([0.0, 1.0])}


def _mm(X: FloatArray, Y: FloatArray) -> FloatArray:
    return np.matmul(X, Y)


def _t(X: FloatArray) -> FloatArray:
    return np.swapaxes(X, -1, -2)


def _resync(P: FloatArray, E: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Make P = I + E consistent, keeping E where the modes of P lie on the right half-plane
    (trace ≥ 0) and P on the left (trace < 0); P and E are (K, 2, 2)."""
    left = (P[:, 0, 0] + P[:, 1, 1]) < 0
    eye = np.eye(2)
    P = np.where(left[:, None, None], P, E + eye)
    E = np.where(left[:, None, None], P - eye, E)
    return P, E


def product(P1: FloatArray, E1: FloatArray, P2: FloatArray,
            E2: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(P₁P₂, P₁P₂ − I) of two powers of B given in both forms (E = E₁ + E₂ + E₁E₂)."""
    return _resync(_mm(P1, P2), E1 + E2 + _mm(E1, E2))


def step_minus_identity(lam: FloatArray, eta: FloatArray, beta: FloatArray) -> FloatArray:
    """E₁ = B − I = [[−ηλ, β], [−ηλ, β − 1]] for each curvature, shape (K, 2, 2)."""
    lam, eta, beta = (np.ravel(v) for v in (lam, eta, beta))
    eta_lam = eta * lam
    E = np.empty((lam.size, 2, 2))
    E[:, 0, 0] = -eta_lam
    E[:, 0, 1] = beta
    E[:, 1, 0] = -eta_lam
    E[:, 1, 1] = beta - 1.0
    return E


class Segment(NamedTuple):
    r"""Summary of the rows r_i = c Bⁱ, i = 0 … n − 1, of one output vector c.

    Attributes
    ----------
    n : int
        Number of rows.
    P : (K, 2, 2) array
        Bⁿ.
    E : (K, 2, 2) array
        Bⁿ − I.
    SE : (K, 2, 2) array
        Σ_{i<n} (Bⁱ − I), so Σ_{i<n} r_i = c (n I + SE).
    K : (K, 2, 2) array
        Centred scatter Σ_{i<n} (r_i − r̄)ᵀ(r_i − r̄).
    """

    n: int
    P: FloatArray
    E: FloatArray
    SE: FloatArray
    K: FloatArray


def _empty(shape: tuple[int, ...]) -> Segment:
    z = np.zeros(shape)
    return Segment(0, z + np.eye(2), z, z, z)


def merge(first: Segment, second: Segment, c: FloatArray) -> Segment:
    r"""The rows of ``first`` followed by those of ``second`` shifted by B^{n₁}.

    With F₁ = I + E₁ (= B^{n₁}), the second block's rows are r_i F₁ (powers of B commute), so

    .. math::
        E = E_1 + E_2 + E_1E_2,\quad SE = SE_1 + SE_2 + n_2E_1 + E_1SE_2,\quad
        K = K_1 + F_1^\top K_2 F_1 + \tfrac{n_1n_2}{n_1+n_2}\, d^\top d

    where d = c[E₁ + SE₂/n₂ + (SE₂/n₂)E₁ − SE₁/n₁] is the difference of the two blocks' mean
    rows (Chan, Golub & LeVeque's pairwise update), free of the cancellation of 1 − 1.
    """
    if first.n == 0:
        return second
    if second.n == 0:
        return first
    n1, n2 = first.n, second.n
    F1, E1, SE1 = first.P, first.E, first.SE
    P, E = product(F1, E1, second.P, second.E)
    SE = SE1 + second.SE + n2 * E1 + _mm(E1, second.SE)
    mean2 = second.SE / n2
    D = E1 + mean2 + _mm(mean2, E1) - SE1 / n1
    d = np.einsum("i,kij->kj", c, D)
    K = first.K + _mm(_t(F1), _mm(second.K, F1)) + (n1 * n2 / (n1 + n2)) * (
        d[:, :, None] * d[:, None, :])
    return Segment(n1 + n2, P, E, SE, K)


def segments(E1: FloatArray, c: FloatArray, lengths: tuple[int, ...]) -> list[Segment]:
    """Segments of the given lengths (each from row 0), sharing one set of doublings."""
    P1, E1 = _resync(E1 + np.eye(2), E1)
    block = Segment(1, P1, E1, np.zeros_like(E1), np.zeros_like(E1))
    accs = [_empty(E1.shape) for _ in lengths]
    bit = 0
    top = max(lengths, default=0)
    while (1 << bit) <= top:
        for k, n in enumerate(lengths):
            if n >> bit & 1:
                accs[k] = merge(accs[k], block, c)
        bit += 1
        if (1 << bit) <= top:
            block = merge(block, block, c)
    return accs


def epoch_tail(K: FloatArray, F: FloatArray, E_F: FloatArray) -> FloatArray:
    r"""Q = Σ_{k≥0} (Fᵏ)ᵀ K Fᵏ with F = I + E_F, summed by doubling.

    Q ← Q + F_nᵀ Q F_n, F_n ← F_n² (in both forms, see :func:`product`), stopping when
    ‖F_n‖_F² ≤ 2⁻⁵⁶: the neglected tail F_nᵀ Q_∞ F_n has norm ≤ ‖F_n‖₂² ‖Q_∞‖, below
    2⁻⁵⁶ ‖Q_∞‖.  Carrying E alongside F keeps a slow mode 1 − μ with μ below the float64
    resolution of 1 from rounding to 1.
    """
    Q = 0.5 * (K + _t(K))
    Fn, En = F, E_F
    for _ in range(MAX_DOUBLINGS):
        if np.max(np.sum(Fn * Fn, axis=(1, 2))) <= 2.0**-56:
            return Q
        Q = Q + _mm(_t(Fn), _mm(Q, Fn))
        Fn, En = product(Fn, En, Fn, En)
    raise ValueError(  # pragma: no cover - MAX_DOUBLINGS covers every float64 ηλ > 0
        "lam: eta*lam is too small to resolve the epoch sum in float64")


def delta_sums(lam: FloatArray, eta: FloatArray, beta: FloatArray,
               M: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""(Σ_{h=1}^{M−1} (M − h) δ(h), δ(1), δ(M)) for each curvature, by doubling.

    δ(h) = γ(0) − γ(h) obeys δ(0) = 0, δ(1) = w/(1+β), δ(h+1) = w + aδ(h) − βδ(h−1) with
    w = (1+β)/((1−β)(2(1+β) − ηλ)).  In the differences e(h) = δ(h) − δ(h−1) (e(0) = −δ(1),
    as δ(−1) = δ(1)) it reads e(h+1) = w − ηλ δ(h) + β e(h), δ(h+1) = δ(h) + e(h+1).  The state
    v_h = (δ(h), e(h), 1, A_h, B_h) with A_h = Σ_{k≤h} δ(k) and B_h = Σ_{k≤h} A_k evolves by a
    fixed 5×5 matrix T = I + N, and B_{M−1} = Σ_{h<M} (M − h) δ(h).  T^{M−1} v₀ is applied by
    binary powering in the form v ← v + N_n v, N_{2n} = 2N_n + N_n², so the slow mode keeps ηλ.
    """
    lam, eta, beta = (np.ravel(v) for v in (lam, eta, beta))
    eta_lam = eta * lam
    w = (1.0 + beta) / ((1.0 - beta) * (2.0 * (1.0 + beta) - eta_lam))
    d1 = w / (1.0 + beta)
    K = lam.size
    N = np.zeros((K, 5, 5))
    # δ' = δ + e' with e' = w − ηλδ + βe
    N[:, 0, 0] = -eta_lam
    N[:, 0, 1] = beta
    N[:, 0, 2] = w
    N[:, 1, 0] = -eta_lam
    N[:, 1, 1] = beta - 1.0
    N[:, 1, 2] = w
    # A' = A + δ', B' = B + A'
    N[:, 3, 0] = 1.0 - eta_lam
    N[:, 3, 1] = beta
    N[:, 3, 2] = w
    N[:, 4, :] = N[:, 3, :]
    N[:, 4, 3] = 1.0
    v = np.zeros((K, 5))
    v[:, 1] = -d1
    v[:, 2] = 1.0
    eye = np.eye(5)
    P = N + eye
    P[:, 0, 0] = 1.0 - eta_lam  # rounds ηλ, used only on the left half-plane (see module notes)
    n = M - 1
    while n:
        left = (P[:, 0, 0] + P[:, 1, 1]) < 0  # modes of the (δ, e) block, which is Bⁿ
        if n & 1:
            v = np.where(left[:, None], np.einsum("kij,kj->ki", P, v),
                         v + np.einsum("kij,kj->ki", N, v))
        n >>= 1
        if n:
            P2, N2 = _mm(P, P), 2.0 * N + _mm(N, N)
            left = (P2[:, 0, 0] + P2[:, 1, 1]) < 0
            P = np.where(left[:, None, None], P2, N2 + eye)
            N = np.where(left[:, None, None], P2 - eye, N2)
    # δ(M) = δ(M−1) + w − ηλ δ(M−1) + β e(M−1)
    delta_M = v[:, 0] + (w - eta_lam * v[:, 0] + beta * v[:, 1])
    return v[:, 4], d1, delta_M


def orbit(T: FloatArray, v0: FloatArray, n: int) -> FloatArray:
    """States v_i = Tⁱ v₀, i = 0 … n − 1, shape (K, n, d), by doubling (⌈log₂ n⌉ GEMM batches).

    v_{m+j} = T^m v_j for j < m fills the second half from the first.
    """
    K, d = v0.shape
    out = np.empty((K, n, d))
    out[:, 0] = v0
    P = T
    filled = 1
    while filled < n:
        take = min(filled, n - filled)
        out[:, filled:filled + take] = np.einsum("kij,knj->kni", P, out[:, :take])
        filled += take
        if filled < n:
            P = _mm(P, P)
    return out


def column_deviations(E1: FloatArray, b: FloatArray, n: int) -> FloatArray:
    """W_i = (Bⁱ − I) b, i = 0 … n − 1, shape (K, n, 2), by doubling in the E form.

    W_{m+j} = W_j + W_m + E_m W_j for j < m (from B^{m+j} − I = E_j + E_m + E_mE_j).
    """
    K = E1.shape[0]
    out = np.empty((K, n, 2))
    out[:, 0] = 0.0
    Pm, Em = _resync(E1 + np.eye(2), E1)
    filled = 1
    while filled < n:
        take = min(filled, n - filled)
        Wj = out[:, :take]
        Wm = np.einsum("kij,j->ki", Em, b)
        out[:, filled:filled + take] = Wj + Wm[:, None, :] + np.einsum("kij,knj->kni", Em, Wj)
        filled += take
        if filled < n:
            Pm, Em = product(Pm, Em, Pm, Em)
    return out


__all__ = ["INPUT", "OUTPUTS", "Segment", "column_deviations", "delta_sums", "epoch_tail",
           "merge", "orbit", "product", "segments", "step_minus_identity"]

"""The epoch sums of sgdnoise.theory in O(log M): closed forms, references and speed.

Three independent references for the doubling of :mod:`sgdnoise.theory._ar2_sums`:

* the Python loops over M the package used before (kept here, private), for small M where they
  are accurate;
* the geometric closed form in the AR(2) roots r₁, r₂, derived and checked with sympy, and
  evaluated with mpmath at 60 digits for any M (up to 2⁵³) and complex or nearly critical roots;
* a direct mpmath evaluation of the position-resolved formula (rows cAⁱ, its centred scatter and
  the Lyapunov sum over previous epochs) for small M.
"""

from __future__ import annotations

import time

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose

from sgdnoise._typing import FloatArray
from sgdnoise.theory import _epoch_noise as en
from sgdnoise.theory import (
    correlation_time,
    stationary_variance_correlated,
    velocity_variance_epoch,
    weight_variance_epoch,
    weight_variance_epoch_profile,
    weight_variance_iid,
)

EPS = np.finfo(np.float64).eps

# ---------------------------------------------------------------------------------------------
# the former O(M) loops, kept as references
# ---------------------------------------------------------------------------------------------


def _loop_delta_sequence(lam: FloatArray, eta: FloatArray, beta: FloatArray, length: int) -> FloatArray:
    r"""δ(h) = γ(0) − γ(h), h = 0 … length − 1, with γ(h) = Σ_j G(j) G(j+h).

    Recursion (from γ(h) = aγ(h−1) − βγ(h−2), h ≥ 2, and γ(1) = aγ(0)/(1+β)):
    δ(0) = 0, δ(1) = w/(1+β), δ(h) = w + a δ(h−1) − β δ(h−2), where
    w = ηλγ(0) = (1+β)/((1−β)(2(1+β) − ηλ)) stays finite as λ → 0.  All δ(h) ≥ 0
    (Cauchy–Schwarz), so sums of them carry no cancellation.
    """
    a = 1.0 + beta - eta * lam
    w = (1.0 + beta) / ((1.0 - beta) * (2.0 * (1.0 + beta) - eta * lam))
    delta = np.zeros(lam.shape + (length,))
    if length > 1:
        delta[..., 1] = w / (1.0 + beta)
    for h in range(2, length):
        delta[..., h] = w + a * delta[..., h - 1] - beta * delta[..., h - 2]
    return delta



def _loop_phase_average(lam: FloatArray, eta: FloatArray, beta: FloatArray, M: int,
                          output: str) -> FloatArray:
    r"""Var/(η²C) phase-averaged: (2/(M(M−1))) Σ_{h=1}^{M−1} (M − h) δ_out(h); Σ_h R(h) = 0.

    Streams the δ recursion of :func:`_delta_sequence` (memory independent of M); for the
    velocity δ_v(h) = 2δ(1) + 2δ(h) − δ(h+1) − δ(h−1) needs one lag ahead.
    """
    a = 1.0 + beta - eta * lam
    w = (1.0 + beta) / ((1.0 - beta) * (2.0 * (1.0 + beta) - eta * lam))
    d_before = np.zeros_like(lam)          # δ(h − 1)
    d_here = w / (1.0 + beta)              # δ(h), starting at h = 1
    d_one = d_here
    total = np.zeros_like(lam)
    for h in range(1, M):
        d_next = w + a * d_here - beta * d_before  # δ(h + 1)
        if output == "weight":
            term = d_here
        else:
            term = 2.0 * d_one + 2.0 * d_here - d_next - d_before
        total += (M - h) * term
        d_before, d_here = d_here, d_next
    return 2.0 / (M * (M - 1.0)) * total


def _loop_positions(lam: FloatArray, eta: FloatArray, beta: FloatArray, M: int,
                           output: str, positions: np.ndarray) -> FloatArray:
    r"""Var/(η²C) at the given positions within the epoch, shape lam.shape + (len(positions),).

    State s_k = (x_k, x_{k−1}), A = [[a, −β], [1, 0]], b = (1, 0)ᵀ, output y = cᵀs with
    c = (1, 0) (weight) or (1, −1) (velocity); the output's impulse response is
    g(j) = cᵀAʲb.  Write the epoch noises as ξ = √(M/(M−1)) (ζ − ζ̄) with ζ i.i.d. of variance C
    (this reproduces variance C and covariance −C/(M−1)).  At position m the lags j = 0 … m−1
    belong to the current epoch (its remaining M − m noises have not acted yet) and the lags
    m + kM + i, i < M, to the k-th previous epoch.  Then

        Var/(η²C) = M/(M−1) · [ Σ_{i<m} g(i)² − (Σ_{i<m} g(i))²/M  +  s_mᵀ Q s_m ],

    with s_m = Aᵐb, F = Aᴹ, K = Σ_{i<M} (r_i − r̄)ᵀ(r_i − r̄) (rows r_i = cᵀAⁱ, centred over
    the epoch, accumulated by Welford's update), and Q = Σ_{k≥0} Fᵏᵀ K Fᵏ, the solution of
    Q = FᵀQF + K.  Q is summed by doubling, Q ← Q + F_nᵀ Q F_n, F_n ← F_n², stopping when
    ‖F_n‖_F² ≤ 2⁻⁵⁶: the neglected tail is F_nᵀ Q_∞ F_n, of norm ≤ ‖F_n‖₂² ‖Q_∞‖, so the
    truncation error is below 2⁻⁵⁶ ‖Q_∞‖ (proof: Q_∞ = Q_n + F_nᵀ Q_∞ F_n).
    """
    shape = lam.shape
    a = (1.0 + beta - eta * lam).ravel()
    b_ = beta.ravel()
    K_len = a.size
    r = np.zeros((K_len, 2))
    r[:, 0] = 1.0
    if output == "velocity":
        r[:, 1] = -1.0
    s = np.zeros((K_len, 2))
    s[:, 0] = 1.0
    s_prev = np.zeros((K_len, 2))
    total = np.zeros(K_len)
    total_sq = np.zeros(K_len)
    mean = np.zeros((K_len, 2))
    scatter = np.zeros((K_len, 2, 2))
    want = {int(p): idx for idx, p in enumerate(positions)}
    partial = np.zeros((K_len, len(positions)))
    states = np.zeros((K_len, len(positions), 2))
    for i in range(M):
        if i in want:
            idx = want[i]
            partial[:, idx] = total_sq - total**2 / M
            states[:, idx] = s
        g = r[:, 0]
        total += g
        total_sq += g * g
        diff = r - mean
        mean += diff / (i + 1)
        scatter += diff[:, :, None] * (r - mean)[:, None, :]
        r = np.stack([a * r[:, 0] + r[:, 1], -b_ * r[:, 0]], axis=1)
        s_prev = s
        s = np.stack([a * s[:, 0] - b_ * s[:, 1], s[:, 0]], axis=1)
    # F = A^M: first column A^M e1 = s_M, second column A^M e2 = -β A^{M-1} e1 = -β s_{M-1}
    F = np.stack([s, -b_[:, None] * s_prev], axis=2)
    Q = 0.5 * (scatter + np.swapaxes(scatter, 1, 2))
    Fn = F
    for _ in range(256):
        if np.max(np.sum(Fn * Fn, axis=(1, 2))) <= 2.0**-56:
            break
        Q = Q + np.swapaxes(Fn, 1, 2) @ Q @ Fn
        Fn = Fn @ Fn
    else:  # pragma: no cover - guarded by the stability check
        raise ValueError("lam: eta*lam is too small to resolve the epoch sum in float64")
    quad = np.einsum("kpi,kij,kpj->kp", states, Q, states)
    var = M / (M - 1.0) * (partial + quad)
    return var.reshape(shape + (len(positions),))



# ---------------------------------------------------------------------------------------------
# sympy: the geometric closed form in the roots
# ---------------------------------------------------------------------------------------------

_r1, _r2, _h, _M = sp.symbols("r1 r2 h M")
_A, _BETA = _r1 + _r2, _r1 * _r2                       # x_{k+1} = a x_k − β x_{k−1} + u_k
_GAMMA0 = (1 + _BETA) / ((1 - _BETA) * ((1 + _BETA) ** 2 - _A**2))  # Σ_j G(j)²
_W = (1 - _A + _BETA) * _GAMMA0                         # w = ηλ γ(0), ηλ = (1 − r1)(1 − r2)


def _rho(h):
    """Autocorrelation γ(h)/γ(0) of the AR(2), in the roots."""
    return (((1 - _r2**2) * _r1 ** (h + 1) - (1 - _r1**2) * _r2 ** (h + 1))
            / ((_r1 - _r2) * (1 + _BETA)))


def _delta(h):
    return _GAMMA0 * (1 - _rho(h))


def _geometric(r, M):
    """Σ_{h=1}^{M−1} (M − h) r^h in closed form."""
    return r * (r**M - M * r + M - 1) / (1 - r) ** 2


def _weighted_delta_sum(M):
    """Σ_{h=1}^{M−1} (M − h) δ(h) = γ(0)[M(M−1)/2 − Σ (M − h) ρ(h)], in closed form."""
    rho_sum = (((1 - _r2**2) * _r1 * _geometric(_r1, M) - (1 - _r1**2) * _r2 * _geometric(_r2, M))
               / ((_r1 - _r2) * (1 + _BETA)))
    return _GAMMA0 * (M * (M - 1) / 2 - rho_sum)


def test_sympy_delta_in_the_roots_solves_the_recursion_of_the_code():
    """δ(h) = γ(0)(1 − ρ(h)) obeys δ(0) = 0, δ(1) = w/(1+β), δ(h+1) = w + aδ(h) − βδ(h−1)."""
    assert sp.simplify(_delta(0)) == 0
    assert sp.simplify(_delta(1) - _W / (1 + _BETA)) == 0
    recursion = _delta(_h + 1) - (_W + _A * _delta(_h) - _BETA * _delta(_h - 1))
    assert sp.simplify(sp.expand(sp.powsimp(sp.expand(recursion)))) == 0
    # γ(0) is Σ_j G(j)² of the i.i.d. weight variance: η²C γ(0) = weight_variance_iid
    lam, eta, beta = sp.symbols("lam eta beta", positive=True)
    a = 1 + beta - eta * lam
    gamma0 = (1 + beta) / ((1 - beta) * ((1 + beta) ** 2 - a**2))
    assert sp.simplify(eta**2 * gamma0 - weight_variance_iid(lam, 1, eta, beta)) == 0


@pytest.mark.parametrize("M", [2, 3, 4, 7])
def test_sympy_closed_form_sums(M):
    """The geometric sums and the telescoped velocity sum, for explicit M, as rational identities
    in the roots."""
    r = sp.Symbol("r")
    assert sp.simplify(sum((M - h) * r**h for h in range(1, M)) - _geometric(r, M)) == 0
    direct = sum((M - h) * _delta(h) for h in range(1, M))
    assert sp.simplify(direct - _weighted_delta_sum(M)) == 0
    velocity = sum((M - h) * (2 * _delta(1) + 2 * _delta(h) - _delta(h + 1) - _delta(h - 1))
                   for h in range(1, M))
    assert sp.simplify(velocity - (M**2 * _delta(1) - _delta(M))) == 0


_B_CLOSED = sp.lambdify((_r1, _r2, _M), _weighted_delta_sum(_M), "mpmath")
_D_CLOSED = sp.lambdify((_r1, _r2, _h), _delta(_h), "mpmath")


def _mp_roots(lam, eta, beta):
    a = 1 + mp.mpf(beta) - mp.mpf(eta) * mp.mpf(lam)
    disc = mp.sqrt(mp.mpc(a * a - 4 * mp.mpf(beta)))
    return (a + disc) / 2, (a - disc) / 2


def _mp_phase_average(lam, eta, beta, M, output):
    """Var/(η²C), phase-averaged, from the closed form at 60 digits."""
    with mp.workdps(60):
        r1, r2 = _mp_roots(lam, eta, beta)
        if output == "weight":
            total = _B_CLOSED(r1, r2, M)
        else:
            total = M**2 * _D_CLOSED(r1, r2, 1) - _D_CLOSED(r1, r2, M)
        return float(mp.re(2 * total / (M * mp.mpf(M - 1))))


def _cases():
    for beta in (0.0, 0.3, 0.9, 0.99):
        for frac in (1e-12, 1e-7, 1e-3, 0.3, 0.9, 0.999):  # ηλ / (2(1 + β))
            yield beta, frac
    yield 0.25, 0.25 / 2.5  # critically damped: ηλ = (1 − √β)², a² = 4β


def _tolerance(beta, frac):
    """Relative error allowed: 1e-12, plus a few ulps times the condition number of the
    variance in ηλ near the stability edge, 1/(1 − ηλ/(2(1+β)))."""
    return 1e-12 + 32 * EPS / (1.0 - frac)


@pytest.mark.parametrize("M", [2, 3, 50, 10**6, 10**9, 2**53])
def test_phase_average_matches_closed_form_for_any_M(M):
    eta = 0.1
    for beta, frac in _cases():
        lam = frac * 2 * (1 + beta) / eta
        for output, func in (("weight", weight_variance_epoch), ("velocity", velocity_variance_epoch)):
            want = eta**2 * _mp_phase_average(lam, eta, beta, M, output)
            got = func(lam, 1.0, eta, beta, M)
            assert_allclose(got, want, rtol=_tolerance(beta, frac), err_msg=f"{output} {beta} {frac}")


# ---------------------------------------------------------------------------------------------
# mpmath: the position-resolved formula, directly
# ---------------------------------------------------------------------------------------------


def _mp_position(lam, eta, beta, M, output, m, dps=40):
    """Var x_m/(η²C) (or of the velocity): the current epoch's m lags plus the Lyapunov sum over
    the previous epochs, with the companion matrix A at ``dps`` digits."""
    with mp.workdps(dps):
        lam, eta, beta = mp.mpf(lam), mp.mpf(eta), mp.mpf(beta)
        A = mp.matrix([[1 + beta - eta * lam, -beta], [1, 0]])
        row = mp.matrix([[1, 0]]) if output == "weight" else mp.matrix([[1, -1]])
        rows = []
        for _ in range(M):
            rows.append(row)
            row = row * A
        g = [r[0] for r in rows]
        partial = sum(x * x for x in g[:m]) - sum(g[:m]) ** 2 / M if m else mp.mpf(0)
        mean = sum(rows[1:], rows[0]) / M
        K = mp.matrix(2, 2)
        for r in rows:
            K += (r - mean).T * (r - mean)
        F = A**M
        index = [(0, 0), (0, 1), (1, 0), (1, 1)]   # Q − FᵀQF = K, as a 4×4 system
        L, rhs = mp.eye(4), mp.matrix(4, 1)
        for p, (i, j) in enumerate(index):
            rhs[p] = K[i, j]
            for q, (k, l) in enumerate(index):
                L[p, q] -= F[k, i] * F[l, j]
        q = mp.lu_solve(L, rhs)
        Q = mp.matrix([[q[0], q[1]], [q[2], q[3]]])
        s = (A**m) * mp.matrix([[1], [0]])
        return float(M / mp.mpf(M - 1) * (partial + (s.T * Q * s)[0]))


@pytest.mark.parametrize("M", [2, 5, pytest.param(40, marks=pytest.mark.slow)])
def test_positions_match_direct_high_precision_sums(M):
    eta = 0.1
    for beta, frac in _cases():
        lam = frac * 2 * (1 + beta) / eta
        for output, func in (("weight", weight_variance_epoch), ("velocity", velocity_variance_epoch)):
            for m in sorted({0, 1, M // 2, M - 1}):
                want = eta**2 * _mp_position(lam, eta, beta, M, output, m)
                got = func(lam, 1.0, eta, beta, M, position=m)
                assert_allclose(got, want, rtol=_tolerance(beta, frac),
                                err_msg=f"{output} beta={beta} frac={frac} m={m}")
        profile = weight_variance_epoch_profile(lam, 1.0, eta, beta, M)
        want = [eta**2 * _mp_position(lam, eta, beta, M, "weight", m) for m in range(M)]
        assert_allclose(profile, want, rtol=_tolerance(beta, frac))


# ---------------------------------------------------------------------------------------------
# the former loops, where they are accurate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("frac", [0.01, 0.3, 0.7])
@pytest.mark.parametrize("M", [2, 3, 16, 64])
def test_doubling_matches_the_former_loops(beta, frac, M):
    eta = 0.2
    lam = np.array([frac * 2 * (1 + beta) / eta])
    e, b = np.full(1, eta), np.full(1, beta)
    for output in ("weight", "velocity"):
        assert_allclose(en._phase_averaged_epoch(lam, e, b, M, output),
                        _loop_phase_average(lam, e, b, M, output), rtol=1e-12)
        loop = _loop_positions(lam, e, b, M, output, np.arange(M))[0]
        fast = [en._epoch_position_variance(lam, e, b, M, output, m)[0] for m in range(M)]
        assert_allclose(fast, loop, rtol=1e-12)
    assert_allclose(en._epoch_weight_profile(lam, e, b, M)[0],
                    _loop_positions(lam, e, b, M, "weight", np.arange(M))[0], rtol=1e-12)
    assert_allclose(en._delta_sequence(lam, e, b, M), _loop_delta_sequence(lam, e, b, M),
                    rtol=1e-12)


def test_stationary_variance_correlated_uses_the_vectorised_delta():
    lam, eta, beta = 0.7, 0.3, 0.6
    R = np.random.default_rng(0).standard_normal(50) * 0.1
    R[0] = 5.0
    delta = _loop_delta_sequence(np.array(lam), np.array(eta), np.array(beta), R.size + 1)
    var = ((1 + beta) / ((1 - beta) * eta * lam * (2 * (1 + beta) - eta * lam))
           * (R[0] + 2 * R[1:].sum()) - 2 * np.sum(R[1:] * delta[1:R.size]))
    assert_allclose(stationary_variance_correlated(lam, eta, beta, R), eta**2 * var, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# any M in milliseconds
# ---------------------------------------------------------------------------------------------


def test_every_epoch_closed_form_is_fast_for_huge_M():
    """Reproducer: weight_variance_epoch(..., M=10**9) looped over M (M = 1e7 took 16 s)."""
    lam = np.logspace(-9, 0, 64)
    start = time.perf_counter()
    for M in (10**7, 10**9, 2**53):
        for func in (weight_variance_epoch, velocity_variance_epoch):
            for position in (None, 0, M // 3, M - 1):
                assert np.all(np.isfinite(func(lam, 1.0, 0.1, 0.9, M, position=position)))
        assert np.all(np.isfinite(correlation_time(lam, 0.1, 0.9, M)))
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{elapsed:.2f} s for 27 evaluations at M up to 2**53"


def test_huge_epochs_reach_the_iid_variance():
    lam, eta, beta = 0.5, 0.1, 0.9
    iid = weight_variance_iid(lam, 1.0, eta, beta)
    for position in (None, 0, 12345):
        # relaxation time (1−β)/(ηλ) = 0.2 steps ≪ M: the epoch correlation is a 1/M effect
        assert_allclose(weight_variance_epoch(lam, 1.0, eta, beta, 2**53, position=position), iid,
                        rtol=1e-12)


def test_profile_agrees_with_positions_and_phase_average_at_large_M():
    lam, eta, beta, M = np.array([1e-6, 3e-3, 2.0]), 0.1, 0.6, 100_000
    profile = weight_variance_epoch_profile(lam, 1.0, eta, beta, M)
    assert profile.shape == (3, M)
    assert_allclose(profile.mean(axis=-1), weight_variance_epoch(lam, 1.0, eta, beta, M),
                    rtol=1e-10)
    for m in (0, 1, 777, M - 1):
        assert_allclose(profile[:, m], weight_variance_epoch(lam, 1.0, eta, beta, M, position=m),
                        rtol=1e-10)


def test_profile_refuses_huge_outputs_before_allocating():
    with pytest.raises(ValueError, match=r"\bM = 1000000000\b.*max_bytes"):
        weight_variance_epoch_profile(0.5, 1.0, 0.1, 0.0, 10**9)
    with pytest.raises(ValueError, match=r"max_bytes"):
        weight_variance_epoch_profile(np.ones(10), 1.0, 0.1, 0.0, 1000, max_bytes=1000)
    with pytest.raises(ValueError, match=r"\bmax_bytes\b"):
        weight_variance_epoch_profile(0.5, 1.0, 0.1, 0.0, 10, max_bytes=0)


def test_M_beyond_exact_float64_counts_is_refused():
    for func in (weight_variance_epoch, velocity_variance_epoch):
        with pytest.raises(ValueError, match=r"\bM\b must be <= 2\*\*53"):
            func(0.5, 1.0, 0.1, 0.0, 2**53 + 1)


def test_tiny_curvature_tail_converges():
    """A slow mode within 1e-301 of 1 (A^M rounds to I in the companion form) still gives the
    position variances, which the doubling reaches in about a thousand squarings."""
    eta, M = 0.1, 10
    for beta in (0.0, 0.9):
        for m in (0, 5):
            want = eta**2 * _mp_position(1e-300, eta, beta, M, "weight", m, dps=340)
            got = weight_variance_epoch(1e-300, 1.0, eta, beta, M, position=m)
            # β = 0, m = 0: the boundary variance is O(ηλ) ≈ 1e-302, below the resolution
            assert_allclose(got, want, rtol=1e-12, atol=1e-280)
        assert_allclose(np.mean(weight_variance_epoch_profile(1e-300, 1.0, eta, beta, M)),
                        weight_variance_epoch(1e-300, 1.0, eta, beta, M), rtol=1e-12)

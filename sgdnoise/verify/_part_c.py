"""Claims of SPEC part C (Mori, Ziyin, Liu & Ueda, ICML 2022): C1, C2, C3, C4.

Shared choices (see ``docs/theory/part-c.md``):

* SDE experiments use the double well L = L₀ + a(θ₀² − 1)² (+ k/2 Σ θ_j², k = 8a) with a = 1,
  B = 1 and η = T/(8a) at temperature T = ηh*/B = 0.5; c = 1 + a/L₀ is varied through L₀, so
  h* = 8a and h^s = −4a stay fixed.  Passage: θ₀ ≤ −0.5 (past the saddle, where the passage
  time hardly depends on the boundary, so the Euler grid-monitoring bias is small); exact
  reference: :func:`sgdnoise.theory.mean_first_passage_time_1d`, reflecting at θ₀ = 3.
* Discrete SGD: 1-D linear regression, x, y ~ N(0, 1) independent, N = 10⁴, B = 1, η = 0.1,
  start at θ*, passage to L ≥ cL*.
* Mean passage times from censored runs: exponential MLE d/E with the robust (ratio) standard
  error (:mod:`sgdnoise.verify.survival`); slopes by weighted least squares on log MFPT.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from sgdnoise import theory
from sgdnoise.sim.dynamics import LinearRegressionProblem, Record, sgd, simulate
from sgdnoise.sim.dynamics._passage import first_passage_times
from sgdnoise.sim.dynamics._sde import simulate_sde
from sgdnoise.verify._part_b import _engine_seed
from sgdnoise.verify._registry import Claim, Outcome, RunContext
from sgdnoise.verify.survival import exponential_rate

SOURCE_C = "Mori, Ziyin, Liu & Ueda, ICML 2022 (arXiv:2105.09557)"

#: |z| bound for Monte Carlo comparisons: with ≤ 30 comparisons per claim a 4σ bound has a
#: family-wise false-alarm rate below 2e-3 (Bonferroni, Gaussian tails).
Z_MAX = 4.0
#: KS significance level (per test); the critical value √(−ln(α/2)/2)/√n follows from it.
KS_ALPHA = 1e-3
#: SDE temperature T = ηh*/B, barrier height a, batch size.
SDE_T = 0.5
SDE_A = 1.0
SDE_B = 1.0
SDE_ETA = SDE_T / (8.0 * SDE_A)
#: Passage position (θ₀ ≤ −0.5) and the reflecting end of the exact quadrature.
PASSAGE_POSITION = -0.5
REFLECT_AT = 3.0
#: Allowed relative departure of the exact SDE slope from the leading-order exponent at T = 0.5
#: (the formula is asymptotic in T → 0: its next corrections are O(T) in the prefactor, which
#: depends only weakly on c, so the slope error is a few per cent; 5 % is that bound).
SLOPE_RTOL = 0.05
#: C4: allowed departure of the fitted change of exponent per direction from −½ beyond 4 s.e.
#: (leading order in T; at n close to n_c the harmonic directions no longer equilibrate
#: fast compared with the escape, which the 1-D reduction assumes).
C4_ATOL = 0.1
#: Discrete SGD experiment of spec C3.
SGD_N = 10_000
SGD_ETA = 0.1
SGD_B = 1


def _sizes(ctx: RunContext) -> dict[str, Any]:
    quick = ctx.scale == "quick"
    return {
        "sde_c": (2.0, 3.0, 4.0, 6.0) if quick else (2.0, 3.0, 4.0, 6.0, 8.0, 12.0),
        "sde_R": 200 if quick else 2000,
        "dt": 0.005 if quick else 0.002,
        "sgd_c": (1.25, 1.5, 1.75, 2.0) if quick else (1.25, 1.5, 1.75, 2.0, 2.25, 2.5),
        "sgd_R": 200 if quick else 1000,
        "sgd_K": 2_000_000 if quick else 50_000_000,
        "c4_n": (1, 2, 3, 4),
        "c2_R": 4000 if quick else 40000,
    }


def weighted_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    r"""Weighted least-squares line y ≈ α + s x with weights 1/se²: (s, s.e. of s, α).

    .. math:: s = \frac{\sum w (x - \bar x)(y - \bar y)}{\sum w (x - \bar x)^2}, \qquad
              \mathrm{s.e.}(s) = \Big(\sum w (x - \bar x)^2\Big)^{-1/2}

    (w = 1/se², weighted means): the s.e. assumes the given standard errors of y are right.

    References
    ----------
    Spec claims C3, C4 (slope of log MFPT against log c).
    """
    x, y, se = (np.asarray(v, dtype=np.float64) for v in (x, y, se))
    w = 1.0 / se**2
    xb = float((w * x).sum() / w.sum())
    yb = float((w * y).sum() / w.sum())
    sxx = float((w * (x - xb) ** 2).sum())
    s = float((w * (x - xb) * (y - yb)).sum()) / sxx
    return s, 1.0 / math.sqrt(sxx), yb - s * xb


def _mfpt(times: np.ndarray, censored: np.ndarray) -> tuple[float, float, int]:
    est = exponential_rate(times, censored)
    return est.mean_time, est.log_mean_time_se, int(np.count_nonzero(censored))


def _well_drift(x: float) -> float:
    return -4.0 * SDE_A * x * (x * x - 1.0)


def exact_sde_mfpt(c: float, T: float) -> float:
    """Exact MFPT of the 1-D SDE dθ = −L′dt + √(2TL) dW from θ = 1 to θ ≤ −0.5 (c = 1 + a/L₀)."""
    L0 = SDE_A / (c - 1.0)
    return float(theory.mean_first_passage_time_1d(
        _well_drift, lambda x: T * (L0 + SDE_A * (x * x - 1.0) ** 2), 1.0, REFLECT_AT,
        PASSAGE_POSITION))


def exact_constant_mfpt(T: float) -> float:
    """Exact MFPT of GLD dθ = −L′dt + √(2T) dW (constant T) from θ = 1 to θ ≤ −0.5."""
    return float(theory.mean_first_passage_time_1d(_well_drift, lambda x: T, 1.0, REFLECT_AT,
                                                   PASSAGE_POSITION))


def _sde_passage(ctx: RunContext, key: tuple[int, ...], c: float, *, n: int = 1,
                 noise: str = "sgd", temperature: float | None = None) -> tuple[float, float, int]:
    sz = _sizes(ctx)
    dt = sz["dt"]
    run = simulate_sde(L0=SDE_A / (c - 1.0), a=SDE_A, n=n, noise=noise, eta=SDE_ETA, B=SDE_B,
                       temperature=temperature, dt=dt, num_steps=int(4000 / dt),
                       num_replicas=sz["sde_R"], seed=_engine_seed(ctx, *key),
                       first_passage_position=PASSAGE_POSITION, backend=_sde_backend(ctx))
    return _mfpt(run.first_passage_time, run.censored)


def _sde_backend(ctx: RunContext) -> str:
    return "numba" if ctx.backend in ("numba", "cupy") else "numpy"


# ---------------------------------------------------------------------------------------- C1
def _per_sample_noise_trace(X: np.ndarray, y: np.ndarray, theta: np.ndarray
                            ) -> tuple[float, float]:
    """𝒩 = E_p‖g_p‖² − ‖ḡ‖² and its s.e. from the influence function ψ_p = ‖g_p‖² − 2ḡᵀg_p."""
    r = X @ theta - y
    G = r[:, None] * X
    g_mean = G.mean(axis=0)
    q = np.sum(G * G, axis=1)
    value = float(q.mean() - g_mean @ g_mean)
    psi = q - 2.0 * G @ g_mean
    return value, float(psi.std(ddof=1) / math.sqrt(X.shape[0]))


def run_c1(ctx: RunContext) -> dict[str, Any]:
    """Noise trace along SGD: a 10-D case (spread spectrum, label noise) and the 1-D case of C3.

    Returns per case the recorded L, measured 𝒩 with s.e., the exact population form and the
    decoupled 2L Tr H, and z-scores of the exact form.
    """
    N = 4000 if ctx.scale == "quick" else SGD_N
    rng = ctx.rng(31)
    cases = {}
    D = 10
    lam = np.geomspace(1.0, 0.05, D)
    Q = np.linalg.qr(rng.standard_normal((D, D)))[0]
    H10 = (Q * lam) @ Q.T
    cases["10-D, σ² = 0.1"] = (H10, 0.1, rng.standard_normal(D) / np.sqrt(D), 0.2, 8)
    cases["1-D, x, y ~ N(0, 1)"] = (np.eye(1), 1.0, np.zeros(1), SGD_ETA, 1)
    out: dict[str, Any] = {}
    for i, (name, (H, sigma2, theta_true, eta, B)) in enumerate(cases.items()):
        d = H.shape[0]
        root = np.linalg.cholesky(H)
        X = rng.standard_normal((N, d)) @ root.T
        y = X @ theta_true + math.sqrt(sigma2) * rng.standard_normal(N)
        problem = LinearRegressionProblem(X, y)
        theta0 = theta_true + 3.0 * rng.standard_normal(d) / np.sqrt(d)
        steps = 400
        run = simulate(problem, sgd(B), eta=eta, num_steps=steps, num_replicas=1,
                       seed=_engine_seed(ctx, 1, i), theta0=theta0, observe=[Record(every=20)],
                       execution=ctx.backend if ctx.backend != "cupy" else "numpy")
        thetas = run.trajectory[:, 0, :]
        measured = np.array([_per_sample_noise_trace(X, y, th) for th in thetas])
        pred = theory.noise_trace_linear_regression(H, thetas - theta_true, sigma2)
        exact = np.asarray(pred.exact, dtype=np.float64)
        decoupled = np.asarray(pred.decoupled, dtype=np.float64)
        z = (measured[:, 0] - exact) / measured[:, 1]
        out[name] = {"loss": np.asarray(pred.loss), "measured": measured[:, 0],
                     "standard_error": measured[:, 1], "exact": exact, "decoupled": decoupled,
                     "z": z, "relative_gap_measured": measured[:, 0] / decoupled - 1.0,
                     "relative_gap_predicted": np.asarray(pred.relative_gap),
                     "trace_H": float(np.trace(H)), "eta": eta, "B": B, "N": N}
    return out


def _run_c1(ctx: RunContext) -> Outcome:
    res = run_c1(ctx)
    worst = max(float(np.max(np.abs(r["z"]))) for r in res.values())
    parts = []
    for name, r in res.items():
        parts.append(f"{name}: (𝒩/2LTrH − 1) {r['relative_gap_measured'][0]:.2f} at start → "
                     f"{r['relative_gap_measured'][-1]:.3f} at end")
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures_c import noise_trace_figure

        noise_trace_figure(res, f"{ctx.out_dir}/C1_noise_trace.png")
    return Outcome(
        prediction="𝒩 = 2L Tr H + ‖Hδθ‖² (Gaussian x, exact); decoupled 2L Tr H exact only at "
                   "Hδθ = 0",
        measurement=f"max |z| {worst:.2f} (exact form); " + "; ".join(parts),
        tolerance=f"|z| ≤ {Z_MAX:g} at every recorded point (s.e. from the per-sample influence "
                  f"function); decoupling gap reported",
        passed=worst <= Z_MAX,
        values={"cases": res, "max_abs_z": worst},
    )


# ---------------------------------------------------------------------------------------- C2
def _ks_critical(n: int) -> float:
    return math.sqrt(-math.log(KS_ALPHA / 2) / 2) / math.sqrt(n)


def _ks_on_loss(loss_samples: np.ndarray, L_grid: np.ndarray, grid: np.ndarray,
                density: np.ndarray) -> float:
    """KS distance between sampled losses L(θ) and the law of L(θ) under ``density`` of θ.

    The test is run on L(θ), not on θ: the laws compared here are symmetric mixtures whose
    θ-CDFs differ little, while P(L) depends on φ directly (P(L ≤ ℓ) integrates the density
    over {L ≤ ℓ}, from the grid sorted by L).
    """
    w = np.zeros_like(density)
    dg = np.diff(grid)
    w[:-1] += dg / 2 * density[:-1]
    w[1:] += dg / 2 * density[1:]
    order = np.argsort(L_grid, kind="stable")
    cdf = np.cumsum(w[order])
    cdf /= cdf[-1]
    L_sorted = L_grid[order]
    return float(stats.kstest(loss_samples, lambda s: np.interp(s, L_sorted, cdf)).statistic)


def run_c2(ctx: RunContext) -> dict[str, Any]:
    """Stationary samples of the SDE (double well, c = 2) and of discrete SGD (η = 0.1, 1)."""
    sz = _sizes(ctx)
    R = sz["c2_R"]
    dt = 0.002
    L0 = 0.25
    theta0 = np.where(np.arange(R) % 2 == 0, 1.0, -1.0)[:, None]
    run = simulate_sde(L0=L0, a=SDE_A, eta=SDE_ETA, B=SDE_B, dt=dt, num_steps=int(15.0 / dt),
                       num_replicas=R, seed=_engine_seed(ctx, 2, 0), theta0=theta0,
                       backend=_sde_backend(ctx))
    samples = run.theta[:, 0]
    grid = np.linspace(-3.0, 3.0, 60001)
    L_grid = L0 + SDE_A * (grid**2 - 1.0) ** 2
    phi_sde = float(theory.phi(B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A))
    dens = theory.stationary_density_1d(L_grid, grid, B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A)
    out: dict[str, Any] = {"sde": {"samples": samples, "grid": grid, "density": dens,
                                   "phi": phi_sde,
                                   "ks": _ks_on_loss(L0 + SDE_A * (samples**2 - 1.0) ** 2, L_grid,
                                                     grid, dens),
                                   "ks_critical": _ks_critical(R), "n": R, "dt": dt}}
    rng = ctx.rng(32)
    x = rng.standard_normal(SGD_N)
    y = rng.standard_normal(SGD_N)
    problem = LinearRegressionProblem(x[:, None], y)
    A, th_star, L_star = float(problem.A[0, 0]), float(problem.theta_star[0]), problem.loss_star
    r_star = y - x * th_star
    for j, eta in enumerate((SGD_ETA, 1.0)):
        sgd_run = simulate(problem, sgd(SGD_B), eta=eta, num_steps=500, num_replicas=R,
                           seed=_engine_seed(ctx, 2, 1 + j), theta0=problem.theta_star,
                           execution=ctx.backend if ctx.backend != "cupy" else "numpy")
        delta = sgd_run.theta[:, 0] - th_star
        phi_pred = float(theory.phi(B=SGD_B, eta=eta, h_star=A))
        span = max(3.0, float(np.abs(delta).max()) * 1.01)
        g = np.linspace(-span, span, 200001)
        L_g = L_star + 0.5 * A * g**2
        d = theory.stationary_density_1d(L_g, g, B=SGD_B, eta=eta, h_star=A)
        # exact stationary second moment of the discrete chain δ' = (1 − ηx²)δ + ηx r*:
        # m₂ = η² E[x²r*²] / (1 − E(1 − ηx²)²) when E(1 − ηx²)² < 1 (else infinite)
        contraction = float(np.mean((1.0 - eta * x**2) ** 2))
        m2_exact = (eta**2 * float(np.mean(x**2 * r_star**2)) / (1.0 - contraction)
                    if contraction < 1 else math.inf)
        m2 = float(np.mean(delta**2))
        m2_se = float(np.std(delta**2, ddof=1) / math.sqrt(R))
        s2 = 2.0 * L_star / A
        phi_mom = (s2 / m2 + 3.0) / 2.0 if math.isfinite(m2_exact) else math.nan
        phi_mom_se = s2 / (2.0 * m2**2) * m2_se if math.isfinite(m2_exact) else math.nan
        out[f"sgd_eta_{eta:g}"] = {
            "eta": eta, "delta": delta, "grid": g, "density": d, "phi": phi_pred,
            "ks": _ks_on_loss(L_star + 0.5 * A * delta**2, L_g, g, d), "ks_critical": _ks_critical(R), "n": R,
            "m2": m2, "m2_se": m2_se, "m2_exact_chain": m2_exact,
            "m2_z": (m2 - m2_exact) / m2_se if math.isfinite(m2_exact) else math.nan,
            "phi_moment": phi_mom, "phi_moment_se": phi_mom_se, "contraction": contraction}
    return out


def _run_c2(ctx: RunContext) -> Outcome:
    res = run_c2(ctx)
    sde = res["sde"]
    s1 = res[f"sgd_eta_{SGD_ETA:g}"]
    s2 = res["sgd_eta_1"]
    ok_sde = sde["ks"] <= sde["ks_critical"]
    ok_chain = abs(s1["m2_z"]) <= Z_MAX
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures_c import stationary_figure

        stationary_figure(res, f"{ctx.out_dir}/C2_stationary.png")
    return Outcome(
        prediction=f"P(θ) ∝ L^−φ, φ = 1 + B/(ηh*) = {sde['phi']:.2f} (SDE, T = {SDE_T}); "
                   f"{s1['phi']:.2f} (SGD η = 0.1); {s2['phi']:.2f} (SGD η = 1)",
        measurement=(f"SDE KS D = {sde['ks']:.4f} (n = {sde['n']}); SGD η = 0.1: KS D = "
                     f"{s1['ks']:.4f}, moment-matched φ = {s1['phi_moment']:.2f} ± "
                     f"{s1['phi_moment_se']:.2f} (relative departure "
                     f"{s1['phi_moment'] / s1['phi'] - 1:+.1%}), chain m₂ z = {s1['m2_z']:.2f}; "
                     f"SGD η = 1: KS D = {s2['ks']:.3f} (E(1−ηx²)² = {s2['contraction']:.2f} "
                     f"> 1: infinite variance)"),
        tolerance=(f"SDE: KS D ≤ {sde['ks_critical']:.4f} (α = {KS_ALPHA:g}); SGD: its exact "
                   f"chain second moment within {Z_MAX:g} s.e.; the SGD departure from L^−φ is "
                   f"reported, not gated"),
        passed=bool(ok_sde and ok_chain),
        values=res,
    )


# ---------------------------------------------------------------------------------------- C3
def run_c3(ctx: RunContext) -> dict[str, Any]:
    """MFPT against c: SDE (with exact quadrature and formula), Arrhenius alternatives, SGD."""
    sz = _sizes(ctx)
    cs = np.array(sz["sde_c"])
    exponent = float(theory.escape_exponent(B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A, n=1))
    sde = np.array([_sde_passage(ctx, (3, 0, i), c) for i, c in enumerate(cs)])
    exact = np.array([exact_sde_mfpt(c, SDE_T) for c in cs])
    formula = 1.0 / np.asarray(theory.escape_rate_1d(8.0 * SDE_A, -4.0 * SDE_A, cs, B=SDE_B,
                                                     eta=SDE_ETA), dtype=np.float64)
    slope, slope_se, _ = weighted_slope(np.log(cs), np.log(sde[:, 0]), sde[:, 1])
    exact_slope = float(np.polyfit(np.log(cs), np.log(exact), 1)[0])
    z_points = (np.log(sde[:, 0]) - np.log(exact)) / sde[:, 1]
    # Arrhenius alternatives: frozen noise (T L₀-dependent) and GLD at a fixed temperature
    frozen_formula = 1.0 / np.asarray(theory.arrhenius_rate_frozen_noise(
        8.0 * SDE_A, -4.0 * SDE_A, cs, B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A),
        dtype=np.float64)
    T_gld = SDE_T * SDE_A / (cs[0] - 1.0)           # = the frozen noise at the smallest c
    gld_formula = np.full(cs.shape, 1.0 / float(theory.kramers_rate(
        8.0 * SDE_A, -4.0 * SDE_A, SDE_A, T=T_gld)))
    frozen_sim = np.array([_sde_passage(ctx, (3, 1, i), c, noise="frozen")
                           for i, c in enumerate(cs[:2])])
    frozen_exact = np.array([exact_constant_mfpt(SDE_T * SDE_A / (c - 1.0)) for c in cs[:2]])
    gld_sim = np.array(_sde_passage(ctx, (3, 2, 0), cs[-1], noise="constant",
                                    temperature=T_gld))
    gld_exact = exact_constant_mfpt(T_gld)
    alt_z = np.concatenate([(np.log(frozen_sim[:, 0]) - np.log(frozen_exact)) / frozen_sim[:, 1],
                            [(math.log(gld_sim[0]) - math.log(gld_exact)) / gld_sim[1]]])
    arrhenius_slopes = {
        "frozen noise": float(np.polyfit(np.log(cs), np.log(frozen_formula), 1)[0]),
        "GLD, fixed T": 0.0,
    }
    # discrete SGD on 1-D linear regression
    rng = ctx.rng(33)
    x = rng.standard_normal(SGD_N)
    y = rng.standard_normal(SGD_N)
    problem = LinearRegressionProblem(x[:, None], y)
    A, th_star, L_star = float(problem.A[0, 0]), float(problem.theta_star[0]), problem.loss_star
    cg = np.array(sz["sgd_c"])
    sgd_rows = []
    for i, c in enumerate(cg):
        r = first_passage_times(x, y, eta=SGD_ETA, level=c * L_star, num_steps=sz["sgd_K"],
                                num_replicas=sz["sgd_R"], seed=_engine_seed(ctx, 3, 3, i),
                                theta0=th_star, execution=_sde_backend(ctx))
        t = np.where(r.censored, sz["sgd_K"], r.first_passage).astype(np.float64)
        sgd_rows.append(_mfpt(t, r.censored))
        ctx.report(i + 1, len(cg), "SGD passage levels")
    sgd_arr = np.array(sgd_rows)
    sgd_slope, sgd_slope_se, _ = weighted_slope(np.log(cg), np.log(sgd_arr[:, 0]), sgd_arr[:, 1])
    sgd_pred = float(theory.escape_exponent(B=SGD_B, eta=SGD_ETA, h_star=A, n=1))
    sde_lr = {nz: np.asarray(theory.linear_regression_passage_time_1d(
        cg, h=A, sigma2=2.0 * L_star, B=SGD_B, eta=SGD_ETA, noise=nz), dtype=np.float64) / SGD_ETA
        for nz in ("decoupled", "exact")}
    sde_lr_slopes = {nz: float(np.polyfit(np.log(cg), np.log(v), 1)[0]) for nz, v in sde_lr.items()}
    return {
        "c": cs, "exponent": exponent, "sde_mfpt": sde[:, 0], "sde_log_se": sde[:, 1],
        "sde_censored": sde[:, 2], "exact_mfpt": exact, "formula_mfpt": formula,
        "slope": slope, "slope_se": slope_se, "exact_slope": exact_slope, "z_points": z_points,
        "frozen_formula": frozen_formula, "gld_formula": gld_formula, "T_gld": T_gld,
        "frozen_sim": frozen_sim, "frozen_exact": frozen_exact, "gld_sim": gld_sim,
        "gld_exact": gld_exact, "alt_z": alt_z, "arrhenius_slopes": arrhenius_slopes,
        "sgd_c": cg, "sgd_mfpt_steps": sgd_arr[:, 0], "sgd_log_se": sgd_arr[:, 1],
        "sgd_censored": sgd_arr[:, 2], "sgd_runs": sz["sgd_R"], "sgd_slope": sgd_slope,
        "sgd_slope_se": sgd_slope_se, "sgd_predicted_slope": sgd_pred,
        "sgd_sde_mfpt_steps": sde_lr, "sgd_sde_slopes": sde_lr_slopes, "A": A, "L_star": L_star,
    }


def _run_c3(ctx: RunContext) -> Outcome:
    res = run_c3(ctx)
    pts = float(np.max(np.abs(res["z_points"])))
    z_slope = abs(res["slope"] - res["exact_slope"]) / res["slope_se"]
    rel_formula = abs(res["exact_slope"] / res["exponent"] - 1.0)
    alt = float(np.max(np.abs(res["alt_z"])))
    arr_rejected = all(abs(res["slope"] - s) > Z_MAX * res["slope_se"]
                       for s in res["arrhenius_slopes"].values())
    passed = pts <= Z_MAX and z_slope <= Z_MAX and rel_formula <= SLOPE_RTOL and alt <= Z_MAX \
        and arr_rejected
    dep = res["sgd_slope"] - res["sgd_predicted_slope"]
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures_c import escape_figure_c

        escape_figure_c(res, f"{ctx.out_dir}/C3_escape.png")
    c = res["c"]
    return Outcome(
        prediction=(f"SDE: MFPT ∝ c^{res['exponent']:.2f} (1/T + ½, T = {SDE_T}), c ∈ "
                    f"[{c[0]:g}, {c[-1]:g}]; SGD: slope B/(ηh*) + ½ = "
                    f"{res['sgd_predicted_slope']:.2f}"),
        measurement=(f"SDE slope {res['slope']:.3f} ± {res['slope_se']:.3f} (exact quadrature "
                     f"{res['exact_slope']:.3f}); max |z| vs exact MFPT {pts:.2f}; Arrhenius "
                     f"slopes {', '.join(f'{k} {v:.2f}' for k, v in res['arrhenius_slopes'].items())}"
                     f"; SGD slope {res['sgd_slope']:.2f} ± {res['sgd_slope_se']:.2f} over c ∈ "
                     f"[{res['sgd_c'][0]:g}, {res['sgd_c'][-1]:g}] (departure {dep:+.2f}, "
                     f"{dep / res['sgd_slope_se']:+.1f} s.e.; SDE quadrature slopes decoupled "
                     f"{res['sgd_sde_slopes']['decoupled']:.2f}, exact noise "
                     f"{res['sgd_sde_slopes']['exact']:.2f})"),
        tolerance=(f"SDE: |z| ≤ {Z_MAX:g} per c and for the slope vs the exact quadrature; "
                   f"exact slope within {SLOPE_RTOL:.0%} of the exponent (leading order in T); "
                   f"Arrhenius simulations match their quadrature and their slopes are rejected "
                   f"by > {Z_MAX:g} s.e.; SGD departure reported, not gated"),
        passed=bool(passed),
        values=res,
    )


# ---------------------------------------------------------------------------------------- C4
def run_c4(ctx: RunContext) -> dict[str, Any]:
    """Slopes of log MFPT vs log c of the n-D SDE for n = 1 … 4 and the fit slope(n)."""
    sz = _sizes(ctx)
    cs = np.array(sz["sde_c"])
    ns = np.array(sz["c4_n"])
    slopes, ses, mfpt = [], [], []
    for n in ns:
        rows = np.array([_sde_passage(ctx, (4, int(n), i), c, n=int(n)) for i, c in enumerate(cs)])
        s, se, _ = weighted_slope(np.log(cs), np.log(rows[:, 0]), rows[:, 1])
        slopes.append(s)
        ses.append(se)
        mfpt.append(rows[:, 0])
    slopes_a, ses_a = np.array(slopes), np.array(ses)
    step, step_se, intercept = weighted_slope(ns.astype(float), slopes_a, ses_a)
    predicted = np.array([float(theory.escape_exponent(B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A,
                                                       n=int(n))) for n in ns])
    n_c = float(theory.critical_dimension(B=SDE_B, eta=SDE_ETA, h_star=8.0 * SDE_A))
    n_c_measured = -intercept / step
    # delta method for n_c = −α/s with the covariance of (α, s) from the weighted fit
    w = 1.0 / ses_a**2
    xb = float((w * ns).sum() / w.sum())
    var_s = step_se**2
    var_a = 1.0 / w.sum() + xb**2 * var_s
    cov = -xb * var_s
    grad = np.array([-1.0 / step, intercept / step**2])
    n_c_se = float(np.sqrt(grad @ np.array([[var_a, cov], [cov, var_s]]) @ grad))
    return {"n": ns, "c": cs, "slopes": slopes_a, "slope_se": ses_a, "predicted": predicted,
            "mfpt": np.array(mfpt), "step": step, "step_se": step_se,
            "predicted_step": float(predicted[1] - predicted[0]) if ns.size > 1 else -0.5,
            "n_c": n_c, "n_c_measured": n_c_measured, "n_c_se": n_c_se}


def _run_c4(ctx: RunContext) -> Outcome:
    res = run_c4(ctx)
    z_step = abs(res["step"] - res["predicted_step"])
    passed = z_step <= Z_MAX * res["step_se"] + C4_ATOL
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures_c import dimension_figure

        dimension_figure(res, f"{ctx.out_dir}/C4_exponent.png")
    return Outcome(
        prediction=(f"exponent B/(ηh*) + 1 − n/2 falls by ½ per outlier direction; n_c = "
                    f"{res['n_c']:.1f}"),
        measurement=(f"slopes {', '.join(f'{s:.2f}±{e:.2f}' for s, e in zip(res['slopes'], res['slope_se'], strict=True))} "
                     f"for n = {', '.join(map(str, res['n']))}; change per direction "
                     f"{res['step']:.3f} ± {res['step_se']:.3f}; extrapolated n_c "
                     f"{res['n_c_measured']:.2f} ± {res['n_c_se']:.2f}"),
        tolerance=f"|change + ½| ≤ {Z_MAX:g} s.e. + {C4_ATOL:g} (leading order in T = {SDE_T})",
        passed=bool(passed),
        values=res,
    )


CLAIMS_C: tuple[Claim, ...] = (
    Claim("C1", f"{SOURCE_C}, Sec. 3 (noise ∝ loss)",
          "Along SGD on linear regression the gradient-noise trace 𝒩 = E_p‖∇ℓ_p‖² − ‖∇L‖² equals "
          "2L Tr H + ‖Hδθ‖² for Gaussian inputs (checked per recorded point against per-sample "
          "gradients); the paper's decoupled 2L Tr H is exact at the minimum, accurate late in "
          "training and off by up to a factor 2 far from it in 1-D without label noise.",
          _run_c1),
    Claim("C2", f"{SOURCE_C}, Sec. 4 (stationary law)",
          "The SDE dθ = −L′dt + √(2ηLh*/B) dW has the stationary law L^−φ, φ = 1 + B/(ηh*) "
          "(checked by KS on the sampled losses, double well at c = 5, T = 0.5); discrete SGD on 1-D linear regression "
          "departs from it (reported: at η = 0.1 the moment-matched φ is about 1/η, at η = 1 "
          "the variance is infinite).",
          _run_c2),
    Claim("C3", f"{SOURCE_C}, Sec. 5, Fig. 3 (power-law escape rate)",
          "Mean first-passage time of the SGD SDE over the double-well barrier grows as "
          "c^(B/(ηh*) + ½) (T = 0.5, c ∈ [2, 6] quick, [2, 12] full), matching the exact 1-D "
          "quadrature; Arrhenius alternatives (frozen noise, fixed-T GLD) have other slopes. "
          "Discrete SGD on 1-D linear regression (N = 10⁴, B = 1, η = 0.1, c ∈ [1.25, 2]): its "
          "slope against the predicted B/(ηh*) + ½ is reported with its standard error.",
          _run_c3),
    Claim("C4", f"{SOURCE_C}, Sec. 5 (effective dimension)",
          "With n − 1 harmonic outlier directions of curvature h* the escape exponent of the SDE "
          "falls by ½ per direction (n = 1 … 4 at T = 0.5), so minima become unstable at "
          "n_c = 2(B/(ηh*) + 1) = 6 (extrapolated from the fit).",
          _run_c4),
)

__all__ = ["CLAIMS_C", "exact_constant_mfpt", "exact_sde_mfpt", "run_c1", "run_c2", "run_c3",
           "run_c4", "weighted_slope"]

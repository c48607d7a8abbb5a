r"""Claims of SPEC part D (Kühn & Rosenow, arXiv:2306.05300): D1–D5, epoch-based sampling.

Setting shared by all five claims (:func:`d_setting`): a quadratic loss in D dimensions with a
log-uniform Hessian spectrum and Haar eigenvectors, written as the mean of N per-sample
quadratics with a common Hessian and centred linear tilts
(:class:`~sgdnoise.sim.dynamics.QuadraticProblem` with ``G``), so that the minibatch noise is
frozen at the minimum and has per-sample covariance Σ₁ = κH *exactly* (C ∝ H, commuting).  Runs
use the problem in H's eigenbasis (:meth:`QuadraticProblem.in_eigenbasis`), whose coordinates
are the projections of θ − θ* on the eigenvectors.  Batches of S of the N samples without
replacement: ``"iid"`` (fresh each step) or ``"reshuffle"`` (epochs of M = N/S batches, N
divisible by S, so no partial batch); both have the per-step variance
C_i = κλ_i (N − S)/(S(N − 1)) along eigendirection i.

Estimators: every replica starts at θ*, runs ``burn_in`` steps (≥ 6 relaxation times of the
flattest direction) and then reports time averages; replicas are independent, so each claim
averages the per-replica values and takes the standard error as their sample standard deviation
over √R.  Weight variances are the second moments about the known minimum,
x̄² + s² about θ* (``second_moment`` of ``Moments(about="theta_star")``), unbiased for the
stationary variance (no time-mean subtraction bias).  Tolerances: every comparison is a z-score
(measured − exact)/s.e.;
|z| ≤ 4 over all comparisons of a claim (a few dozen to a few hundred: family-wise false-alarm
rate at most ~1 % by the union bound, 6.3e-5 per comparison).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sgdnoise import theory
from sgdnoise.sim.dynamics import (
    Momentum,
    Moments,
    NoiseLags,
    QuadraticProblem,
    Record,
    ReplicaRun,
    sgd,
    simulate,
)
from sgdnoise.verify._part_b import _engine_seed
from sgdnoise.verify._registry import Claim, Outcome, RunContext
from sgdnoise.verify.stats import z_scores

SOURCE_D = "Kühn & Rosenow, arXiv:2306.05300"
#: Largest |z| accepted over all comparisons of one claim (see the module docstring).
D_Z_MAX = 4.0
#: The two optimiser settings: heavy ball without momentum, and PyTorch-style momentum.
D_OPTIMISERS: tuple[tuple[str, float, str], ...] = (
    ("sgd", 0.0, "heavy_ball"),
    ("momentum 0.6 (PyTorch form)", 0.6, "pytorch"),
)
#: D3: "reduced" read as measured epoch variance ≤ half the i.i.d. value below λ_c/4;
#: "recovers" as the exact epoch variance within 15 % of the i.i.d. one above 4λ_c (checked on
#: the theory, then the measurement is z-tested against it).
D3_REDUCTION = 0.5
D3_RECOVERY = 0.15
#: D5: "considerably below" read as at most half of the constant-variance prediction.
D5_FACTOR = 0.5

_CACHE: dict[tuple, Any] = {}


#: The two spectra: log-uniform over 2.5 decades (D1–D4), and a flat bulk with four outliers,
#: most of Tr H below λ_c (D5: "many directions are flat").
D_SPECTRA = ("log_uniform", "bulk")


def _spectrum(name: str) -> tuple[np.ndarray, float]:
    """(λ, η) of a named spectrum."""
    if name == "log_uniform":
        return np.geomspace(4e-3, 1.2, 12), 1.0
    return np.r_[np.geomspace(4e-3, 0.04, 28), np.geomspace(0.1, 0.3, 4)], 0.5


def d_setting(ctx: RunContext, spectrum: str = "log_uniform") -> dict[str, Any]:
    r"""The quadratic of part D: spectrum, eigenbasis problem and per-direction noise variance.

    .. math::
        H = V\,\mathrm{diag}(\lambda)\,V^\top,\quad
        G = \sqrt N\, Q\, \mathrm{diag}(\sqrt{\kappa\lambda})\, V^\top,\quad
        \Sigma_1 = \tfrac1N G^\top G = \kappa H,\quad
        C_i = \kappa\lambda_i \frac{N - S}{S (N - 1)}

    with Q (N × D) orthonormal, centred columns (QR of centred Gaussian columns), so Σ₁ = κH
    holds exactly (1/N normalisation); C is the variance of one batch-mean noise without
    replacement.  λ is log-uniform over [λ_min, λ_max], with most directions flatter than the
    crossover λ_c = :func:`~sgdnoise.theory.crossover_curvature`.

    Parameters
    ----------
    ctx : RunContext
    spectrum : {"log_uniform", "bulk"}
        ``"log_uniform"``: D = 12, λ ∈ [0.004, 1.2], η = 1 (D1–D4); ``"bulk"``: 28 directions
        log-uniform in [0.004, 0.04] and 4 in [0.1, 0.3], η = 0.5 (D5).

    Returns
    -------
    dict
        ``problem`` (eigenbasis, θ* = 0 coordinates after the rotation), ``lam``, ``C``, ``eta``,
        ``N``, ``S``, ``M``, ``kappa``, ``burn_in``, ``num_steps``, ``replicas``.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D setting: quadratic loss, noise frozen at the
    minimum, C commuting with H).
    """
    quick = ctx.scale == "quick"
    lam, eta = _spectrum(spectrum)
    D, N, S, kappa = lam.size, 256, 16, 1.0
    rng = ctx.rng(40, D_SPECTRA.index(spectrum))
    Z, _ = np.linalg.qr(rng.standard_normal((D, D)))
    V = Z * np.sign(np.diag(_))
    H = (V * lam) @ V.T
    Zs = rng.standard_normal((N, D))
    Q, _ = np.linalg.qr(Zs - Zs.mean(axis=0))
    G = np.sqrt(N) * (Q * np.sqrt(kappa * lam)) @ V.T
    problem, lam_e, _V = QuadraticProblem(H, rng.standard_normal(D), G).in_eigenbasis()
    Sigma1 = np.diag(problem.G.T @ problem.G) / N
    C = Sigma1 * (N - S) / (S * (N - 1))
    burn_in = int(np.ceil(6.0 / (eta * lam_e.min())))
    return {"problem": problem, "lam": lam_e, "C": C, "eta": eta, "N": N, "S": S, "M": N // S,
            "kappa": kappa, "burn_in": burn_in,
            "num_steps": burn_in + (16_000 if quick else 200_000),
            "replicas": 48 if quick else 256}


def _run(ctx: RunContext, scheme: str, opt: int, *, every: int = 1, phase: int = 0,
         record_period: int | None = None, spectrum: str = "log_uniform") -> ReplicaRun:
    """One cached simulation of the part-D setting (the same seed for every moment window).

    Runs over all steps (``every=1``) also accumulate the noise autocovariance at lags
    0 … 2M − 1.
    """
    key = (ctx.seed, ctx.backend, ctx.scale, scheme, opt, every, phase, record_period, spectrum)
    if key not in _CACHE:
        st = d_setting(ctx, spectrum)
        _, beta, style = D_OPTIMISERS[opt]
        observe = [Moments(after=st["burn_in"], every=every, phase=phase, about="theta_star")]
        if every == 1:
            observe.append(NoiseLags(num_lags=2 * st["M"], after=st["burn_in"]))
        if record_period is not None:
            observe.append(Record(every=record_period, loss=True))
        _CACHE[key] = simulate(
            st["problem"], sgd(st["S"], scheme=scheme), eta=st["eta"], num_steps=st["num_steps"],
            num_replicas=st["replicas"],
            seed=_engine_seed(ctx, 4, opt, int(scheme == "iid"), D_SPECTRA.index(spectrum)),
            momentum=Momentum(beta, style=style), observe=observe, execution=ctx.backend)
    return _CACHE[key]


def _per_replica_second_moment(run: ReplicaRun) -> np.ndarray:
    """(R, D): time average of (x − x*)² per replica, s² + (x̄ − x*)² (the run's
    ``second_moment``, from ``Moments(about="theta_star")``)."""
    return run.second_moment


def _second_moment(run: ReplicaRun) -> tuple[np.ndarray, np.ndarray]:
    """Replica mean and standard error of the per-replica second moment about x* (per column)."""
    per = _per_replica_second_moment(run)
    R = per.shape[0]
    return per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(R)


def _zmax(*zs: np.ndarray) -> float:
    return float(max(np.max(np.abs(z)) for z in zs))


# ---------------------------------------------------------------------------------------- D1
def run_d1(ctx: RunContext) -> dict[str, Any]:
    """Measured R(h)/C (direction- and replica-averaged) for epoch and i.i.d. batches."""
    st = d_setting(ctx)
    M = st["M"]
    lags = np.arange(2 * M)
    out: dict[str, Any] = {"M": M, "lags": lags}
    for scheme in ("reshuffle", "iid"):
        run = _run(ctx, scheme, 0)
        r = run.noise_autocov / st["C"][None, :, None]           # (R, D, L), units of C
        per = r.mean(axis=1)                                      # (R, L)
        R = per.shape[0]
        total = per[:, 0] + 2.0 * per[:, 1:M].sum(axis=1)         # Σ_{|h|<M} R(h)/C
        pred = (theory.epoch_autocorrelation(lags, 1.0, M) if scheme == "reshuffle"
                else np.where(lags == 0, 1.0, 0.0))
        out[scheme] = {"measured": per.mean(axis=0), "standard_error": per.std(axis=0, ddof=1)
                       / np.sqrt(R), "predicted": np.asarray(pred, dtype=np.float64),
                       "sum": float(total.mean()),
                       "sum_standard_error": float(total.std(ddof=1) / np.sqrt(R)),
                       "sum_predicted": float(pred[0] + 2.0 * np.sum(pred[1:M]))}
    return out


def _run_d1(ctx: RunContext) -> Outcome:
    res = run_d1(ctx)
    zs = []
    for scheme in ("reshuffle", "iid"):
        row = res[scheme]
        row["z"] = z_scores(row["measured"], row["predicted"], row["standard_error"])
        row["sum_z"] = float(z_scores(row["sum"], row["sum_predicted"], row["sum_standard_error"]))
        zs += [row["z"], np.array([row["sum_z"]])]
    worst = _zmax(*zs)
    M = res["M"]
    if ctx.out_dir:
        from sgdnoise.verify.figures_d import autocorrelation_figure

        autocorrelation_figure(res, f"{ctx.out_dir}/D1_autocorrelation.png")
    ep = res["reshuffle"]
    return Outcome(
        prediction=f"R(0) = C, R(h) = −C(M−|h|)/(M(M−1)) (M = {M}), Σ_h R(h) = 0; i.i.d. Cδ_h0",
        measurement=(f"epoch R(1)/C = {ep['measured'][1]:.4f} (exact {ep['predicted'][1]:.4f}), "
                     f"Σ_h R(h)/C = {ep['sum']:.4f} ± {ep['sum_standard_error']:.4f}; "
                     f"max |z| {worst:.2f}"),
        tolerance=f"|z| ≤ {D_Z_MAX:g} at every lag 0 … {2 * M - 1} and for the sum, both schemes",
        passed=worst <= D_Z_MAX, values=res)


# ------------------------------------------------------------------------------------ D2, D3
def _variance_rows(ctx: RunContext, scheme: str, every: int, phase: int) -> dict[str, Any]:
    st = d_setting(ctx)
    rows: dict[str, Any] = {}
    for opt, (label, beta, _style) in enumerate(D_OPTIMISERS):
        m, se = _second_moment(_run(ctx, scheme, opt, every=every, phase=phase))
        if scheme == "iid":
            pred = theory.weight_variance_iid(st["lam"], st["C"], st["eta"], beta)
        else:
            pos = None if every == 1 else phase
            pred = theory.weight_variance_epoch(st["lam"], st["C"], st["eta"], beta, st["M"],
                                                position=pos)
        pred = np.asarray(pred, dtype=np.float64)
        rows[label] = {"beta": beta, "measured": m, "standard_error": se, "predicted": pred,
                       "z": z_scores(m, pred, se)}
    return rows


def run_d2(ctx: RunContext) -> dict[str, Any]:
    """i.i.d. stationary variance per eigendirection (both optimisers) and its isotropy."""
    st = d_setting(ctx)
    rows = _variance_rows(ctx, "iid", 1, 0)
    for row in rows.values():
        # with C = cλ the exact variance is ηc(1+β)/((1−β)(2(1+β)−ηλ)): isotropic up to ηλ
        iso = st["eta"] * st["C"] / st["lam"] * (1 + row["beta"]) / (
            (1 - row["beta"]) * 2 * (1 + row["beta"]))
        row["isotropic_limit"] = iso
        row["spread_measured"] = float(row["measured"].max() / row["measured"].min())
        row["spread_predicted"] = float(row["predicted"].max() / row["predicted"].min())
    return {"lam": st["lam"], "C": st["C"], "eta": st["eta"], "M": st["M"], "rows": rows}


def _run_d2(ctx: RunContext) -> Outcome:
    res = run_d2(ctx)
    rows = res["rows"]
    worst = _zmax(*(r["z"] for r in rows.values()))
    spreads = ", ".join(f"{k}: {r['spread_measured']:.2f} (exact {r['spread_predicted']:.2f})"
                        for k, r in rows.items())
    return Outcome(
        prediction="Var x_i = ηC_i(1+β)/((1−β)λ_i(2(1+β)−ηλ_i)); C ∝ H: the same in every "
                   "direction up to the factor 2(1+β)/(2(1+β)−ηλ)",
        measurement=f"max |z| {worst:.2f} over {len(res['lam'])} directions × {len(rows)} "
                    f"optimisers; max/min variance {spreads}",
        tolerance=f"|z| ≤ {D_Z_MAX:g}",
        passed=worst <= D_Z_MAX, values=res)


def run_d3(ctx: RunContext) -> dict[str, Any]:
    """Epoch variance, phase-averaged and at epoch boundaries, with the i.i.d. exact values."""
    st = d_setting(ctx)
    out: dict[str, Any] = {"lam": st["lam"], "C": st["C"], "eta": st["eta"], "M": st["M"],
                           "phase_averaged": _variance_rows(ctx, "reshuffle", 1, 0),
                           "epoch_boundary": _variance_rows(ctx, "reshuffle", st["M"], 0),
                           "iid_measured": _variance_rows(ctx, "iid", 1, 0),
                           "iid": {}, "crossover": {}}
    for label, beta, _style in D_OPTIMISERS:
        out["iid"][label] = np.asarray(theory.weight_variance_iid(st["lam"], st["C"], st["eta"],
                                                                  beta), dtype=np.float64)
        out["crossover"][label] = float(theory.crossover_curvature(st["eta"], beta, st["M"]))
    return out


def _run_d3(ctx: RunContext) -> Outcome:
    res = run_d3(ctx)
    lam = res["lam"]
    zs, bad, notes = [], [], []
    for label in res["iid"]:
        lam_c = res["crossover"][label]
        iid = res["iid"][label]
        pa = res["phase_averaged"][label]
        eb = res["epoch_boundary"][label]
        zs += [pa["z"], eb["z"]]
        flat = lam < lam_c / 4
        stiff = lam > 4 * lam_c
        ratio = pa["measured"] / iid
        if flat.any() and np.any(ratio[flat] > D3_REDUCTION):
            bad.append(f"{label}: not reduced below λ_c/4")
        if stiff.any() and np.any(np.abs(pa["predicted"][stiff] / iid[stiff] - 1) > D3_RECOVERY):
            bad.append(f"{label}: exact epoch variance does not recover i.i.d. above 4λ_c")
        pa["ratio_to_iid"] = ratio
        notes.append(f"{label}: λ_c = {lam_c:.3g}, flattest ratio {ratio[0]:.3f}, "
                     f"boundary/phase-average {eb['measured'][0] / pa['measured'][0]:.3f}")
    worst = _zmax(*zs)
    if ctx.out_dir:
        from sgdnoise.verify.figures_d import variance_figure

        variance_figure(res, f"{ctx.out_dir}/D3_variance.png")
    res["failures"] = bad
    return Outcome(
        prediction="exact epoch variance (phase average and at the epoch boundary m = 0) from "
                   "the AR(2) response; below λ_c reduced, above λ_c ≈ i.i.d.",
        measurement=f"max |z| {worst:.2f}; " + "; ".join(notes),
        tolerance=f"|z| ≤ {D_Z_MAX:g}; measured/i.i.d. ≤ {D3_REDUCTION:g} for λ < λ_c/4; "
                  f"exact/i.i.d. within {D3_RECOVERY:.0%} for λ > 4λ_c",
        passed=worst <= D_Z_MAX and not bad, values=res)


# ---------------------------------------------------------------------------------------- D4
def run_d4(ctx: RunContext) -> dict[str, Any]:
    r"""τ = Var x / Var v per direction, epoch and i.i.d., ratio of replica means.

    Standard error by the delta method: τ̂ = X̄/V̄ with per-replica (X_r, V_r), so
    Var τ̂ ≈ Var(X_r − τ̂V_r)/(R V̄²).
    """
    st = d_setting(ctx)
    out: dict[str, Any] = {"lam": st["lam"], "eta": st["eta"], "M": st["M"], "rows": {}}
    for scheme in ("reshuffle", "iid"):
        for opt, (label, beta, _style) in enumerate(D_OPTIMISERS):
            run = _run(ctx, scheme, opt)
            X = _per_replica_second_moment(run)
            Vv = run.velocity_var + run.velocity_mean**2
            tau = X.mean(axis=0) / Vv.mean(axis=0)
            se = (X - tau * Vv).std(axis=0, ddof=1) / (np.sqrt(X.shape[0]) * Vv.mean(axis=0))
            pred = theory.correlation_time(st["lam"], st["eta"], beta,
                                           st["M"] if scheme == "reshuffle" else None)
            pred = np.asarray(pred, dtype=np.float64)
            out["rows"][f"{scheme}, {label}"] = {
                "scheme": scheme, "beta": beta, "measured": tau, "standard_error": se,
                "predicted": pred, "z": z_scores(tau, pred, se),
                "crossover": float(theory.crossover_curvature(st["eta"], beta, st["M"]))}
    return out


def _slope(lam: np.ndarray, tau: np.ndarray) -> float:
    return float(np.polyfit(np.log(lam), np.log(tau), 1)[0])


def _run_d4(ctx: RunContext) -> Outcome:
    res = run_d4(ctx)
    lam = res["lam"]
    zs, bad, notes = [], [], []
    for name, row in res["rows"].items():
        zs.append(row["z"])
        if row["scheme"] != "reshuffle":
            continue
        lam_c = row["crossover"]
        flat, stiff = lam < lam_c / 4, lam > 2 * lam_c
        s_flat = _slope(lam[flat], row["measured"][flat]) if flat.sum() >= 2 else float("nan")
        s_stiff = _slope(lam[stiff], row["measured"][stiff]) if stiff.sum() >= 2 else float("nan")
        row["slope_flat"], row["slope_stiff"] = s_flat, s_stiff
        # shape read off the measurement: log-slope near 0 below λ_c and near −1 above
        if not (abs(s_flat) < 0.25 and -1.25 < s_stiff < -0.6):
            bad.append(name)
        notes.append(f"{name}: slope {s_flat:.2f} below λ_c/4, {s_stiff:.2f} above 2λ_c")
    worst = _zmax(*zs)
    if ctx.out_dir:
        from sgdnoise.verify.figures_d import correlation_time_figure

        correlation_time_figure(res, f"{ctx.out_dir}/D4_correlation_time.png")
    res["failures"] = bad
    return Outcome(
        prediction="τ = Var x/Var v: i.i.d. (1+β)/(2ηλ); epoch exact, ∝ 1/λ above λ_c, "
                   "constant below",
        measurement=f"max |z| {worst:.2f}; " + "; ".join(notes),
        tolerance=f"|z| ≤ {D_Z_MAX:g}; epoch log-slope |s| < 0.25 below λ_c/4, "
                  f"−1.25 < s < −0.6 above 2λ_c",
        passed=worst <= D_Z_MAX and not bad, values=res)


# ---------------------------------------------------------------------------------------- D5
def run_d5(ctx: RunContext) -> dict[str, Any]:
    """Mean excess loss and loss variance with epoch sampling (``"bulk"`` spectrum)."""
    st = d_setting(ctx, "bulk")
    out: dict[str, Any] = {"lam": st["lam"], "eta": st["eta"], "M": st["M"], "rows": {}}
    for opt, (label, beta, _style) in enumerate(D_OPTIMISERS):
        run = _run(ctx, "reshuffle", opt, record_period=8, spectrum="bulk")
        X = _per_replica_second_moment(run)     # (R, D)
        L_rep = 0.5 * X @ st["lam"]
        R = L_rep.size
        var_e = np.asarray(theory.weight_variance_epoch(st["lam"], st["C"], st["eta"], beta,
                                                        st["M"]), dtype=np.float64)
        # constant-variance prediction: the flat-direction i.i.d. variance ηc(1+β)/(2(1−β)(1+β))
        # with c = C/λ (C ∝ H), i.e. the isotropic variance of D2
        c = float(np.mean(st["C"] / st["lam"]))
        sigma2 = st["eta"] * c / (2 * (1 - beta))
        row = {"measured": float(L_rep.mean()), "standard_error": float(L_rep.std(ddof=1)
                                                                         / np.sqrt(R)),
               "predicted": float(theory.excess_loss(st["lam"], var_e)),
               "constant_variance": float(theory.excess_loss_constant_variance(st["lam"],
                                                                               sigma2)),
               "iid": float(theory.excess_loss(st["lam"], theory.weight_variance_iid(
                   st["lam"], st["C"], st["eta"], beta)))}
        # loss variance (open reading), from a trajectory recorded every 8 steps
        keep = run.record_steps >= st["burn_in"]
        L = np.asarray(run.loss)[keep]                          # (T, R)
        per_var = L.var(axis=0)
        row.update({"loss_variance": float(per_var.mean()),
                    "loss_variance_standard_error": float(per_var.std(ddof=1) / np.sqrt(R)),
                    "loss_variance_gaussian": float(theory.loss_variance(st["lam"], var_e)),
                    "loss_variance_constant": float(theory.loss_variance(
                        st["lam"], np.full_like(st["lam"], sigma2)))})
        row["z"] = float(z_scores(row["measured"], row["predicted"], row["standard_error"]))
        out["rows"][label] = row
    return out


def _run_d5(ctx: RunContext) -> Outcome:
    res = run_d5(ctx)
    bad, notes, zs = [], [], []
    for label, row in res["rows"].items():
        zs.append(np.array([row["z"]]))
        ratio = row["measured"] / row["constant_variance"]
        row["ratio_to_constant"] = ratio
        if ratio > D5_FACTOR:
            bad.append(label)
        notes.append(f"{label}: ⟨L⟩−L* = {row['measured']:.3g} ± {row['standard_error']:.2g} "
                     f"(exact {row['predicted']:.3g}, constant variance "
                     f"{row['constant_variance']:.3g}); Var L = {row['loss_variance']:.3g} "
                     f"(Gaussian {row['loss_variance_gaussian']:.3g}, constant "
                     f"{row['loss_variance_constant']:.3g})")
    worst = _zmax(*zs)
    if ctx.out_dir:
        from sgdnoise.verify.figures_d import excess_loss_figure

        excess_loss_figure(res, f"{ctx.out_dir}/D5_excess_loss.png")
    res["failures"] = bad
    return Outcome(
        prediction="⟨L⟩ − L* = ½Σλ_i Var x_i (exact epoch variances) considerably below "
                   "½σ²Σλ_i (constant variance)",
        measurement=f"max |z| {worst:.2f}; " + "; ".join(notes),
        tolerance=f"|z| ≤ {D_Z_MAX:g}; measured/constant-variance ≤ {D5_FACTOR:g}; Var L "
                  f"reported (Gaussian approximation, not tested)",
        passed=worst <= D_Z_MAX and not bad, values=res)


_SETTING = ("Quadratic with log-uniform spectrum λ ∈ [0.004, 1.2] (D = 12, Haar eigenvectors), "
            "N = 256 per-sample quadratics with common Hessian and tilts, noise frozen at the "
            "minimum with Σ₁ = H exactly (C ∝ H), batches of S = 16 without replacement "
            "(M = 16 per epoch), η = 1; plain SGD and PyTorch-form momentum β = 0.6.")
_SETTING_D5 = ("Same construction with a flat bulk of 28 directions (λ ∈ [0.004, 0.04]) and 4 "
               "outliers (λ ∈ [0.1, 0.3]), η = 0.5; constant variance σ² = ηC/(2(1−β)λ), the "
               "flat-direction i.i.d. value of D2.")

CLAIMS_D: tuple[Claim, ...] = (
    Claim("D1", f"{SOURCE_D} (noise autocorrelation)",
          "With random reshuffling the phase-averaged autocorrelation of the batch noise is "
          "R(0) = C, R(h) = −C(M−|h|)/(M(M−1)) for 1 ≤ |h| < M and 0 beyond, so Σ_h R(h) = 0; "
          "i.i.d. batches give Cδ_h0. " + _SETTING, _run_d1),
    Claim("D2", f"{SOURCE_D} (i.i.d. weight variance)",
          "With i.i.d. batches the stationary variance along each Hessian eigendirection is "
          "ηC(1+β)/((1−β)λ(2(1+β)−ηλ)); with C ∝ H it is the same in every direction up to "
          "the factor 2(1+β)/(2(1+β)−ηλ). " + _SETTING, _run_d2),
    Claim("D3", f"{SOURCE_D} (epoch weight variance)",
          "Epoch sampling reduces the weight variance below the crossover λ_c "
          "(theory.crossover_curvature) and recovers the i.i.d. value above it; the exact "
          "variance is matched both phase-averaged (all steps) and at epoch boundaries "
          "(m = 0, far smaller in flat directions). " + _SETTING, _run_d3),
    Claim("D4", f"{SOURCE_D} (correlation time)",
          "τ = Var θ/Var v (v the update increment) scales as 1/λ above λ_c and is constant "
          "below it with epoch sampling (1/λ everywhere for i.i.d.); exact values matched. "
          + _SETTING, _run_d4),
    Claim("D5", f"{SOURCE_D} (loss fluctuations)",
          "With epoch sampling the mean excess loss ½Σλ_i Var x_i is at most half of the "
          "constant-variance prediction ½σ²Σλ_i when most directions are flatter than λ_c; the "
          "variance of L (the other reading) is reported beside its Gaussian approximation. "
          + _SETTING_D5, _run_d5),
)

__all__ = ["CLAIMS_D", "D_OPTIMISERS", "D_SPECTRA", "d_setting", "run_d1", "run_d2", "run_d3", "run_d4",
           "run_d5"]

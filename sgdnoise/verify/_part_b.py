"""Claims of SPEC part B (Zhu, Wu, Yu, Wu & Ma, ICML 2019): B1, B2, B3, B4."""

from __future__ import annotations

import numpy as np

from sgdnoise import theory
from sgdnoise.sim import families
from sgdnoise.sim.dynamics import (
    ModelProblem,
    QuadraticProblem,
    Record,
    Toy2DProblem,
    indicators,
    langevin,
    paper_variant,
    sgd,
    simulate,
    structured_covariance,
    toy_sharp_minimum,
)
from sgdnoise.sim.models import toy_data
from sgdnoise.sim.models.clipped import ClippedReluNetwork, halfplane_data
from sgdnoise.verify._registry import Claim, Outcome, RunContext
from sgdnoise.verify.stats import wilson_interval, z_scores

SOURCE_B = "Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195)"
ROUNDOFF = 1e-10

#: B1: largest |z| (measured mean loss increase vs the exact discrete formula) accepted over all
#: structures and times; with ~25 comparisons a 4σ bound has a false-alarm rate of about 2e-3.
B1_Z_MAX = 4.0

#: B3: the noise structures of the paper's Fig. 2, in parameter form at matched trace: the name
#: shown in results and figures → the paper's name (:func:`~sgdnoise.sim.dynamics.paper_variant`:
#: "GLD leading" with all eigenpairs is langevin("full"), B = 1 with replacement).
B3_VARIANTS: dict[str, str] = {
    "GD": "GD",
    "GLD const": "GLD const",
    "GLD diag": "GLD diag",
    "GLD full (leading)": "GLD leading",
    "GLD Hessian": "GLD Hessian",
    "GLD eigvec1": "GLD 1st eigvec",
    "SGD (B=1, rescaled)": "SGD",
}
B3_ETA = 0.005
B3_STEPS = 500
B3_NOISE_TRACE = 0.01
B3_START = (1.0, 1.0)
#: B3: indicators within this relative distance are near-ties that a first-order indicator does
#: not rank (e.g. full covariance 1.82 vs Hessian 1.84 at the sharp minimum); such pairs are
#: reported but not required to be ordered.
B3_TIE_MARGIN = 0.1

#: B4: "≫ 1" read as a gain of at least 10, "close to its maximum" as at least half of Dλ₁/Tr H.
B4_MIN_GAIN = 10.0
B4_MIN_FRACTION_OF_MAX = 0.5


def _engine_seed(ctx: RunContext, *key: int) -> int:
    """A 64-bit engine seed derived from (ctx.seed, *key) by SeedSequence."""
    words = np.random.SeedSequence([ctx.seed, *key]).generate_state(2, dtype=np.uint32)
    return int(words[0]) | (int(words[1]) << 32)


# ---------------------------------------------------------------------------------------- B1
def b1_case(ctx: RunContext) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """An ill-conditioned H and the noise structures compared in B1, all of trace 1.

    H has a log-uniform spectrum over two decades with Haar eigenvectors; the "SGD-like" Σ is
    H^{3/2} plus a small isotropic part (aligned, not proportional); its structures follow
    :func:`sgdnoise.sim.dynamics.structured_covariance` at matched trace.
    """
    D = 8 if ctx.scale == "quick" else 20
    rng = ctx.rng(11)
    lam = families.log_uniform_spectrum(D, rng=rng, decades=2.0)
    H = families.random_psd(lam, rng=rng)
    w, V = np.linalg.eigh(H)
    Sigma = (V * np.clip(w, 0, None) ** 1.5) @ V.T + 0.05 * np.trace(H) / D * np.eye(D)
    Sigma = Sigma / np.trace(Sigma)
    kinds = ("dynamic", "diag", "full", "hessian", "eigvec1")
    return H, {k: structured_covariance(k, Sigma, H, trace=1.0) for k in kinds}


def _run_b1(ctx: RunContext) -> Outcome:
    H, structures = b1_case(ctx)
    D = H.shape[0]
    eta = 0.5 / float(np.linalg.eigvalsh(H)[-1])
    R = 4000 if ctx.scale == "quick" else 40000
    steps = (1, 4, 16, 64)
    rows, worst = {}, 0.0
    for i, (kind, Sigma) in enumerate(structures.items()):
        run = simulate(QuadraticProblem(H), langevin("fixed", covariance=Sigma), eta=eta,
                       num_steps=steps[-1], num_replicas=R, seed=_engine_seed(ctx, 1, i),
                       theta0=np.zeros(D), observe=[Record(every=1, loss=True)],
                       execution=ctx.backend)
        L = np.asarray(run.loss)[list(steps)]                       # (len(steps), R)
        mean = L.mean(axis=1)
        se = L.std(axis=1, ddof=1) / np.sqrt(R)
        pred = np.array([theory.discrete_expected_loss_increase(H, eta**2 * Sigma, eta=eta,
                                                                num_steps=k) for k in steps])
        z = z_scores(mean, pred, se)
        worst = max(worst, float(np.max(np.abs(z))))
        rows[kind] = {"indicator": theory.indicator(H, Sigma), "predicted": pred,
                      "measured": mean, "standard_error": se, "z": z}
    # Ranking at the first step (small t): by indicator and by measured loss increase, for the
    # pairs the measurement resolves (difference of means beyond 4 combined standard errors).
    names = list(rows)
    discordant = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ra, rb = rows[names[a]], rows[names[b]]
            diff = ra["measured"][0] - rb["measured"][0]
            se = np.hypot(ra["standard_error"][0], rb["standard_error"][0])
            if abs(diff) > B1_Z_MAX * se and np.sign(diff) != np.sign(ra["indicator"] - rb["indicator"]):
                discordant.append((names[a], names[b]))
    order = sorted(names, key=lambda k: rows[k]["indicator"])
    passed = worst <= B1_Z_MAX and not discordant
    return Outcome(
        prediction="E ΔL_k = ½Tr(H Cov_k) (exact); small-k order = order of Tr(HΣ)",
        measurement=f"max |z| {worst:.2f} over {len(rows)} structures × {len(steps)} times; "
                    f"order {' < '.join(order)}; discordant pairs {len(discordant)}",
        tolerance=f"|z| ≤ {B1_Z_MAX:g}; no resolved pair out of order",
        passed=passed,
        values={"eta": eta, "replicas": R, "steps": list(steps), "structures": rows,
                "discordant": discordant, "order_by_indicator": order},
    )


# ---------------------------------------------------------------------------------------- B2
def _run_b2(ctx: RunContext) -> Outcome:
    count = 200 if ctx.scale == "quick" else 2000
    rng = ctx.rng(21)
    bound_violation = aligned_violation = hess_err = iso_err = 0.0
    helps_without_alignment = 0
    well_conditioned_spread = 0.0
    for _ in range(count):
        D = int(rng.integers(2, 12))
        H = families.random_psd(families.log_uniform_spectrum(D, rng=rng, decades=3.0), rng=rng)
        X = rng.standard_normal((D, int(rng.integers(1, D + 1))))
        Sigma = X @ X.T
        r = theory.gain_ratio(H, Sigma)
        lo, hi = theory.gain_bounds(H)
        scale = max(1.0, abs(r))
        bound_violation = max(bound_violation, (lo - r) / scale, (r - hi) / scale)
        aligned_violation = max(aligned_violation,
                                (theory.aligned_gain_lower_bound(H, Sigma) - r) / scale)
        hess_err = max(hess_err, abs(theory.gain_ratio(H, 3.0 * H) - theory.hessian_noise_gain(H))
                       / theory.hessian_noise_gain(H))
        iso_err = max(iso_err, abs(theory.gain_ratio(H, np.eye(D)) - 1.0))
        # Noise orthogonal to the top eigenvector cannot beat the isotropic baseline by more
        # than the spectrum without λ₁ allows; noise on the bottom eigenvector never helps.
        _, V = np.linalg.eigh(H)
        bottom = np.outer(V[:, 0], V[:, 0])
        if theory.gain_ratio(H, bottom) > 1.0 + ROUNDOFF:
            helps_without_alignment += 1
        well = families.random_psd(np.linspace(1.0, 1.1, D), rng=rng)
        lo_w, hi_w = theory.gain_bounds(well)
        well_conditioned_spread = max(well_conditioned_spread, hi_w - lo_w)
    passed = (bound_violation <= ROUNDOFF and aligned_violation <= ROUNDOFF and hess_err <= ROUNDOFF
              and iso_err <= ROUNDOFF and helps_without_alignment == 0
              and well_conditioned_spread < 0.2)
    return Outcome(
        prediction="Dλ_D/TrH ≤ r ≤ Dλ₁/TrH; r ≥ a·Dλ₁/TrH; Σ∝H ⇒ r = D Tr H²/(Tr H)²",
        measurement=(f"worst violations {bound_violation:.1e}, {aligned_violation:.1e}; Σ∝H err "
                     f"{hess_err:.1e}; bottom-aligned noise helped {helps_without_alignment}×; "
                     f"κ≤1.1 ⇒ r within {well_conditioned_spread:.3f}"),
        tolerance=f"≤ {ROUNDOFF:g} relative; never; < 0.2",
        passed=passed,
        values={"pairs": count, "bound_violation": bound_violation,
                "aligned_violation": aligned_violation, "hessian_gain_error": hess_err,
                "isotropic_error": iso_err, "bottom_aligned_helped": helps_without_alignment,
                "well_conditioned_spread": well_conditioned_spread},
    )


# ---------------------------------------------------------------------------------------- B3
def b3_indicators(x: np.ndarray) -> dict[str, float]:
    """Tr(H S) at the sharp minimum for each variant of :data:`B3_VARIANTS` (Tr S = 0.01)."""
    problem = Toy2DProblem(x)
    ind = indicators(problem, list(B3_VARIANTS.values()), trace=B3_NOISE_TRACE,
                     at=toy_sharp_minimum(problem, eta=B3_ETA))
    return {name: ind[paper] for name, paper in B3_VARIANTS.items()}


def run_b3(ctx: RunContext, *, num_draws: int | None = None, replicas_per_draw: int | None = None
           ) -> dict:
    """Escape counts of every B3 variant over fresh data draws, and indicators, as a dict."""
    draws = num_draws or (20 if ctx.scale == "quick" else 100)
    reps = replicas_per_draw or (50 if ctx.scale == "quick" else 100)
    escaped = dict.fromkeys(B3_VARIANTS, 0)
    indicator = {k: [] for k in B3_VARIANTS}
    example = {}
    for d in range(draws):
        x = toy_data(ctx.rng(31, d), N=100)
        for name, value in b3_indicators(x).items():
            indicator[name].append(value)
        # Common random numbers: every variant of a draw reads the same Philox streams.
        for name, paper in B3_VARIANTS.items():
            run = simulate(Toy2DProblem(x), paper_variant(paper), eta=B3_ETA, num_steps=B3_STEPS,
                           num_replicas=reps, seed=_engine_seed(ctx, 3, d),
                           theta0=np.array(B3_START), form="parameter",
                           noise_trace=B3_NOISE_TRACE,
                           observe=[Record(every=5)] if d == 0 else [],
                           execution=ctx.backend)
            theta = np.asarray(run.theta)
            escaped[name] += int(np.sum((theta[:, 0] < -0.5) & (theta[:, 1] < -0.5)))
            if d == 0:
                example[name] = np.asarray(run.trajectory)[:, 0, :]
                example["_data"] = x
        ctx.report(d + 1, draws, "data draws")
    n = draws * reps
    rows = {}
    for name in B3_VARIANTS:
        lo, hi = wilson_interval(escaped[name], n)
        rows[name] = {"escaped": escaped[name], "runs": n, "frequency": escaped[name] / n,
                      "wilson_95": (lo, hi), "indicator": float(np.mean(indicator[name]))}
    return {"rows": rows, "example": example, "draws": draws, "replicas_per_draw": reps}


def _b3_verdict(rows: dict) -> tuple[bool, list, str]:
    """GD never escapes; every pair of variants with disjoint Wilson intervals and indicators more
    than :data:`B3_TIE_MARGIN` apart is ordered as the indicator orders them; the three aligned
    structures all escape more often than const and diag."""
    names = [k for k in rows if k != "GD"]
    discordant = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = rows[a], rows[b]
            separated = ra["wilson_95"][1] < rb["wilson_95"][0] or rb["wilson_95"][1] < ra["wilson_95"][0]
            distinct = abs(ra["indicator"] - rb["indicator"]) > B3_TIE_MARGIN * max(
                ra["indicator"], rb["indicator"])
            if separated and distinct and np.sign(ra["frequency"] - rb["frequency"]) != np.sign(
                    ra["indicator"] - rb["indicator"]):
                discordant.append((a, b))
    high = ("GLD full (leading)", "GLD Hessian", "GLD eigvec1")
    low = ("GLD const", "GLD diag")
    groups = min(rows[h]["wilson_95"][0] for h in high) > max(rows[lo]["wilson_95"][1] for lo in low)
    passed = rows["GD"]["escaped"] == 0 and not discordant and groups
    order = " < ".join(sorted(names, key=lambda k: rows[k]["frequency"]))
    return passed, discordant, order


def _run_b3(ctx: RunContext) -> Outcome:
    res = run_b3(ctx)
    rows = res["rows"]
    passed, discordant, order = _b3_verdict(rows)
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures import escape_figure

        escape_figure(res, f"{ctx.out_dir}/B3_escape.png")
    freq = ", ".join(f"{k} {v['frequency']:.2f}" for k, v in rows.items())
    return Outcome(
        prediction="GD never escapes; escape frequency ordered as Tr(HS) at the sharp minimum",
        measurement=f"{freq}; discordant separated pairs {len(discordant)}",
        tolerance=(f"GD 0 escapes; no Wilson-separated pair with indicators > {B3_TIE_MARGIN:.0%} "
                   "apart out of order; aligned > const, diag"),
        passed=passed,
        values={"rows": rows, "draws": res["draws"], "replicas_per_draw": res["replicas_per_draw"],
                "order_by_frequency": order, "discordant": discordant, "eta": B3_ETA,
                "num_steps": B3_STEPS, "noise_trace": B3_NOISE_TRACE},
    )


# ---------------------------------------------------------------------------------------- B4
def run_b4(ctx: RunContext) -> dict:
    """Train the clipped one-hidden-layer ReLU net of SPEC B4 by SGD and measure the gain."""
    net = ClippedReluNetwork(input_dim=2, hidden=100, delta=1e-3)
    x, y = halfplane_data(ctx.rng(41), N=1000)
    B = 10
    num_steps = 400 if ctx.scale == "quick" else 2000
    every = num_steps // 20
    w0 = net.init(ctx.rng(42))
    run = simulate(ModelProblem(net, x, y), sgd(B, scheme="iid"), eta=0.05, num_steps=num_steps,
                   num_replicas=1, seed=_engine_seed(ctx, 4), theta0=w0,
                   observe=[Record(every=every)], execution="numpy")
    snaps = np.asarray(run.trajectory)[:, 0, :]
    N, D = x.shape[0], w0.size
    out = {"step": [], "loss": [], "accuracy": [], "gain": [], "max_gain": [], "min_gain": []}
    for i, w in enumerate(snaps):
        G = net.per_sample_gradients(w, x, y)
        Gc = G - G.mean(axis=0)
        Sigma = Gc.T @ Gc / N / B * (N - B) / (N - 1)
        H = net.hessian(w, x, y)
        if np.trace(H) <= 0 or np.trace(Sigma) <= 0:
            continue
        lo, hi = theory.gain_bounds(H)
        out["step"].append(i * every)
        out["loss"].append(float(net.loss(w, x, y)))
        out["accuracy"].append(float(net.accuracy(w, x, y)))
        out["gain"].append(theory.gain_ratio(H, Sigma))
        out["max_gain"].append(hi)
        out["min_gain"].append(lo)
    out["D"] = D
    out["B"] = B
    return out


def _run_b4(ctx: RunContext) -> Outcome:
    res = run_b4(ctx)
    gain = np.array(res["gain"][1:])
    frac = gain / np.array(res["max_gain"][1:])
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures import gain_figure

        gain_figure(res, f"{ctx.out_dir}/B4_gain.png")
    passed = bool(gain.size) and gain.min() >= B4_MIN_GAIN and frac.min() >= B4_MIN_FRACTION_OF_MAX
    return Outcome(
        prediction="Tr(HΣ̂)/Tr(HΣ̄) ≫ 1 and close to its maximum Dλ₁/Tr H during training",
        measurement=(f"gain {gain.min():.1f}–{gain.max():.1f}, fraction of max "
                     f"{frac.min():.2f}–{frac.max():.2f}; final accuracy {res['accuracy'][-1]:.3f}"),
        tolerance=f"gain ≥ {B4_MIN_GAIN:g}, fraction ≥ {B4_MIN_FRACTION_OF_MAX:g} after step 0",
        passed=passed,
        values=res,
    )


CLAIMS_B: tuple[Claim, ...] = (
    Claim("B1", f"{SOURCE_B}, Sec. 3 (indicator Tr(HΣ))",
          "Near a minimum the expected loss increase from θ* is ½Tr(H Cov_k) exactly on a quadratic "
          "(discrete time, Cov_k = Σ_j (I−ηH)^j η²Σ (I−ηH)^j), so at small times noise structures "
          "of equal trace rank by Tr(HΣ). Checked by replica simulation against the exact formula.",
          _run_b1),
    Claim("B2", f"{SOURCE_B}, Prop. 2–3 (gain and conditions)",
          "r = Tr(HΣ)/Tr(HΣ̄) lies in [Dλ_D/TrH, Dλ₁/TrH]; aligned noise (u₁ᵀΣu₁ ≥ a TrΣ) gives "
          "r ≥ aDλ₁/TrH; Σ ∝ H gives D Tr(H²)/(TrH)²; a well-conditioned H leaves r ≈ 1 whatever Σ.",
          _run_b2),
    Claim("B3", f"{SOURCE_B}, Fig. 2 (2-D toy)",
          "On the two-basin toy, started at the sharp minimum with parameter noise of total variance "
          "0.01 per step (η = 0.005, 500 steps, fresh data per draw), GD never escapes and the "
          "escape frequencies order as Tr(HS) at the sharp minimum: isotropic and diagonal noise "
          "lowest, full-covariance, Hessian and top-eigenvector noise highest (indicators within "
          "10 % count as ties). SGD is the B=1 minibatch deviation rescaled to the same trace (a "
          "choice; the paper's toy has no SGD): it has full's covariance but escapes less often.",
          _run_b3),
    Claim("B4", f"{SOURCE_B}, Fig. 3 (one-hidden-layer net)",
          "On a one-hidden-layer ReLU net with fixed ±1 output weights and clipped output, trained "
          "by SGD (B = 10, η = 0.05; the paper used Adam) on 1000 points of the half-plane task, "
          "Tr(HΣ̂)/Tr(HΣ̄) stays ≥ 10 and at least half of its maximum Dλ₁/TrH during training "
          "(Σ̂ the exact minibatch covariance without replacement, H the exact Hessian).",
          _run_b4),
)

__all__ = ["B3_VARIANTS", "CLAIMS_B", "b1_case", "b3_indicators", "run_b3", "run_b4"]

"""Claims A4 and A6 of SPEC part A on trained MLPs (digits; MNIST-1D at full scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sgdnoise.sim import datasets
from sgdnoise.sim.awd import match_partners
from sgdnoise.verify._registry import Claim, Outcome, RunContext
from sgdnoise.verify.networks import TrainedNetwork, analyse_layer, duality_gap, train_paper_mlp

SOURCE_A = "Zhang, Yang & Tu, arXiv:2602.05600"
#: |γ_emp − γ_AWD| tolerated for cross-entropy (seed-to-seed spread of γ is ≈ 0.02–0.05).
GAMMA_MATCH_TOL = 0.1
#: Cross-entropy must give γ_emp ≥ 1 + this margin in every layer.
CE_MARGIN = 0.05
#: Softmax-MSE must give |γ_emp − 1| ≤ this.
MSE_TOL = 0.2


def _runs(ctx: RunContext) -> list[tuple[str, dict]]:
    """(data set name, training settings) analysed at this scale."""
    runs = [("digits", {"hidden": (32, 32), "num_epochs": 100})]
    if ctx.scale == "full":
        runs.append(("mnist1d", {"hidden": (64, 64), "num_epochs": 300}))
    return runs


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        d = datasets.digits()
    else:
        d = datasets.mnist1d(num_samples=5000, seed=0)
    return d.x, d.y


def _train(ctx: RunContext, name: str, settings: dict, loss: str, seed: int) -> TrainedNetwork:
    x, y = _data(name)
    eta = 0.1
    backend = "numba" if ctx.backend == "numba" else "numpy"
    return train_paper_mlp(x, y, loss=loss, eta=eta, seed=seed, backend=backend, **settings)


def _run_a4(ctx: RunContext) -> Outcome:
    net = _train(ctx, "digits", {"hidden": (32, 32), "num_epochs": 100}, "cross_entropy",
                 ctx.seed)
    layer = 1
    an = analyse_layer(net, layer, rng=ctx.rng(40))
    a = net.model.forward(net.w, net.x).a[layer]
    partners = match_partners(a, net.y, rng=ctx.rng(41))
    gap = duality_gap(net, layer, partners, ctx.rng(42).choice(len(net.y), 32, replace=False))
    B = 50
    t = an.awd
    predicted_c = t.sigma_w2 / (2 * B)
    d_gamma = abs(an.fit_emp.slope - an.fit_awd.slope)
    passed = gap <= 1e-10 and d_gamma <= GAMMA_MATCH_TOL and an.residual_M < an.residual_H
    return Outcome(
        prediction="ℓ(x_p′,W) = ℓ(x_p,W+ΔW_p); C ≈ (σ_w²/2B)·M: γ_emp ≈ γ_AWD, C closer to ∝M "
                   "than ∝H",
        measurement=(f"duality gap {gap:.1e}; γ_emp {an.fit_emp.slope:.3f} vs γ_AWD "
                     f"{an.fit_awd.slope:.3f}; resid vs M {an.residual_M:.2f}, vs H "
                     f"{an.residual_H:.2f}; c_fit/(σ_w²/2B) = {an.c_fit / predicted_c:.1f}; "
                     f"ratios: termII/I {t.term_ratio:.3f}, same-sample {t.same_sample:.3f}, "
                     f"isotropy {t.isotropy:.2f}, linearisation {t.linearisation:.1f}"),
        tolerance=f"gap ≤ 1e-10; |Δγ| ≤ {GAMMA_MATCH_TOL}; assumption ratios reported, not "
                  "asserted",
        passed=passed,
        values={"duality_gap": gap, "gamma_emp": an.fit_emp.slope, "gamma_awd": an.fit_awd.slope,
                "r2_emp": an.fit_emp.r2, "r2_awd": an.fit_awd.r2, "residual_vs_M": an.residual_M,
                "residual_vs_H": an.residual_H, "c_fit": an.c_fit, "sigma_w2": t.sigma_w2,
                "c_predicted": predicted_c, "prefactor_ratio": an.c_fit / predicted_c,
                "term_ratio": t.term_ratio, "same_sample": t.same_sample,
                "isotropy": t.isotropy, "linearisation": t.linearisation,
                "train_accuracy": net.accuracy, "train_loss": net.result.history["loss"][-1]},
    )


def _fmt_ratio(ratio: float | None) -> str:
    """The commutation ratio with two decimals, or "n/a" where it is undefined (C or H ∝ I)."""
    return "n/a" if ratio is None else f"{ratio:.2f}"


def _run_a6(ctx: RunContext) -> Outcome:
    num_seeds = 2 if ctx.scale == "quick" else 4
    rows, ok = [], True
    figure_panels = []
    total, trained = len(list(_runs(ctx))) * 2 * num_seeds, 0
    for name, settings in _runs(ctx):
        per_loss: dict[str, dict[int, list]] = {}
        for loss in ("cross_entropy", "softmax_mse"):
            per_loss[loss] = {}
            for s in range(num_seeds):
                net = _train(ctx, name, settings, loss, ctx.seed * 1000 + s)
                trained += 1
                ctx.report(trained, total, "networks trained and analysed")
                for layer in range(net.model.num_layers):
                    an = analyse_layer(net, layer, with_awd=False, num_baseline=0,
                                       rng=ctx.rng(60, s, layer))
                    per_loss[loss].setdefault(layer, []).append(an)
                    if s == 0 and layer == 1:
                        c = float(np.median(an.C_ii[an.fit_emp.index] / an.M_ii[an.fit_emp.index]))
                        figure_panels.append((f"{name}, {loss}, layer {layer}", an.lam, an.C_ii,
                                              c * an.M_ii, an.fit_emp.slope))
        for loss, layers in per_loss.items():
            for layer, ans in layers.items():
                g_emp = np.array([a.fit_emp.slope for a in ans])
                g_awd = np.array([a.fit_awd.slope for a in ans])
                # the ratio is None (undefined) only when C or H is ∝ I: left out of the mean
                ratio = np.array([a.commutation.ratio for a in ans
                                  if a.commutation.ratio is not None])
                row = {"data": name, "loss": loss, "layer": layer, "D": ans[0].D,
                       "gamma_emp": float(g_emp.mean()), "gamma_emp_sd": float(g_emp.std()),
                       "gamma_awd": float(g_awd.mean()),
                       "r2_emp": float(np.mean([a.fit_emp.r2 for a in ans])),
                       "commutation_ratio": float(ratio.mean()) if ratio.size else None,
                       "seeds": len(ans)}
                if loss == "cross_entropy":
                    row["ok"] = bool(row["gamma_emp"] >= 1 + CE_MARGIN
                                     and abs(row["gamma_emp"] - row["gamma_awd"]) <= GAMMA_MATCH_TOL)
                else:
                    row["ok"] = bool(abs(row["gamma_emp"] - 1.0) <= MSE_TOL)
                ok &= row["ok"]
                rows.append(row)
        ce_mid = next(r for r in rows if r["data"] == name and r["loss"] == "cross_entropy"
                      and r["layer"] == 1)
        mse_mid = next(r for r in rows if r["data"] == name and r["loss"] == "softmax_mse"
                       and r["layer"] == 1)
        ok &= mse_mid["gamma_emp"] < ce_mid["gamma_emp"]
    table = "\n".join(
        f"{r['data']:<8} {r['loss']:<13} layer {r['layer']} (D={r['D']}): γ_emp "
        f"{r['gamma_emp']:.3f}±{r['gamma_emp_sd']:.3f}  γ_AWD {r['gamma_awd']:.3f}  "
        f"R² {r['r2_emp']:.2f}  ε/baseline {_fmt_ratio(r['commutation_ratio'])}  "
        f"{'ok' if r['ok'] else 'off'}"
        for r in rows)
    figures = []
    if ctx.out_dir is not None:
        from sgdnoise.verify.figures import powerlaw_panels

        out = Path(ctx.out_dir)
        title = r"$C_{ii}$ against $\lambda_i$ in $H$'s eigenbasis"
        figures.append(str(powerlaw_panels(figure_panels, out / "A6_powerlaw.png", title=title)))
        md = ["| data | loss | layer | D | γ_emp (mean ± s.d.) | γ_AWD | R² | ε / baseline |",
              "|---|---|---|---|---|---|---|---|"]
        md += [f"| {r['data']} | {r['loss']} | {r['layer']} | {r['D']} | {r['gamma_emp']:.3f} ± "
               f"{r['gamma_emp_sd']:.3f} | {r['gamma_awd']:.3f} | {r['r2_emp']:.3f} | "
               f"{_fmt_ratio(r['commutation_ratio'])} |" for r in rows]
        (out / "A6_gamma_table.md").write_text("\n".join(md) + "\n", encoding="utf-8")
        figures.append(str(out / "A6_gamma_table.md"))
    return Outcome(
        prediction=f"CE: γ_emp ≥ {1 + CE_MARGIN}, |γ_emp − γ_AWD| ≤ {GAMMA_MATCH_TOL}; "
                   f"softmax-MSE: |γ_emp − 1| ≤ {MSE_TOL} and below CE",
        measurement=table,
        tolerance=f"per layer, mean over {num_seeds} seeds (layerwise protocol)",
        passed=bool(ok),
        values={"rows": rows, "figures": figures},
    )


CLAIMS_A_NETWORKS: tuple[Claim, ...] = (
    Claim("A4", f"{SOURCE_A}, activity–weight duality",
          "In the 32×32 layer of a ReLU MLP trained with cross-entropy on the digits (paper's SGD "
          "protocol), the dual weight change reproduces the partner's loss exactly, and C behaves "
          "as (σ_w²/2B)·E_p[h_p²]: the C_ii and M_ii exponents agree and C is closer to ∝M than "
          "to ∝H. The AWD assumptions are measured, not assumed: the prefactor and the "
          "linearisation ratio are reported (at this scale the first-order expansion is not "
          "accurate and the prefactor is off by about an order of magnitude).", _run_a4),
    Claim("A6", f"{SOURCE_A}, power law in networks",
          "In every dense layer of ReLU MLPs trained on the digits (and MNIST-1D with --full), "
          "C_ii ∝ λ_i^γ; with cross-entropy γ_emp > 1 and close to γ_AWD, with softmax-then-MSE "
          "γ_emp ≈ 1 and below cross-entropy (learning rate converted from the paper's MSELoss "
          "scale); for softmax-MSE γ_AWD is reported but does not track γ_emp at this scale (it "
          "stays ≈ 1.2–1.4). The commutation ratio "
          "ε(C,H)/Haar baseline is reported per layer; at this scale it is not below 1, i.e. the "
          "paper's 'far below the random baseline' is not reproduced here.", _run_a6),
)

__all__ = ["CE_MARGIN", "CLAIMS_A_NETWORKS", "GAMMA_MATCH_TOL", "MSE_TOL"]

"""Whole-network curvature statistics of the digits MLP, matrix-free (the guide's worked example).

Trains the 64-32-32-10 ReLU MLP of claim A6 (cross-entropy, the paper's SGD protocol, 100
epochs), then analyses **all of its parameters jointly** (D = 3392, with the cross-layer blocks)
through ``MLP.curvature_operators``: top-200 eigenpairs of H, M_ii and C_ii on them, both power
laws, the commutation of C and H on the top window, the SLQ density of H (figure), and
Hutchinson / Hutch++ traces of H, M and HΣ₁.  Because D is small here, it also materialises H
once and prints the exact values next to the estimates.

Run from the repository root::

    python examples/whole_network_curvature.py [--out docs/figures]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sgdnoise import theory
from sgdnoise.sim import datasets
from sgdnoise.verify.networks import train_paper_mlp

B = 50  # batch size of C = Σ₁/B
K_TOP = 200  # eigenpairs of H (the fit window 𝒩)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures", help="folder of the figure")
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()

    d = datasets.digits()
    net = train_paper_mlp(d.x, d.y, hidden=(32, 32), loss="cross_entropy",
                          num_epochs=args.epochs, seed=0)
    model, w, x, y = net.model, net.w, net.x, net.y
    print(f"network {model.widths}, D = {model.num_params}, N = {x.shape[0]}, "
          f"train accuracy {net.accuracy:.3f}")

    t0 = time.perf_counter()
    ops = model.curvature_operators(w, x, y)  # layer=None: the whole network
    C = ops.C(B)
    basis = theory.top_eigenbasis(ops.H, K_TOP, rng=0)
    diag = ops.diagonals(basis.V, ("M", "Sigma1"))
    M_ii, C_ii = diag["M"], diag["Sigma1"] / B
    t_top = time.perf_counter() - t0
    print(f"top-{K_TOP} of H: {basis.num_products} products, λ_1 = {basis.lam[0]:.4g}, "
          f"λ_{K_TOP} = {basis.lam[-1]:.4g}, max relative residual "
          f"{basis.relative_residuals.max():.1e} ({t_top:.1f} s with M_ii, C_ii)")

    fit_m = theory.fit_exponent(basis.lam, M_ii, top=K_TOP, protocol="top")
    fit_c = theory.fit_power_law(basis.lam, C_ii, top=K_TOP, protocol="top")
    print(f"γ_emp (C_ii) = {fit_c.slope:.3f} (R² {fit_c.r2:.3f}); "
          f"γ_AWD (M_ii) = {fit_m.gamma:.3f} = 1 + slope of log κ_eff "
          f"({fit_m.kappa_slope:.3f}; 1 ≤ γ ≤ 2: {fit_m.in_unit_range})")

    comm = theory.window_commutation_metrics(C, basis, num_samples=8, rng=0)
    print(f"top-window commutation ε_S = {comm.epsilon:.3g}, Haar baseline "
          f"{comm.baseline.mean:.3g} (ratio {comm.ratio:.2f}), diagonal energy "
          f"{comm.diagonal_energy:.3f}, Spearman ρ(C_ii, λ_i) {comm.spearman:.3f}")

    t0 = time.perf_counter()
    dens = theory.slq_density(ops.H, num_probes=16, num_steps=80, rng=0)
    t_slq = time.perf_counter() - t0
    print(f"SLQ density of H: 16 probes × 80 steps ({t_slq:.1f} s), Wasserstein error bound "
          f"{dens.wasserstein_error():.3g}")

    tr_h = theory.trace_estimate(ops.H, num_probes=60, rng=1, method="hutch++")
    tr_m = theory.trace_estimate(ops.M, num_probes=60, rng=2, method="hutch++")
    tr_hs = theory.trace_product(ops.H, ops.Sigma1, num_probes=60, rng=3, method="hutch++")
    print(f"Hutch++ (60 products): Tr H = {tr_h.estimate:.5g} ± {tr_h.standard_error:.2g}, "
          f"Tr M = {tr_m.estimate:.5g} ± {tr_m.standard_error:.2g}, "
          f"Tr(HΣ₁) = {tr_hs.estimate:.5g} ± {tr_hs.standard_error:.2g}")

    # exact values, affordable at D = 3392 (one dense H, two products per column for HΣ₁)
    H = ops.H.to_dense()
    lam_all = np.linalg.eigvalsh(H)[::-1]
    HS = ops.Sigma1.matmat(H)
    print(f"exact: Tr H = {np.trace(H):.5g}, Tr(HΣ₁) = {np.trace(HS):.5g}, "
          f"max |λ_i − λ_i(eigh)| / λ_1 over the top {K_TOP} = "
          f"{np.abs(basis.lam - lam_all[:K_TOP]).max() / lam_all[0]:.1e}, "
          f"Wasserstein-1(SLQ, exact spectrum) = {dens.wasserstein_distance(lam_all):.3g}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    grid = np.linspace(lam_all.min() - 0.02 * lam_all[0], 1.02 * lam_all[0], 2000)
    sigma = 0.01 * lam_all[0]
    ax1.semilogy(grid, np.maximum(dens.density(grid, sigma), 1e-8), label="SLQ (16 × 80)")
    exact = np.exp(-0.5 * ((grid[:, None] - lam_all[None, :]) / sigma) ** 2).sum(axis=1)
    exact /= lam_all.size * sigma * np.sqrt(2 * np.pi)
    ax1.semilogy(grid, np.maximum(exact, 1e-8), "--", label="exact (eigh), same broadening")
    ax1.set_xlabel(r"$\lambda$")
    ax1.set_ylabel("spectral density of $H$")
    ax1.set_ylim(1e-6, None)
    ax1.legend(fontsize=8)
    ax1.set_title(f"whole network, D = {model.num_params}")
    ax2.loglog(basis.lam, C_ii, ".", ms=3, label=r"$C_{ii}$")
    c = float(np.median(C_ii / M_ii))
    ax2.loglog(basis.lam, c * M_ii, ".", ms=3, label=r"$c\,M_{ii}$")
    ax2.set_xlabel(r"$\lambda_i$ (top 200)")
    ax2.set_title(fr"$\gamma_{{emp}}$ = {fit_c.slope:.2f}, $\gamma_{{AWD}}$ = {fit_m.gamma:.2f}")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out) / "large_networks_digits.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

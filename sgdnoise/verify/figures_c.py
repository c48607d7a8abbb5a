"""Figures of the part-C claims (power-law escape rate), drawn with matplotlib's object API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.verify.figures import _new_figure, _save


def noise_trace_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""C1: measured noise trace 𝒩 against the loss, with 2L Tr H and 2L Tr H + ‖Hδθ‖².

    Parameters
    ----------
    result : dict
        :func:`sgdnoise.verify._part_c.run_c1` output (one entry per case).
    path : path
        PNG file to write.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C1).
    """
    fig, axes = _new_figure(5.0 * len(result), 4.4, len(result))
    for ax, (name, r) in zip(axes, result.items(), strict=True):
        L = np.asarray(r["loss"])
        order = np.argsort(L)
        ax.errorbar(L, r["measured"], yerr=2 * np.asarray(r["standard_error"]), fmt="o", ms=3,
                    label=r"measured $\mathcal{N}$ (±2 s.e.)")
        ax.plot(L[order], np.asarray(r["decoupled"])[order], "k--", lw=1,
                label=r"decoupled $2L\,\mathrm{Tr}H$")
        ax.plot(L[order], np.asarray(r["exact"])[order], "r-", lw=1,
                label=r"exact $2L\,\mathrm{Tr}H + \|H\delta\theta\|^2$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("L (population)")
        ax.set_ylabel(r"$\mathcal{N} = E_p\|\nabla\ell_p\|^2 - \|\nabla L\|^2$")
        ax.set_title(f"{name}, SGD B = {r['B']}, η = {r['eta']:g}")
        ax.legend(fontsize=7)
    return _save(fig, path)


def stationary_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""C2: stationary histograms against L^{−φ} (SDE; SGD at η = 0.1 and η = 1).

    Parameters
    ----------
    result : dict
        :func:`sgdnoise.verify._part_c.run_c2` output.
    path : path
        PNG file to write.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C2).
    """
    keys = [k for k in result if k != "sde"]
    fig, axes = _new_figure(15.0, 4.4, 1 + len(keys))
    sde = result["sde"]
    ax = axes[0]
    ax.hist(sde["samples"], bins=80, range=(-2.2, 2.2), density=True, alpha=0.5,
            label=f"SDE, n = {sde['n']}")
    ax.plot(sde["grid"], sde["density"], "k-", lw=1, label=f"$L^{{-\\varphi}}$, φ = {sde['phi']:.2f}")
    ax.set_xlim(-2.2, 2.2)
    ax.set_title(f"double well, KS D = {sde['ks']:.3f} (crit. {sde['ks_critical']:.3f})")
    ax.set_xlabel(r"$\theta$")
    ax.legend(fontsize=7)
    for ax, key in zip(axes[1:], keys, strict=True):
        r = result[key]
        d = np.asarray(r["delta"])
        if r["eta"] >= 1:
            a = np.abs(d)
            bins = np.geomspace(max(a.min(), 1e-4), a.max() * 1.01, 60)
            ax.hist(a, bins=bins, density=True, alpha=0.5, label="SGD |δ|")
            g = np.asarray(r["grid"])
            pos = g > 0
            ax.plot(g[pos], 2 * np.asarray(r["density"])[pos], "k-", lw=1,
                    label=f"$L^{{-\\varphi}}$, φ = {r['phi']:.2f}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"$|\theta - \theta^*|$")
        else:
            lim = 4 * float(np.std(d))
            ax.hist(d, bins=80, range=(-lim, lim), density=True, alpha=0.5, label="SGD")
            ax.plot(r["grid"], r["density"], "k-", lw=1,
                    label=f"$L^{{-\\varphi}}$, φ = {r['phi']:.2f}")
            ax.set_xlim(-lim, lim)
            ax.set_xlabel(r"$\theta - \theta^*$")
        ax.set_title(f"SGD 1-D regression, η = {r['eta']:g}: KS D = {r['ks']:.3f}")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _plain_ticks(ax: Any, values: np.ndarray) -> None:
    """Major x ticks at ``values`` written as plain numbers, no minor labels (log axis)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(list(values)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def escape_figure_c(result: dict[str, Any], path: str | Path) -> Path:
    r"""C3: log–log mean first-passage time against c (SDE and discrete SGD) with the slopes.

    Parameters
    ----------
    result : dict
        :func:`sgdnoise.verify._part_c.run_c3` output.
    path : path
        PNG file to write.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557, Fig. 3 (spec claim C3).
    """
    fig, (ax, ax2) = _new_figure(11.0, 4.6, 2)
    c = np.asarray(result["c"])
    m = np.asarray(result["sde_mfpt"])
    se = np.asarray(result["sde_log_se"])
    ax.errorbar(c, m, yerr=[m - m * np.exp(-2 * se), m * np.exp(2 * se) - m], fmt="o",
                label=f"SDE (slope {result['slope']:.2f} ± {result['slope_se']:.2f})")
    ax.plot(c, result["exact_mfpt"], "k-", lw=1, label="exact 1-D quadrature")
    ax.plot(c, result["formula_mfpt"], "k--", lw=1,
            label=f"1/κ power law, slope {result['exponent']:.2f}")
    ax.plot(c, result["frozen_formula"], ":", color="tab:red", label="Arrhenius, frozen noise")
    ax.plot(c, result["gld_formula"], "-.", color="tab:green",
            label=f"Arrhenius, GLD T = {result['T_gld']:.2f}")
    fs = np.asarray(result["frozen_sim"])
    ax.plot(c[: len(fs)], fs[:, 0], "s", color="tab:red", mfc="none", label="frozen-noise SDE")
    ax.plot([c[-1]], [result["gld_sim"][0]], "^", color="tab:green", mfc="none",
            label="GLD SDE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax, c)
    ax.set_xlabel(r"$c = L(\theta^s)/L(\theta^*)$")
    ax.set_ylabel("mean first-passage time (SDE time)")
    ax.set_title("double well, T = ηh*/B = 0.5")
    ax.legend(fontsize=7)
    cg = np.asarray(result["sgd_c"])
    mg = np.asarray(result["sgd_mfpt_steps"])
    sg = np.asarray(result["sgd_log_se"])
    ax2.errorbar(cg, mg, yerr=[mg - mg * np.exp(-2 * sg), mg * np.exp(2 * sg) - mg], fmt="o",
                 label=f"SGD (slope {result['sgd_slope']:.2f} ± {result['sgd_slope_se']:.2f})")
    for nz, v in result["sgd_sde_mfpt_steps"].items():
        ax2.plot(cg, v, "-", lw=1, label=f"SDE quadrature, {nz} noise "
                 f"(slope {result['sgd_sde_slopes'][nz]:.2f})")
    ref = mg[0] * (cg / cg[0]) ** result["sgd_predicted_slope"]
    ax2.plot(cg, ref, "k--", lw=1, label=f"slope B/(ηh*) + ½ = {result['sgd_predicted_slope']:.2f}")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    _plain_ticks(ax2, cg)
    ax2.set_xlabel(r"$c$ (level $L \geq cL^*$)")
    ax2.set_ylabel("mean first-passage time (SGD steps)")
    ax2.set_title(f"SGD, 1-D regression, η = 0.1, B = 1, {result['sgd_runs']} runs per c")
    ax2.legend(fontsize=7)
    return _save(fig, path)


def dimension_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""C4: fitted escape exponent against the number n of outlier directions.

    Parameters
    ----------
    result : dict
        :func:`sgdnoise.verify._part_c.run_c4` output.
    path : path
        PNG file to write.

    References
    ----------
    Mori, Ziyin, Liu & Ueda, arXiv:2105.09557 (spec claim C4).
    """
    fig, (ax,) = _new_figure(5.5, 4.4, 1)
    n = np.asarray(result["n"], dtype=float)
    ax.errorbar(n, result["slopes"], yerr=2 * np.asarray(result["slope_se"]), fmt="o",
                label="measured slope (±2 s.e.)")
    nn = np.linspace(1, max(result["n_c"], n.max()) + 0.5, 50)
    first = result["predicted"][0]
    ax.plot(nn, first - 0.5 * (nn - 1), "k--", lw=1, label="B/(ηh*) + 1 − n/2")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.axvline(result["n_c"], color="tab:red", lw=0.8, ls=":",
               label=f"$n_c$ = {result['n_c']:.1f} (fit {result['n_c_measured']:.2f})")
    ax.set_xlabel("outlier directions n")
    ax.set_ylabel("escape exponent (slope of log MFPT vs log c)")
    ax.set_title(f"change per direction {result['step']:.3f} ± {result['step_se']:.3f}")
    ax.legend(fontsize=7)
    return _save(fig, path)


__all__ = ["dimension_figure", "escape_figure_c", "noise_trace_figure", "stationary_figure"]

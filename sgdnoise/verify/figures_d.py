r"""Figures of SPEC part D (epoch-based sampling): one per claim group, PNG, matplotlib (Agg).

Each function takes the ``values`` dict of the matching claim run
(:func:`sgdnoise.verify._part_d.run_d1` …) and writes one file.

References
----------
Kühn & Rosenow, arXiv:2306.05300 (spec claims D1–D5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise.verify.figures import _new_figure, _save


def autocorrelation_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""D1: batch-noise autocorrelation R(h)/C, measured (±2 s.e.) against the exact law.

    .. math:: R(h)/C = -\frac{M - |h|}{M(M-1)}\ (1 \le |h| < M),\qquad \text{i.i.d.: } \delta_{h0}

    Parameters
    ----------
    result : dict
        ``values`` of claim D1 (lags, M, and per scheme measured, standard_error, predicted).
    path : str or Path
        Output PNG.

    Returns
    -------
    Path

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D1).
    """
    fig, (ax,) = _new_figure(6.0, 4.0, 1)
    lags = np.asarray(result["lags"])
    for scheme, colour, label in (("reshuffle", "C0", "random reshuffling"),
                                  ("iid", "C1", "i.i.d. batches")):
        row = result[scheme]
        ax.errorbar(lags[1:], np.asarray(row["measured"])[1:],
                    yerr=2 * np.asarray(row["standard_error"])[1:], fmt="o", ms=3,
                    color=colour, label=f"{label}, measured")
        ax.plot(lags[1:], np.asarray(row["predicted"])[1:], "-", color=colour,
                label=f"{label}, exact")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.axvline(result["M"], color="0.6", ls=":", lw=0.8, label="h = M")
    ax.set_xlabel("lag h (updates)")
    ax.set_ylabel("R(h) / C  (h ≥ 1; R(0)/C = 1)")
    ax.set_title("D1: batch-noise autocorrelation, phase-averaged")
    ax.legend(fontsize=7)
    return _save(fig, path)


def variance_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""D2/D3: weight variance against λ, i.i.d. and epoch (phase average and epoch boundary).

    Exact curves (lines) and measured values (markers, ±2 s.e.), λ_c marked, one panel per
    optimiser.

    Parameters
    ----------
    result : dict
        ``values`` of claim D3 (lam, iid, phase_averaged, epoch_boundary, crossover).
    path : str or Path
        Output PNG.

    Returns
    -------
    Path

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claims D2, D3).
    """
    labels = list(result["iid"])
    fig, axes = _new_figure(5.0 * len(labels), 4.0, len(labels))
    lam = np.asarray(result["lam"])
    for ax, label in zip(axes, labels, strict=True):
        ax.loglog(lam, result["iid"][label], "-", color="C1", label="i.i.d., exact (D2)")
        if "iid_measured" in result:
            row = result["iid_measured"][label]
            ax.errorbar(lam, row["measured"], yerr=2 * np.asarray(row["standard_error"]),
                        fmt="s", ms=3, color="C1", label="i.i.d., measured")
        for key, colour, name in (("phase_averaged", "C0", "epoch, phase-averaged"),
                                  ("epoch_boundary", "C2", "epoch, at epoch boundaries")):
            row = result[key][label]
            ax.loglog(lam, row["predicted"], "--", color=colour, label=f"{name}, exact")
            ax.errorbar(lam, row["measured"], yerr=2 * np.asarray(row["standard_error"]),
                        fmt="o", ms=3, color=colour, label=f"{name}, measured")
        ax.axvline(result["crossover"][label], color="0.5", ls=":", label="λ_c")
        ax.set_xlabel("Hessian eigenvalue λ")
        ax.set_ylabel("Var x along the eigendirection")
        ax.set_title(f"D2/D3: {label}")
        ax.legend(fontsize=6)
    return _save(fig, path)


def correlation_time_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""D4: correlation time τ = Var x / Var v against λ, exact and measured.

    .. math:: \tau_{\mathrm{iid}} = \frac{1+\beta}{2\eta\lambda}

    Parameters
    ----------
    result : dict
        ``values`` of claim D4 (lam, rows with measured, standard_error, predicted, crossover).
    path : str or Path
        Output PNG.

    Returns
    -------
    Path

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D4).
    """
    fig, (ax,) = _new_figure(6.0, 4.0, 1)
    lam = np.asarray(result["lam"])
    for i, (name, row) in enumerate(result["rows"].items()):
        colour = f"C{i}"
        ax.loglog(lam, row["predicted"], "-", color=colour, label=f"{name}, exact")
        ax.errorbar(lam, row["measured"], yerr=2 * np.asarray(row["standard_error"]), fmt="o",
                    ms=3, color=colour)
        if row["scheme"] == "reshuffle":
            ax.axvline(row["crossover"], color=colour, ls=":", lw=0.8)
    ax.set_xlabel("Hessian eigenvalue λ")
    ax.set_ylabel("τ = Var x / Var v  (updates)")
    ax.set_title("D4: correlation time (dotted: λ_c)")
    ax.legend(fontsize=6)
    return _save(fig, path)


def excess_loss_figure(result: dict[str, Any], path: str | Path) -> Path:
    r"""D5: mean excess loss and loss variance, measured against the predictions.

    .. math:: \langle L\rangle - L^* = \tfrac12\sum_i \lambda_i \mathrm{Var}\,x_i
              \quad\text{vs}\quad \tfrac12\sigma^2 \sum_i \lambda_i

    Bars: measured (±2 s.e.), exact epoch, i.i.d., constant variance; left the mean, right the
    variance of L (Gaussian approximation for the predictions).

    Parameters
    ----------
    result : dict
        ``values`` of claim D5.
    path : str or Path
        Output PNG.

    Returns
    -------
    Path

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec claim D5).
    """
    fig, (ax, ax2) = _new_figure(10.0, 4.0, 2)
    rows = result["rows"]
    x = np.arange(len(rows))
    width = 0.2
    for j, (key, name) in enumerate((("measured", "measured (epoch)"),
                                     ("predicted", "exact, epoch variances"),
                                     ("iid", "exact, i.i.d. variances"),
                                     ("constant_variance", "constant variance"))):
        vals = [r[key] for r in rows.values()]
        err = [2 * r["standard_error"] for r in rows.values()] if key == "measured" else None
        ax.bar(x + (j - 1.5) * width, vals, width, yerr=err, label=name)
    for j, (key, name) in enumerate((("loss_variance", "measured (epoch)"),
                                     ("loss_variance_gaussian", "Gaussian, epoch variances"),
                                     ("loss_variance_constant", "Gaussian, constant variance"))):
        vals = [r[key] for r in rows.values()]
        err = ([2 * r["loss_variance_standard_error"] for r in rows.values()]
               if key == "loss_variance" else None)
        ax2.bar(x + (j - 1) * width, vals, width, yerr=err, label=name)
    for a, title in ((ax, "D5: mean excess loss ⟨L⟩ − L*"), (ax2, "D5 (open reading): Var L")):
        a.set_xticks(x, list(rows), fontsize=7)
        a.set_yscale("log")
        a.set_title(title)
        a.legend(fontsize=6)
    return _save(fig, path)


__all__ = ["autocorrelation_figure", "correlation_time_figure", "excess_loss_figure",
           "variance_figure"]

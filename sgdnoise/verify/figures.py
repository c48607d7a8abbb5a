"""Figures of the claims, drawn with matplotlib's object API (no pyplot state) and saved as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sgdnoise._typing import FloatArray


def powerlaw_panels(panels: Sequence[tuple[str, FloatArray, FloatArray, FloatArray, float]],
                    path: str | Path, *, title: str = "") -> Path:
    r"""Log–log scatter of C_ii against λ_i, one panel per entry, with slope-1 and slope-2 guides.

    Parameters
    ----------
    panels : sequence of (label, lam, C_ii, M_ii_scaled, gamma)
        ``M_ii_scaled`` is drawn as a second series (the AWD prediction, rescaled to C's level);
        ``gamma`` is the fitted exponent written in the legend.
    path : path
        PNG file to write (its folder is created).
    title : str

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec claim A6, log–log figure).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(panels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, lam, C_ii, M_scaled, gamma) in zip(axes, panels, strict=True):
        ok = (lam > 0) & (C_ii > 0)
        ax.loglog(lam[ok], C_ii[ok], ".", ms=3, alpha=0.5, label=f"$C_{{ii}}$ (γ = {gamma:.2f})")
        okm = (lam > 0) & (M_scaled > 0)
        ax.loglog(lam[okm], M_scaled[okm], ".", ms=2, alpha=0.35, color="tab:orange",
                  label=r"$c\,M_{ii}$ (AWD)")
        if ok.any():
            x0, y0 = float(np.median(lam[ok])), float(np.median(C_ii[ok]))
            xs = np.geomspace(lam[ok].min(), lam[ok].max(), 10)
            ax.loglog(xs, y0 * (xs / x0), "k--", lw=1, label="slope 1")
            ax.loglog(xs, y0 * (xs / x0) ** 2, "k:", lw=1, label="slope 2")
        ax.set_xlabel(r"$\lambda_i$ (eigenvalue of $H$)")
        ax.set_ylabel(r"$C_{ii}$ in $H$'s eigenbasis")
        ax.set_title(label)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _new_figure(width: float, height: float, ncols: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def escape_figure(result: dict, path: str | Path) -> Path:
    r"""SPEC B3's figure: trajectories over the loss contours, and escape frequency vs Tr(HS).

    Parameters
    ----------
    result : dict
        As returned by :func:`sgdnoise.verify.claims.run_b3`: ``rows`` (per variant: frequency,
        Wilson interval, indicator) and ``example`` (one trajectory per variant on the first data
        draw, plus that draw's data under ``"_data"``).
    path : path
        PNG file to write.

    References
    ----------
    Zhu et al., ICML 2019, Fig. 2 (spec claim B3).
    """
    from sgdnoise.sim.models import Toy2D

    fig, (ax_c, ax_e) = _new_figure(11.0, 4.6, 2)
    example = result["example"]
    model = Toy2D(example["_data"])
    g = np.linspace(-1.4, 1.6, 121)
    W1, W2 = np.meshgrid(g, g)
    grid = np.stack([W1.ravel(), W2.ravel()], axis=1)
    L = model.per_sample_losses(grid).mean(axis=-1).reshape(W1.shape)
    cs = ax_c.contour(W1, W2, np.log10(L + 1e-3), 12, cmap="Greys", linewidths=0.7)
    ax_c.clabel(cs, fontsize=6, fmt="%.1f")
    for name, traj in example.items():
        if name.startswith("_"):
            continue
        t = np.clip(traj, -1.4, 1.6)
        ax_c.plot(t[:, 0], t[:, 1], ".-", ms=2, lw=0.6, label=name)
    ax_c.set_xlabel("$w_1$")
    ax_c.set_ylabel("$w_2$")
    ax_c.set_title("one run per variant over log$_{10}$ L (first data draw)")
    ax_c.legend(fontsize=7, loc="lower right")
    rows = result["rows"]
    for name, r in rows.items():
        lo, hi = r["wilson_95"]
        f = r["frequency"]
        ax_e.errorbar([r["indicator"]], [f], yerr=[[max(f - lo, 0.0)], [max(hi - f, 0.0)]], fmt="o", capsize=3,
                      label=name)
    ax_e.set_xlabel(r"indicator Tr$(HS)$ at the sharp minimum (Tr $S$ = 0.01)")
    ax_e.set_ylabel("escape frequency (95 % Wilson)")
    ax_e.set_title(f"{result['draws']} data draws × {result['replicas_per_draw']} runs")
    ax_e.legend(fontsize=7)
    return _save(fig, path)


def gain_figure(result: dict, path: str | Path) -> Path:
    r"""SPEC B4's figure: Tr(HΣ̂)/Tr(HΣ̄) during training with its bounds Dλ₁/TrH and Dλ_D/TrH.

    Parameters
    ----------
    result : dict
        As returned by :func:`sgdnoise.verify.claims.run_b4` (``step``, ``gain``, ``max_gain``,
        ``min_gain``, ``accuracy``).
    path : path
        PNG file to write.

    References
    ----------
    Zhu et al., ICML 2019, Fig. 3 (spec claim B4).
    """
    fig, (ax,) = _new_figure(5.6, 4.2, 1)
    step = np.asarray(result["step"])
    ax.semilogy(step, result["gain"], "o-", ms=3, label=r"Tr$(H\hat\Sigma)$/Tr$(H\bar\Sigma)$")
    ax.semilogy(step, result["max_gain"], "k--", lw=1, label=r"max $D\lambda_1/$Tr$H$")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="isotropic (1)")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("gain over isotropic noise")
    ax.legend(fontsize=8)
    return _save(fig, path)


__all__ = ["escape_figure", "gain_figure", "powerlaw_panels"]

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


__all__ = ["powerlaw_panels"]

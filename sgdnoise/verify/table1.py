r"""The paper's Table-1 protocol on local MNIST-style files: γ_emp and γ_AWD per class count and loss.

Protocol (Zhang, Yang & Tu, arXiv:2602.05600; authors' code Yikuan-PKU/AWCH): a ReLU MLP
784-50-50-𝒞 without biases, trained by SGD (batch 50, η = 0.1, cosine schedule T_max = 500,
gradient clipping at 5) on the first 𝒞 classes with ``samples_per_class`` samples each; the
50×50 layer is analysed: eigenvalues of H sorted descending, the top 𝒩 kept, non-positive entries
dropped, OLS of log10 C_ii (γ_emp) and log10 M_ii (γ_AWD) on log10 λ_i; mean ± s.d. over seeds.
``layer`` analyses another layer or, with ``"all"``, the whole network (matrix-free operators
and the top-𝒩 eigenpairs of H where D is too large for dense matrices).

Run it as ``sgdnoise table1 --root DIR`` (see ``sgdnoise table1 --help``); it writes
``table1.json`` (rows plus provenance), ``table1.md`` and ``table1.png`` to ``--out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise import backends
from sgdnoise._io import provenance, write_json_atomic
from sgdnoise._validate import check_choice, check_positive_int
from sgdnoise.sim.datasets import LOCAL_DATASETS, load_local
from sgdnoise.verify.networks import LOSSES, analyse_layer, train_paper_mlp


@dataclass(frozen=True)
class Table1Config:
    """Settings of the Table-1 run (defaults: the paper's).

    Attributes
    ----------
    dataset : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` (read by :func:`load_local`).
    class_counts : tuple of int
        The 𝒞 values; classes 0..𝒞−1 are used.
    samples_per_class : int
    losses : tuple of str
    num_seeds : int
    num_epochs : int
    hidden : tuple of int
        Hidden widths (50, 50).
    top : int
        Window 𝒩 of the fit (the paper hand-picks 200–1500 of D = 2500).
    eta : float
    layer : int or "all"
        The analysed layer (default 1, the 50×50 layer), or ``"all"`` for the whole network
        (every layer jointly, with the cross-layer blocks).  Where D exceeds
        :data:`~sgdnoise.verify.networks.DENSE_MAX_DIM` (e.g. the 784×50 first layer, or the
        whole network) the matrix-free operators and the top-``top`` eigenpairs of H are used;
        below it the dense path, with the same numbers.
    """

    dataset: str = "mnist"
    class_counts: tuple[int, ...] = (3, 6, 10)
    samples_per_class: int = 2000
    losses: tuple[str, ...] = LOSSES
    num_seeds: int = 4
    num_epochs: int = 100
    hidden: tuple[int, ...] = (50, 50)
    top: int = 1000
    eta: float = 0.1
    layer: int | str = 1

    def __post_init__(self) -> None:
        check_choice(self.dataset, "dataset", LOCAL_DATASETS)
        for c in self.class_counts:
            check_positive_int(c, "class_counts", minimum=2)
        check_positive_int(self.samples_per_class, "samples_per_class")
        for loss in self.losses:
            check_choice(loss, "losses", LOSSES)
        check_positive_int(self.num_seeds, "num_seeds")
        check_positive_int(self.num_epochs, "num_epochs")
        check_positive_int(self.top, "top", minimum=2)
        if len(self.hidden) < 1:
            raise ValueError("hidden must have at least one width")
        if self.layer != "all":
            num_layers = len(self.hidden) + 1
            if isinstance(self.layer, bool) or not isinstance(self.layer, int) or not (
                    0 <= self.layer < num_layers):
                raise ValueError(f"layer must be 'all' or an index in range({num_layers}) "
                                 f"for hidden = {self.hidden}; got {self.layer!r}")


def run_table1(root: str | Path, config: Table1Config = Table1Config(), *,
               out_dir: str | Path = "table1", seed: int = 0, backend: str = "auto",
               progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    r"""Train and analyse every (𝒞, loss, seed); write table1.json/.md/.png; return the rows.

    Parameters
    ----------
    root : path
        Folder holding the data files (see :func:`sgdnoise.sim.datasets.load_local`).
    config : Table1Config
    out_dir : path
    seed : int
        Root seed: seed s of the table uses ``seed * 1000 + s``.
    backend : {"numpy", "numba", "auto"}
        Training backend (identical trajectories up to round-off).
    progress : callable, optional
        Receives one line per finished run.

    Raises
    ------
    FileNotFoundError
        When the data files are absent (the message names them).

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600, Table 1 (spec claim A6 protocol).
    """
    backend = backends.resolve(backend, supported=("numpy", "numba"))
    out = Path(out_dir)
    rows: list[dict[str, Any]] = []
    panels = []
    for count in config.class_counts:
        data = load_local(config.dataset, root, classes=list(range(count)),
                          samples_per_class=config.samples_per_class,
                          rng=np.random.SeedSequence([seed, count]).generate_state(1)[0])
        for loss in config.losses:
            g_emp, g_awd, r2 = [], [], []
            for s in range(config.num_seeds):
                net = train_paper_mlp(data.x, data.y, hidden=config.hidden, loss=loss,
                                      eta=config.eta, num_epochs=config.num_epochs,
                                      seed=seed * 1000 + s, backend=backend)
                an = analyse_layer(net, config.layer, top=config.top, protocol="top",
                                   with_awd=False, num_baseline=0, rng=seed * 1000 + s,
                                   with_residuals=False)
                g_emp.append(an.fit_emp.slope)
                g_awd.append(an.fit_awd.slope)
                r2.append(an.fit_emp.r2)
                if s == 0:
                    c = float(np.median(an.C_ii[an.fit_emp.index] / an.M_ii[an.fit_emp.index]))
                    panels.append((f"C={count} classes, {loss}", an.lam, an.C_ii, c * an.M_ii,
                                   an.fit_emp.slope))
                if progress is not None:
                    progress(f"𝒞={count} {loss} seed {s}: γ_emp {g_emp[-1]:.3f}, "
                             f"γ_AWD {g_awd[-1]:.3f}, train acc {net.accuracy:.3f}")
            rows.append({"classes": count, "loss": loss, "gamma_emp": float(np.mean(g_emp)),
                         "gamma_emp_sd": float(np.std(g_emp)), "gamma_awd": float(np.mean(g_awd)),
                         "gamma_awd_sd": float(np.std(g_awd)), "r2_emp": float(np.mean(r2)),
                         "seeds": config.num_seeds})
    _write(out, rows, panels, config, seed, backend)
    return rows


def _write(out: Path, rows: Sequence[dict[str, Any]], panels: list, config: Table1Config,
           seed: int, backend: str) -> None:
    from dataclasses import asdict

    from sgdnoise.verify.figures import powerlaw_panels

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "table1.json", {
        "provenance": provenance(seed=seed, backend=backend, config=asdict(config)),
        "rows": list(rows)})
    lines = ["| 𝒞 | loss | γ_emp | γ_AWD | R² (emp) | seeds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['classes']} | {r['loss']} | {r['gamma_emp']:.3f} ± {r['gamma_emp_sd']:.3f} "
              f"| {r['gamma_awd']:.3f} ± {r['gamma_awd_sd']:.3f} | {r['r2_emp']:.3f} | "
              f"{r['seeds']} |" for r in rows]
    tmp = out / ".table1.md.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out / "table1.md")
    what = "all layers" if config.layer == "all" else f"layer {config.layer}"
    powerlaw_panels(panels, out / "table1.png", title=f"Table-1 protocol: {what}, first seed")


__all__ = ["Table1Config", "run_table1"]
